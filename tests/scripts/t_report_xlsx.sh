#!/usr/bin/env bash
# entity-checker --report: the spreadsheet read back (unzip + the sheet XML) against
# what the same run printed on stderr (DESIGN.md sections 8 and 9):
#   Findings  one row per diagnostic, in stderr's order, with the same line, severity,
#             code, dialog id, JSON pointer and message; frozen header, autofilter;
#   Summary   the count of each (code, severity) equals stderr's, the total row equals
#             the number of diagnostics, "dialogs checked" / "turns" / "lines dropped"
#             equal the closing summary line;
#   the workbook is renamed onto its name when complete: nothing else is left beside it;
#   a report into a folder that does not exist is exit 2, and leaves nothing behind.
set -u
cd "$(dirname "$0")/../.."
EC=${BIN:-build/bin}/entity-checker
if [ ! -x "$EC" ]; then echo "entity-checker not built"; exit 1; fi
command -v unzip >/dev/null || { echo "unzip not found (make deps installs it)"; exit 1; }
command -v python3 >/dev/null || { echo "python3 not found"; exit 1; }
in=samples/mistakes.jsonl
[ -f "$in" ] || in=tests/fixtures/schema/semantic.jsonl
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/rep"

"$EC" --report "$tmp/rep/r.xlsx" "$in" >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc -le 1 ] || { echo "entity-checker exit status $rc:"; cat "$tmp/err"; exit 1; }
left=$(cd "$tmp/rep" && ls -A | grep -vx 'r.xlsx')
[ -z "$left" ] || { echo "files left beside the report: $left"; exit 1; }
[ -f "$tmp/rep/r.xlsx" ] || { echo "no report written"; exit 1; }
unzip -q "$tmp/rep/r.xlsx" -d "$tmp/x" || { echo "the report is not a zip archive"; exit 1; }

python3 - "$tmp/x" "$tmp/err" <<'PY' || exit 1
import os, re, sys
import xml.etree.ElementTree as ET

root, errfile = sys.argv[1], sys.argv[2]
NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
      "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
      "p": "http://schemas.openxmlformats.org/package/2006/relationships"}
problems = []

def load(path):
    return ET.parse(os.path.join(root, path)).getroot()

shared = []
if os.path.exists(os.path.join(root, "xl/sharedStrings.xml")):
    for si in load("xl/sharedStrings.xml").findall("m:si", NS):
        shared.append("".join(t.text or "" for t in si.iter("{%s}t" % NS["m"])))

def col_of(ref):
    letters = re.match(r"[A-Z]+", ref).group(0)
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n - 1

def sheet_rows(name):
    wb = load("xl/workbook.xml")
    rid = None
    for s in wb.find("m:sheets", NS):
        if s.get("name") == name:
            rid = s.get("{%s}id" % NS["r"])
    if rid is None:
        problems.append("no sheet named %s" % name)
        return [], None
    rels = load("xl/_rels/workbook.xml.rels")
    target = [r.get("Target") for r in rels if r.get("Id") == rid][0]
    ws = load("xl/" + target.lstrip("/").replace("xl/", "", 1))
    rows = []
    for row in ws.iter("{%s}row" % NS["m"]):
        cells = {}
        for c in row.findall("m:c", NS):
            t = c.get("t")
            if t == "inlineStr":
                v = "".join(x.text or "" for x in c.iter("{%s}t" % NS["m"]))
            else:
                ve = c.find("m:v", NS)
                v = ve.text if ve is not None else ""
                if t == "s":
                    v = shared[int(v)]
            cells[col_of(c.get("r"))] = v
        width = max(cells) + 1 if cells else 0
        rows.append((int(row.get("r")), [cells.get(i, "") for i in range(width)]))
    return rows, ws

