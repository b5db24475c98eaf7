# entity-checker's full validation against `jq -c .` re-serializing the same ~200 MB
# dialog file (the real data, repeated with renamed ids), single thread; then -j 2
# against our single thread; then peak RSS on a 2 GB input.
# Targets (issue 2): >= 2.0x jq; -j 2 >= 1.7x our -j 1; RSS < 200 MB.
set -eu
. tests/bench/lib.sh
f=$BENCH_TMP/dialogs-200mb.jsonl
if [ ! -s "$f" ]; then
    for i in $(seq 1 24); do
        awk -v r="$i" '{ sub(/"dialog_id":"/, "\"dialog_id\":\"r" r "-"); print }' \
            "$DK_SHARED_DATA/crosswoz-dev.jsonl" "$DK_SHARED_DATA/multiwoz-dev.jsonl"
    done >"$f"
fi
bytes=$(stat -c %s "$f")
echo "input: $f ($(mbps "$bytes" 1) MB), $BENCH_RUNS runs each, medians of CPU seconds"

run_timed jq -c . "$f"; jq_cpu=$CPU
run_timed "$BIN/entity-checker" "$f"; our_cpu=$CPU; our_wall=$WALL
echo "jq -c .            $(mbps "$bytes" "$jq_cpu") MB/s  (${jq_cpu}s)"
echo "entity-checker     $(mbps "$bytes" "$our_cpu") MB/s  (${our_cpu}s)   ratio vs jq: $(ratio "$jq_cpu" "$our_cpu")x  (target >= 2.0)"

run_timed "$BIN/entity-checker" -j 2 "$f"; j2_wall=$WALL
echo "entity-checker -j2 $(mbps "$bytes" "$j2_wall") MB/s wall (${j2_wall}s vs ${our_wall}s at -j 1)   scaling: $(ratio "$our_wall" "$j2_wall")x  (target >= 1.7; needs 2 idle cores)"

big=$BENCH_TMP/dialogs-2gb.jsonl
if [ ! -s "$big" ]; then
    for i in $(seq 1 10); do awk -v r="$i" '{ sub(/"dialog_id":"/, "\"dialog_id\":\"k" r "-"); print }' "$f"; done >"$big"
fi
BENCH_RUNS=1 run_timed "$BIN/entity-checker" -j 2 "$big"
echo "2 GB input: peak RSS $((RSS_KB / 1024)) MB  (target < 200 MB)"
rm -f "$big"
