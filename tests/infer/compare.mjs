// compare.mjs: our core's output against llama.cpp's (from llamacpp_ref.mjs).
// usage: node compare.mjs LABEL TOL REF.jsonl OURS_LOGPROBS.jsonl OURS_GENERATE.jsonl [TIE]
//   OURS_LOGPROBS from `evaluator logprobs --top 1`, OURS_GENERATE from
//   `evaluator generate --max-new N`. Prints one line
//   LABEL max|dlogp|=... argmax=...% greedy=N/M
// (greedy: tokens equal up to each sequence's first difference, summed over sequences),
// then one line for every sequence whose greedy continuation parts from the reference's:
// the step and the reference's margin there, logit(its token) - logit(ours).
// Exits 1 when max |dlogp| > TOL, argmax agreement < 99%, or a greedy continuation
// parts from the reference's: without TIE at all, with TIE unless the reference's own
// margin at the first difference is <= TIE (a near-tie that rounding may flip; after it
// the two continuations have different prefixes and are not compared). A token outside
// the reference's recorded top list counts as a margin beyond the list's last.
import fs from 'node:fs';

const [label, tolArg, refPath, lpPath, genPath, tieArg] = process.argv.slice(2);
const tol = Number(tolArg), tie = tieArg === undefined ? null : Number(tieArg);
const read = p => new Map(fs.readFileSync(p, 'utf8').split('\n').filter(Boolean).map(l => {
    const o = JSON.parse(l);
    return [o.id, o];
}));
const ref = read(refPath), lp = read(lpPath), gen = read(genPath);
let maxd = 0, agree = 0, positions = 0, gsame = 0, gtotal = 0;
const problems = [], parts = [];
for (const [id, r] of ref) {
    const o = lp.get(id), g = gen.get(id);
    if (!o || !g) { problems.push(`${id}: missing from our output`); continue; }
    if (o.logprobs.length !== r.logprobs.length) problems.push(`${id}: ${o.logprobs.length} log-probs, want ${r.logprobs.length}`);
    for (let i = 0; i < r.logprobs.length; i++) maxd = Math.max(maxd, Math.abs(o.logprobs[i] - r.logprobs[i]));
    for (let i = 0; i < r.argmax.length; i++, positions++) if (o.top[i][0][0] === r.argmax[i]) agree++;
    gtotal += r.greedy.length;
    let k = 0;
    while (k < r.greedy.length && g.new_ids[k] === r.greedy[k]) k++;
    gsame += k;
    if (k === r.greedy.length) continue;
    const top = r.greedy_top?.[k] ?? [];
    const hit = top.find(([t]) => t === g.new_ids[k]);
    const margin = hit ? -hit[1] : top.length ? -top[top.length - 1][1] : Infinity;
    const m = `${hit ? '' : '>'}${margin.toExponential(2)}`;
    parts.push(`  ${label}: ${id} parts at step ${k}: llama.cpp ${r.greedy[k]}, ours ${g.new_ids[k]}, llama.cpp margin ${m}`);
    if (tie === null) problems.push(`${id}: greedy continuation differs from step ${k}`);
    else if (!hit || !(margin <= tie)) problems.push(`${id}: greedy parts at step ${k} where llama.cpp's margin ${m} > ${tie}: not a near-tie`);
}
const pct = positions ? (100 * agree) / positions : 0;
console.log(`${label} max|dlogp|=${maxd.toExponential(2)} (tol ${tol}) argmax=${pct.toFixed(1)}% greedy=${gsame}/${gtotal}` +
            (tie === null ? '' : ` (near-tie ${tie})`));
for (const p of parts) console.log(p);
if (maxd > tol || !(maxd >= 0)) problems.push(`max |dlogp| ${maxd} > ${tol}`);
if (pct < 99) problems.push(`argmax agreement ${pct.toFixed(2)}% < 99%`);
for (const p of problems) console.log(`  ${label}: ${p}`);
process.exit(problems.length ? 1 : 0);
