#!/usr/bin/env bash
# The real data of ../shared/data (converted CrossWOZ and MultiWOZ dev sets) passes
# entity-checker untouched, and the figures it prints are the files' own, counted here
# without dlgkit (jq, and node for the rules a JSON Schema cannot say):
#   - ajv accepts every line; node finds every annotated entity in its turn's content
#     (NFKC + lower case), every start/end holding the entity's text exactly in code
#     points, unique dialog ids, tool turns after tool calls: so 0 errors is right;
#   - exit status 0, stdout byte-identical to the file, the summary line exact
#     (dialogs and turns counted by jq);
#   - -j 2 gives the same bytes as -j 1;
#   - --shard-by id 0/3, 1/3, 2/3 partition the dialogs: every id in exactly one shard.
set -u
cd "$(dirname "$0")/../.."
EC=${BIN:-build/bin}/entity-checker
D=${DK_SHARED_DATA:-../shared/data}
if [ ! -x "$EC" ]; then echo "entity-checker not built"; exit 1; fi
command -v jq >/dev/null || { echo "jq not found (make deps installs it)"; exit 1; }
command -v node >/dev/null || { echo "node not found (make deps installs it)"; exit 1; }
[ -d tests/node_modules/ajv ] || { echo "tests/node_modules/ajv missing (make deps runs npm ci)"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fails=0
bad() { fails=$((fails + 1)); echo "$1: $2"; }

# Rules outside the schema, checked by node on its own reading of the file.
semantic_check() {
    node -e '
        const lines = require("fs").readFileSync(process.argv[1], "utf8").split("\n");
        const fold = s => s.normalize("NFKC").toLowerCase().normalize("NFKC");
        const ids = new Map(); let problems = 0;
        const say = m => { if (problems++ < 10) console.log(m); };
        lines.forEach((l, i) => {
            if (!l.trim()) return;
            const d = JSON.parse(l), n = i + 1;
            if (ids.has(d.dialog_id)) say(`line ${n}: dialog_id ${d.dialog_id} already on line ${ids.get(d.dialog_id)}`);
            else ids.set(d.dialog_id, n);
            d.turns.forEach((t, k) => {
                const prev = d.turns[k - 1];
                if (t.role === "tool" && !(prev && ((prev.role === "assistant" && Array.isArray(prev.tool_calls) &&
                    prev.tool_calls.length) || prev.role === "tool"))) say(`line ${n} turn ${k}: tool turn out of place`);
                for (const e of t.entities || []) {
                    const text = typeof e === "string" ? e : e.text;
                    if (typeof t.content !== "string" || !fold(t.content).includes(fold(text)))
                        say(`line ${n} turn ${k}: entity ${JSON.stringify(text)} not in content`);
                    if (typeof e === "object" && e.start !== undefined) {
                        const cps = Array.from(t.content);
                        if (e.end > cps.length || cps.slice(e.start, e.end).join("") !== text)
                            say(`line ${n} turn ${k}: offsets [${e.start},${e.end}) do not hold ${JSON.stringify(text)}`);
                    }
                }
            });
        });
        process.exit(problems ? 1 : 0);' "$1"
}

check_file() { # NAME
    local f=$D/$1
    [ -f "$f" ] || { bad "$1" "missing (DK_SHARED_DATA=$D)"; return; }
    # independent figures
    local n t
    n=$(jq -s 'length' "$f")
    t=$(jq -s 'map(.turns | length) | add' "$f")
    node tests/ref/ajv-validate.js "$f" >"$tmp/ajv" || bad "$1" "ajv rejects: $(grep -v ' ok$' "$tmp/ajv" | head -3 | tr '\n' ' ')"
    semantic_check "$f" >"$tmp/sem" || bad "$1" "node finds: $(head -3 "$tmp/sem" | tr '\n' ' ')"

    "$EC" -j 1 "$f" >"$tmp/o1" 2>"$tmp/e1"; rc=$?
    [ $rc -eq 0 ] || bad "$1" "exit status $rc, want 0"
    cmp -s "$f" "$tmp/o1" || bad "$1" "output differs from the input: $(cmp "$f" "$tmp/o1" 2>&1 | head -1)"
    local want="entity-checker: checked $n dialogs, $t turns: 0 errors, 0 warnings, 0 lines dropped"
    [ "$(cat "$tmp/e1")" = "$want" ] || bad "$1" "stderr: $(head -3 "$tmp/e1"), want: $want"

    "$EC" -j 2 "$f" >"$tmp/o2" 2>"$tmp/e2"; rc=$?
    [ $rc -eq 0 ] || bad "$1" "-j 2: exit status $rc"
    cmp -s "$tmp/o1" "$tmp/o2" || bad "$1" "-j 2 output differs from -j 1"
    cmp -s "$tmp/e1" "$tmp/e2" || bad "$1" "-j 2 stderr differs from -j 1"

    # shards by id: disjoint, and together every dialog exactly once
    local sum=0
    for i in 0 1 2; do
        "$EC" --shard-by id --shard "$i/3" "$f" >"$tmp/s$i" 2>/dev/null || bad "$1" "--shard-by id --shard $i/3 failed"
        jq -r .dialog_id "$tmp/s$i" | sort >"$tmp/ids$i"
        local k; k=$(grep -c '' "$tmp/ids$i")
        [ "$k" -gt 0 ] || bad "$1" "shard $i/3 is empty"
        sum=$((sum + k))
    done
    jq -r .dialog_id "$f" | sort >"$tmp/ids"
    sort -m "$tmp/ids0" "$tmp/ids1" "$tmp/ids2" | cmp -s - "$tmp/ids" || bad "$1" "the shards' ids are not the file's ids"
    [ "$sum" -eq "$n" ] || bad "$1" "shards hold $sum dialogs, the file $n"
    [ -z "$(sort "$tmp/ids0" "$tmp/ids1" "$tmp/ids2" | uniq -d)" ] || bad "$1" "an id is in two shards"
    # a shard keeps each dialog's line as it was
    sort "$tmp/s0" "$tmp/s1" "$tmp/s2" | cmp -s - <(sort "$f") || bad "$1" "shard lines differ from the input lines"
    echo "$1: $n dialogs, $t turns, shards of $(wc -l <"$tmp/ids0") + $(wc -l <"$tmp/ids1") + $(wc -l <"$tmp/ids2")"
}

[ -d "$D" ] || { echo "no real data at $D"; exit 1; }
check_file crosswoz-dev.jsonl
check_file multiwoz-dev.jsonl
# the counts the task names, so a changed data file is noticed
[ "$(jq -s 'length' "$D/crosswoz-dev.jsonl")/$(jq -s 'map(.turns|length)|add' "$D/crosswoz-dev.jsonl")" = 500/8458 ] ||
    bad crosswoz-dev.jsonl "no longer 500 dialogs / 8458 turns"
[ "$(jq -s 'length' "$D/multiwoz-dev.jsonl")/$(jq -s 'map(.turns|length)|add' "$D/multiwoz-dev.jsonl")" = 999/14730 ] ||
    bad multiwoz-dev.jsonl "no longer 999 dialogs / 14730 turns"
[ $fails -eq 0 ] || { echo "real data: $fails problem(s)"; exit 1; }
echo "real data: both files pass, figures agree with jq"
