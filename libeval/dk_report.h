/* dk_report: spreadsheet reports (.xlsx, on libxlsxwriter) that a reviewer opens in
 * Excel or LibreOffice. Today it writes entity-checker's report; the evaluator's sheets
 * (DESIGN.md section 8) will be added here on the same table-sheet machinery.
 *
 * The workbook has two sheets:
 *   Summary   the title, the generation time (UTC), a note when findings were left
 *             out, the settings/inputs block (key | value, in call order) and the
 *             counts table (code | severity | count; errors, then warnings, then
 *             infos, each by count descending, then code) closed by a total row.
 *   Findings  one row a finding, in call order, under a bold frozen header with an
 *             autofilter: line | dialog_id | turn | pointer | code | severity |
 *             message | text. Numbers are number cells; a NULL string or a turn of
 *             -1 is an empty cell; severity cells are coloured (error red, warning
 *             amber, info grey).
 *
 * Invariants:
 * - Nothing ever appears at the report's path except a complete workbook: it is
 *   written to a temporary file in the same directory (".NAME.PID.N.tmp") and renamed
 *   onto the path only by a successful dk_report_close. A crash can leave that hidden
 *   temporary file behind, never a half file at the path.
 * - Memory does not grow with the number of findings: rows stream to libxlsxwriter's
 *   constant_memory mode (its scratch files live, unlinked, in the report's directory).
 *   Settings and counts are small and kept until close.
 * - Every string is made safe for a cell: invalid UTF-8 bytes become U+FFFD, control
 *   characters other than tab and newline become their Control Pictures (U+2400 + c;
 *   a CR before LF is dropped), U+FFFE/U+FFFF become U+FFFD, text that Excel would read
 *   as an _xHHHH_ escape is escaped itself, and a string longer than Excel's 32,767
 *   characters is cut with a "[truncated ...]" marker.
 * - Excel holds 1,048,576 rows: after 1,048,575 findings the rest are counted, not
 *   written, and Summary says how many were left out (that is not an error).
 * - A failure in dk_report_setting/_count/_add_finding is remembered: dk_report_close
 *   then writes nothing and returns that failure, so a report never silently lacks rows.
 * - The generation time is the current time, or SOURCE_DATE_EPOCH when that is set (so
 *   that tests and reproducible builds get the same bytes).
 *
 * Ownership: dk_report_new gives the caller a dk_report that exactly one of
 * dk_report_close (write it) or dk_report_free (abandon it) releases. Every string
 * passed in is borrowed for the call only (copied or written before it returns).
 * Not thread-safe: one report is fed by one thread.
 * libxlsxwriter itself may print a line on stderr when writing the file fails; every
 * failure is also returned here.
 */
#ifndef DK_REPORT_H
#define DK_REPORT_H

#include "dk_error.h"

typedef struct dk_report dk_report;

typedef struct dk_report_finding {
    long        line;       /* input line */
    const char *dialog_id;  /* may be NULL */
    int         turn;       /* -1 when none */
    const char *pointer;    /* JSON pointer; may be NULL */
    const char *code;       /* E_ROLE ... */
    const char *severity;   /* "error" | "warning" | "info" */
    const char *message;
    const char *text;       /* the turn's content, may be NULL */
} dk_report_finding;

/* Starts a report that will be written to path (must end in .xlsx): the workbook is
 * written to a temporary name in the same directory and renamed onto path only by a
 * successful dk_report_close, so a crash or error never leaves a half file at path.
 * The temporary file is created here, so an unwritable or missing directory fails now
 * (DK_EIO) rather than at close. title heads Summary and is the document title.
 * Errors: DK_EINVAL (path not .xlsx, or a directory), DK_EIO, DK_ENOMEM. */
int dk_report_new(dk_report **out, const char *path, const char *title, dk_error *err);

/* Summary's settings/inputs block: one key | value row per call, in call order. */
int dk_report_setting(dk_report *r, const char *key, const char *value);

/* Summary's counts table; calls with the same code and severity add up.
 * severity is "error", "warning" or "info" (else DK_EINVAL); count >= 0. */
int dk_report_count(dk_report *r, const char *code, const char *severity, long count);

/* One Findings row. code, severity ("error" | "warning" | "info", else DK_EINVAL)
 * and message are required. Past Excel's row limit the finding is only counted. */
int dk_report_add_finding(dk_report *r, const dk_report_finding *f);

/* Findings beyond Excel's row limit so far (they are named in Summary at close). */
long dk_report_left_out(const dk_report *r);

/* Writes Summary, completes the workbook, renames it onto path and frees r, also on
 * failure (then nothing is at path and the temporary file is removed). Returns 0, the
 * remembered failure of an earlier call, DK_EIO or DK_ENOMEM. */
int dk_report_close(dk_report *r, dk_error *err);

/* Abandons the report: no file at path, the temporary file removed. NULL is allowed. */
void dk_report_free(dk_report *r);

#endif
