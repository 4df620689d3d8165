#!/bin/bash
# SPDX-License-Identifier: MIT
# test-bash-completion.sh — drive completions/vmmigrate.bash the way bash's
# programmable completion does (COMP_WORDS, COMP_CWORD, then the function)
# and check what it offers.
#
#     bash tests/cli/test-bash-completion.sh completions/vmmigrate.bash
set -u

script=${1:?usage: test-bash-completion.sh completions/vmmigrate.bash}
# shellcheck source=/dev/null
source "$script" || exit 1

failures=0

# expect 'EXPECTED REPLY' WORD... : complete the last WORD of the line.
expect()
{
    local want=$1
    shift
    COMP_WORDS=("$@")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMPREPLY=()
    _vmmigrate 2>/dev/null
    local got="${COMPREPLY[*]}"
    if [[ $got != "$want" ]]; then
        printf 'FAIL: [%s]\n  expected: %s\n  got:      %s\n' "$*" "$want" "$got" >&2
        failures=$((failures + 1))
    fi
}

# contains 'WORD' WORD... : the reply includes WORD.
contains()
{
    local want=$1 w
    shift
    COMP_WORDS=("$@")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMPREPLY=()
    _vmmigrate 2>/dev/null
    for w in "${COMPREPLY[@]}"; do
        [[ $w == "$want" ]] && return
    done
    printf 'FAIL: [%s]\n  expected %s among: %s\n' "$*" "$want" "${COMPREPLY[*]}" >&2
    failures=$((failures + 1))
}

# The commands (not the hidden docs command), and the global options.
expect 'abort drain help plan policy qemu recover run status version' vmmigrate ''
expect 'recover run' vmmigrate r
expect 'run' vmmigrate ru
expect 'drain' vmmigrate d
expect '-h --help -V --version' vmmigrate -
# Options of a command, long and short.
expect '--timeout --timeout-action' vmmigrate run --ti
contains '-m' vmmigrate run -
contains '--vm' vmmigrate run -
contains '--verbose' vmmigrate run --
contains '--quiet' vmmigrate version --
# drain takes run's options, less --source (its source is the argument).
expect '--timeout --timeout-action' vmmigrate drain --ti
expect '' vmmigrate drain --sou
contains '--policy' vmmigrate drain test:///default --
# Choices, also after --name= (which bash splits at the '=').
expect 'abort suspend postcopy' vmmigrate run --timeout-action ''
expect 'suspend' vmmigrate run --timeout-action = s
expect 'abort suspend postcopy' vmmigrate run --timeout-action =
# One item of a comma list at a time.
expect 'xbzrle mt zlib zstd' vmmigrate run --compression ''
expect 'xbzrle,zlib xbzrle,zstd' vmmigrate run --compression xbzrle,z
# Files for a file argument; nothing for URIs, VM names and numbers.
tmp=$(mktemp -d) || exit 1
touch "$tmp/events.ndjson"
expect "$tmp/events.ndjson" vmmigrate run --events "$tmp/ev"
expect "$tmp/events.ndjson" vmmigrate run -e "$tmp/ev"
rm -r "$tmp"
expect '' vmmigrate run --source ''
expect '' vmmigrate run -m ''
expect '' vmmigrate run --bandwidth ''
# One item of a comma list at a time, never one the list has already.
expect 'xbzrle,mt xbzrle,zlib xbzrle,zstd' vmmigrate run --compression xbzrle,
expect 'zlib,xbzrle,mt zlib,xbzrle,zstd' vmmigrate run --compression zlib,xbzrle,
expect 'zlib,xbzrle,zstd' vmmigrate run --compression zlib,xbzrle,z
# VM names from the --source given before, as bash splits its words (at ':'
# and '='), or from drain's source argument; nothing (and no message) from a
# host that cannot be reached, or without a source.
expect 'test' vmmigrate run --source test:///default --vm ''
expect 'test' vmmigrate run --source test : ///default --vm ''
expect 'test' vmmigrate plan --source = test : ///default --target test : ///x -m t
expect 'test' vmmigrate drain test : ///default --target test : ///x --vm ''
expect 'test' vmmigrate drain --target test : ///x test : ///default -m ''
expect 'test' vmmigrate drain --compression zlib test : ///default --vm ''
expect '' vmmigrate run --source test:///default --vm x
errs=$(
    COMP_WORDS=(vmmigrate run --source qemu+tcp : //127.0.0.1 : 1/system --vm '')
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    _vmmigrate 2>&1 >/dev/null
    echo "${COMPREPLY[*]}"
)
[[ -z $errs ]] || { echo "FAIL: an unreachable --source printed or offered: $errs" >&2; failures=$((failures + 1)); }
# Run ids for status, from the --journal-dir on the line.
tmp=$(mktemp -d) || exit 1
touch "$tmp/20261204-a.ndjson" "$tmp/20261204-b.ndjson" "$tmp/recover.lock"
expect '20261204-a 20261204-b' vmmigrate status --journal-dir "$tmp" ''
expect '20261204-b' vmmigrate status --failed --journal-dir = "$tmp" 20261204-b
expect '' vmmigrate status --journal-dir "$tmp/none" ''
contains '--wide' vmmigrate status --journal-dir "$tmp" 20261204-a --
# Policies: Lua files (and directories to go down into), for policy check and --policy.
mkdir "$tmp/sub"
touch "$tmp/evacuate.lua" "$tmp/notes.txt"
expect 'check' vmmigrate policy ''
expect "$tmp/sub $tmp/evacuate.lua" vmmigrate policy check "$tmp/"
expect "$tmp/sub $tmp/evacuate.lua" vmmigrate run --policy "$tmp/"
expect "$tmp/sub $tmp/evacuate.lua" vmmigrate drain test:///default -p "$tmp/"
rm -r "$tmp"
# help takes a command name.
expect 'abort drain help plan policy qemu recover run status version' vmmigrate help ''
expect 'run' vmmigrate help ru
# An unknown command offers nothing.
expect '' vmmigrate migrate -

if ((failures)); then
    echo "$failures completion check(s) failed" >&2
    exit 1
fi
echo "bash completion: all checks passed"
