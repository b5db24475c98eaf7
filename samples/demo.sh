#!/usr/bin/env bash
# make demo: the sample pipeline over samples/, saying what each step wrote.
# Step 3 is meant to find errors: samples/mistakes.jsonl holds deliberate ones.
set -u
bin=${1:-build/bin}
cd "$(dirname "$0")/.."
out=build/demo
mkdir -p "$out" reports
say() { printf '\n$ %s\n' "$*"; }

say entity-checker samples/dialogs-en.jsonl samples/dialogs-zh.jsonl '>' $out/clean.jsonl
"$bin/entity-checker" samples/dialogs-en.jsonl samples/dialogs-zh.jsonl >$out/clean.jsonl || exit 2

say entity-checker --build-gazetteer $out/clean.jsonl '>' $out/gazetteer.jsonl
"$bin/entity-checker" --build-gazetteer $out/clean.jsonl >$out/gazetteer.jsonl || exit 2

say entity-checker --reject-file $out/rejected.jsonl --report reports/demo-mistakes.xlsx samples/mistakes.jsonl '>' $out/mistakes-clean.jsonl
"$bin/entity-checker" --reject-file $out/rejected.jsonl --report reports/demo-mistakes.xlsx \
    samples/mistakes.jsonl >$out/mistakes-clean.jsonl
[ $? -eq 1 ] || { echo "demo: expected the mistakes to be caught (exit 1)"; exit 2; }

say entity-checker --consistency --gazetteer $out/gazetteer.jsonl --annotate $out/clean.jsonl '>' $out/annotated.jsonl
"$bin/entity-checker" --consistency --gazetteer $out/gazetteer.jsonl --annotate $out/clean.jsonl \
    >$out/annotated.jsonl 2>$out/consistency.txt || exit 2
tail -2 $out/consistency.txt

echo
echo "demo: wrote"
for f in $out/clean.jsonl $out/gazetteer.jsonl $out/mistakes-clean.jsonl $out/rejected.jsonl \
         $out/annotated.jsonl $out/consistency.txt reports/demo-mistakes.xlsx; do
    case "$f" in *.xlsx) n=- ;; *) n=$(wc -l <"$f") ;; esac
    printf '  %-34s %6s lines  %8s bytes\n' "$f" "$n" "$(stat -c %s "$f")"
done
