/* dk_report: the .xlsx reports (see dk_report.h), on libxlsxwriter 1.1.x.
 *
 * Sheets are built from "table sheets" (ts_*): a header row of typed columns, then
 * rows written strictly top to bottom, then column widths from what was written and,
 * where asked, a frozen header and an autofilter. Writing top to bottom is what
 * libxlsxwriter's constant_memory mode needs, and that mode is what keeps a report of
 * a million findings within the memory bound of DESIGN.md section 3: each finding is
 * handed to libxlsxwriter at once, and Summary, which is known only at the end, is a
 * different sheet that close writes in one go.
 *
 * Invariants: every string reaches libxlsxwriter through cell_clean (valid UTF-8, no
 * characters XML 1.0 forbids, within Excel's cell limit); a sheet's rows never go
 * backwards; r->failed, once set, makes close abandon the report.
 */
#include "dk_report.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xlsxwriter.h>

/* Excel's limit per cell, counted here in UTF-16 code units (its own unit), which also
 * keeps within libxlsxwriter's check in code points. */
#define CELL_MAX_UNITS   32767
/* Room kept for the truncation marker. */
#define CELL_MARK_UNITS  64
/* Rows under the Findings header. */
#define FINDINGS_MAX     ((long)LXW_ROW_MAX - 1)
/* Above this much sheet XML the zip needs ZIP64 (4 GiB less a margin for estimates). */
#define ZIP64_THRESHOLD  (3.5 * 1024 * 1024 * 1024)
/* Per-cell XML around the value (<c r="H1048576" s="12" t="inlineStr"><is><t>...). */
#define CELL_XML_BYTES   48

enum { SEV_ERROR, SEV_WARNING, SEV_INFO, SEV_N };
static const char *const sev_names[SEV_N] = { "error", "warning", "info" };

static int sev_rank(const char *s)
{
    for (int i = 0; i < SEV_N; i++)
        if (s && strcmp(s, sev_names[i]) == 0)
            return i;
    return -1;
}

/* ---- table sheets ------------------------------------------------------------ */

typedef enum {
    TS_INT,      /* whole numbers, right-aligned */
    TS_TEXT,     /* one-line text */
    TS_WRAP,     /* long text, wrapped within the column's maximum width */
    TS_SEVERITY, /* "error" | "warning" | "info", coloured by value */
} ts_kind;

typedef struct ts_col {
    const char *name;
    ts_kind     kind;
    double      min_w, max_w; /* column width bounds, in Excel character units */
} ts_col;

typedef enum { TV_BLANK, TV_INT, TV_STR } ts_vtype;

typedef struct ts_val {
    ts_vtype    t;
    long long   i;
    const char *s;
} ts_val;

#define TV_NONE    ((ts_val){ .t = TV_BLANK })
#define TV_I(x)    ((ts_val){ .t = TV_INT, .i = (x) })
#define TV_S(x)    ((x) ? (ts_val){ .t = TV_STR, .s = (x) } : TV_NONE)

#define TS_MAX_COLS 16

/* Column widths of one sheet, shared by the tables on it (each column takes the
 * widest content of any of them). */
typedef struct ts_widths {
    double w[TS_MAX_COLS];
} ts_widths;

enum { TS_FREEZE = 1, TS_FILTER = 2 };

typedef struct ts {
    dk_report     *r;
    lxw_worksheet *ws;
    const ts_col  *cols;
    int            ncols;
    unsigned       flags;
    lxw_row_t      header;  /* the header's row */
    lxw_row_t      next;    /* the next row to write */
    ts_widths     *widths;
    double        *xml_bytes; /* estimate of the sheet's XML, for ZIP64 */
} ts;

typedef struct kv {
    char *key, *value;
} kv;

typedef struct count_entry {
    char *code;
    int   sev;
    long  count;
} count_entry;

