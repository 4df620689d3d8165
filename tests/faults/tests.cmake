# SPDX-License-Identifier: MIT
# The fault matrix (tests/faults/faults.py) on the integration tests' lab:
# ctest runs a short pass, two iterations of the cases that finish quickly
# AND pass with today's build; the whole matrix runs by hand, e.g.
#     tests/faults/faults.py --iterations 30 --json faults.json
# and a case joins the list below once it passes.
get_directory_property(VMM_IT_ENV DIRECTORY ${CMAKE_SOURCE_DIR}/tests DEFINITION VMM_IT_ENV)
set(VMM_FAULTS_SHORT
    "kill-mid-copy,kill-at-gate,kill-after-commit,kill-between-vms,stop-at-gate,stop-after-commit,tgt-libvirtd-kill-at-gate,tgt-qemu-kill-at-gate,journal-full-before,journal-full-during,hung-host-midrun,deep-metadata,host-exec-inject")
add_test(NAME faults.short
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/faults.py --iterations 2
                 --cases ${VMM_FAULTS_SHORT} --json ${CMAKE_BINARY_DIR}/faults-short.json)
set_tests_properties(faults.short PROPERTIES FIXTURES_REQUIRED lab RESOURCE_LOCK lab
                     ENVIRONMENT "${VMM_IT_ENV}" TIMEOUT 1800 LABELS integration)
