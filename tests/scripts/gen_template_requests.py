#!/usr/bin/env python3
"""Render requests for the chat-template agreement test (t_template_render.sh).

Writes JSON Lines {"template_path", "name", "dialog", "add_generation_prompt", "kwargs"}:
for each template, N conversations of 1 to 10 turns after an optional system turn,
Chinese and English (texts drawn from the real dialogs in --data when present, plus
hand-written hard cases: white space at the edges, Unicode spaces, emoji, quotes,
backslashes, control characters, <think> blocks), add_generation_prompt on and off,
enable_thinking on/off/absent, replies with reasoning_content, and some dialogs with
tools, tool_calls and tool turns shaped the way each model's template expects them.
Deterministic for a given --seed.
"""
import argparse
import json
import os
import random

HARD_TEXTS = [
    "  leading and trailing spaces  ",
    "\n\nnewlines around\n\n",
    "\ttab\tinside\t",
    "\u3000全角空格\u3000",
    "nbsp\u00a0inside\u00a0",
    "emoji 😀 and 𝒳 astral",
    'quotes "double" and \'single\'',
    "back\\slash \\n not a newline",
    "braces {{ not a tag }} {% neither %}",
    "json {\"a\": [1, 2]}",
    "control \u0001\u001f chars",
    "line\u2028separator",
    "</think> stray closing tag",
    "多行\n文本\n\n第三段",
    "ümlaut ÉCOLE straße",
    "",
]

FALLBACK_ZH = ["你好，我想找一家餐馆。", "推荐您去讲礼驴肉馆。", "这家餐馆的周边有哪些景点？", "好的，谢谢！"]
FALLBACK_EN = ["I need a hotel in the east.", "What is your price range?", "Cheap, please.", "Thanks, goodbye."]


def load_texts(data_dir, rng):
    zh, en = [], []
    for name, bucket in (("crosswoz-dev.jsonl", zh), ("multiwoz-dev.jsonl", en)):
        path = os.path.join(data_dir or "", name)
        if not data_dir or not os.path.exists(path):
            continue
        with open(path, encoding="utf-8") as f:
            for i, line in enumerate(f):
                if i >= 300:
                    break
                d = json.loads(line)
                for t in d.get("turns", []):
                    if isinstance(t.get("content"), str) and t["content"]:
                        bucket.append(t["content"])
    return zh or FALLBACK_ZH, en or FALLBACK_EN


TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather", "description": "Get the weather of a city, 城市天气",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string", "description": "城市名 / city"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer", "minimum": 1, "maximum": 7.5}},
            "required": ["city"]}}},
    {"type": "function", "function": {
        "name": "book_hotel", "description": "Book a hotel \"now\"\nwith a newline",
        "parameters": {"type": "object", "properties": {
            "name": {"type": "string"}, "nights": {"type": "number"},
            "extras": {"type": "array", "items": {"type": "string"}},
            "1": {"type": "boolean"}},
            "required": ["name", "nights"]}}},
]


def pick_text(rng, zh, en, lang):
    r = rng.random()
    if r < 0.12:
        return rng.choice(HARD_TEXTS)
    pool = zh if lang == "zh" else en
    text = rng.choice(pool)
    if r > 0.93:
        text = text + "\n" + rng.choice(pool)
    return text