struct dk_report {
    char          *path, *tmp_path, *dir, *title;
    lxw_workbook  *wb;
    lxw_worksheet *ws_summary, *ws_findings;
    struct {
        lxw_format *title, *header, *label, *when, *integer, *text, *wrap,
                   *sev[SEV_N], *total, *note;
    } fmt;
    ts             findings;
    ts_widths      findings_w, summary_w;
    double         findings_xml, summary_xml;
    long           n_findings, n_left_out;
    kv            *settings;
    size_t         n_settings, cap_settings;
    count_entry   *counts;
    size_t         n_counts, cap_counts;
    time_t         generated;
    char          *scratch;      /* cell_clean's output */
    size_t         scratch_cap;
    int            failed;       /* first failure of a feeding call, 0 when none */
    dk_error       fail;
};

/* ---- cell text ----------------------------------------------------------------- */

/* Decodes one well-formed UTF-8 sequence at p (NUL-terminated); returns its length,
 * or 0 for an invalid byte (overlong forms, surrogates and values past U+10FFFF are
 * invalid). */
static size_t utf8_decode(const unsigned char *p, uint32_t *cp)
{
    unsigned char c = p[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        *cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        *cp = c & 0x0F;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        *cp = c & 0x07;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t k = 1; k < n; k++) {
        if ((p[k] & 0xC0) != 0x80)
            return 0;
        *cp = (*cp << 6) | (p[k] & 0x3F);
    }
    return n;
}

static size_t utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Excel reads _xHHHH_ in cell text as the character U+HHHH; such text is written
 * with its underscore escaped (_x005F_) so that it reads back as it was. */
static int looks_like_escape(const unsigned char *p)
{
    return p[0] == '_' && (p[1] == 'x' || p[1] == 'X') && is_hex(p[2]) && is_hex(p[3]) &&
           is_hex(p[4]) && is_hex(p[5]) && p[6] == '_';
}

static int scratch_reserve(dk_report *r, size_t need)
{
    if (need <= r->scratch_cap)
        return 0;
    size_t cap = r->scratch_cap ? r->scratch_cap : 256;
    while (cap < need)
        cap *= 2;
    char *p = realloc(r->scratch, cap);
    if (!p)
        return DK_ENOMEM;
    r->scratch = p;
    r->scratch_cap = cap;
    return 0;
}

/* Makes s fit for a cell (see dk_report.h) into r->scratch; *out points there and
 * stays valid until the next call. */
static int cell_clean(dk_report *r, const char *s, const char **out)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t len = 0, units = 0, cut = 0, chars = 0;
    int truncated = 0;
    while (*p) {
        /* Enough for the longest step (_x005F_ is 7 bytes) and the terminator. */
        if (scratch_reserve(r, len + 8) != 0)
            return DK_ENOMEM;
        char *o = r->scratch + len;
        uint32_t cp;
        size_t n = utf8_decode(p, &cp), w;
        chars++;
        if (n == 0) {
            cp = 0xFFFD;
            n = 1;
        } else if (cp == '\r' && p[1] == '\n') {
            p++;
            chars--;
            continue;
        } else if (cp < 0x20 && cp != '\t' && cp != '\n') {
            cp = 0x2400 + cp;
        } else if (cp == 0xFFFE || cp == 0xFFFF) {
            cp = 0xFFFD;
        }
        if (cp == '_' && looks_like_escape(p)) {
            memcpy(o, "_x005F_", 7);
            w = 7;
            units += 7;
        } else {
            w = utf8_encode(cp, o);
            units += cp >= 0x10000 ? 2 : 1;
        }
        p += n;
        if (units > CELL_MAX_UNITS) {
            truncated = 1;
            break;
        }
        len += w;
        if (units <= CELL_MAX_UNITS - CELL_MARK_UNITS)
            cut = len;
    }
    if (truncated) {
        /* Count what was left, for the marker: a byte that does not continue a
         * sequence starts a character (an invalid one counts as one, as above). */
        for (; *p; p++)
            chars += (*p & 0xC0) != 0x80;
        len = cut;
        char mark[80];
        int m = snprintf(mark, sizeof mark, "\xE2\x80\xA6[truncated: %zu characters in all]",
                         chars);
        if (scratch_reserve(r, len + (size_t)m + 1) != 0)
            return DK_ENOMEM;
        memcpy(r->scratch + len, mark, (size_t)m);
        len += (size_t)m;
    }
    if (scratch_reserve(r, len + 1) != 0)
        return DK_ENOMEM;
    r->scratch[len] = '\0';
    *out = r->scratch;
    return 0;
}

