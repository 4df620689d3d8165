# SPDX-License-Identifier: MIT
# Integration tests on the project's own lab (tests/lab/lab.sh): real
# libvirtd "hosts", real QEMU (TCG) guests. ctest's `lab` fixture brings the
# lab up before the first of them and down (by PID) after the last; running
# one with `ctest -R it.migrate` brings it up too. They share the lab and so
# never run in parallel (RESOURCE_LOCK).
set(VMM_LAB_DIR "/var/tmp/vmmigrate-lab-ctest${VMM_LAB_SUFFIX}" CACHE STRING
    "Lab directory used by the integration tests")
set(VMM_LAB_INDEX "1" CACHE STRING "Lab index (loopback addresses, ports) for the tests")
set(VMM_IT_ENV
  "VMM_BINARY=$<TARGET_FILE:vmmigrate>"
  "VMM_SOURCE_DIR=${CMAKE_SOURCE_DIR}"
  "VMM_LAB_DIR=${VMM_LAB_DIR}"
  "VMM_LAB_INDEX=${VMM_LAB_INDEX}"
  "VMM_GUEST_KERNEL=${CMAKE_BINARY_DIR}/tests/guest/vmm-guest.elf"
  "PYTHONDONTWRITEBYTECODE=1")

add_test(NAME it.lab-up COMMAND ${CMAKE_SOURCE_DIR}/tests/lab/lab.sh up 2)
add_test(NAME it.lab-down COMMAND ${CMAKE_SOURCE_DIR}/tests/lab/lab.sh down)
set_tests_properties(it.lab-up PROPERTIES FIXTURES_SETUP lab ENVIRONMENT "${VMM_IT_ENV}"
                     TIMEOUT 120 LABELS integration)
set_tests_properties(it.lab-down PROPERTIES FIXTURES_CLEANUP lab ENVIRONMENT "${VMM_IT_ENV}"
                     TIMEOUT 120 LABELS integration)

file(GLOB VMM_IT_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/test_*.py)
foreach(py ${VMM_IT_TESTS})
  get_filename_component(name ${py} NAME_WE)
  string(REPLACE "test_" "" name ${name})
  add_test(NAME it.${name} COMMAND /usr/bin/python3 ${py})
  set_tests_properties(it.${name} PROPERTIES FIXTURES_REQUIRED lab RESOURCE_LOCK lab
                       ENVIRONMENT "${VMM_IT_ENV}" TIMEOUT 900 LABELS integration)
endforeach()

# Four kill -9 and re-run drains of five guests each: more time than the rest.
set_tests_properties(it.drain_crash PROPERTIES TIMEOUT 2400)
