#!/usr/bin/env bash
# The whole suite: unit binaries, CLI cases (data), then script tests.
# Each test is one pass or fail; a script test may exit 77 to say "skipped" (shown,
# not counted). The last line is always "N passed, N failed"; exit 1 if any failed.
#
# CLI case = a folder tests/cli/NAME/ with
#   cmd      one shell line, run from the repository root; $BIN is the tools folder
#   stdin    fed to the command (default: empty)
#   stdout   expected standard output (default: empty)
#   stderr   expected standard error (default: empty)
#   status   expected exit status (default: 0)
# compared byte for byte with cmp, under LC_ALL=C.
set -u
cd "$(dirname "$0")/.."
export LC_ALL=C
export B=${B:-build}
export BIN=$PWD/$B/bin
export DK_SHARED_DATA=${DK_SHARED_DATA:-$(cd .. && pwd)/shared/data}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
pass=0; fail=0; skip=0
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
only=${1:-}

ok()   { pass=$((pass + 1)); [ -n "${VERBOSE:-}" ] && echo "ok    $1"; return 0; }
bad()  { fail=$((fail + 1)); echo "FAIL  $1"; }

for t in "$B"/tests/test_*; do
    [ -x "$t" ] || continue
    name=unit/$(basename "$t")
    case "$name" in *"$only"*) ;; *) continue ;; esac
    if "$t" >"$tmp/out" 2>&1; then ok "$name"; else bad "$name"; sed 's/^/      /' "$tmp/out" | tail -40; fi
done

for d in tests/cli/*/; do
    [ -f "$d/cmd" ] || continue
    name=cli/$(basename "$d")
    case "$name" in *"$only"*) ;; *) continue ;; esac
    in=/dev/null; [ -f "$d/stdin" ] && in=$d/stdin
    (bash -c "$(cat "$d/cmd")" <"$in" >"$tmp/stdout" 2>"$tmp/stderr"; echo $? >"$tmp/status")
    want_status=0; [ -f "$d/status" ] && want_status=$(cat "$d/status")
    : >"$tmp/empty"
    why=""
    [ "$(cat "$tmp/status")" = "$want_status" ] || why="status $(cat "$tmp/status"), want $want_status"
    for s in stdout stderr; do
        want=$tmp/empty; [ -f "$d/$s" ] && want=$d/$s
        cmp -s "$want" "$tmp/$s" || why="$why${why:+; }$s differs"
    done
    if [ -z "$why" ]; then ok "$name"; else
        bad "$name ($why)"
        for s in stdout stderr; do
            want=$tmp/empty; [ -f "$d/$s" ] && want=$d/$s
            cmp -s "$want" "$tmp/$s" || diff -u "$want" "$tmp/$s" | head -20 | sed 's/^/      /'
        done
    fi
done

for t in tests/scripts/t_*.sh; do
    [ -f "$t" ] || continue
    name=script/$(basename "$t" .sh)
    case "$name" in *"$only"*) ;; *) continue ;; esac
    bash "$t" >"$tmp/out" 2>&1; rc=$?
    if [ $rc -eq 0 ]; then ok "$name"; [ -n "${VERBOSE:-}" ] && sed 's/^/      /' "$tmp/out" | tail -5
    elif [ $rc -eq 77 ]; then skip=$((skip + 1)); echo "skip  $name: $(tail -1 "$tmp/out")"
    else bad "$name"; sed 's/^/      /' "$tmp/out" | tail -40; fi
done

[ $skip -gt 0 ] && echo "($skip skipped)"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