def tool_call(rng, style, zh, en):
    name = rng.choice(["get_weather", "book_hotel"])
    if name == "get_weather":
        args = {"city": rng.choice(["北京", "Cambridge", "São Paulo"]), "days": rng.choice([1, 3, 2.5])}
    else:
        args = {"name": rng.choice(["Allenbell", "汉庭"]), "nights": rng.choice([1, 2]), "extras": ["breakfast", "晚餐"]}
    if style == "deepseek":
        return {"type": "function", "function": {"name": name, "arguments": json.dumps(args, ensure_ascii=False)}}
    if style == "qwen3" and rng.random() < 0.3:
        return {"type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
    if style == "flat":
        return {"name": name, "arguments": args}
    return {"type": "function", "function": {"name": name, "arguments": args}}


def conversation(rng, model, zh, en, idx):
    lang = rng.choice(["zh", "en"])
    turns = []
    if rng.random() < 0.4:
        turns.append({"role": "system", "content": rng.choice(
            ["You are a helpful assistant.", "你是一个乐于助人的助手。", "  Be brief.  \n", pick_text(rng, zh, en, lang)])})
    with_tools = rng.random() < 0.3
    n = rng.randint(1, 10)
    style = {"deepseek-v3": "deepseek", "qwen3": "qwen3"}.get(model, "nested")
    if model == "qwen2.5" and rng.random() < 0.3:
        style = "flat"
    role = "user"
    while len([t for t in turns if t["role"] != "system"]) < n:
        if role == "user":
            turns.append({"role": "user", "content": pick_text(rng, zh, en, lang)})
            role = "assistant"
            continue
        if with_tools and rng.random() < 0.4:
            # Llama-3.1 takes one call per turn (its template raises on more: kept rare,
            # so that both renderers are seen rejecting the same dialogs)
            ncalls = 1 if rng.random() < (0.95 if model == "llama-3.1" else 0.6) else 2
            calls = [tool_call(rng, style, zh, en) for _ in range(ncalls)]
            if model == "deepseek-v3":
                content = None
            elif model == "llama-3.1":
                content = ""
            else:
                content = rng.choice(["", "Let me check. 我查一下。", "\n"])
            t = {"role": "assistant", "content": content, "tool_calls": calls}
            if rng.random() < 0.3:
                t["reasoning_content"] = "need a tool"
            turns.append(t)
            for _ in range(ncalls):
                turns.append({"role": "tool", "content": rng.choice(
                    ['{"temp": 21, "sky": "晴"}', "booked", "error: \"none\"\n", "多云转晴"])})
            # the model answers after the tool results
            reply = {"role": "assistant", "content": pick_text(rng, zh, en, lang)}
            turns.append(reply)
            role = "user"
            continue
        t = {"role": "assistant", "content": pick_text(rng, zh, en, lang)}
        r = rng.random()
        if r < 0.3:
            t["reasoning_content"] = rng.choice(["\n思考：用户想要推荐。\n", "  think first  ", "", "step 1\n\nstep 2"])
        elif r < 0.45 and model in ("qwen3", "deepseek-v3"):
            t["content"] = rng.choice(["<think>\nreasoning here\n</think>\n\n", "<think>短</think>", "</think>\n"]) + t["content"]
        if rng.random() < 0.2:
            t["entities"] = [{"text": "x", "type": "T"}]
            t["action"] = "Inform"
        turns.append(t)
        role = "user"
    dialog = {"dialog_id": f"{model}-{idx}", "turns": turns}
    if with_tools:
        dialog["tools"] = rng.sample(TOOLS, rng.randint(1, 2))
    kwargs = {}
    r = rng.random()
    if r < 0.35:
        kwargs["enable_thinking"] = False
    elif r < 0.7:
        kwargs["enable_thinking"] = True
    return dialog, rng.random() < 0.5, kwargs


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True)
    ap.add_argument("--per-template", type=int, default=250)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data", default=os.environ.get("DK_SHARED_DATA"))
    ap.add_argument("--template", action="append", required=True, metavar="NAME=PATH")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    zh, en = load_texts(args.data, rng)
    with open(args.out, "w", encoding="utf-8") as out:
        for spec in args.template:
            name, path = spec.split("=", 1)
            for i in range(args.per_template):
                dialog, agp, kwargs = conversation(rng, name, zh, en, i)
                out.write(json.dumps({"template_path": path, "name": name, "dialog": dialog,
                                      "add_generation_prompt": agp, "kwargs": kwargs},
                                     ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
