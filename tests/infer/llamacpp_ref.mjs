// llamacpp_ref.mjs: llama.cpp's answer (node-llama-cpp 3.21.1, CPU build) for the
// inference-core tests: per-position log-probs of the next actual token, the argmax at
// every position, and a greedy continuation, on one GGUF file.
//
// usage: node llamacpp_ref.mjs MODEL.gguf IN.jsonl OUT.jsonl [N_GEN] [THREADS] [STRIDE]
//   IN lines {"id", "ids": [...]}; OUT lines {"id", "logprobs": [for i >= 1; null where
//   not computed], "argmax": [after every position], "top": [after every position, its
//   TOP_K best [id, logit - best logit]], "greedy": [N_GEN tokens after the whole
//   sequence], "greedy_top": [the same top list at every greedy step]}
//   STRIDE (default 1): the log-prob of the next token only at every STRIDE-th position,
//   for the comparisons whose difference is noise, measured on a sample.
// The top lists let a comparison tell a near-tie (which activation rounding can flip)
// from a real disagreement where two argmaxes or greedy continuations part.
// The KV cache is F32 (experimentalKvCacheKeyType/ValueType): llama.cpp's default F16
// cache moves log-probs by ~4e-3. Flash attention is off: the CPU flash-attention
// path (chosen by "auto") rounds V to F16 even with an F32 cache (measured: the
// same 2e-3 shift at the first position, where attention only copies V). Sampling is greedy (temperature 0), under which
// node-llama-cpp returns probabilities over the whole vocabulary. It normalizes them
// with a float sum over the vocabulary, which drops the terms below half an ulp of the
// running sum (measured: log-probs ~4e-4 too high on a 151669-token vocabulary), so
// the log-probs here are renormalized in double: log p_t - log(sum of p), which is
// exactly logit_t - logsumexp(logits) since every p carries the same float divisor.
//
// Full-vocabulary probabilities cost ~0.2 s a position here (node-llama-cpp builds a
// 151669-entry Map), so the positions without a log-prob and the greedy steps ask for
// the top TOP_K only: a
// top-k sampler (temperature 1, which divides logits by exactly 1, no top-p/min-p)
// leaves the TOP_K best logits, and log p_i - log p_0 of its renormalized list is
// logit_i - logit_0 whatever the normalizer. The greedy token is the list's best (the
// lowest id among equal bests, as llama.cpp's greedy sampler picks); the sampler's own
// random draw is not used.
import fs from 'node:fs';
import path from 'node:path';
import { getLlama } from '../node_modules/node-llama-cpp/dist/index.js';

const [modelPath, inPath, outPath, nGenArg, threadsArg, strideArg] = process.argv.slice(2);
if (!outPath) { console.error('usage: node llamacpp_ref.mjs MODEL.gguf IN.jsonl OUT.jsonl [N_GEN] [THREADS] [STRIDE]'); process.exit(2); }
const nGen = Number(nGenArg ?? 32), threads = Number(threadsArg ?? 1), stride = Number(strideArg ?? 1);
const seqs = fs.readFileSync(inPath, 'utf8').split('\n').filter(l => l.trim()).map(l => JSON.parse(l));
const TOP_K = 32;
const TOPK_SAMPLER = { temperature: 1, topK: TOP_K, topP: 1, minP: 0, seed: 1 };
const FULL = { generateNext: { probabilities: true, token: true } };
const TOPK = { generateNext: { probabilities: true, options: TOPK_SAMPLER } };

// The TOP_K best of a probability map as [id, log p - log p_best], best first (ties:
// lower id first). One pass with a short sorted list: sorting the whole vocabulary
// would cost more than the evaluation.
function topOf(probs) {
    const best = [];
    for (const [id, p] of probs) {
        if (!(p > 0)) continue;
        if (best.length === TOP_K) {
            const w = best[TOP_K - 1];
            if (p < w[1] || (p === w[1] && id > w[0])) continue;
            best.pop();
        }
        let i = best.length;
        while (i > 0 && (best[i - 1][1] < p || (best[i - 1][1] === p && best[i - 1][0] > id))) i--;
        best.splice(i, 0, [id, p]);
    }
    const l0 = Math.log(best[0][1]);
    return best.map(([id, p]) => [id, Math.log(p) - l0]);
}

const llama = await getLlama({ gpu: false, logLevel: 'error', build: 'never' });
const model = await llama.loadModel({ modelPath: path.resolve(modelPath), gpuLayers: 0 });
// One context for all sequences, its history cleared between them.
const context = await model.createContext({
    contextSize: Math.max(256, ...seqs.map(s => s.ids.length + nGen + 8)), sequences: 1, threads, batchSize: 512,
    flashAttention: false,
    experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32',
});
const seq = context.getSequence();
const out = [];
for (const s of seqs) {
    await seq.clearHistory();
    const n = s.ids.length, full = i => i + 1 < n && i % stride === 0;
    const res = await seq.controlledEvaluate(s.ids.map((t, i) => [t, full(i) ? FULL : TOPK]));
    const logprobs = [], argmax = [], top = [];
    for (let i = 0; i < n; i++) {
        const p = res[i].next.probabilities;
        top.push(topOf(p));
        argmax.push(full(i) ? res[i].next.token : top[i][0][0]);
        if (full(i)) {
            let sum = 0;
            for (const v of p.values()) sum += v;
            logprobs.push(Math.log(p.get(s.ids[i + 1]) ?? 0) - Math.log(sum));
        } else if (i + 1 < n) logprobs.push(null);
    }
    const greedy = [], greedyTop = [];
    let next = top[n - 1];
    for (let g = 0; g < nGen; g++) {
        greedy.push(next[0][0]);
        greedyTop.push(next);
        if (g + 1 === nGen) break;
        const r = await seq.controlledEvaluate([[next[0][0], TOPK]]);
        next = topOf(r[0].next.probabilities);
    }
    out.push(JSON.stringify({ id: s.id, logprobs, argmax, top, greedy, greedy_top: greedyTop }));
}
fs.writeFileSync(outPath, out.join('\n') + '\n');
await context.dispose();
await model.dispose();
await llama.dispose();
