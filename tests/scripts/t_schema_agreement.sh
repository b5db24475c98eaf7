#!/usr/bin/env bash
# Agreement of entity-checker with the JSON Schema, ajv being the reference
# (DESIGN.md section 9), over the fixtures in tests/fixtures/schema/:
#   valid.jsonl     ajv and `entity-checker --schema-only` accept every line; full mode
#                   too, with no diagnostic at all, and passes each line through
#                   (unknown fields and key order kept);
#   invalid.jsonl   both reject every line, and entity-checker's codes for line N
#                   include line N of invalid.codes (each line breaks one schema rule);
#   semantic.jsonl  ajv accepts every line (the schema cannot see these), full mode
#                   reports line N's code of semantic.codes as an error;
#   warnings.jsonl  ajv accepts every line, full mode reports line N's code of
#                   warnings.codes as a warning, no error, and exits 0.
# Prints a table of every disagreement, or the counts when all agree.
set -u
cd "$(dirname "$0")/../.."
FX=tests/fixtures/schema
EC=${BIN:-build/bin}/entity-checker
if [ ! -x "$EC" ]; then echo "skip: entity-checker not built"; exit 77; fi
command -v node >/dev/null || { echo "node not found (make deps installs it)"; exit 1; }
[ -d tests/node_modules/ajv ] || { echo "tests/node_modules/ajv missing (make deps runs npm ci)"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
problems=$tmp/problems; : >"$problems"
# Usage: problem FILE LINE WHAT
problem() { printf '%-16s %5s  %s\n' "$1" "$2" "$3" >>"$problems"; }

# --errors-json diagnostics (stderr) -> "LINE SEVERITY CODE", one a diagnostic; the
# closing summary object is left out. A stderr line that is not JSON is a problem.
diags() {
    node -e '
        const lines = require("fs").readFileSync(process.argv[1], "utf8").split("\n");
        for (const l of lines) {
            if (!l.trim()) continue;
            let o;
            try { o = JSON.parse(l); } catch (e) { console.log("0 notjson " + JSON.stringify(l.slice(0, 80))); continue; }
            if (o.summary) continue;
            console.log(`${o.line} ${o.severity} ${o.code}`);
        }' "$1"
}

# run NAME MODE-ARGS...: ajv verdicts into $tmp/NAME.ajv, entity-checker's status,
# stdout and diagnostics into $tmp/NAME.{rc,out,diag}.
run() {
    local name=$1; shift
    node tests/ref/ajv-validate.js "$FX/$name.jsonl" >"$tmp/$name.ajv" 2>"$tmp/$name.ajverr"
    [ $? -le 1 ] || { echo "ajv-validate failed on $name.jsonl:"; cat "$tmp/$name.ajverr"; exit 1; }
    "$EC" "$@" --errors-json "$FX/$name.jsonl" >"$tmp/$name.out" 2>"$tmp/$name.err"
    echo $? >"$tmp/$name.rc"
    diags "$tmp/$name.err" >"$tmp/$name.diag"
    awk '$2 == "notjson"' "$tmp/$name.diag" | while read -r _ _ l; do problem "$name" - "stderr line is not JSON: $l"; done
}
lines_of() { grep -c '' "$FX/$1.jsonl"; }
want_rc() { # NAME MODE STATUS
    local rc; rc=$(cat "$tmp/$1.rc")
    [ "$rc" = "$3" ] || problem "$1" - "$2: entity-checker exit status $rc, want $3"
}

# --- schema-only: valid and invalid ---
run valid --schema-only
want_rc valid schema-only 0
n_valid=$(lines_of valid)
for i in $(seq 1 "$n_valid"); do
    a=$(awk -v n="$i" '$1 == n { print $2 }' "$tmp/valid.ajv")
    codes=$(awk -v n="$i" '$1 == n && $2 == "error" { printf "%s ", $3 }' "$tmp/valid.diag")
    [ "$a" = ok ] || problem valid "$i" "ajv: $a, want ok"
    [ -z "$codes" ] || problem valid "$i" "schema-only: entity-checker rejects: $codes(ajv: $a)"
done
cp "$tmp/valid.out" "$tmp/valid.schema-only.out"

run invalid --schema-only
want_rc invalid schema-only 1
n_invalid=$(lines_of invalid)
[ "$(grep -c '' "$FX/invalid.codes")" = "$n_invalid" ] || problem invalid - "invalid.codes has not one code per line"
[ -s "$tmp/invalid.out" ] && problem invalid - "schema-only: $(grep -c '' "$tmp/invalid.out") line(s) on stdout, want none"
for i in $(seq 1 "$n_invalid"); do
    want=$(sed -n "${i}p" "$FX/invalid.codes")
    a=$(awk -v n="$i" '$1 == n { print $2 }' "$tmp/invalid.ajv")
    codes=$(awk -v n="$i" '$1 == n && $2 == "error" { printf "%s ", $3 }' "$tmp/invalid.diag")
    [ "$a" = fail ] || problem invalid "$i" "ajv accepts (want $want): the fixture or the schema is wrong"
    if [ -z "$codes" ]; then problem invalid "$i" "entity-checker accepts, ajv: $a, want $want"
    else case " $codes" in *" $want "*) ;; *) problem invalid "$i" "entity-checker: ${codes}(want $want)" ;; esac; fi
