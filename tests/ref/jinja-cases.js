#!/usr/bin/env node
// Checks hand-worked template expectations against @huggingface/jinja: each input line
// {"src", "ctx"?, "want"} must render to want, and {"src", "ctx"?, "error": true} must
// fail (at parse or render). Prints each disagreement; exits 1 if there is any.
"use strict";
const fs = require("fs");
const { Template } = require("@huggingface/jinja");

let bad = 0, n = 0;
for (const line of fs.readFileSync(process.argv[2] || 0, "utf8").split("\n")) {
    if (line.trim() === "") continue;
    const c = JSON.parse(line);
    n++;
    let got, err = null;
    try {
        got = new Template(c.src).render(c.ctx || {});
    } catch (e) {
        err = String(e && e.message ? e.message : e);
    }
    if (c.error) {
        if (err === null) {
            bad++;
            console.log(`expected an error, got ${JSON.stringify(got)}: ${JSON.stringify(c.src)}`);
        }
    } else if (err !== null || got !== c.want) {
        bad++;
        console.log(`${JSON.stringify(c.src)} ctx=${JSON.stringify(c.ctx || {})}\n  want ${JSON.stringify(c.want)}\n  ref  ${err !== null ? "error: " + err : JSON.stringify(got)}`);
    }
}
console.log(`${n} cases, ${bad} disagree with the reference`);
process.exit(bad ? 1 : 0);
