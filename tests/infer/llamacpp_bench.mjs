// llamacpp_bench.mjs: llama.cpp's prefill time (node-llama-cpp 3.21.1, CPU) for one
// sequence, with the logits of every position used (a greedy pick at each, so the
// output projection runs at every position as in our scoring). Prints seconds of the
// evaluation alone (model load excluded), one line per run.
// usage: node llamacpp_bench.mjs MODEL.gguf N_TOKENS THREADS RUNS
import path from 'node:path';
import { getLlama } from '../node_modules/node-llama-cpp/dist/index.js';

const [modelPath, nArg, thArg, runsArg] = process.argv.slice(2);
const n = Number(nArg), threads = Number(thArg), runs = Number(runsArg ?? 3);
const llama = await getLlama({ gpu: false, logLevel: 'error', build: 'never' });
const model = await llama.loadModel({ modelPath: path.resolve(modelPath), gpuLayers: 0 });
const ids = Array.from({ length: n }, (_, i) => (i * 7919) % 150000);
for (let r = 0; r < runs; r++) {
    const ctx = await model.createContext({ contextSize: n + 16, sequences: 1, threads, batchSize: n, flashAttention: false,
                                            experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32' });
    const seq = ctx.getSequence();
    const t0 = process.hrtime.bigint();
    await seq.controlledEvaluate(ids.map(t => [t, { generateNext: { token: true } }]));
    console.log(Number(process.hrtime.bigint() - t0) / 1e9);
    await ctx.dispose();
}
await model.dispose();
await llama.dispose();
