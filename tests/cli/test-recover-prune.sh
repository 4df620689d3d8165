#!/bin/bash
# SPDX-License-Identifier: MIT
# recover --prune-after DAYS removes the journals of closed runs last written
# more than DAYS ago, and nothing else: not a recent one, not an old run with
# a migration open, not an old one whose feature step was left started, not
# an old journal that cannot be read; without the option nothing goes.
# Usage: test-recover-prune.sh BUILD_DIR
set -euo pipefail
vmm=$1/vmmigrate
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
rec() {    # rec RUN TS RECORD [FIELDS]: one record of RUN's journal
    printf '{"ts":%s,"run":"%s","vm":"vm1","uuid":"11111111-2222-3333-4444-555555555555","source":"test:///default","target":"test:///default","record":"%s"%s}\n' \
        "$2" "$1" "$3" "${4:-}" >>"$dir/$1.ndjson"
}
finished=',"result":"migrated","location":"target"'
rec old-closed 1000 started;  rec old-closed 2000 finished "$finished"
rec new-closed 1000 started;  rec new-closed 2000 finished "$finished"
rec old-step 1000 started;    rec old-step 2000 finished "$finished"
rec old-step 3000 step-started ',"step":"after"'
rec old-open 1000 started
echo 'not json {' >"$dir/old-torn.ndjson"
rec old-torn 1000 started
rec old-torn 2000 finished "$finished"
touch -d '100 days ago' "$dir"/old-*.ndjson

"$vmm" recover --journal-dir "$dir" >/dev/null 2>&1 || true
[[ -e $dir/old-closed.ndjson ]] || fail "recover without --prune-after removed a journal"

set +e
out=$("$vmm" recover --journal-dir "$dir" --prune-after 90 --json 2>"$dir.err")
set -e
pruned=$(python3 -c 'import json,sys; print(" ".join(sorted(p.rsplit("/",1)[1] for p in json.load(sys.stdin)["pruned"])))' <<<"$out") ||
    fail "recover --json has no pruned list: $out $(cat "$dir.err")"
rm -f "$dir.err"
[[ $pruned == "old-closed.ndjson" ]] || fail "pruned '$pruned', expected only old-closed.ndjson"
[[ ! -e $dir/old-closed.ndjson ]] || fail "old-closed.ndjson is still there"
for f in new-closed old-step old-open old-torn; do
    [[ -e $dir/$f.ndjson ]] || fail "$f.ndjson was removed"
done
# recover's own journals (recovered: old-open's guest is on neither host)
# stay while the run they are about does, however old.
touch -d '100 days ago' "$dir"/*.ndjson
out=$("$vmm" recover --journal-dir "$dir" --prune-after 90 --json 2>/dev/null || true)
pruned=$(python3 -c 'import json,sys; print(len(json.load(sys.stdin)["pruned"]))' <<<"$out")
[[ $pruned == 1 ]] || fail "the second pass pruned $pruned journals, expected 1 (new-closed, now old)"
[[ -e $dir/new-closed.ndjson ]] && fail "new-closed.ndjson, now old, was not pruned"
n=$(grep -l '"of_run":"old-open"' "$dir"/*.ndjson | wc -l)
[[ $n -ge 1 ]] || fail "recover's record about old-open was pruned while old-open's journal stays"
echo "ok: only old closed runs' journals were pruned, and no record an open run needs"