done

# --- full mode: valid (silent, pass-through), semantic, warnings ---
run valid
want_rc valid full 0
[ -s "$tmp/valid.diag" ] && while read -r l s c; do problem valid "$l" "full mode: $s $c, want nothing"; done <"$tmp/valid.diag"
for m in schema-only full; do
    out=$tmp/valid.out; [ $m = schema-only ] && out=$tmp/valid.schema-only.out
    # Same values, same key order: both sides re-serialized by JSON.stringify.
    node -e '
        const fs = require("fs");
        const a = fs.readFileSync(process.argv[1], "utf8").split("\n").filter(l => l);
        const b = fs.readFileSync(process.argv[2], "utf8").split("\n").filter(l => l);
        if (a.length !== b.length) { console.log(`- ${b.length} lines on stdout, want ${a.length}`); process.exit(); }
        a.forEach((l, i) => {
            let o; try { o = JSON.stringify(JSON.parse(b[i])); } catch (e) { o = "not json"; }
            if (JSON.stringify(JSON.parse(l)) !== o) console.log(`${i + 1} stdout line differs from the input (fields, values or key order)`);
        });' "$FX/valid.jsonl" "$out" | while read -r l w; do problem valid "$l" "$m: $w"; done
done

for name in semantic warnings; do
    run "$name"
    n=$(lines_of "$name")
    [ "$(grep -c '' "$FX/$name.codes")" = "$n" ] || problem "$name" - "$name.codes has not one code per line"
    if [ "$name" = semantic ]; then want_rc "$name" full 1; sev=error; else want_rc "$name" full 0; sev=warning; fi
    for i in $(seq 1 "$n"); do
        want=$(sed -n "${i}p" "$FX/$name.codes")
        a=$(awk -v n="$i" '$1 == n { print $2 }' "$tmp/$name.ajv")
        got=$(awk -v n="$i" -v s="$sev" '$1 == n && $2 == s { printf "%s ", $3 }' "$tmp/$name.diag")
        errs=$(awk -v n="$i" '$1 == n && $2 == "error" { printf "%s ", $3 }' "$tmp/$name.diag")
        [ "$a" = ok ] || problem "$name" "$i" "ajv: $a, want ok (the schema must accept it)"
        case " $got" in *" $want "*) ;; *) problem "$name" "$i" "entity-checker ${sev}s: ${got:-none }(want $want)" ;; esac
        [ "$name" = warnings ] && [ -n "$errs" ] && problem "$name" "$i" "entity-checker errors: ${errs}(want none)"
    done
done

if [ -s "$problems" ]; then
    echo "schema agreement: $(grep -c '' "$problems") disagreement(s)"
    printf '%-16s %5s  %s\n' FILE LINE PROBLEM
    cat "$problems"
    exit 1
fi
echo "schema agreement: valid $n_valid accepted by both, invalid $n_invalid rejected by both with the expected code," \
     "semantic $(lines_of semantic) and warnings $(lines_of warnings) accepted by ajv and flagged by entity-checker"
