// compare.mjs: our core's output against llama.cpp's (from llamacpp_ref.mjs).
// usage: node compare.mjs LABEL TOL REF.jsonl OURS_LOGPROBS.jsonl OURS_GENERATE.jsonl [report]
//   ("report": greedy agreement is printed, not required)
//   OURS_LOGPROBS from `evaluator logprobs --top 1`, OURS_GENERATE from
//   `evaluator generate --max-new N`. Prints one line:
//   LABEL max|dlogp|=... argmax=...% greedy=N/M
// and exits 1 when max |dlogp| > TOL, argmax agreement < 99% or a greedy token differs.
import fs from 'node:fs';

const [label, tolArg, refPath, lpPath, genPath, greedyMode] = process.argv.slice(2);
const greedyStrict = greedyMode !== 'report';
const tol = Number(tolArg);
const read = p => new Map(fs.readFileSync(p, 'utf8').split('\n').filter(Boolean).map(l => {
    const o = JSON.parse(l);
    return [o.id, o];
}));
const ref = read(refPath), lp = read(lpPath), gen = read(genPath);
let maxd = 0, agree = 0, positions = 0, gsame = 0, gtotal = 0, problems = [];
for (const [id, r] of ref) {
    const o = lp.get(id), g = gen.get(id);
    if (!o || !g) { problems.push(`${id}: missing from our output`); continue; }
    if (o.logprobs.length !== r.logprobs.length) problems.push(`${id}: ${o.logprobs.length} log-probs, want ${r.logprobs.length}`);
    for (let i = 0; i < r.logprobs.length; i++) maxd = Math.max(maxd, Math.abs(o.logprobs[i] - r.logprobs[i]));
    for (let i = 0; i < r.argmax.length; i++, positions++) if (o.top[i][0][0] === r.argmax[i]) agree++;
    for (let i = 0; i < r.greedy.length; i++, gtotal++) if (g.new_ids[i] === r.greedy[i]) gsame++;
}
const pct = positions ? (100 * agree) / positions : 0;
console.log(`${label} max|dlogp|=${maxd.toExponential(2)} (tol ${tol}) argmax=${pct.toFixed(1)}% greedy=${gsame}/${gtotal}`);
if (maxd > tol || !(maxd >= 0)) problems.push(`max |dlogp| ${maxd} > ${tol}`);
if (pct < 99) problems.push(`argmax agreement ${pct.toFixed(2)}% < 99%`);
if (gsame !== gtotal && greedyStrict) problems.push(`greedy continuations differ (${gtotal - gsame} tokens)`);
for (const p of problems) console.log(`  ${label}: ${p}`);
process.exit(problems.length ? 1 : 0);
