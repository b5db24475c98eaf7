#!/usr/bin/env python3
"""Compares our tokenizer's output with the reference's, line by line.

usage: tok_compare.py [--exact] NAME CORPUS REF OURS_ENCODED OURS_DECODED
  --exact       the tokenizer has no normalizer: decode must also give back the input
  CORPUS        {"cat", "text"} lines
  REF           {"ids", "norm"} lines from tok_reference.js
  OURS_ENCODED  the corpus with "ids" added by `tokenizer encode`
  OURS_DECODED  OURS_ENCODED with "text" replaced by `tokenizer decode`
Every line must have the same ids and decode to the reference's normalized text. On a
mismatch it prints the line, its category, the text, the first differing position and
both id runs around it (at most 10 mismatches in full); exit 1 if any.
"""
import json
import sys


def main():
    args = sys.argv[1:]
    exact = args[0] == "--exact"
    if exact:
        args = args[1:]
    name, corpus, ref, enc, dec = args[:5]
    files = [open(p, encoding="utf-8") for p in (corpus, ref, enc, dec)]
    n = bad_ids = bad_dec = 0
    cats = {}
    for lines in zip(*files):
        n += 1
        c, r, e, d = (json.loads(x) for x in lines)
        cats[c["cat"]] = cats.get(c["cat"], 0) + 1
        if e["ids"] != r["ids"]:
            bad_ids += 1
            if bad_ids <= 10:
                a, b = e["ids"], r["ids"]
                i = next((k for k in range(min(len(a), len(b))) if a[k] != b[k]), min(len(a), len(b)))
                print(f"{name}: line {n} ({c['cat']}): ids differ at token {i} "
                      f"(ours {len(a)} tokens, reference {len(b)})")
                print(f"  text: {json.dumps(c['text'][:300], ensure_ascii=False)}")
                print(f"  ours:      ...{a[max(0, i - 3):i + 8]}")
                print(f"  reference: ...{b[max(0, i - 3):i + 8]}")
        elif d["text"] != r["norm"] or (exact and d["text"] != c["text"]):
            bad_dec += 1
            if bad_dec <= 10:
                a, b = d["text"], r["norm"]
                i = next((k for k in range(min(len(a), len(b))) if a[k] != b[k]), min(len(a), len(b)))
                print(f"{name}: line {n} ({c['cat']}): decode differs from the normalized text at "
                      f"character {i}: {json.dumps(a[max(0, i - 10):i + 20], ensure_ascii=False)} vs "
                      f"{json.dumps(b[max(0, i - 10):i + 20], ensure_ascii=False)}")
    for f in files:
        if f.readline():
            print(f"{name}: the files have different line counts")
            return 1
    print(f"{name}: {n} lines in {len(cats)} categories: {n - bad_ids} with equal ids, "
          f"{bad_ids} differ; decode round trip: {bad_dec} differ")
    return 1 if bad_ids or bad_dec or n == 0 else 0


sys.exit(main())
