#!/usr/bin/env bash
# Speed of the inference core against llama.cpp on the same GGUF file: a random-weight
# model of Qwen2.5-0.5B's shape (24 layers, hidden 896, 14/2 heads, ffn 4864, 151936
# vocabulary), 1 and 2 threads, F32 and F16 GGUF, and our bf16 safetensors folder.
#   prefill: one 256-token sequence scored with the log-prob of every position. Ours is
#            timed as the whole evaluator process (model load included), llama.cpp's as
#            the evaluation alone, so the ratio understates ours.
#   decode:  greedy decoding after a 32-token prompt, seconds per new token (ours from
#            the evaluator's own timings, between the first and the last new token).
# Figures are medians of BENCH_RUNS runs (default 3) on a shared, noisy machine. Also:
# our prefill share of the FP32 FMA peak (PEAK_GFLOPS per core, default 117, measured
# with AVX-512) and our peak RSS against the weights' size.
set -u
cd "$(dirname "$0")/../.."
command -v node >/dev/null && [ -d tests/node_modules/node-llama-cpp ] || { echo "bench_infer: node-llama-cpp missing, skipped"; exit 0; }
runs=${BENCH_RUNS:-3}
peak=${PEAK_GFLOPS:-117}
D=${BENCH_TMP:-build/bench}/infer
N=256
mkdir -p "$D"
[ -f "$D/bench-f16.gguf" ] || node tests/infer/fixtures.mjs --bench "$D" || exit 1
node -e 'let s=[];for(let i=0;i<'$N';i++)s.push((i*7919)%150000);console.log(JSON.stringify({id:0,ids:s}))' > "$D/seq.jsonl"
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# FLOPs per token: 2 * (matrix parameters of the layers + the output projection).
gflop_tok=$(awk 'BEGIN { d=896; kv=128; ff=4864; L=24; V=151936;
    p = L*(d*d*2 + d*kv*2 + 3*d*ff) + V*d; printf "%.4f", 2*p/1e9 }')
printf "%-22s %3s %10s %10s %7s %9s %12s\n" model thr "ours tok/s" "llama tok/s" ratio "% peak" "RSS/weights"
for m in bench-f32.gguf bench-f16.gguf bench-hf-bf16; do
    for t in 1 2; do
        ours=$(for r in $(seq $runs); do
            /usr/bin/time -f "%e %M" "$BIN/evaluator" logprobs -j $t --model "$D/$m" "$D/seq.jsonl" 2>&1 >/dev/null | tail -1
        done)
        ot=$(echo "$ours" | awk '{print $1}' | median)
        rss=$(echo "$ours" | awk '{print $2}' | median)
        wb=$(du -sk "$D/$m" | awk '{print $1}')
        case $m in *.gguf) ll=$(node tests/infer/llamacpp_bench.mjs prefill "$D/$m" $N $t $runs | median) ;; *) ll= ;; esac
        awk -v m=$m -v t=$t -v ot=$ot -v ll="$ll" -v n=$N -v g=$gflop_tok -v pk=$peak -v rss=$rss -v wb=$wb 'BEGIN {
            o = n/ot; l = ll == "" ? 0 : n/ll;
            printf "%-22s %3d %10.1f %10s %7s %8.1f%% %12.2f\n", m, t, o, l ? sprintf("%.1f", l) : "-",
                   l ? sprintf("%.2fx", o/l) : "-", 100*o*g/(pk*t), rss/wb }'
    done
done
NEW=16
node -e 'let s=[];for(let i=0;i<32;i++)s.push((i*7919)%150000);console.log(JSON.stringify({id:0,ids:s}))' > "$D/prompt.jsonl"
printf "\n%-22s %3s %12s %12s %7s\n" model thr "ours ms/tok" "llama ms/tok" ratio
for m in bench-f32.gguf bench-f16.gguf; do
    for t in 1 2; do
        ours=$(for r in $(seq $runs); do
            "$BIN/evaluator" generate -j $t --max-new $NEW --model "$D/$m" "$D/prompt.jsonl" |
                node -e 'const o = JSON.parse(require("fs").readFileSync(0, "utf8"));
                         console.log((o.total_ms - o.ttft_ms) / (o.new_ids.length - 1) / 1e3)'
        done | median)
        ll=$(node tests/infer/llamacpp_bench.mjs decode "$D/$m" 32 $t $runs $NEW | median)
        awk -v m=$m -v t=$t -v o=$ours -v l=$ll 'BEGIN {
            printf "%-22s %3d %12.1f %12.1f %6.2fx\n", m, t, o * 1e3, l * 1e3, l / o }'
    done
done
echo "(medians of $runs runs; shared 2-core machine: figures are noisy)"
