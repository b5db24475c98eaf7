#!/usr/bin/env bash
# Differential test of dk_template against @huggingface/jinja on 2000 random templates
# (tests/scripts/gen_random_templates.py, fixed seed) over a fixed context: both must
# render the same bytes or both fail. The only allowed difference is dk_template
# refusing with "unsupported" a construct whose reference output shows JavaScript
# internals or JavaScript's last-bit pow rounding (see dk_template.h); those are counted.
set -u
cd "$(dirname "$0")/../.."
B=${B:-build}
command -v node >/dev/null 2>&1 || { echo "node is not installed"; exit 77; }
[ -f tests/node_modules/@huggingface/jinja/package.json ] || { echo "tests/node_modules lacks @huggingface/jinja (make deps)"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
python3 tests/scripts/gen_random_templates.py --out "$tmp/req.jsonl" -n 2000 --seed 11 || exit 1
"$B/tests/test_template" --render-src "$tmp/req.jsonl" >"$tmp/ours.jsonl" || { echo "test_template --render-src failed"; exit 1; }
node tests/ref/jinja-render-src.js "$tmp/req.jsonl" >"$tmp/ref.jsonl" || { echo "reference renderer failed"; exit 1; }
python3 - "$tmp/req.jsonl" "$tmp/ours.jsonl" "$tmp/ref.jsonl" <<'PY'
import json, sys
reqs = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
ours = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8")]
ref = [json.loads(l) for l in open(sys.argv[3], encoding="utf-8")]
if not (len(reqs) == len(ours) == len(ref)):
    print("line counts differ"); sys.exit(1)
eq = both = unsup = bad = 0
for q, a, b in zip(reqs, ours, ref):
    if "text" in a and "text" in b and a["text"] == b["text"]:
        eq += 1
    elif "error" in a and "error" in b:
        both += 1
    elif "error" in a and a.get("code") == "unsupported feature":
        unsup += 1
    else:
        bad += 1
        if bad <= 5:
            print(f"MISMATCH template: {q['src']!r}\n  ours: {a!r}\n  ref:  {b!r}")
print(f"{len(reqs)} random templates: {eq} byte-equal renders, {both} rejected by both, "
      f"{unsup} refused as unsupported, {bad} mismatches")
sys.exit(1 if bad else 0)
PY
