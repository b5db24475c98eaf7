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
# check NAME MODE AJV SEV [CODES]: for every line N of NAME.jsonl, ajv's verdict must
# be AJV; with CODES, entity-checker's SEV codes for N must include line N of CODES,
# without, entity-checker must report no error for N. One awk pass over all files.
check() {
    local name=$1 mode=$2 want_ajv=$3 sev=$4 codes=${5:-/dev/null}
    awk -v name="$name" -v mode="$mode" -v want_ajv="$want_ajv" -v sev="$sev" -v n="$(lines_of "$name")" \
        -v codes="$codes" '
        FILENAME == ARGV[1] { ajv[$1] = $2; next }
        FILENAME == ARGV[2] { if ($2 == sev) got[$1] = got[$1] $3 " "; if ($2 == "error") err[$1] = err[$1] $3 " "; next }
        { want[FNR] = $1; nwant = FNR }
        function p(line, what) { printf "%-16s %5s  %s\n", name, line, what }
        END {
            if (codes != "/dev/null" && nwant != n) p("-", codes " has " nwant " codes for " n " lines")
            for (i = 1; i <= n; i++) {
                if (ajv[i] != want_ajv) p(i, "ajv: " (ajv[i] == "" ? "no verdict" : ajv[i]) ", want " want_ajv)
                if (codes == "/dev/null") {
                    if (err[i] != "") p(i, mode ": entity-checker errors: " err[i] "(want none)")
                } else if (index(" " got[i], " " want[i] " ") == 0) {
                    p(i, mode ": entity-checker " sev "s: " (got[i] == "" ? "none " : got[i]) "(want " want[i] ")")
                } else if (sev == "warning" && err[i] != "") {
                    p(i, mode ": entity-checker errors: " err[i] "(want none)")
                }
            }
        }' "$tmp/$name.ajv" "$tmp/$name.diag" "$codes" >>"$problems"
}
# passthrough NAME MODE: stdout holds every input line, same values, same key order
# (both sides re-serialized by JSON.stringify).
passthrough() {
    node -e '
        const fs = require("fs");
        const a = fs.readFileSync(process.argv[1], "utf8").split("\n").filter(l => l);
        const b = fs.readFileSync(process.argv[2], "utf8").split("\n").filter(l => l);
        if (a.length !== b.length) { console.log(`- ${b.length} lines on stdout, want ${a.length}`); process.exit(); }
        a.forEach((l, i) => {
            let o; try { o = JSON.stringify(JSON.parse(b[i])); } catch (e) { o = "not json"; }
            if (JSON.stringify(JSON.parse(l)) !== o) console.log(`${i + 1} stdout line differs from the input (fields, values or key order)`);
        });' "$FX/$1.jsonl" "$tmp/$1.out" | while read -r l w; do problem "$1" "$l" "$2: $w"; done
}

# --- schema-only: valid and invalid ---
run valid --schema-only
want_rc valid schema-only 0
check valid schema-only ok error
passthrough valid schema-only

run invalid --schema-only
want_rc invalid schema-only 1
[ -s "$tmp/invalid.out" ] && problem invalid - "schema-only: $(grep -c '' "$tmp/invalid.out") line(s) on stdout, want none"
check invalid schema-only fail error "$FX/invalid.codes"

# --- full mode: valid (no diagnostic at all), semantic, warnings ---
run valid
want_rc valid full 0
[ -s "$tmp/valid.diag" ] && while read -r l s c; do problem valid "$l" "full: $s $c, want nothing"; done <"$tmp/valid.diag"
passthrough valid full

run semantic
want_rc semantic full 1
check semantic full ok error "$FX/semantic.codes"

run warnings
want_rc warnings full 0
check warnings full ok warning "$FX/warnings.codes"

n_valid=$(lines_of valid); n_invalid=$(lines_of invalid)
if [ -s "$problems" ]; then
    echo "schema agreement: $(grep -c '' "$problems") disagreement(s)"
    printf '%-16s %5s  %s\n' FILE LINE PROBLEM
    cat "$problems"
    exit 1
fi
echo "schema agreement: valid $n_valid accepted by both, invalid $n_invalid rejected by both with the expected code," \
     "semantic $(lines_of semantic) and warnings $(lines_of warnings) accepted by ajv and flagged by entity-checker"
