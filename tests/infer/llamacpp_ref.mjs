// llamacpp_ref.mjs: llama.cpp's answer (node-llama-cpp 3.21.1, CPU build) for the
// inference-core tests: per-position log-probs of the next actual token, the argmax at
// every position, and a greedy continuation, on one GGUF file.
//
// usage: node llamacpp_ref.mjs MODEL.gguf IN.jsonl OUT.jsonl [N_GEN] [THREADS]
//   IN lines {"id", "ids": [...]}; OUT lines {"id", "logprobs": [for i >= 1],
//   "argmax": [after every position], "greedy": [N_GEN tokens after the whole sequence]}
// The KV cache is F32 (experimentalKvCacheKeyType/ValueType): llama.cpp's default F16
// cache moves log-probs by ~4e-3. Flash attention is off: the CPU flash-attention
// path (chosen by "auto") rounds V to F16 even with an F32 cache (measured: the
// same 2e-3 shift at the first position, where attention only copies V). Sampling is greedy (temperature 0), under which
// node-llama-cpp returns probabilities over the whole vocabulary. It normalizes them
// with a float sum over the vocabulary, which drops the terms below half an ulp of the
// running sum (measured: log-probs ~4e-4 too high on a 151669-token vocabulary), so
// the log-probs here are renormalized in double: log p_t - log(sum of p), which is
// exactly logit_t - logsumexp(logits) since every p carries the same float divisor.
import fs from 'node:fs';
import path from 'node:path';
import { getLlama } from '../node_modules/node-llama-cpp/dist/index.js';

const [modelPath, inPath, outPath, nGenArg, threadsArg] = process.argv.slice(2);
if (!outPath) { console.error('usage: node llamacpp_ref.mjs MODEL.gguf IN.jsonl OUT.jsonl [N_GEN] [THREADS]'); process.exit(2); }
const nGen = Number(nGenArg ?? 32), threads = Number(threadsArg ?? 1);
const seqs = fs.readFileSync(inPath, 'utf8').split('\n').filter(l => l.trim()).map(l => JSON.parse(l));

const llama = await getLlama({ gpu: false, logLevel: 'error', build: 'never' });
const model = await llama.loadModel({ modelPath: path.resolve(modelPath), gpuLayers: 0 });
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
    const greedy = [];
    let next = res[s.ids.length - 1].next.token;
    for (let g = 0; g < nGen; g++) {
        greedy.push(next);
        if (g + 1 === nGen) break;
        const r = await seq.controlledEvaluate([[next, { generateNext: { token: true } }]]);
        next = r[0].next.token;
    }
    out.push(JSON.stringify({ id: s.id, logprobs, argmax, greedy }));
    await context.dispose();
}
fs.writeFileSync(outPath, out.join('\n') + '\n');
await model.dispose();
await llama.dispose();
