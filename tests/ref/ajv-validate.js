#!/usr/bin/env node
// ajv-validate.js: the independent reference for dialog validation (DESIGN.md section 9).
// Validates every line of a JSON Lines file against schemas/dialog.schema.json with
// ajv (JSON Schema draft 2020-12) and prints one verdict a line: "LINENO ok" or
// "LINENO fail" (a line JSON.parse rejects is a fail). Line numbers are physical and
// 1-based; blank lines (only spaces, tabs, \r) are skipped like dk_jsonl skips them,
// a UTF-8 BOM on line 1 is removed, and \r\n line ends are accepted.
//   usage: node tests/ref/ajv-validate.js [--schema FILE] [--why] FILE.jsonl
// --why adds ajv's first error (instancePath and message) after "fail".
// Exit 0 when every line is ok, 1 when some line fails, 2 on usage or I/O errors.
'use strict';
const fs = require('fs');
const path = require('path');
const Ajv2020 = require('ajv/dist/2020');

function usage(msg) {
    process.stderr.write(`ajv-validate: error: ${msg}\n` +
        'usage: node tests/ref/ajv-validate.js [--schema FILE] [--why] FILE.jsonl\n');
    process.exit(2);
}

let schemaPath = path.join(__dirname, '..', '..', 'schemas', 'dialog.schema.json');
let why = false;
const files = [];
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--schema') { if (++i >= argv.length) usage('--schema needs a file'); schemaPath = argv[i]; }
    else if (argv[i] === '--why') why = true;
    else if (argv[i].startsWith('--')) usage(`unknown option ${argv[i]}`);
    else files.push(argv[i]);
}
if (files.length !== 1) usage('exactly one input file');

let schema, text;
try {
    schema = JSON.parse(fs.readFileSync(schemaPath, 'utf8'));
    text = fs.readFileSync(files[0], 'utf8');
} catch (e) {
    usage(e.message);
}
// Strict mode stays on (the schema must not use keywords ajv does not know), except
// strictTuples: turns is a 1-item prefixItems (the only place a system turn may be)
// followed by an open-ended items schema, which is what the rule means.
const ajv = new Ajv2020({ allErrors: false, strictTuples: false });
const validate = ajv.compile(schema);

if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
const lines = text.split('\n');
if (lines.length && lines[lines.length - 1] === '') lines.pop(); // the final \n ends a line
let bad = 0;
const out = [];
lines.forEach((raw, i) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (/^[ \t\r]*$/.test(line)) return;
    let ok = false, reason = '';
    try {
        ok = validate(JSON.parse(line));
        if (!ok) reason = `${validate.errors[0].instancePath || '/'} ${validate.errors[0].message}`;
    } catch (e) {
        reason = `JSON.parse: ${e.message}`;
    }
    if (!ok) bad++;
    out.push(`${i + 1} ${ok ? 'ok' : 'fail'}${!ok && why ? ' ' + reason : ''}`);
});
process.stdout.write(out.length ? out.join('\n') + '\n' : '');
process.exit(bad ? 1 : 0);
