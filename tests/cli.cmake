# SPDX-License-Identifier: MIT
# tests/cli.cmake — the command line's tests and the generated docs; included
# from tests/CMakeLists.txt.
#
#   cmake --build build --target docs
#       rewrites man/vmmigrate.1, completions/vmmigrate.bash and
#       completions/_vmmigrate in the source tree from the command tables
#       (`vmmigrate docs man|bash|zsh`). unit.test_docs fails until the
#       committed files match.
#
#   ctest -R '^cli\.'
#       one test per tests/cli/NAME.test (the argv, the exit status and the
#       exact stderr; see tests/cli/run-cli-test.py), plus the completion
#       scripts' own checks.

add_custom_target(docs
  COMMAND ${CMAKE_COMMAND} -DVMM_BINARY=$<TARGET_FILE:vmmigrate>
          -DVMM_SOURCE_DIR=${CMAKE_SOURCE_DIR}
          -P ${CMAKE_CURRENT_LIST_DIR}/cli/gen-docs.cmake
  COMMENT "Regenerating the man page and the shell completions"
  VERBATIM)
add_dependencies(docs vmmigrate)

# The runner needs the standard library only; prefer the system python3.
find_program(VMM_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
find_program(VMM_PYTHON3 NAMES python3)
if(NOT VMM_PYTHON3)
  message(WARNING "python3 not found: the cli.* tests are not registered")
else()
  file(GLOB VMM_CLI_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/cli/*.test)
  foreach(file ${VMM_CLI_TESTS})
    get_filename_component(name ${file} NAME_WE)
    add_test(NAME cli.${name}
             COMMAND ${VMM_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/cli/run-cli-test.py ${file})
    set_tests_properties(cli.${name} PROPERTIES TIMEOUT 60 LABELS cli
      ENVIRONMENT "VMM_BINARY=$<TARGET_FILE:vmmigrate>")
  endforeach()
  # The events of several runs appended to one file split by run id; each
  # id is its report's, status file's and journal's (no lab: runs that end
  # early on their own).
  add_test(NAME cli.run-id
           COMMAND ${VMM_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/cli/test-run-id.py
                   ${CMAKE_BINARY_DIR} ${CMAKE_SOURCE_DIR})
  set_tests_properties(cli.run-id PROPERTIES TIMEOUT 120 LABELS cli)
endif()

# The bash completion, driven the way bash drives it.
find_program(VMM_BASH NAMES bash)
if(VMM_BASH)
  add_test(NAME cli.bash-completion
           COMMAND ${VMM_BASH} ${CMAKE_CURRENT_LIST_DIR}/cli/test-bash-completion.sh
                   ${CMAKE_SOURCE_DIR}/completions/vmmigrate.bash)
  set_tests_properties(cli.bash-completion PROPERTIES TIMEOUT 60 LABELS cli)
endif()

# The completion script and the test scripts pass shellcheck.
find_program(VMM_SHELLCHECK NAMES shellcheck)
if(VMM_SHELLCHECK)
  add_test(NAME cli.shellcheck
           COMMAND ${VMM_SHELLCHECK} -s bash
                   ${CMAKE_SOURCE_DIR}/completions/vmmigrate.bash
                   ${CMAKE_CURRENT_LIST_DIR}/cli/test-bash-completion.sh)
  set_tests_properties(cli.shellcheck PROPERTIES TIMEOUT 60 LABELS cli)
endif()

# An install into another prefix than the configured one finds drain's
# default policy next to its binary (tests/cli/test-install-prefix.sh).
if(VMM_BASH)
  add_test(NAME cli.install-prefix
           COMMAND ${VMM_BASH} ${CMAKE_CURRENT_LIST_DIR}/cli/test-install-prefix.sh
                   ${CMAKE_BINARY_DIR})
  set_tests_properties(cli.install-prefix PROPERTIES TIMEOUT 120 LABELS cli)
  # status: recent runs by default, an open one whatever its age; --all.
  add_test(NAME cli.status-recent
           COMMAND ${VMM_BASH} ${CMAKE_CURRENT_LIST_DIR}/cli/test-status-recent.sh
                   ${CMAKE_BINARY_DIR})
  set_tests_properties(cli.status-recent PROPERTIES TIMEOUT 60 LABELS cli)
  # status's listing (header, host names, --wide, durations) and --failed
  # (the failed and unknown only, exit status 0, 1 or 9).
  add_test(NAME cli.status-failed
           COMMAND ${VMM_BASH} ${CMAKE_CURRENT_LIST_DIR}/cli/test-status-failed.sh
                   ${CMAKE_BINARY_DIR})
  set_tests_properties(cli.status-failed PROPERTIES TIMEOUT 60 LABELS cli)
  # recover --prune-after: only closed runs' old journals go.
  add_test(NAME cli.recover-prune
           COMMAND ${VMM_BASH} ${CMAKE_CURRENT_LIST_DIR}/cli/test-recover-prune.sh
                   ${CMAKE_BINARY_DIR})
  set_tests_properties(cli.recover-prune PROPERTIES TIMEOUT 120 LABELS cli)
endif()

# The zsh completion parses, and its actions offer what they should
# (tests/cli/test-zsh-completion.zsh; zsh is optional).
find_program(VMM_ZSH NAMES zsh)
if(VMM_ZSH)
  add_test(NAME cli.zsh-completion-syntax
           COMMAND ${VMM_ZSH} -n ${CMAKE_SOURCE_DIR}/completions/_vmmigrate)
  set_tests_properties(cli.zsh-completion-syntax PROPERTIES TIMEOUT 60 LABELS cli)
  add_test(NAME cli.zsh-completion
           COMMAND ${VMM_ZSH} -f ${CMAKE_CURRENT_LIST_DIR}/cli/test-zsh-completion.zsh
                   ${CMAKE_SOURCE_DIR}/completions/_vmmigrate)
  set_tests_properties(cli.zsh-completion PROPERTIES TIMEOUT 60 LABELS cli)
endif()

# abort picks the runs it is asked for, from real locks held by real
# processes (tests/cli/test-abort.py).
if(VMM_PYTHON3)
  add_test(NAME cli.abort-select COMMAND ${VMM_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/cli/test-abort.py)
  set_tests_properties(cli.abort-select PROPERTIES TIMEOUT 120 LABELS cli
    ENVIRONMENT "VMM_BINARY=$<TARGET_FILE:vmmigrate>")
endif()
