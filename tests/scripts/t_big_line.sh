# A 50 MB dialog line (a 50 MB user turn with an entity at its very end) passes
# through entity-checker byte for byte, with -j 1 and -j 2; the same line with the
# entity's offsets one code point off is caught with the right message.
set -eu
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
python3 - "$tmp" <<'PY'
import json, sys
d = sys.argv[1]
body = ("Cambridge 剑桥 " * 3_100_000)[:40_000_000]      # ~52 MB of mixed 1- and 3-byte text
content = body + " the Allenbell"
n = len(content)                                          # code points, as the schema counts
ok = {"dialog_id": "big", "turns": [
    {"role": "user", "content": content,
     "entities": [{"text": "Allenbell", "type": "Hotel-Name", "start": n - 9, "end": n}]},
    {"role": "assistant", "content": "Booked."}]}
line = json.dumps(ok, ensure_ascii=False, separators=(",", ":"))
open(d + "/ok.jsonl", "w", encoding="utf-8").write(line + "\n")
ok["turns"][0]["entities"][0]["start"] -= 1
ok["turns"][0]["entities"][0]["end"] -= 1
open(d + "/off.jsonl", "w", encoding="utf-8").write(json.dumps(ok, ensure_ascii=False, separators=(",", ":")) + "\n")
PY
size=$(stat -c %s "$tmp/ok.jsonl")
[ "$size" -gt 50000000 ] || { echo "fixture too small: $size"; exit 1; }
for j in 1 2; do
    "$BIN/entity-checker" -j $j "$tmp/ok.jsonl" >"$tmp/out" 2>"$tmp/err"
    cmp "$tmp/ok.jsonl" "$tmp/out"
    grep -qx 'entity-checker: checked 1 dialogs, 2 turns: 0 errors, 0 warnings, 0 lines dropped' "$tmp/err"
done
if "$BIN/entity-checker" "$tmp/off.jsonl" >"$tmp/out" 2>"$tmp/err"; then echo "off-by-one offsets passed"; exit 1; fi
grep -q '^.*off.jsonl:1: error: \[E_ENTITY_OFFSET\] big:/turns/0/entities/0: offsets \[[0-9]*,[0-9]*) hold " Allenbel", not the entity text "Allenbell"$' "$tmp/err" \
    || { cat "$tmp/err"; exit 1; }
[ ! -s "$tmp/out" ]
echo "50 MB line ($size bytes): passed through byte for byte, offsets error caught"
