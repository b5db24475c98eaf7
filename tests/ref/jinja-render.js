#!/usr/bin/env node
// Reference renderer for the chat-template agreement test: renders each request line
// with @huggingface/jinja exactly as transformers' apply_chat_template builds the
// context, so that build/tests/test_template --render can be compared byte for byte.
//
// Input (JSON Lines, file argument or stdin), one request a line:
//   {"template_path": "tokenizer_config.json", "dialog": {"turns": [...], "tools": [...]},
//    "add_generation_prompt": true, "kwargs": {"enable_thinking": false}}
// Output, one line per request: {"text": "..."} or {"error": "..."}.
//
// The template: chat_template when it is a string; from a list of {name, template},
// "tool_use" when the dialog has tools (a non-null "tools"), else "default".
// The context, as transformers' apply_chat_template builds it: messages = the turns
// (every field), tools = the dialog's tools or null, documents = null,
// add_generation_prompt, the special_tokens_map (bos/eos/unk/sep/pad/cls/mask tokens
// the config sets, a string or an {content} object; additional_special_tokens when
// non-empty), then the kwargs.
"use strict";
const fs = require("fs");
const path = require("path");
const { Template } = require("@huggingface/jinja");

const configs = new Map();
const templates = new Map();

function loadConfig(p) {
    if (!configs.has(p)) {
        let file = p;
        if (fs.statSync(file).isDirectory()) file = path.join(file, "tokenizer_config.json");
        configs.set(p, JSON.parse(fs.readFileSync(file, "utf8")));
    }
    return configs.get(p);
}

function specialToken(v) {
    if (v === undefined || v === null) return undefined;
    if (typeof v === "object") return v.content;
    return v;
}

function pickTemplate(config, hasTools) {
    const ct = config.chat_template;
    if (typeof ct === "string") return ct;
    if (Array.isArray(ct)) {
        const byName = new Map(ct.map((t) => [t.name, t.template]));
        if (hasTools && byName.has("tool_use")) return byName.get("tool_use");
        if (byName.has("default")) return byName.get("default");
        throw new Error("no default chat template");
    }
    throw new Error("no chat_template");
}

function render(req) {
    const config = loadConfig(req.template_path);
    const dialog = req.dialog;
    const hasTools = dialog.tools !== undefined && dialog.tools !== null;
    const src = pickTemplate(config, hasTools);
    if (!templates.has(src)) templates.set(src, new Template(src));
    const ctx = {
        messages: dialog.turns,
        tools: hasTools ? dialog.tools : null,
        add_generation_prompt: !!req.add_generation_prompt,
    };
    ctx.documents = null;
    for (const name of ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"]) {
        const tok = specialToken(config[name]);
        if (tok !== undefined) ctx[name] = tok;
    }
    const extra = config.additional_special_tokens;
    if (Array.isArray(extra) && extra.length > 0) ctx.additional_special_tokens = extra.map(specialToken);
    for (const [k, v] of Object.entries(req.kwargs || {})) ctx[k] = v;
    return templates.get(src).render(ctx);
}

const input = fs.readFileSync(process.argv[2] || 0, "utf8");
const out = [];
for (const line of input.split("\n")) {
    if (line.trim() === "") continue;
    let res;
    try {
        res = { text: render(JSON.parse(line)) };
    } catch (e) {
        res = { error: String(e && e.message ? e.message : e) };
    }
    out.push(JSON.stringify(res));
}
process.stdout.write(out.join("\n") + (out.length ? "\n" : ""));
