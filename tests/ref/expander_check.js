#!/usr/bin/env node
// Reference check of turn-expander samples: each sample's messages are rendered by
// @huggingface/jinja with the model's tokenizer_config.json (as transformers'
// apply_chat_template builds the context, add_generation_prompt false) and tokenized by
// Hugging Face `tokenizers` (add_special_tokens false: the template writes BOS itself).
//
// usage: node expander_check.js MODEL_DIR MESSAGES.jsonl IDS.jsonl [MAX_TOKENS [KWARGS_JSON]]
// MESSAGES.jsonl and IDS.jsonl: the same run in --format messages and --format ids.
// Checked per sample: same dialog_id/turn_index in both; n_tokens of both = the
// reference's token count of the rendered messages; input_ids = the reference's ids;
// n_tokens <= MAX_TOKENS (when given, > 0); every label is -100 or the input id; each
// run of labelled tokens decodes (reference decoder) to exactly the content of one
// trained assistant message followed by eos_token, one run per trained message, in
// order (a message with reasoning_content: a run that holds the reasoning and ends with
// content + eos_token) (trained: the last message in prefix samples; whole samples: those without
// "train": false). Prints "checked N samples" or the first problems; exit 1 on any.
'use strict';
const fs = require('fs');
const path = require('path');
const { Template } = require('@huggingface/jinja');
const { Tokenizer } = require('tokenizers');

const [dir, msgFile, idsFile, maxArg, kwArg] = process.argv.slice(2);
const config = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8'));
const tok = Tokenizer.fromFile(path.join(dir, 'tokenizer.json'));
const special = (v) => (v && typeof v === 'object' ? v.content : v);
const tmpl = new Template(config.chat_template);
const max = Number(maxArg || 0);
const kwargs = kwArg ? JSON.parse(kwArg) : {};
const eos = special(config.eos_token);
const read = (f) => fs.readFileSync(f, 'utf8').split('\n').filter((l) => l).map((l) => JSON.parse(l));

function render(messages) {
  const ctx = { messages, tools: null, documents: null, add_generation_prompt: false };
  for (const k of ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token']) {
    const v = special(config[k]);
    if (v !== undefined && v !== null) ctx[k] = v;
  }
  Object.assign(ctx, kwargs);
  return tmpl.render(ctx);
}

async function main() {
  const msgs = read(msgFile), ids = read(idsFile);
  let problems = 0;
  const bad = (i, m) => { if (problems++ < 10) console.log(`sample ${i + 1}: ${m}`); };
  if (msgs.length !== ids.length) bad(-1, `${msgs.length} messages samples, ${ids.length} ids samples`);
  const n = Math.min(msgs.length, ids.length);
  const chunk = 2048;
  for (let a = 0; a < n; a += chunk) {
    const part = [];
    for (let i = a; i < Math.min(n, a + chunk); i++) part.push(render(msgs[i].messages));
    const encs = await tok.encodeBatch(part, { addSpecialTokens: false });
    for (let k = 0; k < part.length; k++) {
      const i = a + k, m = msgs[i], s = ids[i], ref = encs[k].getIds();
      if (m.dialog_id !== s.dialog_id || m.turn_index !== s.turn_index) { bad(i, 'messages and ids samples differ'); continue; }
      const where = `${s.dialog_id} turn ${s.turn_index}`;
      if (s.n_tokens !== ref.length || m.n_tokens !== ref.length)
        bad(i, `${where}: n_tokens ${s.n_tokens}/${m.n_tokens}, reference ${ref.length}`);
      if (s.input_ids.length !== ref.length || s.input_ids.some((v, j) => v !== ref[j]))
        bad(i, `${where}: input_ids differ from the reference's`);
      if (max > 0 && s.n_tokens > max) bad(i, `${where}: ${s.n_tokens} tokens > ${max}`);
      const runs = [];
      let cur = null;
      s.labels.forEach((l, j) => {
        if (l !== -100 && l !== s.input_ids[j]) bad(i, `${where}: label ${j} is neither -100 nor the input id`);
        if (l !== -100) { if (!cur) runs.push(cur = []); cur.push(l); } else cur = null;
      });
      const trained = m.messages.filter((x, j) => x.role === 'assistant' &&
        (m.train_turns ? x.train !== false : j === m.messages.length - 1));
      if (runs.length !== trained.length) { bad(i, `${where}: ${runs.length} labelled runs, ${trained.length} trained turns`); continue; }
      const texts = await tok.decodeBatch(runs, false);
      texts.forEach((t, j) => {
        const want = trained[j].content + eos, r = trained[j].reasoning_content;
        // a reply with reasoning trains what the model writes after the generation
        // prompt: the template's think block with the reasoning, then the content
        if (t !== want && !(r && t.endsWith(want) && t.includes(r))) bad(i, `${where}: labelled tokens decode to ${JSON.stringify(t)}, want ${JSON.stringify(want)}`);
      });
    }
  }
  if (problems) { console.log(`${problems} problems in ${n} samples`); process.exit(1); }
  console.log(`checked ${n} samples`);
}
main().catch((e) => { console.error('expander_check: ' + e.message); process.exit(2); });
