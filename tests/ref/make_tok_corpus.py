#!/usr/bin/env python3
"""Builds the tokenizer test corpus: JSON Lines {"cat": CATEGORY, "text": TEXT} on stdout.

Generated at test time into build/ (never committed), deterministic (fixed seed), at
least 5 MB. Categories (issue 3): real Chinese dialogs and prose made of them, real
English dialogs and prose, source code, digits of many lengths, emoji and ZWJ sequences,
combining marks and NFD text, Japanese, Korean, Arabic, whitespace runs (tabs, CRLF,
U+3000, NBSP), very long words, contractions in mixed case, the special-token strings of
both tokenizers inside text, and random code points from every plane.

usage: make_tok_corpus.py SHARED_DATA_DIR TOKENIZER_JSON... > corpus.jsonl
"""
import json
import os
import random
import sys
import unicodedata

rng = random.Random(20261128)
out = sys.stdout
total = 0


def emit(cat, text):
    global total
    line = json.dumps({"cat": cat, "text": text}, ensure_ascii=False)
    out.write(line + "\n")
    total += len(line.encode("utf-8")) + 1


def contents(path):
    res = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            for t in d.get("turns", []):
                c = t.get("content")
                if isinstance(c, str) and c:
                    res.append(c)
    return res


def main():
    data = sys.argv[1]
    tok_files = sys.argv[2:]
    zh = contents(os.path.join(data, "crosswoz-dev.jsonl"))
    en = contents(os.path.join(data, "multiwoz-dev.jsonl"))

    # real dialogs, one utterance a line, and prose: paragraphs of joined utterances
    for c in zh:
        emit("zh-dialog", c)
    for c in en:
        emit("en-dialog", c)
    for i in range(0, len(zh) - 20, 20):
        emit("zh-prose", "".join(zh[i:i + 20]))
        emit("zh-prose-nopunct", "".join(ch for ch in "".join(zh[i:i + 6]) if unicodedata.category(ch)[0] in "LN"))
    for i in range(0, len(en) - 20, 40):
        emit("en-prose", " ".join(en[i:i + 20]))
        emit("en-prose-lines", "\n".join(en[i + 20:i + 28]) + "\n")

    # source code: this repository's C and shell, and JavaScript of the reference packages
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code_files = []
    for sub in ("libdata", "libeval", "tools", "tests/unit", "tests"):
        d = os.path.join(root, sub)
        if os.path.isdir(d):
            code_files += sorted(os.path.join(d, f) for f in os.listdir(d)
                                 if f.endswith((".c", ".h", ".sh", ".py")))
    for pkg in ("tokenizers/index.js", "ajv/dist/core.js", "@huggingface/jinja/dist/index.js"):
        p = os.path.join(root, "tests/node_modules", pkg)
        if os.path.isfile(p):
            code_files.append(p)
    for p in code_files:
        with open(p, encoding="utf-8", errors="replace") as f:
            src = f.read()
        lines = src.split("\n")
        for i in range(0, len(lines), 40):
            emit("code", "\n".join(lines[i:i + 40]))
        emit("code-tabs", src[:8000].replace("    ", "\t"))
        emit("code-crlf", src[:8000].replace("\n", "\r\n"))

    # digits of many lengths, alone and in text
    for n in range(1, 80):
        for _ in range(12):
            d = "".join(rng.choice("0123456789") for _ in range(n))
            emit("digits", d)
            emit("digits-text", f"call {d} or ¥{d[:5]}.{d[5:8]} at {d[:2]}:{d[2:4]}, id={d}x{n}")
    emit("digits-long", "".join(rng.choice("0123456789") for _ in range(20000)))
    emit("digits-fullwidth", "".join(chr(0xFF10 + rng.randrange(10)) for _ in range(500)))
    emit("digits-other", "١٢٣٤٥ ۱۲۳ १२३४ ๑๒๓ 一二三 ①②③ Ⅻ ½ ¾ ²³ 𝟙𝟚𝟛 𝟘")

    # emoji, skin tones, ZWJ families, flags, keycaps, variation selectors
    emoji = [chr(c) for c in list(range(0x1F300, 0x1F5FF)) + list(range(0x1F600, 0x1F64F)) +
             list(range(0x1F680, 0x1F6FF)) + list(range(0x1F900, 0x1F9FF)) + list(range(0x1FA70, 0x1FAFF))]
    zwj = ["👨\u200d👩\u200d👧\u200d👦", "🏳️\u200d🌈", "👩🏽\u200d💻", "🧑\u200d🤝\u200d🧑", "❤️\u200d🔥",
           "🐻\u200d❄️", "👁️\u200d🗨️", "🇨🇳", "🇺🇸", "🇯🇵", "1️⃣", "#️⃣", "👍🏻", "👍🏿", "✌︎", "☺️"]
    for _ in range(3000):
        parts = [rng.choice(emoji) if rng.random() < 0.6 else rng.choice(zwj) for _ in range(rng.randrange(1, 12))]
        sep = rng.choice(["", " ", "  ", "\n", "，", "!", "a"])
        emit("emoji", sep.join(parts) + rng.choice(["", " ok", "好的", "!!"]))

    # combining marks and NFD text (Qwen3 normalizes to NFC)
    accented = "café naïve résumé Ångström Zürich São Paulo Đà Nẵng Tiếng Việt Ελληνικά Ἀθῆναι ﬁne ﬀ Å Ω K ḱṷ"
    for i in range(0, len(en), 40):
        s = en[i] + " " + accented
        emit("nfd", unicodedata.normalize("NFD", s))
        emit("nfkd", unicodedata.normalize("NFKD", s))
    marks = [chr(c) for c in range(0x300, 0x370)] + [chr(c) for c in range(0x1AB0, 0x1ACF)] + \
            [chr(c) for c in range(0x20D0, 0x20F1)]
    for _ in range(3000):
        base = rng.choice("aeiouAEIOUnNcCsSzZ한가αω日")
        emit("combining", "".join(base + "".join(rng.choice(marks) for _ in range(rng.randrange(0, 5)))
                                  for _ in range(rng.randrange(1, 20))))
    emit("zalgo", "".join(ch + "".join(rng.choice(marks) for _ in range(30)) for ch in "zalgo text here"))
    # Dives Akuru O (U+11938, Unicode 13) decomposed: the reference does not compose it
    emit("combining-new", "\U00011935\U00011930 \U00011938 a\U00011935\U00011930\u0301 \u0898\u0316 \u1AC1\u0316x")
    hangul_nfd = unicodedata.normalize("NFD", "한국어 텍스트를 분해한 자모 형태입니다")
    emit("hangul-nfd", hangul_nfd)

    # Japanese, Korean, Arabic: a few hand-written sentences and generated text
    ja = ["今日は良い天気ですね。", "東京駅から新幹線で京都へ行きます。", "カタカナとひらがなを混ぜたテキスト、ｶﾀｶﾅ半角も。",
          "彼は「ありがとう」と言った。", "ラーメンを食べたいです！"]
    ko = ["안녕하세요, 반갑습니다.", "서울에서 부산까지 KTX로 두 시간 반 걸립니다.", "한국어와 English가 섞인 문장입니다.",
          "오늘 날씨가 정말 좋네요!"]
    ar = ["مرحبا بالعالم", "أريد حجز فندق في القاهرة لثلاث ليالٍ.", "اللُّغَةُ العَرَبِيَّةُ جَمِيلَةٌ",
          "الرقم ١٢٣٤٥ والرقم 678"]
    hira = [chr(c) for c in range(0x3041, 0x3097)]
    kata = [chr(c) for c in range(0x30A1, 0x30FB)]
    kanji = [chr(c) for c in range(0x4E00, 0x9FFF)]
    hangul = [chr(c) for c in range(0xAC00, 0xD7A4)]
    arabic = [chr(c) for c in range(0x0621, 0x064B)]
    harakat = [chr(c) for c in range(0x064B, 0x0653)]
    for _ in range(2500):
        emit("ja", rng.choice(ja) + "".join(rng.choice(rng.choice([hira, kata, kanji])) for _ in range(rng.randrange(1, 30))) + "。")
        emit("ko", rng.choice(ko) + " " + " ".join("".join(rng.choice(hangul) for _ in range(rng.randrange(1, 6)))
                                                   for _ in range(rng.randrange(1, 10))))
        emit("ar", rng.choice(ar) + " " + " ".join("".join(rng.choice(arabic) + (rng.choice(harakat) if rng.random() < 0.3 else "")
                                                           for _ in range(rng.randrange(2, 8)))
                                                   for _ in range(rng.randrange(1, 10))))

    # whitespace runs
    ws = ["\t", "\r\n", "\n", "\r", "\u3000", "\u00a0", " ", "  ", "\u2009", "\u200b", "\u180e", "\u2028", "\x0b", "\x0c", "\x85"]
    for _ in range(6000):
        emit("whitespace", "".join(rng.choice(ws) * rng.randrange(1, 6) + rng.choice(["", "a", "word", "你好", "1", ".", "'s"])
                                   for _ in range(rng.randrange(1, 12))))

    # very long words
    for n in (300, 1000, 5000, 20000):
        emit("long-word", "a" * n)
        emit("long-word", "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(n)))
        emit("long-word", "https://example.com/" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEF0123456789/-_?=&%") for _ in range(n)))
        emit("long-word", "".join(rng.choice(kanji) for _ in range(n // 3)))
        emit("long-word", " " * n + "x")
        emit("long-word", "!" * n)
    emit("long-base64", "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") for _ in range(30000)))

    # contractions in mixed case
    cons = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ve", "'M", "'LL", "'lL", "'D", "'ſ", "’s", "'x"]
    for _ in range(5000):
        w = rng.choice(["I", "you", "HE", "She", "it", "WE", "They", "don", "can", "won", "Y", "o", "rock n"])
        emit("contractions", " ".join(w + rng.choice(cons) + rng.choice(["", " ", "s", "re", "!"]) for _ in range(rng.randrange(1, 8))))

    # the added tokens of both tokenizers inside text, split, repeated, next to others
    specials = []
    for p in tok_files:
        with open(p, encoding="utf-8") as f:
            specials += [t["content"] for t in json.load(f)["added_tokens"]]
    specials = sorted(set(specials))
    for i in range(4000):
        t = rng.choice(specials)
        kind = i % 6
        if kind == 0:
            s = rng.choice(en[:2000]) + t + rng.choice(zh[:2000])
        elif kind == 1:
            s = t + t + "\n" + t + " " + t
        elif kind == 2:
            s = t[:rng.randrange(1, len(t))] + " " + t[rng.randrange(0, len(t)):]
        elif kind == 3:
            s = "<|im_start|>user\n" + rng.choice(zh[:2000]) + "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n" + rng.choice(en[:2000]) + "<|im_end|>"
        elif kind == 4:
            s = "<｜begin▁of▁sentence｜>" + "<｜User｜>" + rng.choice(zh[:2000]) + "<｜Assistant｜>" + rng.choice(en[:2000]) + "<｜end▁of▁sentence｜>"
        else:
            s = unicodedata.normalize("NFD", "é" + t + "\u0301" + t + "ñ")
        emit("special", s)

    # random code points of every plane (scalar values), alone and in runs
    for _ in range(4000):
        cps = []
        for _ in range(rng.randrange(1, 16)):
            plane = rng.choice([0, 0, 0, 1, 2, 3, 14, 15, 16])
            c = rng.randrange(plane * 0x10000, plane * 0x10000 + 0x10000)
            if 0xD800 <= c <= 0xDFFF:
                c = 0xFFFD
            cps.append(chr(c))
        emit("random-cp", "".join(cps))
    emit("controls", "".join(chr(c) for c in list(range(1, 32)) + [127] + list(range(0x80, 0xA0))))
    emit("nul", "a\u0001b")
    emit("empty", "")

    # pad to 5 MB with more real prose if the data is small
    i = 0
    while total < 5_500_000 and zh:
        emit("zh-prose-extra", "".join(zh[i % len(zh):i % len(zh) + 30]))
        emit("en-prose-extra", " ".join(en[i % len(en):i % len(en) + 30]))
        i += 30
    sys.stderr.write(f"make_tok_corpus: {total} bytes\n")


main()
