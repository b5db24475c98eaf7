// The reference side of the tokenizer tests: Hugging Face `tokenizers` (npm) encodes every
// line of a JSON Lines corpus ({"text": ...}) with the given tokenizer.json and writes, per
// line, {"ids": [...], "norm": TEXT}: the ids of encode(text) (add_special_tokens as the
// library's default, true) and decode(ids): the text as the reference's pipeline normalized
// it (its normalizeString differs from the pipeline on some combining marks), which our
// decode must give back.
// usage: node tok_reference.js TOKENIZER_JSON < corpus.jsonl > ref.jsonl
'use strict';
const fs = require('fs');
const path = require('path');
const { Tokenizer } = require(path.join(__dirname, '..', 'node_modules', 'tokenizers'));

async function main() {
  const tok = Tokenizer.fromFile(process.argv[2]);
  const lines = fs.readFileSync(0, 'utf8').split('\n').filter((l) => l.length > 0);
  const inputs = lines.map((l) => JSON.parse(l).text);
  const out = fs.openSync('/dev/stdout', 'w');
  const chunk = 4096;
  for (let i = 0; i < inputs.length; i += chunk) {
    const part = inputs.slice(i, i + chunk);
    const encs = await tok.encodeBatch(part, { addSpecialTokens: true });
    const ids = encs.map((e) => e.getIds());
    const texts = await tok.decodeBatch(ids, false);
    let buf = '';
    for (let k = 0; k < part.length; k++)
      buf += JSON.stringify({ ids: ids[k], norm: texts[k] }) + '\n';
    fs.writeSync(out, buf);
  }
}
main().catch((e) => { console.error('tok_reference: ' + e.message); process.exit(2); });
