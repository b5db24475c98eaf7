#!/usr/bin/env bash
# The inference core against llama.cpp (DESIGN.md section 9): tiny random-weight models
# of every architecture, written by tests/infer/fixtures.mjs as GGUF F32/F16 and as a
# safetensors folder with the same weights; llama.cpp (node-llama-cpp 3.21.1, CPU,
# F32 KV cache) gives the reference. Ours from the F32 GGUF and from the folder must be
# within 1e-3 of llama.cpp on F32, ours from the F16 GGUF within 1e-2 of llama.cpp on
# F16 (it rounds activations to F16 there), argmax agreement >= 99%, the same 32
# greedy tokens (required against F32; against F16 only reported: llama.cpp's F16
# activation rounding flips near-ties, and one flip changes the rest of a greedy
# continuation, measured on deepseek). Also: batch invariance (alone vs in a batch, 1e-5) and -j invariance.
# Fixtures are generated here into $B and removed afterwards.
set -u
cd "$(dirname "$0")/../.."
command -v node >/dev/null || { echo "node is not installed"; exit 1; }
[ -d tests/node_modules/node-llama-cpp ] || { echo "tests/node_modules/node-llama-cpp missing (make deps)"; exit 1; }
F=$B/infer-fixtures
S=tests/infer/seqs.jsonl
rm -rf "$F"; mkdir -p "$F"
trap 'rm -rf "$F"' EXIT
fail=0
ARCHS="qwen2 qwen3 llama deepseek qwen3_moe"
# Under ASan + UBSan a dense and a MoE model keep the run short.
[ "${SANITIZE:-0}" = 1 ] && ARCHS="qwen2 deepseek"
node tests/infer/fixtures.mjs "$F" $ARCHS || { echo "fixture writer failed"; exit 1; }
for a in $ARCHS; do
    for dt in f32 f16; do
        node tests/infer/llamacpp_ref.mjs "$F/$a-$dt.gguf" $S "$F/ref-$a-$dt.jsonl" 32 1 &
    done
    for src in $a-f32.gguf $a-f16.gguf $a-hf; do
        "$BIN/evaluator" logprobs --top 1 --model "$F/$src" $S > "$F/lp-$src.jsonl" || fail=1
        "$BIN/evaluator" generate --max-new 32 --model "$F/$src" $S > "$F/gen-$src.jsonl" || fail=1
    done
    wait || fail=1
    node tests/infer/compare.mjs "$a gguf-f32 vs llama.cpp f32" 1e-3 "$F/ref-$a-f32.jsonl" "$F/lp-$a-f32.gguf.jsonl" "$F/gen-$a-f32.gguf.jsonl" || fail=1
    node tests/infer/compare.mjs "$a safetensors vs llama.cpp f32" 1e-3 "$F/ref-$a-f32.jsonl" "$F/lp-$a-hf.jsonl" "$F/gen-$a-hf.jsonl" || fail=1
    node tests/infer/compare.mjs "$a gguf-f16 vs llama.cpp f16" 1e-2 "$F/ref-$a-f16.jsonl" "$F/lp-$a-f16.gguf.jsonl" "$F/gen-$a-f16.gguf.jsonl" report || fail=1
    # Batch invariance: each sequence alone (--batch-tokens 1) against all in one batch.
    "$BIN/evaluator" logprobs --batch-tokens 1 --model "$F/$a-hf" $S > "$F/alone.jsonl" || fail=1
    "$BIN/evaluator" logprobs --model "$F/$a-hf" $S > "$F/batch.jsonl" || fail=1
    node -e '
        const fs = require("fs"), [x, y] = process.argv.slice(1).map(p => fs.readFileSync(p, "utf8").trim().split("\n").map(JSON.parse));
        let m = 0;
        x.forEach((o, i) => o.logprobs.forEach((v, j) => { m = Math.max(m, Math.abs(v - y[i].logprobs[j])); }));
        console.log(`'"$a"' batch invariance max|d|=${m.toExponential(2)}`);
        process.exit(x.length === y.length && m <= 1e-5 ? 0 : 1);' "$F/alone.jsonl" "$F/batch.jsonl" || fail=1
    "$BIN/evaluator" logprobs -j 2 --model "$F/$a-hf" $S > "$F/j2.jsonl" || fail=1
    cmp -s "$F/batch.jsonl" "$F/j2.jsonl" || { echo "$a: output differs between -j 1 and -j 2"; fail=1; }
done
exit $fail
