// llamacpp_ref.mjs: llama.cpp's answer (node-llama-cpp 3.21.1, CPU build) for the
// inference-core tests: per-position log-probs of the next actual token, the argmax at
// every position, and a greedy continuation, on one GGUF file.
//
// usage: node llamacpp_ref.mjs MODEL.gguf IN.jsonl OUT.jsonl [N_GEN] [THREADS]
//   IN lines {"id", "ids": [...]}; OUT lines {"id", "logprobs": [for i >= 1],
//   "argmax": [after every position], "greedy": [N_GEN tokens after the whole sequence],
//   "greedy_top": [for every greedy step, its TOP_K best [id, logit - best logit]]}
// greedy_top lets a comparison tell a near-tie (a flip that activation rounding can
// cause) from a real disagreement at the step where two greedy continuations part.
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
// 151669-entry Map), so the greedy steps after the first ask for the top TOP_K only: a
// top-k sampler (temperature 1, which divides logits by exactly 1, no top-p/min-p)
// leaves the TOP_K best logits, and log p_i - log p_0 of its renormalized list is
// logit_i - logit_0 whatever the normalizer. The greedy token is the list's best (the
// lowest id among equal bests, as llama.cpp's greedy sampler picks); the sampler's own
// random draw is not used.
import fs from 'node:fs';
import path from 'node:path';
import { getLlama } from '../node_modules/node-llama-cpp/dist/index.js';

const [modelPath, inPath, outPath, nGenArg, threadsArg] = process.argv.slice(2);
if (!outPath) { console.error('usage: node llamacpp_ref.mjs MODEL.gguf IN.jsonl OUT.jsonl [N_GEN] [THREADS]'); process.exit(2); }
const nGen = Number(nGenArg ?? 32), threads = Number(threadsArg ?? 1);
const seqs = fs.readFileSync(inPath, 'utf8').split('\n').filter(l => l.trim()).map(l => JSON.parse(l));

const llama = await getLlama({ gpu: false, logLevel: 'error', build: 'never' });
const model = await llama.loadModel({ modelPath: path.resolve(modelPath), gpuLayers: 0 });
const TOP_K = 8;
const TOPK_SAMPLER = { temperature: 1, topK: TOP_K, topP: 1, minP: 0, seed: 1 };
// The TOP_K best of a probability map as [id, log p - log p_best], best first.
function topOf(probs) {
    const all = [...probs.entries()].filter(([, p]) => p > 0)
        .sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, TOP_K);
    const l0 = Math.log(all[0][1]);
    return all.map(([id, p]) => [id, Math.log(p) - l0]);
}
const out = [];
for (const s of seqs) {
    const context = await model.createContext({
        contextSize: Math.max(256, s.ids.length + nGen + 8), sequences: 1, threads, batchSize: 512,
        flashAttention: false,
        experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32',
    });
    const seq = context.getSequence();
    const res = await seq.controlledEvaluate(s.ids.map(t => [t, { generateNext: { probabilities: true, token: true } }]));
    const logprobs = [], argmax = [];
    for (let i = 0; i < s.ids.length; i++) {
        const p = res[i].next.probabilities;
        argmax.push(res[i].next.token);
        if (i + 1 < s.ids.length) {
            let sum = 0;
            for (const v of p.values()) sum += v;
            logprobs.push(Math.log(p.get(s.ids[i + 1]) ?? 0) - Math.log(sum));
        }
    }
    const greedy = [], greedyTop = [];
    let top = topOf(res[s.ids.length - 1].next.probabilities);
    for (let g = 0; g < nGen; g++) {
        greedy.push(top[0][0]);
        greedyTop.push(top);
        if (g + 1 === nGen) break;
        const r = await seq.controlledEvaluate([[top[0][0], { generateNext: { probabilities: true, options: TOPK_SAMPLER } }]]);
        top = topOf(r[0].next.probabilities);
    }
    if (greedy[0] !== res[s.ids.length - 1].next.token) throw new Error(`${s.id}: greedy sampler and top list disagree`);
    out.push(JSON.stringify({ id: s.id, logprobs, argmax, greedy, greedy_top: greedyTop }));
    await context.dispose();
}
fs.writeFileSync(outPath, out.join('\n') + '\n');
await model.dispose();
await llama.dispose();
