# SPDX-License-Identifier: MIT
# tests/policy — the policies' unit tests (inputs -> decisions), no lab:
# `vmmigrate plan` and `vmmigrate policy check` over libvirt test-driver
# hosts (tests/policy/fixtures). One ctest entry per tests/policy/test_*.py,
# named policy.<name> (test_vmm_module.py -> policy.vmm_module); they need
# /usr/bin/python3 with python3-jsonschema. Included from tests/CMakeLists.txt.
#
#   ctest --test-dir build -L policy --output-on-failure
file(GLOB VMM_POLICY_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/test_*.py)
foreach(py ${VMM_POLICY_TESTS})
  get_filename_component(name ${py} NAME_WE)
  string(REGEX REPLACE "^test_" "" name ${name})
  add_test(NAME policy.${name} COMMAND /usr/bin/python3 ${py})
  set_tests_properties(policy.${name} PROPERTIES TIMEOUT 120 LABELS policy
    ENVIRONMENT "VMM_BINARY=$<TARGET_FILE:vmmigrate>;VMM_SOURCE_DIR=${CMAKE_SOURCE_DIR};PYTHONDONTWRITEBYTECODE=1")
endforeach()
