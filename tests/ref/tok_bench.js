// The reference's side of tests/bench/bench_tokenizer.sh: Hugging Face `tokenizers` encodes
// every "text" of a JSON Lines corpus with encodeBatch (run with RAYON_NUM_THREADS=1 for
// one thread), RUNS times after one warm-up; prints "SECONDS BYTES TOKENS" with the median
// CPU time (user + system, as tests/bench/lib.sh times our side) of the encoding alone
// (the reading and JSON parsing are not timed).
// usage: RAYON_NUM_THREADS=1 node tok_bench.js TOKENIZER_JSON CORPUS [RUNS]
'use strict';
const fs = require('fs');
const path = require('path');
const { Tokenizer } = require(path.join(__dirname, '..', 'node_modules', 'tokenizers'));

async function main() {
  const [json, corpus, runsArg] = process.argv.slice(2);
  const runs = Number(runsArg || 3);
  const tok = Tokenizer.fromFile(json);
  const texts = fs.readFileSync(corpus, 'utf8').split('\n').filter((l) => l).map((l) => JSON.parse(l).text);
  const bytes = texts.reduce((a, t) => a + Buffer.byteLength(t), 0);
  const batches = [];
  for (let i = 0; i < texts.length; i += 1024) batches.push(texts.slice(i, i + 1024));
  let tokens = 0;
  const times = [];
  for (let r = 0; r <= runs; r++) {
    const c0 = process.cpuUsage();
    let n = 0;
    for (const b of batches) for (const e of await tok.encodeBatch(b, { addSpecialTokens: true })) n += e.getLength();
    const c = process.cpuUsage(c0);
    const s = (c.user + c.system) / 1e6;
    if (r > 0) times.push(s); /* run 0 warms up */
    tokens = n;
  }
  times.sort((a, b) => a - b);
  console.log(`${times[Math.floor(times.length / 2)]} ${bytes} ${tokens}`);
}
main().catch((e) => { console.error('tok_bench: ' + e.message); process.exit(2); });
