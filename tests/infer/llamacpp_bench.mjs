// llamacpp_bench.mjs: llama.cpp's speed (node-llama-cpp 3.21.1, CPU, F32 KV cache) on
// one sequence, model load excluded, one line of seconds per run.
//   prefill: N tokens evaluated with the logits of every position used (a greedy pick
//            at each, so the output projection runs at every position, as our scoring)
//   decode:  greedy decoding after an N-token prompt; prints seconds per new token,
//            measured from the first new token to the NEWth
// usage: node llamacpp_bench.mjs prefill|decode MODEL.gguf N THREADS RUNS [NEW]
import path from 'node:path';
import { getLlama } from '../node_modules/node-llama-cpp/dist/index.js';

const [mode, modelPath, nArg, thArg, runsArg, newArg] = process.argv.slice(2);
const n = Number(nArg), threads = Number(thArg), runs = Number(runsArg ?? 3), nNew = Number(newArg ?? 16);
const llama = await getLlama({ gpu: false, logLevel: 'error', build: 'never' });
const model = await llama.loadModel({ modelPath: path.resolve(modelPath), gpuLayers: 0 });
const ids = Array.from({ length: n }, (_, i) => (i * 7919) % 150000);
for (let r = 0; r < runs; r++) {
    const ctx = await model.createContext({ contextSize: n + nNew + 16, sequences: 1, threads, batchSize: n,
                                            flashAttention: false, experimentalKvCacheKeyType: 'F32',
                                            experimentalKvCacheValueType: 'F32' });
    const seq = ctx.getSequence();
    if (mode === 'decode') {
        let got = 0, t1 = 0n;
        for await (const tok of seq.evaluate(ids, { temperature: 0 })) {
            void tok;
            if (got === 0) t1 = process.hrtime.bigint();
            if (++got >= nNew) break;
        }
        console.log(Number(process.hrtime.bigint() - t1) / 1e9 / (nNew - 1));
    } else {
        const t0 = process.hrtime.bigint();
        await seq.controlledEvaluate(ids.map(t => [t, { generateNext: { token: true } }]));
        console.log(Number(process.hrtime.bigint() - t0) / 1e9);
    }
    await ctx.dispose();
}
await model.dispose();
await llama.dispose();