/* Display width of a code point in character units: East Asian wide and fullwidth
 * forms take two (CJK text is most of what zh dialogs hold), the rest one. */
static int cp_width(uint32_t cp)
{
    if ((cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0xA4CF) ||
        (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF) ||
        (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF60) ||
        (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x1F300 && cp <= 0x1FAFF) ||
        (cp >= 0x20000 && cp <= 0x3FFFD))
        return 2;
    return 1;
}

/* Width of the widest line of clean text s, counted no further than cap. */
static double text_width(const char *s, double cap)
{
    const unsigned char *p = (const unsigned char *)s;
    double line = 0, best = 0;
    while (*p && best < cap) {
        uint32_t cp;
        size_t n = utf8_decode(p, &cp);
        if (n == 0) { /* cannot happen on clean text; count the byte and go on */
            cp = '?';
            n = 1;
        }
        p += n;
        if (cp == '\n') {
            line = 0;
            continue;
        }
        line += cp_width(cp);
        if (line > best)
            best = line;
    }
    return best;
}

/* ---- errors ---------------------------------------------------------------------- */

static int lxw_code(lxw_error e)
{
    return e == LXW_ERROR_MEMORY_MALLOC_FAILED ? DK_ENOMEM : DK_EIO;
}

/* strerror in the house's lower case. */
static const char *sys_reason(int errnum, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", strerror(errnum));
    if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z'))
        buf[0] = (char)(buf[0] - 'A' + 'a');
    return buf;
}

/* Remembers the first failure of a feeding call; returns code. */
static int report_fail(dk_report *r, int code, const char *what)
{
    if (!r->failed) {
        r->failed = code;
        dk_error_set(&r->fail, code, r->path, 0, "report not written: %s", what);
    }
    return code;
}

/* ---- table sheets, the functions ---------------------------------------------- */

static void ts_width_note(ts *t, int c, double w)
{
    if (w > t->widths->w[c])
        t->widths->w[c] = w;
}

static int ts_write_str(ts *t, lxw_row_t row, int c, const char *s, lxw_format *f)
{
    const char *clean;
    int rc = cell_clean(t->r, s, &clean);
    if (rc != 0)
        return rc;
    lxw_error e = worksheet_write_string(t->ws, row, (lxw_col_t)c, clean, f);
    if (e != LXW_NO_ERROR)
        return lxw_code(e);
    ts_width_note(t, c, text_width(clean, t->cols[c].max_w));
    *t->xml_bytes += (double)strlen(clean) + CELL_XML_BYTES;
    return 0;
}

/* Starts a table at row `row` of ws and writes its header. */
static int ts_begin(ts *t, dk_report *r, lxw_worksheet *ws, lxw_row_t row, const ts_col *cols,
                    int ncols, unsigned flags, ts_widths *widths, double *xml_bytes)
{
    *t = (ts){ .r = r, .ws = ws, .cols = cols, .ncols = ncols, .flags = flags,
               .header = row, .next = row + 1, .widths = widths, .xml_bytes = xml_bytes };
    for (int c = 0; c < ncols; c++) {
        int rc = ts_write_str(t, row, c, cols[c].name, r->fmt.header);
        if (rc != 0)
            return rc;
        if (flags & TS_FILTER) /* room for the filter button */
            ts_width_note(t, c, text_width(cols[c].name, 100) + 3);
    }
    if (flags & TS_FREEZE)
        worksheet_freeze_panes(ws, row + 1, 0);
    return 0;
}

