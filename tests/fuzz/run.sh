#!/usr/bin/env bash
# Runs every built libFuzzer target for FUZZ_TIME seconds each, starting from the
# committed seeds (tests/fuzz/corpus/NAME/) and the corpus grown by earlier runs
# (build/fuzz/corpus-NAME/). A crash, leak or timeout fails the run and leaves the
# reproducer in build/fuzz/.
set -u
fuzz_b=${1:-build/fuzz}
t=${FUZZ_TIME:-20}
fail=0
for f in "$fuzz_b"/fuzz_*; do
    [ -x "$f" ] || continue
    name=$(basename "$f"); name=${name#fuzz_}
    work=$fuzz_b/corpus-$name
    mkdir -p "$work"
    seeds=tests/fuzz/corpus/$name
    [ -d "$seeds" ] || seeds=
    echo "fuzz: $name for ${t}s"
    if ! "$f" -max_total_time="$t" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
         -artifact_prefix="$fuzz_b/$name-" -print_final_stats=0 "$work" $seeds >"$fuzz_b/$name.log" 2>&1; then
        echo "fuzz: $name FAILED (log: $fuzz_b/$name.log)"
        grep -E "ERROR|SUMMARY|Test unit written" "$fuzz_b/$name.log" | head -10
        fail=1
    else
        grep -Eo "#[0-9]+ *DONE.*" "$fuzz_b/$name.log" | tail -1 | sed "s/^/fuzz: $name /"
    fi
done
exit $fail
