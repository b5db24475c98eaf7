// compare.mjs: our core's output against llama.cpp's (from llamacpp_ref.mjs).
// usage: node compare.mjs LABEL TOL REF.jsonl OURS_LOGPROBS.jsonl OURS_GENERATE.jsonl
//                         [--tie TIE] [--argmax-min PCT] [--mean-tol MTOL]
//   OURS_LOGPROBS from `evaluator logprobs --top 1`, OURS_GENERATE from
//   `evaluator generate --max-new N`. Prints one line
//   LABEL max|dlogp|=... (over N) argmax=...% greedy=N/M
// (N: the log-probs the reference computed; greedy: tokens equal up to each sequence's
// first difference, summed over sequences), then one line for every sequence whose
// greedy continuation parts from the reference's: the step and the reference's margin
// there, logit(its token) - logit(ours).
// Exits 1 when max |dlogp| > TOL, mean |dlogp| > MTOL (if given), argmax agreement <
// PCT % (default 99), or a
// token differs: without TIE any greedy token; with TIE an argmax or the first greedy
// difference where the reference's own margin is > TIE (not a near-tie that rounding
// may flip; after a greedy parting the two continuations have different prefixes and
// are not compared). A token outside the reference's recorded top list counts as a
// margin beyond the list's last.
import fs from 'node:fs';

const [label, tolArg, refPath, lpPath, genPath, ...opts] = process.argv.slice(2);
const opt = name => { const i = opts.indexOf(name); return i < 0 ? null : Number(opts[i + 1]); };
const tol = Number(tolArg), tie = opt('--tie'), argmin = opt('--argmax-min') ?? 99, mtol = opt('--mean-tol');
// The reference's margin logit(best) - logit(tok) from its top list ('>' when beyond it).
function margin(top, tok) {
    const hit = (top ?? []).find(([t]) => t === tok);
    const m = hit ? -hit[1] : top?.length ? -top[top.length - 1][1] : Infinity;
    return { m, hit: !!hit, text: `${hit ? '' : '>'}${m.toExponential(2)}`, tie: !!hit && m <= tie };
}
const read = p => new Map(fs.readFileSync(p, 'utf8').split('\n').filter(Boolean).map(l => {
    const o = JSON.parse(l);
    return [o.id, o];
}));
const ref = read(refPath), lp = read(lpPath), gen = read(genPath);
let maxd = 0, sumd = 0, nd = 0, agree = 0, positions = 0, gsame = 0, gtotal = 0, worstFlip = 0;
const problems = [], parts = [];
for (const [id, r] of ref) {
    const o = lp.get(id), g = gen.get(id);
    if (!o || !g) { problems.push(`${id}: missing from our output`); continue; }
    if (o.logprobs.length !== r.logprobs.length) problems.push(`${id}: ${o.logprobs.length} log-probs, want ${r.logprobs.length}`);
    for (let i = 0; i < r.logprobs.length; i++)
        if (r.logprobs[i] !== null) {
            const d = Math.abs(o.logprobs[i] - r.logprobs[i]);
            maxd = Math.max(maxd, d);
            sumd += d;
            nd++;
        }
    for (let i = 0; i < r.argmax.length; i++, positions++) {
        if (o.top[i][0][0] === r.argmax[i]) { agree++; continue; }
        const mg = margin(r.top?.[i], o.top[i][0][0]);
        worstFlip = Math.max(worstFlip, mg.m);
        if (tie !== null && !mg.tie) problems.push(`${id}: argmax differs at position ${i} where llama.cpp's margin ${mg.text} > ${tie}: not a near-tie`);
    }
    gtotal += r.greedy.length;
    let k = 0;
    while (k < r.greedy.length && g.new_ids[k] === r.greedy[k]) k++;
    gsame += k;
    if (k === r.greedy.length) continue;
    const mg = margin(r.greedy_top?.[k], g.new_ids[k]);
    parts.push(`  ${label}: ${id} parts at step ${k}: llama.cpp ${r.greedy[k]}, ours ${g.new_ids[k]}, llama.cpp margin ${mg.text}`);
    if (tie === null) problems.push(`${id}: greedy continuation differs from step ${k}`);
    else if (!mg.tie) problems.push(`${id}: greedy parts at step ${k} where llama.cpp's margin ${mg.text} > ${tie}: not a near-tie`);
}
const pct = positions ? (100 * agree) / positions : 0;
const meand = nd ? sumd / nd : 0;
console.log(`${label} max|dlogp|=${maxd.toExponential(2)} over ${nd} (tol ${tol})` +
            (mtol === null ? '' : ` mean=${meand.toExponential(2)} (tol ${mtol})`) + ` argmax=${pct.toFixed(1)}%` +
            (agree < positions ? ` (largest margin of a flip ${worstFlip.toExponential(2)})` : '') +
            ` greedy=${gsame}/${gtotal}` + (tie === null ? '' : ` (near-tie <= ${tie})`));
for (const p of parts) console.log(p);
if (maxd > tol || !(maxd >= 0)) problems.push(`max |dlogp| ${maxd} > ${tol}`);
if (mtol !== null && !(meand <= mtol)) problems.push(`mean |dlogp| ${meand} > ${mtol}`);
if (pct < argmin) problems.push(`argmax agreement ${pct.toFixed(2)}% < ${argmin}%`);
for (const p of problems.slice(0, 10)) console.log(`  ${label}: ${p}`);
if (problems.length > 10) console.log(`  ${label}: ... and ${problems.length - 10} more`);
process.exit(problems.length ? 1 : 0);
