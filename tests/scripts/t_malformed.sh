#!/usr/bin/env bash
# Bad input never crashes entity-checker: each file of tests/fixtures/schema/malformed/
# (written by make-malformed.sh) is checked on its own against malformed.expect.
#   CODE  exit status 1, the first error on stderr is "FILE:LINE: error: [CODE] ...",
#         nothing on stdout (each bad file holds one bad line only);
#   OK    exit status 0, no error on stderr, every non-blank line passed to stdout.
# A status of 128 or more (a signal: a crash, an abort, a sanitizer) always fails.
set -u
cd "$(dirname "$0")/../.."
FX=tests/fixtures/schema
EC=${BIN:-build/bin}/entity-checker
if [ ! -x "$EC" ]; then echo "skip: entity-checker not built"; exit 77; fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fails=0; n=0
bad() { fails=$((fails + 1)); printf '%-30s %s\n' "$1" "$2"; }

while read -r name want; do
    [ -n "$name" ] || continue
    n=$((n + 1))
    f=$FX/malformed/$name
    [ -f "$f" ] || { bad "$name" "fixture missing (run $FX/make-malformed.sh)"; continue; }
    "$EC" "$f" >"$tmp/out" 2>"$tmp/err"; rc=$?
    if [ $rc -ge 128 ]; then bad "$name" "crashed (status $rc)"; sed 's/^/    /' "$tmp/err" | head -20; continue; fi
    first=$(grep -m1 ': error: ' "$tmp/err")
    if [ "$want" = OK ]; then
        [ $rc -eq 0 ] || bad "$name" "exit status $rc, want 0"
        [ -z "$first" ] || bad "$name" "unexpected error: $first"
        want_lines=$(tr -d '\r' <"$f" | grep -c '[^[:space:]]')
        got_lines=$(grep -c '' "$tmp/out")
        [ "$got_lines" = "$want_lines" ] || bad "$name" "$got_lines line(s) on stdout, want $want_lines"
    else
        [ $rc -eq 1 ] || bad "$name" "exit status $rc, want 1"
        if [ -z "$first" ]; then bad "$name" "no error on stderr, want [$want]"
        elif ! [[ $first =~ ^"$f":[0-9]+:\ error:\ \[([A-Z0-9_]+)\]\  ]]; then
            bad "$name" "error line not in the form FILE:LINE: error: [CODE] ...: $first"
        elif [ "${BASH_REMATCH[1]}" != "$want" ]; then
            bad "$name" "first error [${BASH_REMATCH[1]}], want [$want]: $first"
        fi
        [ -s "$tmp/out" ] && bad "$name" "stdout not empty: $(head -c 80 "$tmp/out")"
    fi
done <"$FX/malformed.expect"

[ $n -gt 0 ] || { echo "no cases in $FX/malformed.expect"; exit 1; }
if [ $fails -gt 0 ]; then echo "malformed input: $fails problem(s) over $n files"; exit 1; fi
echo "malformed input: $n files, each with the expected outcome and no crash"
