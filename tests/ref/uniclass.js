// Unicode classes of the pre-tokenizer regexes, checked code point by code point against
// Hugging Face `tokenizers` (whose Oniguruma has Unicode 16 tables; PCRE2 10.42 has 14).
//
//   node uniclass.js classes DIR   for each class of the real files' regexes: DIR/CLASS.json,
//                                  a byte-level tokenizer whose Split removes the class; the
//                                  input DIR/cps.jsonl (every scalar value but U+0000,
//                                  128 a line; DIR/contractions.jsonl for the case-
//                                  insensitive group: ' + c, ' + c + e, 'r + c ...) and
//                                  the reference's output DIR/CLASS.ref, byte for byte what
//                                  `tokenizer encode` must print
//   node uniclass.js group DIR SRC JSON...  the code points where the two engines' tables
//                                  differ (the ranges in SRC, dk_tokenizer_load.c, and
//                                  U+180E), in context, as DIR/group.jsonl, and the real
//                                  tokenizers' ids as DIR/group-N.ref
'use strict';
const fs = require('fs');
const path = require('path');
const { Tokenizer } = require(path.join(__dirname, '..', 'node_modules', 'tokenizers'));

const CLASSES = {
  L: '\\p{L}', N: '\\p{N}', M: '\\p{M}', P: '\\p{P}', S: '\\p{S}', s: '\\s', S_: '\\S',
  other: '[^\\s\\p{L}\\p{N}]', qwen_head: '[^\\r\\n\\p{L}\\p{N}]?\\p{L}+',
  ds_head: '[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+', ds_punct: ' ?[\\p{P}\\p{S}]+[\\r\\n]*',
  contractions: "(?i:'s|'t|'re|'ve|'m|'ll|'d)",
};

function bytesToUnicode() {
  const bs = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) if (!bs.includes(b)) { bs.push(b); cs.push(256 + n++); }
  const vocab = {};
  bs.forEach((b, i) => { vocab[String.fromCodePoint(cs[i])] = b; });
  return vocab;
}

function tokenizerJson(regex) {
  return {
    version: '1.0', truncation: null, padding: null, added_tokens: [], normalizer: null,
    pre_tokenizer: { type: 'Sequence', pretokenizers: [
      { type: 'Split', pattern: { Regex: regex }, behavior: 'Removed', invert: false },
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false }] },
    post_processor: null, decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
             fuse_unk: false, byte_fallback: false, vocab: bytesToUnicode(), merges: [] },
  };
}

async function run(tok, lines) {
  let out = '';
  for (let i = 0; i < lines.length; i += 20000) {
    const part = lines.slice(i, i + 20000);
    const encs = await tok.encodeBatch(part.map((l) => JSON.parse(l).text), { addSpecialTokens: true });
    for (let k = 0; k < part.length; k++)
      out += part[k].slice(0, -1) + ',"ids":[' + encs[k].getIds().join(',') + ']}\n';
  }
  return out;
}

const line = (s) => JSON.stringify({ text: s }).replace(/[\u007f-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));

async function classes(dir) {
  // 128 code points a line, each after U+0001: the one-character classes decide each
  // character alone, so packing hides nothing, and the reference runs 100 times faster
  const all = [];
  let cur = '';
  for (let c = 1, k = 0; c <= 0x10ffff; c++) {
    if (c >= 0xd800 && c <= 0xdfff) continue;
    cur += '\u0001' + String.fromCodePoint(c);
    if (++k % 128 === 0) { all.push(line(cur)); cur = ''; }
  }
  if (cur) all.push(line(cur));
  fs.writeFileSync(path.join(dir, 'cps.jsonl'), all.join('\n') + '\n');
  const con = [];
  cur = '';
  for (let c = 1, k = 0; c <= 0xffff; c++) {
    if (c >= 0xd800 && c <= 0xdfff) continue;
    const x = String.fromCodePoint(c);
    cur += ["'" + x, "'" + x + 'e', "'r" + x, "'v" + x, "'l" + x, "'" + x + 'l'].join(' ') + ' ';
    if (++k % 64 === 0) { con.push(line(cur)); cur = ''; }
  }
  if (cur) con.push(line(cur));
  fs.writeFileSync(path.join(dir, 'contractions.jsonl'), con.join('\n') + '\n');
  for (const [name, re] of Object.entries(CLASSES)) {
    const json = JSON.stringify(tokenizerJson(re));
    fs.writeFileSync(path.join(dir, name + '.json'), json);
    const lines = name === 'contractions' ? con : all;
    fs.writeFileSync(path.join(dir, name + '.ref'), await run(Tokenizer.fromString(json), lines));
  }
}

async function group(dir, src, jsons) {
  const text = fs.readFileSync(src, 'utf8');
  const cps = [0x180e];
  const tables = text.match(/uni_delta_[LNMPS] =[^;]*;/g) || [];
  for (const t of tables) {
    const ranges = t.match(/\\\\x\{[0-9A-F]+\}(-\\\\x\{[0-9A-F]+\})?/g) || [];
    for (const r of ranges) {
      const [a, b] = r.split('-').map((x) => parseInt(x.replace(/[^0-9A-F]/g, ''), 16));
      for (let c = a; c <= (b || a); c++) cps.push(c);
    }
  }
  if (cps.length < 10000) throw new Error('found only ' + cps.length + ' code points in ' + src);
  const lines = cps.map((c) => {
    const x = String.fromCodePoint(c);
    return line(`a${x}b 1${x}1 ${x}${x}\n'${x} x${x}, ${x}. ${x}中文${x}١٢`);
  });
  fs.writeFileSync(path.join(dir, 'group.jsonl'), lines.join('\n') + '\n');
  for (let i = 0; i < jsons.length; i++)
    fs.writeFileSync(path.join(dir, `group-${i}.ref`), await run(Tokenizer.fromFile(jsons[i]), lines));
  console.log(`uniclass: ${cps.length} code points in the group`);
}

const [mode, dir, ...rest] = process.argv.slice(2);
(mode === 'classes' ? classes(dir) : group(dir, rest[0], rest.slice(1)))
  .catch((e) => { console.error('uniclass: ' + e.message); process.exit(2); });