# stderr: "FILE:LINE: SEVERITY: [CODE] ID:POINTER: MESSAGE" and the closing summary line.
diags, summary = [], None
pat = re.compile(r"^(.*?):(\d+): (error|warning|info): \[([A-Z0-9_]+)\] (?:([^:]*):(/\S*): )?(.*)$")
for line in open(errfile, encoding="utf-8").read().splitlines():
    m = re.match(r"^entity-checker: checked (\d+) dialogs, (\d+) turns: (\d+) errors, (\d+) warnings, (\d+) lines dropped$", line)
    if m:
        summary = [int(x) for x in m.groups()]
        continue
    m = pat.match(line)
    if not m:
        problems.append("stderr line not understood: " + line)
        continue
    _, ln, sev, code, did, ptr, msg = m.groups()
    if ptr == "/" and did is not None:
        ptr = ""   # the text form writes the whole line's pointer "" as "/"
    diags.append((ln, did or "", ptr or "", code, sev, msg))
if summary is None:
    problems.append("no closing summary line on stderr")
if not diags:
    problems.append("the input gave no diagnostic: nothing to compare")

# Findings
rows, ws = sheet_rows("Findings")
if rows:
    head = rows[0][1]
    want_head = ["line", "dialog_id", "turn", "pointer", "code", "severity", "message"]
    for h in want_head:
        if h not in head:
            problems.append("Findings header lacks column %r: %r" % (h, head))
    if not problems:
        ix = {h: head.index(h) for h in want_head}
        body = rows[1:]
        if len(body) != len(diags):
            problems.append("Findings has %d rows, stderr %d diagnostics" % (len(body), len(diags)))
        for k, ((rnum, cells), d) in enumerate(zip(body, diags)):
            cells = cells + [""] * (len(head) - len(cells))
            got = (cells[ix["line"]], cells[ix["dialog_id"]], cells[ix["pointer"]], cells[ix["code"]],
                   cells[ix["severity"]], cells[ix["message"]])
            if got != d:
                problems.append("Findings row %d: %r, stderr: %r" % (rnum, got, d))
    pane = ws.find(".//m:pane", NS)
    if pane is None or pane.get("state") != "frozen" or pane.get("ySplit") != "1":
        problems.append("Findings: the header row is not frozen")
    if ws.find("m:autoFilter", NS) is None:
        problems.append("Findings: no autofilter")

# Summary: the counts table (code | severity | count ... total) and the run's figures
rows, _ = sheet_rows("Summary")
counts, total, settings, in_table = {}, None, {}, False
for _, cells in rows:
    if cells[:3] == ["code", "severity", "count"]:
        in_table = True
        continue
    if in_table and cells and cells[0] == "total":
        total = int(float(cells[2]))
        in_table = False
        continue
    if in_table and len(cells) >= 3:
        counts[(cells[0], cells[1])] = int(float(cells[2]))
    elif len(cells) >= 2:
        settings[cells[0]] = cells[1]
want = {}
for d in diags:
    want[(d[3], d[4])] = want.get((d[3], d[4]), 0) + 1
if counts != want:
    problems.append("Summary counts %r, stderr %r" % (sorted(counts.items()), sorted(want.items())))
if total != len(diags):
    problems.append("Summary total %r, stderr has %d diagnostics" % (total, len(diags)))
if summary:
    for key, v in (("dialogs checked", summary[0]), ("turns", summary[1]), ("lines dropped", summary[4])):
        if settings.get(key) is None or int(float(settings[key])) != v:
            problems.append("Summary %r = %r, stderr summary says %d" % (key, settings.get(key), v))
    if summary[2] != sum(v for (c, s), v in want.items() if s == "error") or \
       summary[3] != sum(v for (c, s), v in want.items() if s == "warning"):
        problems.append("stderr's own summary disagrees with its diagnostics")

for p in problems:
    print(p)
if problems:
    sys.exit(1)
print("report: %d findings, %d codes, agree with stderr" % (len(diags), len(want)))
PY

# A report that cannot be written: exit 2, one error line, and no stray file.
"$EC" --report "$tmp/nodir/r.xlsx" "$in" >/dev/null 2>"$tmp/err2"; rc=$?
[ $rc -eq 2 ] || { echo "report into a missing folder: exit status $rc, want 2"; exit 1; }
grep -q '^entity-checker: error: ' "$tmp/err2" || { echo "report into a missing folder: no error line:"; cat "$tmp/err2"; exit 1; }
[ -z "$(ls -A "$tmp/rep" | grep -vx 'r.xlsx')" ] || { echo "stray files in $tmp/rep"; exit 1; }
exit 0
