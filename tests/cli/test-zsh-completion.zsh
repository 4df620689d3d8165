#!/usr/bin/zsh -f
# SPDX-License-Identifier: MIT
# test-zsh-completion.zsh — load completions/_vmmigrate in zsh with
# _arguments and compadd standing in for the completion system's, take the
# action each command's spec gives an option or positional argument, run it
# on a command line (words, CURRENT) and check what it offers: VM names from
# the --source on the line (libvirt's test:///default has one, "test"), or
# drain's source argument; run ids from the --journal-dir on the line; Lua
# files for --policy and policy check.
#
#     zsh -f tests/cli/test-zsh-completion.zsh completions/_vmmigrate
emulate -L zsh
setopt extendedglob

script=${1:?usage: test-zsh-completion.zsh completions/_vmmigrate}
typeset -ga offered
typeset -g pattern action
# _arguments: run the action of the spec matching $pattern, inside the
# command's function (its locals, valued, in scope) as the real one does.
_arguments()
{
    # a spec may start with an exclusion list, or '*' (repeatable)
    local spec=${argv[(r)(\(*\)|\*|)$~pattern]}
    if [[ -z $spec ]]; then
        offered=("no spec matches $pattern")
        return 1
    fi
    action=${spec##*:}
    if [[ $action == \(*\) ]]; then
        offered=(${=${action#\(}%\)})
    else
        eval $action 2>/dev/null
    fi
    return 0
}
compadd() {
    if [[ $1 == -a ]]; then offered+=(${(P)2}); else offered+=("${(@)argv[(r)--,-1][2,-1]}"); fi
}
_message() { offered+=("message: $*") }
_files() { offered+=("files: $*") }
_values() { offered+=("values: $*") }
_describe() { : }
source $script || exit 1
failures=0

# expect 'WANT' CMD PATTERN WORD...: complete the last WORD of the line
# `CMD WORD...` with the action of CMD's spec matching PATTERN.
expect()
{
    local want=$1 cmd=$2
    pattern=$3
    shift 3
    local -a words=($cmd "$@")
    local CURRENT=$#words
    offered=()
    _vmmigrate_$cmd
    if [[ "${offered[*]}" != "$want" ]]; then
        print -u2 "FAIL: [$cmd $*] ($action)\n  expected: $want\n  got:      ${offered[*]}"
        failures=$((failures + 1))
    fi
}

expect 'test' run '--vm=*' --source test:///default --vm ''
expect 'test' plan '-m+*' -s test:///default --target test:///x -m ''
expect 'test' run '--vm=*' --source=test:///default --vm ''
expect 'test' drain '--vm=*' test:///default --target test:///x --vm ''
expect 'test' drain '--vm=*' --compression zlib test:///default --vm ''
expect 'message: VM name (give the source host first)' run '--vm=*' --vm ''
expect '' run '--vm=*' --source qemu+tcp://127.0.0.1:1/system --vm ''
expect 'files: -g *.lua' run '--policy=*' --policy ''
expect 'files: -g *.lua' policy '2:*' check ''
expect 'check' policy '1:*' ''
tmp=$(mktemp -d) || exit 1
touch $tmp/20261204-a.ndjson $tmp/20261204-b.ndjson $tmp/recover.lock
expect '20261204-a 20261204-b' status '1:*' --journal-dir $tmp ''
expect '20261204-a 20261204-b' status '1:*' --journal-dir=$tmp --failed ''
expect '' status '1:*' --journal-dir $tmp/none ''
rm -r $tmp
# A comma list: _values, which offers no item twice.
expect 'values: -s , METHODS xbzrle mt zlib zstd' run '--compression=*' --compression ''

if ((failures)); then
    print -u2 "$failures zsh completion check(s) failed"
    exit 1
fi
print "zsh completion: all checks passed"
