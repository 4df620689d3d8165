# SPDX-License-Identifier: MIT
# cases.cmake — read by ctest when it starts (TEST_INCLUDE_FILES), once per
# unit-test program. A program on the runner (its source includes
# runner.h) has one entry per case it lists (`test_x --list`), named
# unit.PROGRAM.CASE and running `test_x CASE`; one with a main of its own
# (check.h's RUN) is one entry, unit.PROGRAM, running it whole, as is a
# program that is not built or does not list (so that it fails).
# Set before it: VMM_UNIT_NAME, VMM_UNIT_PROGRAM (its path), VMM_UNIT_SOURCE,
# VMM_UNIT_ENV (a list).
set(cases "")
file(STRINGS "${VMM_UNIT_SOURCE}" on_runner REGEX "^#include \"runner.h\"")
if(on_runner AND EXISTS "${VMM_UNIT_PROGRAM}")
  execute_process(COMMAND "${VMM_UNIT_PROGRAM}" --list
                  OUTPUT_VARIABLE out RESULT_VARIABLE rc ERROR_QUIET)
  if(rc EQUAL 0)
    string(REPLACE "\n" ";" cases "${out}")
  endif()
endif()
set(added 0)
foreach(case IN LISTS cases)
  if(NOT case STREQUAL "")
    add_test(unit.${VMM_UNIT_NAME}.${case} "${VMM_UNIT_PROGRAM}" ${case})
    set_tests_properties(unit.${VMM_UNIT_NAME}.${case} PROPERTIES TIMEOUT 120 LABELS unit
                         ENVIRONMENT "${VMM_UNIT_ENV}")
    math(EXPR added "${added} + 1")
  endif()
endforeach()
if(added EQUAL 0)
  add_test(unit.${VMM_UNIT_NAME} "${VMM_UNIT_PROGRAM}")
  set_tests_properties(unit.${VMM_UNIT_NAME} PROPERTIES TIMEOUT 120 LABELS unit
                       ENVIRONMENT "${VMM_UNIT_ENV}")
endif()
