#!/usr/bin/env bash
# dk_report's workbook as LibreOffice reads it: test_report's round-trip report
# (test_report --keep DIR) converted headless to CSV, and its cells checked. Skips
# where LibreOffice is not installed. CSV filter options: token 9 exports cells as
# shown, token 12 picks the sheet (LibreOffice >= 7.2; older ones give Summary only).
set -u
soffice=$(command -v soffice || command -v libreoffice) || { echo "libreoffice (soffice) not installed"; exit 77; }
B=${B:-build}
[ -x "$B/tests/test_report" ] || { echo "missing $B/tests/test_report (run make first)"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$B/tests/test_report" --keep "$tmp" >"$tmp/unit.out" 2>&1 || { cat "$tmp/unit.out"; exit 1; }
[ -f "$tmp/keep.xlsx" ] || { echo "test_report --keep wrote no keep.xlsx"; exit 1; }

lo() { # lo SHEET OUTDIR: CSV (comma, double quote, UTF-8) of one sheet, 1-based
    mkdir -p "$2"
    timeout 120 "$soffice" -env:UserInstallation=file://"$tmp/profile" --headless --norestore \
        --convert-to "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,true,false,false,$1" \
        --outdir "$2" "$tmp/keep.xlsx" >"$tmp/lo.log" 2>&1
    ls "$2"/*.csv 2>/dev/null | head -1
}
fail=0
need() { grep -qxF -- "$2" "$1" || { echo "missing line in $(basename "$1"): $2"; fail=1; }; }

sum=$(lo 1 "$tmp/s") ; [ -n "$sum" ] || { cat "$tmp/lo.log"; echo "conversion failed"; exit 1; }
need "$sum" 'code,severity,count'
need "$sum" 'E_ENTITY_NOT_IN_TEXT,error,7'
need "$sum" 'E_ROLE,error,5'
need "$sum" 'W_EMPTY,warning,5'
need "$sum" 'I_NOTE,info,1'
need "$sum" 'total,,18'
need "$sum" 'input,samples/bad.jsonl,'
grep -q '^generated (UTC),1971-01-01 00:00:00' "$sum" || { echo "no generation time"; fail=1; }

find=$(lo 2 "$tmp/f")
if [ -n "$find" ] && head -1 "$find" | grep -q '^line,dialog_id'; then
    need "$find" 'line,dialog_id,turn,pointer,code,severity,message,text'
    need "$find" '3,conv_1,2,/turns/2/role,E_ROLE,error,"role must be one of system, user, assistant, tool",你好，我想订一张去北京的机票。'
    need "$find" '4,,,,E_PARSE,error,"malformed JSON <&> ""quoted""",'
else
    echo "note: this LibreOffice cannot pick a sheet for CSV; Findings not checked"
fi
[ $fail -eq 0 ] && echo "libreoffice reads the report as written"
exit $fail