static lxw_format *ts_format(const ts *t, int c, const ts_val *v)
{
    const dk_report *r = t->r;
    switch (t->cols[c].kind) {
    case TS_INT:  return r->fmt.integer;
    case TS_WRAP: return r->fmt.wrap;
    case TS_SEVERITY: {
        int s = v->t == TV_STR ? sev_rank(v->s) : -1;
        return s >= 0 ? r->fmt.sev[s] : r->fmt.text;
    }
    case TS_TEXT:
    default:      return r->fmt.text;
    }
}

/* Writes the next row; row_fmt, when non-NULL, replaces the columns' formats (a
 * total row). Blank values write no cell. */
static int ts_row(ts *t, const ts_val *vals, lxw_format *row_fmt)
{
    if (t->next >= LXW_ROW_MAX)
        return DK_ELIMIT;
    lxw_row_t row = t->next++;
    for (int c = 0; c < t->ncols; c++) {
        const ts_val *v = &vals[c];
        lxw_format *f = row_fmt ? row_fmt : ts_format(t, c, v);
        int rc = 0;
        if (v->t == TV_INT) {
            lxw_error e = worksheet_write_number(t->ws, row, (lxw_col_t)c, (double)v->i, f);
            if (e != LXW_NO_ERROR)
                return lxw_code(e);
            char digits[32];
            ts_width_note(t, c, snprintf(digits, sizeof digits, "%lld", v->i));
            *t->xml_bytes += CELL_XML_BYTES;
        } else if (v->t == TV_STR) {
            rc = ts_write_str(t, row, c, v->s, f);
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Sets the columns' widths (content within each column's bounds, plus a margin) and
 * the autofilter over header and rows. */
static int ts_finish(ts *t)
{
    for (int c = 0; c < t->ncols; c++) {
        double w = t->widths->w[c] + 2;
        if (w < t->cols[c].min_w)
            w = t->cols[c].min_w;
        if (w > t->cols[c].max_w)
            w = t->cols[c].max_w;
        lxw_error e = worksheet_set_column(t->ws, (lxw_col_t)c, (lxw_col_t)c, w, NULL);
        if (e != LXW_NO_ERROR)
            return lxw_code(e);
    }
    if (t->flags & TS_FILTER) {
        lxw_error e = worksheet_autofilter(t->ws, t->header, 0, t->next - 1,
                                           (lxw_col_t)(t->ncols - 1));
        if (e != LXW_NO_ERROR)
            return lxw_code(e);
    }
    return 0;
}

/* ---- the report ---------------------------------------------------------------- */

static const ts_col findings_cols[] = {
    { "line",      TS_INT,      6, 12 },
    { "dialog_id", TS_TEXT,    10, 36 },
    { "turn",      TS_INT,      6, 8 },
    { "pointer",   TS_TEXT,    10, 36 },
    { "code",      TS_TEXT,     8, 30 },
    { "severity",  TS_SEVERITY, 9, 12 },
    { "message",   TS_WRAP,    24, 60 },
    { "text",      TS_WRAP,    24, 80 },
};
#define FINDINGS_NCOLS ((int)(sizeof findings_cols / sizeof findings_cols[0]))

static const ts_col settings_cols[] = {
    { "setting", TS_TEXT, 12, 40 },
    { "value",   TS_WRAP, 12, 80 },
};

static const ts_col counts_cols[] = {
    { "code",     TS_TEXT,     12, 40 },
    { "severity", TS_SEVERITY, 12, 80 },
    { "count",    TS_INT,      8, 16 },
};

static time_t report_time(void)
{
    const char *e = getenv("SOURCE_DATE_EPOCH");
    if (e && *e) {
        char *end;
        errno = 0;
        long long v = strtoll(e, &end, 10);
        if (errno == 0 && *end == '\0' && v >= 0)
            return (time_t)v;
    }
    return time(NULL);
}

static int make_formats(dk_report *r)
{
    lxw_workbook *wb = r->wb;
    lxw_format **all[] = { &r->fmt.title, &r->fmt.header, &r->fmt.label, &r->fmt.when,
                           &r->fmt.integer, &r->fmt.text, &r->fmt.wrap, &r->fmt.sev[0],
                           &r->fmt.sev[1], &r->fmt.sev[2], &r->fmt.total, &r->fmt.note };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        *all[i] = workbook_add_format(wb);
        if (!*all[i])
            return DK_ENOMEM;
        format_set_align(*all[i], LXW_ALIGN_VERTICAL_TOP);
    }
    format_set_bold(r->fmt.title);
    format_set_font_size(r->fmt.title, 14);
    format_set_bold(r->fmt.header);
    format_set_bg_color(r->fmt.header, 0xD9E1F2);
    format_set_bottom(r->fmt.header, LXW_BORDER_THIN);
    format_set_bold(r->fmt.label);
    format_set_num_format(r->fmt.when, "yyyy-mm-dd hh:mm:ss");
    format_set_align(r->fmt.when, LXW_ALIGN_LEFT);
    format_set_num_format(r->fmt.integer, "0");
    format_set_text_wrap(r->fmt.wrap);
    /* Excel's own "Bad", "Neutral" and a grey, so the colours read as familiar. */
    static const struct { lxw_color_t bg, fg; } sev_colors[SEV_N] = {
        { 0xFFC7CE, 0x9C0006 }, { 0xFFEB9C, 0x9C5700 }, { 0xEDEDED, 0x595959 },
    };
    for (int s = 0; s < SEV_N; s++) {
        format_set_bg_color(r->fmt.sev[s], sev_colors[s].bg);
        format_set_font_color(r->fmt.sev[s], sev_colors[s].fg);
    }
    format_set_bold(r->fmt.total);
    format_set_top(r->fmt.total, LXW_BORDER_THIN);
    format_set_italic(r->fmt.note);
    format_set_font_color(r->fmt.note, 0x9C0006);
    return 0;
}

/* Creates the temporary file next to path with the permissions a new file would get
 * (0666 less the umask), so the rename leaves an ordinary file. */
static int make_temp(dk_report *r, const char *base, dk_error *err)
{
    static unsigned serial;
    size_t cap = strlen(r->dir) + strlen(base) + 64;
    r->tmp_path = malloc(cap);
    if (!r->tmp_path)
        return dk_error_set(err, DK_ENOMEM, r->path, 0, "out of memory");
    for (int attempt = 0; attempt < 100; attempt++) {
        /* Keep the name within NAME_MAX however long the report's name is. */
        snprintf(r->tmp_path, cap, "%s/.%.180s.%ld.%u.tmp", r->dir, base, (long)getpid(),
                 serial++);
        int fd = open(r->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        if (errno != EEXIST) {
            char why[128];
            int code = dk_error_set(err, DK_EIO, r->path, 0, "cannot create report %s: %s",
                                    r->path, sys_reason(errno, why, sizeof why));
            free(r->tmp_path);
            r->tmp_path = NULL;
            return code;
        }
    }
    free(r->tmp_path);
    r->tmp_path = NULL;
    return dk_error_set(err, DK_EIO, r->path, 0,
                        "cannot create report %s: no free temporary name", r->path);
}

static int ends_with_xlsx(const char *path)
{
    size_t n = strlen(path);
    return n > 5 && strcasecmp(path + n - 5, ".xlsx") == 0 && path[n - 6] != '/';
}

int dk_report_new(dk_report **out, const char *path, const char *title, dk_error *err)
{
    *out = NULL;
    if (!ends_with_xlsx(path))
        return dk_error_set(err, DK_EINVAL, path, 0,
                            "report file name must end in .xlsx: %s", path);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return dk_error_set(err, DK_EINVAL, path, 0, "report path is a directory: %s", path);

    int rc = 0;
    dk_report *r = calloc(1, sizeof *r);
    if (!r)
        return dk_error_set(err, DK_ENOMEM, path, 0, "out of memory");
    r->path = strdup(path);
    r->title = strdup(title ? title : "");
    const char *slash = strrchr(path, '/');
    r->dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : strdup(".");
    if (!r->path || !r->title || !r->dir) {
        rc = dk_error_set(err, DK_ENOMEM, path, 0, "out of memory");
        goto out;
    }
    rc = make_temp(r, slash ? slash + 1 : path, err);
    if (rc != 0)
        goto out;

    errno = 0;
    lxw_workbook_options opt = { .constant_memory = LXW_TRUE, .tmpdir = r->dir,
                                 .use_zip64 = LXW_FALSE };
    r->wb = workbook_new_opt(r->tmp_path, &opt);
    if (r->wb) {
        r->ws_summary = workbook_add_worksheet(r->wb, "Summary");
        r->ws_findings = workbook_add_worksheet(r->wb, "Findings");
    }
    if (!r->wb || !r->ws_summary || !r->ws_findings) {
        /* In constant_memory mode a sheet needs a scratch file, so this is as likely a
         * full or read-only directory as a lack of memory. */
        char why[128];
        rc = dk_error_set(err, DK_EIO, path, 0, "cannot start report %s: %s", path,
                          errno ? sys_reason(errno, why, sizeof why) : "out of memory");
        goto out;
    }
    rc = make_formats(r);
    if (rc == 0)
        rc = ts_begin(&r->findings, r, r->ws_findings, 0, findings_cols, FINDINGS_NCOLS,
                      TS_FREEZE | TS_FILTER, &r->findings_w, &r->findings_xml);
    if (rc != 0) {
        dk_error_set(err, rc, path, 0, "cannot start report %s: %s", path, dk_strerror(rc));
        goto out;
    }
    r->generated = report_time();
    worksheet_activate(r->ws_summary);
    *out = r;
    r = NULL;
out:
    dk_report_free(r);
    return rc;
}

int dk_report_setting(dk_report *r, const char *key, const char *value)
{
    if (r->failed)
        return r->failed;
    if (r->n_settings == r->cap_settings) {
        size_t cap = r->cap_settings ? r->cap_settings * 2 : 8;
        kv *p = realloc(r->settings, cap * sizeof *p);
        if (!p)
            return report_fail(r, DK_ENOMEM, "out of memory");
        r->settings = p;
        r->cap_settings = cap;
    }
    kv *e = &r->settings[r->n_settings];
    e->key = strdup(key ? key : "");
    e->value = strdup(value ? value : "");
    if (!e->key || !e->value) {
        free(e->key);
        free(e->value);
        return report_fail(r, DK_ENOMEM, "out of memory");
    }
    r->n_settings++;
    return 0;
}

int dk_report_count(dk_report *r, const char *code, const char *severity, long count)
{
    if (r->failed)
        return r->failed;
    int sev = sev_rank(severity);
    if (sev < 0 || !code || count < 0) {
        char what[160];
        snprintf(what, sizeof what, "bad count (code %.40s, severity %.40s, count %ld)",
                 code ? code : "(null)", severity ? severity : "(null)", count);
        return report_fail(r, DK_EINVAL, what);
    }
    for (size_t i = 0; i < r->n_counts; i++) {
        if (r->counts[i].sev == sev && strcmp(r->counts[i].code, code) == 0) {
            r->counts[i].count += count;
            return 0;
        }
    }
    if (r->n_counts == r->cap_counts) {
        size_t cap = r->cap_counts ? r->cap_counts * 2 : 16;
        count_entry *p = realloc(r->counts, cap * sizeof *p);
        if (!p)
            return report_fail(r, DK_ENOMEM, "out of memory");
        r->counts = p;
        r->cap_counts = cap;
    }
    char *c = strdup(code);
    if (!c)
        return report_fail(r, DK_ENOMEM, "out of memory");
    r->counts[r->n_counts++] = (count_entry){ .code = c, .sev = sev, .count = count };
    return 0;
}

int dk_report_add_finding(dk_report *r, const dk_report_finding *f)
{
    if (r->failed)
        return r->failed;
    if (!f->code || !f->message || sev_rank(f->severity) < 0) {
        char what[160];
        snprintf(what, sizeof what, "bad finding at line %ld (code %.40s, severity %.40s)",
                 f->line, f->code ? f->code : "(null)", f->severity ? f->severity : "(null)");
        return report_fail(r, DK_EINVAL, what);
    }
    if (r->n_findings >= FINDINGS_MAX) {
        r->n_left_out++;
        return 0;
    }
    ts_val row[FINDINGS_NCOLS] = {
        TV_I(f->line), TV_S(f->dialog_id), f->turn >= 0 ? TV_I(f->turn) : TV_NONE,
        TV_S(f->pointer), TV_S(f->code), TV_S(f->severity), TV_S(f->message), TV_S(f->text),
    };
    int rc = ts_row(&r->findings, row, NULL);
    if (rc != 0) {
        char what[96];
        snprintf(what, sizeof what, "finding at line %ld: %s", f->line, dk_strerror(rc));
        return report_fail(r, rc, what);
    }
    r->n_findings++;
    return 0;
}

long dk_report_left_out(const dk_report *r)
{
    return r->n_left_out;
}

static int count_cmp(const void *a, const void *b)
{
    const count_entry *x = a, *y = b;
    if (x->sev != y->sev)
        return x->sev - y->sev;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return strcmp(x->code, y->code);
}

static int write_summary(dk_report *r)
{
    lxw_worksheet *ws = r->ws_summary;
    int rc;
    lxw_error e;
    const char *clean;
    lxw_row_t row = 0;

    if ((rc = cell_clean(r, r->title, &clean)) != 0)
        return rc;
    if ((e = worksheet_write_string(ws, row++, 0, clean, r->fmt.title)) != LXW_NO_ERROR)
        return lxw_code(e);

    struct tm tm;
    gmtime_r(&r->generated, &tm);
    lxw_datetime when = { tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                          tm.tm_hour, tm.tm_min, tm.tm_sec };
    if ((e = worksheet_write_string(ws, row, 0, "generated (UTC)", r->fmt.label)) ||
        (e = worksheet_write_datetime(ws, row++, 1, &when, r->fmt.when)))
        return lxw_code(e);

    if (r->n_left_out > 0) {
        char note[200];
        snprintf(note, sizeof note,
                 "%ld findings were left out: Findings holds the first %ld, Excel's row limit",
                 r->n_left_out, FINDINGS_MAX);
        if ((e = worksheet_write_string(ws, row, 0, "note", r->fmt.label)) ||
            (e = worksheet_write_string(ws, row++, 1, note, r->fmt.note)))
            return lxw_code(e);
    }
    row++;

    ts t;
    rc = ts_begin(&t, r, ws, row, settings_cols, 2, 0, &r->summary_w, &r->summary_xml);
    for (size_t i = 0; rc == 0 && i < r->n_settings; i++)
        rc = ts_row(&t, (ts_val[]){ TV_S(r->settings[i].key), TV_S(r->settings[i].value) },
                    NULL);
    if (rc == 0)
        rc = ts_finish(&t);
    if (rc != 0)
        return rc;

    qsort(r->counts, r->n_counts, sizeof *r->counts, count_cmp);
    long total = 0;
    rc = ts_begin(&t, r, ws, t.next + 1, counts_cols, 3, 0, &r->summary_w, &r->summary_xml);
    for (size_t i = 0; rc == 0 && i < r->n_counts; i++) {
        const count_entry *c = &r->counts[i];
        total += c->count;
        rc = ts_row(&t, (ts_val[]){ TV_S(c->code), TV_S(sev_names[c->sev]), TV_I(c->count) },
                    NULL);
    }
    if (rc == 0)
        rc = ts_row(&t, (ts_val[]){ TV_S("total"), TV_NONE, TV_I(total) }, r->fmt.total);
    if (rc == 0)
        rc = ts_finish(&t);
    return rc;
}

/* Closes libxlsxwriter's per-sheet scratch files, which lxw_workbook_free leaves open
 * in constant_memory mode when the workbook is abandoned rather than written. */
static void abandon_workbook(dk_report *r)
{
    if (!r->wb)
        return;
    lxw_worksheet *sheets[] = { r->ws_summary, r->ws_findings };
    for (size_t i = 0; i < 2; i++) {
        if (sheets[i] && sheets[i]->optimize_tmpfile) {
            fclose(sheets[i]->optimize_tmpfile);
            sheets[i]->optimize_tmpfile = NULL;
            sheets[i]->file = NULL;
        }
    }
    lxw_workbook_free(r->wb);
    r->wb = NULL;
}

/* Flushes the finished file to disk before the rename, so that after a crash the path
 * holds the old file or the complete new one. */
static int sync_file(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

int dk_report_close(dk_report *r, dk_error *err)
{
    char why[128];
    int rc = 0;
    if (r->failed) {
        rc = r->failed;
        if (err)
            *err = r->fail;
        goto out;
    }
    rc = ts_finish(&r->findings);
    if (rc == 0)
        rc = write_summary(r);
    if (rc != 0) {
        dk_error_set(err, rc, r->path, 0, "cannot write report %s: %s", r->path,
                     dk_strerror(rc));
        goto out;
    }
    const char *clean;
    if ((rc = cell_clean(r, r->title, &clean)) != 0) {
        dk_error_set(err, rc, r->path, 0, "cannot write report %s: out of memory", r->path);
        goto out;
    }
    lxw_doc_properties props = { .title = (char *)clean, .created = r->generated };
    workbook_set_properties(r->wb, &props);
    if (r->findings_xml > ZIP64_THRESHOLD || r->summary_xml > ZIP64_THRESHOLD)
        r->wb->options.use_zip64 = LXW_TRUE;

    /* libxlsxwriter leaks its open scratch files when it cannot even open the output,
     * so make sure the temporary file is still there to be written first. */
    if (access(r->tmp_path, W_OK) != 0) {
        rc = dk_error_set(err, DK_EIO, r->path, 0, "cannot write report %s: %s", r->path,
                          sys_reason(errno, why, sizeof why));
        goto out;
    }
    errno = 0;
    lxw_error e = workbook_close(r->wb);
    r->wb = NULL; /* freed by workbook_close, whatever it returned */
    if (e != LXW_NO_ERROR) {
        rc = dk_error_set(err, lxw_code(e), r->path, 0, "cannot write report %s: %s%s%s",
                          r->path, lxw_strerror(e), errno ? ": " : "",
                          errno ? sys_reason(errno, why, sizeof why) : "");
        goto out;
    }
    if (sync_file(r->tmp_path) != 0 || rename(r->tmp_path, r->path) != 0) {
        rc = dk_error_set(err, DK_EIO, r->path, 0, "cannot write report %s: %s", r->path,
                          sys_reason(errno, why, sizeof why));
        goto out;
    }
    free(r->tmp_path);
    r->tmp_path = NULL; /* renamed: nothing left to remove */
out:
    dk_report_free(r);
    return rc;
}

void dk_report_free(dk_report *r)
{
    if (!r)
        return;
    abandon_workbook(r);
    if (r->tmp_path)
        unlink(r->tmp_path);
    for (size_t i = 0; i < r->n_settings; i++) {
        free(r->settings[i].key);
        free(r->settings[i].value);
    }
    for (size_t i = 0; i < r->n_counts; i++)
        free(r->counts[i].code);
    free(r->settings);
    free(r->counts);
    free(r->scratch);
    free(r->tmp_path);
    free(r->dir);
    free(r->title);
    free(r->path);
    free(r);
}
