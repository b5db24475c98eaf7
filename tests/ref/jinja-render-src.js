#!/usr/bin/env node
// Renders {"src", "ctx"} lines with @huggingface/jinja: {"text"} or {"error"} per line
// (the reference side of tests/scripts/t_template_random.sh).
"use strict";
const fs = require("fs");
const { Template } = require("@huggingface/jinja");
const out = [];
for (const line of fs.readFileSync(process.argv[2] || 0, "utf8").split("\n")) {
    if (line.trim() === "") continue;
    const q = JSON.parse(line);
    let res;
    try {
        res = { text: new Template(q.src).render(q.ctx || {}) };
    } catch (e) {
        res = { error: String(e && e.message ? e.message : e) };
    }
    out.push(JSON.stringify(res));
}
process.stdout.write(out.join("\n") + (out.length ? "\n" : ""));
