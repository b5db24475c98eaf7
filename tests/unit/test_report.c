/* Unit tests of dk_report: each report is written, closed, then read back from the
 * .xlsx itself (unzip -p and the sheet XML), so the checks see what Excel sees. The
 * expected cells are the hand-written inputs, cleaned by hand here (control pictures,
 * U+FFFD, Excel serial dates), never our own output.
 * With --keep DIR the round-trip report is also left as DIR/keep.xlsx (for the
 * LibreOffice script test). */
#include "dk_test.h"
#include "dk_report.h"

#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *keep_dir;

/* ---- reading the .xlsx back ------------------------------------------------------ */

static char *slurp_cmd(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return NULL;
    size_t n = 0, cap = 1 << 16;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += got;
        if (cap - n < 2) {
            char *b = realloc(buf, cap * 2);
            if (!b) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = b;
            cap *= 2;
        }
    }
    pclose(p);
    if (buf)
        buf[n] = '\0';
    return buf;
}

static char *unzip_part(const char *xlsx, const char *part)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "unzip -p '%s' '%s' 2>/dev/null", xlsx, part);
    return slurp_cmd(cmd);
}

/* Appends code point cp as UTF-8. */
static size_t put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 63)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | ((cp >> 6) & 63));
        o[2] = (char)(0x80 | (cp & 63));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | ((cp >> 12) & 63));
    o[2] = (char)(0x80 | ((cp >> 6) & 63)); o[3] = (char)(0x80 | (cp & 63));
    return 4;
}

/* XML text [s, e) as Excel reads it: entities, then _xHHHH_ escapes (left to right, once). */
static char *xml_text(const char *s, const char *e)
{
    char *out = malloc((size_t)(e - s) * 2 + 1), *o = out;
    while (s < e) {
        unsigned v;
        int n;
        if (*s == '&') {
            if (!strncmp(s, "&amp;", 5)) { *o++ = '&'; s += 5; }
            else if (!strncmp(s, "&lt;", 4)) { *o++ = '<'; s += 4; }
            else if (!strncmp(s, "&gt;", 4)) { *o++ = '>'; s += 4; }
            else if (!strncmp(s, "&quot;", 6)) { *o++ = '"'; s += 6; }
            else if (!strncmp(s, "&apos;", 6)) { *o++ = '\''; s += 6; }
            else if (sscanf(s, "&#x%x;%n", &v, &n) == 1 || sscanf(s, "&#%u;%n", &v, &n) == 1) {
                o += put_utf8(o, v); s += n;
            } else *o++ = *s++;
        } else if (*s == '_' && e - s >= 7 && s[1] == 'x' && s[6] == '_' &&
                   sscanf(s + 2, "%4x", &v) == 1 && strspn(s + 2, "0123456789abcdefABCDEF") >= 4) {
            o += put_utf8(o, v);
            s += 7;
        } else {
            *o++ = *s++;
        }
    }
    *o = '\0';
    return out;
}

typedef struct cell {
    int   row, col;  /* 1-based row, 0-based column */
    char *val;       /* NULL for a styled empty cell */
    char  type[12];  /* "" (number), "s", "inlineStr", "str" */
    int   style;
} cell;

typedef struct sheet {
    char  *xml;
    int    nrows;    /* <row> elements */
    cell  *cells;
    size_t n;
    char **sst;
    size_t nsst;
} sheet;

static char **parse_sst(const char *xml, size_t *n)
{
    *n = 0;
    if (!xml)
        return NULL;
    size_t cap = 16;
    char **v = malloc(cap * sizeof *v);
    for (const char *p = xml; (p = strstr(p, "<si>")) != NULL;) {
        const char *end = strstr(p, "</si>");
        if (!end)
            break;
        /* the concatenated <t> runs */
        size_t total = 0;
        char *acc = calloc(1, 1);
        for (const char *t = p; (t = strstr(t, "<t")) != NULL && t < end;) {
            const char *gt = strchr(t, '>'), *close = strstr(t, "</t>");
            if (!gt || !close || close > end)
                break;
            char *s = xml_text(gt + 1, close);
            size_t l = strlen(s);
            acc = realloc(acc, total + l + 1);
            memcpy(acc + total, s, l + 1);
            total += l;
            free(s);
            t = close + 4;
        }
        if (*n == cap)
            v = realloc(v, (cap *= 2) * sizeof *v);
        v[(*n)++] = acc;
        p = end + 5;
    }
    return v;
}

static int attr(const char *tag, const char *tag_end, const char *name, char *out, size_t cap)
{
    char key[32];
    snprintf(key, sizeof key, " %s=\"", name);
    const char *a = strstr(tag, key);
    if (!a || a > tag_end)
        return 0;
    a += strlen(key);
    const char *q = strchr(a, '"');
    snprintf(out, cap, "%.*s", (int)(q - a), a);
    return 1;
}

static int load_sheet(sheet *sh, const char *xlsx, int index)
{
    memset(sh, 0, sizeof *sh);
    char part[64];
    snprintf(part, sizeof part, "xl/worksheets/sheet%d.xml", index);
    sh->xml = unzip_part(xlsx, part);
    if (!sh->xml || !*sh->xml)
        return -1;
    char *sst = unzip_part(xlsx, "xl/sharedStrings.xml");
    sh->sst = parse_sst(sst, &sh->nsst);
    free(sst);
    size_t cap = 64;
    sh->cells = malloc(cap * sizeof *sh->cells);
    for (const char *p = sh->xml; (p = strstr(p, "<row ")) != NULL; p++)
        sh->nrows++;
    for (const char *p = sh->xml; (p = strstr(p, "<c ")) != NULL;) {
        const char *gt = strchr(p, '>');
        cell c = { .style = 0 };
        char ref[16] = "", buf[16];
        attr(p, gt, "r", ref, sizeof ref);
        int i = 0;
        while (ref[i] >= 'A' && ref[i] <= 'Z')
            c.col = c.col * 26 + (ref[i++] - 'A' + 1);
        c.col--;
        c.row = atoi(ref + i);
        if (attr(p, gt, "s", buf, sizeof buf))
            c.style = atoi(buf);
        attr(p, gt, "t", c.type, sizeof c.type);
        if (gt[-1] != '/') {
            const char *end = strstr(gt, "</c>");
            const char *v = strstr(gt, "<v>"), *t = strstr(gt, "<t");
            if (!strcmp(c.type, "inlineStr") && t && t < end) {
                const char *tg = strchr(t, '>');
                c.val = xml_text(tg + 1, strstr(tg, "</t>"));
            } else if (v && v < end) {
                c.val = xml_text(v + 3, strstr(v, "</v>"));
                if (!strcmp(c.type, "s")) {
                    size_t k = (size_t)atol(c.val);
                    free(c.val);
                    c.val = strdup(k < sh->nsst ? sh->sst[k] : "(bad sst index)");
                }
            }
            p = end;
        } else {
            p = gt;
        }
        if (sh->n == cap)
            sh->cells = realloc(sh->cells, (cap *= 2) * sizeof *sh->cells);
        sh->cells[sh->n++] = c;
    }
    return 0;
}

static const cell *cell_at(const sheet *sh, int row, int col)
{
    for (size_t i = 0; i < sh->n; i++)
        if (sh->cells[i].row == row && sh->cells[i].col == col)
            return &sh->cells[i];
    return NULL;
}

/* The cell's value, "" when there is no cell or it is empty. */
static const char *val(const sheet *sh, int row, int col)
{
    const cell *c = cell_at(sh, row, col);
    return c && c->val ? c->val : "";
}

/* A number cell (no t attribute) with the given value. */
static int is_number(const sheet *sh, int row, int col, const char *want)
{
    const cell *c = cell_at(sh, row, col);
    return c && c->type[0] == '\0' && c->val && strcmp(c->val, want) == 0;
}

/* The first row whose column A holds a. */
static int find_row(const sheet *sh, const char *a)
{
    for (size_t i = 0; i < sh->n; i++)
        if (sh->cells[i].col == 0 && sh->cells[i].val && !strcmp(sh->cells[i].val, a))
            return sh->cells[i].row;
    return -1;
}

static void free_sheet(sheet *sh)
{
    for (size_t i = 0; i < sh->n; i++)
        free(sh->cells[i].val);
    for (size_t i = 0; i < sh->nsst; i++)
        free(sh->sst[i]);
    free(sh->sst);
    free(sh->cells);
    free(sh->xml);
}

/* ---- the directory ------------------------------------------------------------------ */

static char *make_dir(void)
{
    char tmpl[] = "/tmp/dk_report_test.XXXXXX";
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

/* Names in dir, space-separated and sorted by readdir order, for messages and checks. */
static int count_entries(const char *dir, char *names, size_t cap)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (names)
        names[0] = '\0';
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        n++;
        if (names)
            snprintf(names + strlen(names), cap - strlen(names), "%s ", e->d_name);
    }
    closedir(d);
    return n;
}

static void remove_dir(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* ---- the tests ---------------------------------------------------------------------- */

#define ZH_TEXT "你好，我想订一张去北京的机票。"

static void test_roundtrip(void)
{
    char *dir = make_dir();
    char path[512], names[1024];
    snprintf(path, sizeof path, "%s/r.xlsx", dir);
    /* 365 days after the Unix epoch: 1971-01-01 00:00:00 UTC, Excel serial 25569 + 365. */
    setenv("SOURCE_DATE_EPOCH", "31536000", 1);

    dk_report *r = NULL;
    dk_error err = { 0 };
    DK_CHECK_INT(dk_report_new(&r, path, "entity-checker report", &err), 0);
    if (!r) {
        fprintf(stderr, "dk_report_new: %s\n", err.msg);
        return;
    }
    /* While the report is open only the hidden temporary exists. */
    DK_CHECK(!exists(path));
    DK_CHECK_INT(count_entries(dir, names, sizeof names), 1);
    DK_CHECK(strncmp(names, ".r.xlsx.", 8) == 0);

    DK_CHECK_INT(dk_report_setting(r, "input", "samples/bad.jsonl"), 0);
    DK_CHECK_INT(dk_report_setting(r, "on-error", "skip"), 0);
    DK_CHECK_INT(dk_report_count(r, "E_ROLE", "error", 3), 0);
    DK_CHECK_INT(dk_report_count(r, "W_EMPTY", "warning", 5), 0);
    DK_CHECK_INT(dk_report_count(r, "E_ENTITY_NOT_IN_TEXT", "error", 7), 0);
    DK_CHECK_INT(dk_report_count(r, "I_NOTE", "info", 1), 0);
    DK_CHECK_INT(dk_report_count(r, "E_ROLE", "error", 2), 0);  /* adds up to 5 */

    char *longs = malloc(40001);
    memset(longs, 'a', 40000);
    longs[40000] = '\0';
    /* 20,000 U+1F600: 40,000 UTF-16 units, over the limit in Excel's unit only. */
    char *emoji = malloc(20000 * 4 + 1);
    for (int i = 0; i < 20000; i++)
        memcpy(emoji + 4 * i, "\xF0\x9F\x98\x80", 4);
    emoji[80000] = '\0';

    dk_report_finding f[] = {
        { 3, "conv_1", 2, "/turns/2/role", "E_ROLE", "error", "role must be one of system, "
          "user, assistant, tool", ZH_TEXT },
        { 4, NULL, -1, "", "E_PARSE", "error", "malformed JSON <&> \"quoted\"", NULL },
        { 7, "conv_3", 0, "/turns/0/content", "W_EMPTY", "warning",
          "literal _x0041_ stays", "bell\x07 here\r\nnext\tline\x0b end\r" },
        { 9, "对话_7", 1, "/turns/1", "I_NOTE", "info", "bad \xff\xc0\xaf byte \xed\xa0\x80!",
          longs },
        { 12, "conv_5", 4, "/turns/4", "E_ENTITY_NOT_IN_TEXT", "error", "emoji", emoji },
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        DK_CHECK_INT(dk_report_add_finding(r, &f[i]), 0);
    DK_CHECK_INT(dk_report_left_out(r), 0);
    DK_CHECK_INT(dk_report_close(r, &err), 0);
    free(longs);
    free(emoji);

    DK_CHECK(exists(path));
    DK_CHECK_INT(count_entries(dir, names, sizeof names), 1);  /* no temporary left */
    DK_CHECK_STR(names, "r.xlsx ");
    struct stat st;
    DK_CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0644);  /* umask 022 */

    sheet fs;
    DK_CHECK_INT(load_sheet(&fs, path, 2), 0);
    DK_CHECK_INT(fs.nrows, 6);
    const char *hdr[] = { "line", "dialog_id", "turn", "pointer", "code", "severity",
                          "message", "text" };
    for (int c = 0; c < 8; c++)
        DK_CHECK_STR(val(&fs, 1, c), hdr[c]);
    DK_CHECK(strstr(fs.xml, "state=\"frozen\"") != NULL);
    DK_CHECK(strstr(fs.xml, "<pane ySplit=\"1\" topLeftCell=\"A2\"") != NULL);
    DK_CHECK(strstr(fs.xml, "<autoFilter ref=\"A1:H6\"/>") != NULL);

    DK_CHECK(is_number(&fs, 2, 0, "3"));
    DK_CHECK_STR(val(&fs, 2, 1), "conv_1");
    DK_CHECK(is_number(&fs, 2, 2, "2"));
    DK_CHECK_STR(val(&fs, 2, 3), "/turns/2/role");
    DK_CHECK_STR(val(&fs, 2, 4), "E_ROLE");
    DK_CHECK_STR(val(&fs, 2, 5), "error");
    DK_CHECK_STR(val(&fs, 2, 6), "role must be one of system, user, assistant, tool");
    DK_CHECK_STR(val(&fs, 2, 7), ZH_TEXT);

    DK_CHECK(is_number(&fs, 3, 0, "4"));
    DK_CHECK(cell_at(&fs, 3, 1) == NULL);  /* NULL dialog_id: no cell */
    DK_CHECK(cell_at(&fs, 3, 2) == NULL);  /* turn -1: no cell */
    DK_CHECK_STR(val(&fs, 3, 6), "malformed JSON <&> \"quoted\"");
    DK_CHECK(cell_at(&fs, 3, 7) == NULL);

    /* BEL -> U+2407, CR LF -> LF, VT -> U+240B, a lone CR -> U+240D. */
    DK_CHECK_STR(val(&fs, 4, 7), "bell\xE2\x90\x87 here\nnext\tline\xE2\x90\x8B end\xE2\x90\x8D");
    DK_CHECK_STR(val(&fs, 4, 6), "literal _x0041_ stays");
    DK_CHECK(is_number(&fs, 4, 2, "0"));

    DK_CHECK_STR(val(&fs, 5, 1), "对话_7");
    /* FF, C0, AF each one U+FFFD; ED A0 80 (a surrogate) three. */
    DK_CHECK_STR(val(&fs, 5, 6), "bad \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD byte "
                                 "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD!");
    const char *t5 = val(&fs, 5, 7);
    const char *mark = "[truncated: 40000 characters in all]";
    DK_CHECK(strspn(t5, "a") > 30000 && strspn(t5, "a") < 32767);
    DK_CHECK(strlen(t5) > strlen(mark) && !strcmp(t5 + strlen(t5) - strlen(mark), mark));
    DK_CHECK(strlen(t5) - 2 <= 32767);  /* the ellipsis is 3 bytes, one character */

    /* UTF-16 length of the truncated emoji text stays within Excel's 32,767. */
    const unsigned char *t6 = (const unsigned char *)val(&fs, 6, 7);
    size_t units = 0;
    for (; *t6; t6++)
        if ((*t6 & 0xC0) != 0x80)
            units += *t6 >= 0xF0 ? 2 : 1;
    DK_CHECK(units > 30000 && units <= 32767);
    DK_CHECK(strstr(val(&fs, 6, 7), "[truncated: 20000 characters in all]") != NULL);

    /* Severity cells: one style per severity, each different from a plain text cell. */
    const cell *se = cell_at(&fs, 2, 5), *sw = cell_at(&fs, 4, 5), *si = cell_at(&fs, 5, 5),
               *se2 = cell_at(&fs, 6, 5), *code = cell_at(&fs, 2, 4);
    DK_CHECK(se && sw && si && se2 && code);
    if (se && sw && si && se2 && code) {
        DK_CHECK(se->style != sw->style && sw->style != si->style && se->style != si->style);
        DK_CHECK_INT(se->style, se2->style);
        DK_CHECK(se->style != code->style && sw->style != code->style);
    }
    char *styles = unzip_part(path, "xl/styles.xml");
    DK_CHECK(styles && strstr(styles, "FFFFC7CE") && strstr(styles, "FFFFEB9C") &&
             strstr(styles, "FFEDEDED"));
    DK_CHECK(styles && strstr(styles, "wrapText=\"1\""));
    free(styles);
    /* The text column (H, the 8th) is capped at 80 characters wide. */
    const char *col8 = strstr(fs.xml, "<col min=\"8\" max=\"8\" width=\"");
    DK_CHECK(col8 && atof(col8 + 28) >= 80 && atof(col8 + 28) < 81);
    free_sheet(&fs);

    sheet ss;
    DK_CHECK_INT(load_sheet(&ss, path, 1), 0);
    DK_CHECK_STR(val(&ss, 1, 0), "entity-checker report");
    DK_CHECK_STR(val(&ss, 2, 0), "generated (UTC)");
    DK_CHECK(is_number(&ss, 2, 1, "25934"));
    int s = find_row(&ss, "setting");
    DK_CHECK(s > 0);
    DK_CHECK_STR(val(&ss, s, 1), "value");
    DK_CHECK_STR(val(&ss, s + 1, 0), "input");
    DK_CHECK_STR(val(&ss, s + 1, 1), "samples/bad.jsonl");
    DK_CHECK_STR(val(&ss, s + 2, 0), "on-error");
    DK_CHECK_STR(val(&ss, s + 2, 1), "skip");
    int c = find_row(&ss, "code");
    DK_CHECK(c > s + 2);
    DK_CHECK_STR(val(&ss, c, 1), "severity");
    DK_CHECK_STR(val(&ss, c, 2), "count");
    const char *want[][3] = {
        { "E_ENTITY_NOT_IN_TEXT", "error", "7" }, { "E_ROLE", "error", "5" },
        { "W_EMPTY", "warning", "5" }, { "I_NOTE", "info", "1" }, { "total", "", "18" },
    };
    for (int i = 0; i < 5; i++) {
        DK_CHECK_STR(val(&ss, c + 1 + i, 0), want[i][0]);
        DK_CHECK_STR(val(&ss, c + 1 + i, 1), want[i][1]);
        DK_CHECK(is_number(&ss, c + 1 + i, 2, want[i][2]));
    }
    DK_CHECK(find_row(&ss, "note") < 0);  /* nothing was left out */
    /* Rows 1-13, less the blank rows 3 and 7 (no <row> element). */
    DK_CHECK_INT(ss.nrows, 11);
    DK_CHECK(strstr(ss.xml, "<row r=\"13\"") && !strstr(ss.xml, "<row r=\"14\""));
    free_sheet(&ss);

    char *core = unzip_part(path, "docProps/core.xml");
    DK_CHECK(core && strstr(core, "<dc:title>entity-checker report</dc:title>"));
    DK_CHECK(core && strstr(core, "1971-01-01T00:00:00Z"));
    free(core);
    char *wb = unzip_part(path, "xl/workbook.xml");
    DK_CHECK(wb && strstr(wb, "name=\"Summary\" sheetId=\"1\"") &&
             strstr(wb, "name=\"Findings\" sheetId=\"2\""));
    free(wb);
    unsetenv("SOURCE_DATE_EPOCH");

    if (keep_dir) {
        char keep[512];
        snprintf(keep, sizeof keep, "%s/keep.xlsx", keep_dir);
        DK_CHECK(rename(path, keep) == 0);
    }
    remove_dir(dir);
    free(dir);
}

static void test_free_abandons(void)
{
    char *dir = make_dir();
    char path[512];
    snprintf(path, sizeof path, "%s/gone.xlsx", dir);
    dk_report *r = NULL;
    DK_CHECK_INT(dk_report_new(&r, path, "t", NULL), 0);
    DK_CHECK_INT(dk_report_setting(r, "k", "v"), 0);
    dk_report_finding f = { 1, "d", 0, "/turns/0", "E_X", "error", "m", "text" };
    for (int i = 0; i < 100; i++)
        DK_CHECK_INT(dk_report_add_finding(r, &f), 0);
    dk_report_free(r);
    DK_CHECK(!exists(path));
    DK_CHECK_INT(count_entries(dir, NULL, 0), 0);
    dk_report_free(NULL);
    remove_dir(dir);
    free(dir);
}

static void test_bad_paths(void)
{
    dk_report *r = (dk_report *)&r;  /* must be reset to NULL */
    dk_error err = { 0 };
    int rc = dk_report_new(&r, "/nonexistent-dk-dir/sub/r.xlsx", "t", &err);
    DK_CHECK_INT(rc, DK_EIO);
    DK_CHECK_INT(err.code, DK_EIO);
    DK_CHECK(r == NULL);
    DK_CHECK(strstr(err.msg, "/nonexistent-dk-dir/sub/r.xlsx") != NULL);
    DK_CHECK(strstr(err.msg, "no such file or directory") != NULL);

    DK_CHECK_INT(dk_report_new(&r, "report.csv", "t", &err), DK_EINVAL);
    DK_CHECK(strstr(err.msg, ".xlsx") != NULL);
    DK_CHECK_INT(dk_report_new(&r, "dir/.xlsx", "t", &err), DK_EINVAL);

    char *dir = make_dir();
    char path[512];
    snprintf(path, sizeof path, "%s/sub.xlsx", dir);
    DK_CHECK(mkdir(path, 0755) == 0);
    DK_CHECK_INT(dk_report_new(&r, path, "t", &err), DK_EINVAL);
    DK_CHECK(r == NULL);
    remove_dir(dir);
    free(dir);
}

/* The directory disappears while the report is open: close fails cleanly. */
static void test_dir_vanishes(void)
{
    char *dir = make_dir();
    char path[512], names[512], tmp[1024];
    snprintf(path, sizeof path, "%s/r.xlsx", dir);
    dk_report *r = NULL;
    dk_error err = { 0 };
    DK_CHECK_INT(dk_report_new(&r, path, "t", &err), 0);
    dk_report_finding f = { 1, "d", 0, "/turns/0", "E_X", "error", "m", NULL };
    DK_CHECK_INT(dk_report_add_finding(r, &f), 0);
    DK_CHECK_INT(count_entries(dir, names, sizeof names), 1);
    names[strcspn(names, " ")] = '\0';
    snprintf(tmp, sizeof tmp, "%s/%s", dir, names);
    DK_CHECK(unlink(tmp) == 0 && rmdir(dir) == 0);
    DK_CHECK_INT(dk_report_close(r, &err), DK_EIO);
    DK_CHECK(strstr(err.msg, "cannot write report") != NULL);
    DK_CHECK(!exists(path));
    free(dir);
}

/* A bad call makes close write nothing, and says why. */
static void test_failure_is_sticky(void)
{
    char *dir = make_dir();
    char path[512];
    snprintf(path, sizeof path, "%s/r.xlsx", dir);
    dk_report *r = NULL;
    dk_error err = { 0 };
    DK_CHECK_INT(dk_report_new(&r, path, "t", &err), 0);
    dk_report_finding bad = { 1, "d", 0, "/turns/0", "E_X", "fatal", "m", NULL };
    dk_report_finding good = { 1, "d", 0, "/turns/0", "E_X", "error", "m", NULL };
    DK_CHECK_INT(dk_report_add_finding(r, &bad), DK_EINVAL);
    DK_CHECK_INT(dk_report_add_finding(r, &good), DK_EINVAL);
    DK_CHECK_INT(dk_report_count(r, "E_X", "error", 1), DK_EINVAL);
    DK_CHECK_INT(dk_report_close(r, &err), DK_EINVAL);
    DK_CHECK(strstr(err.msg, "fatal") != NULL);
    DK_CHECK(!exists(path));
    DK_CHECK_INT(count_entries(dir, NULL, 0), 0);

    DK_CHECK_INT(dk_report_new(&r, path, "t", &err), 0);
    DK_CHECK_INT(dk_report_count(r, "E_X", "critical", 1), DK_EINVAL);
    DK_CHECK_INT(dk_report_close(r, &err), DK_EINVAL);
    DK_CHECK(!exists(path));
    remove_dir(dir);
    free(dir);
}

/* An existing file at the path is replaced whole; an empty report is still valid. */
static void test_replace_and_empty(void)
{
    char *dir = make_dir();
    char path[512];
    snprintf(path, sizeof path, "%s/r.xlsx", dir);
    FILE *old = fopen(path, "w");
    fputs("old contents", old);
    fclose(old);
    dk_report *r = NULL;
    dk_error err = { 0 };
    DK_CHECK_INT(dk_report_new(&r, path, "", &err), 0);
    DK_CHECK_INT(dk_report_close(r, &err), 0);
    sheet fs, ss;
    DK_CHECK_INT(load_sheet(&fs, path, 2), 0);
    DK_CHECK_INT(fs.nrows, 1);
    DK_CHECK(strstr(fs.xml, "<autoFilter ref=\"A1:H1\"/>") != NULL);
    free_sheet(&fs);
    DK_CHECK_INT(load_sheet(&ss, path, 1), 0);
    int c = find_row(&ss, "code");
    DK_CHECK(c > 0);
    DK_CHECK_STR(val(&ss, c + 1, 0), "total");
    DK_CHECK(is_number(&ss, c + 1, 2, "0"));
    free_sheet(&ss);
    DK_CHECK_INT(count_entries(dir, NULL, 0), 1);
    remove_dir(dir);
    free(dir);
}

/* Past Excel's 1,048,576 rows the findings are counted and named in Summary. */
static void test_row_limit(void)
{
    char *dir = make_dir();
    char path[512];
    snprintf(path, sizeof path, "%s/big.xlsx", dir);
    dk_report *r = NULL;
    dk_error err = { 0 };
    DK_CHECK_INT(dk_report_new(&r, path, "big", &err), 0);
    dk_report_finding f = { 0, NULL, -1, NULL, "E", "error", "m", NULL };
    long n = 1048575 + 3;
    for (long i = 1; i <= n; i++) {
        f.line = i;
        if (dk_report_add_finding(r, &f) != 0) {
            DK_CHECK(0);
            break;
        }
    }
    DK_CHECK_INT(dk_report_left_out(r), 3);
    DK_CHECK_INT(dk_report_close(r, &err), 0);

    /* The sheet's XML (about 150 MB) is scanned as text, not parsed into cells. */
    char *xml = unzip_part(path, "xl/worksheets/sheet2.xml");
    long nrows = 0;
    for (const char *p = xml; p && (p = strstr(p, "<row ")) != NULL; p += 5)
        nrows++;
    DK_CHECK_INT(nrows, 1048576);
    const char *last = xml ? strstr(xml, "<c r=\"A1048576\"") : NULL;
    DK_CHECK(last && strncmp(strstr(last, "<v>"), "<v>1048575</v>", 14) == 0);
    DK_CHECK(xml && strstr(xml, "<autoFilter ref=\"A1:H1048576\"/>") != NULL);
    free(xml);
    sheet ss;
    DK_CHECK_INT(load_sheet(&ss, path, 1), 0);
    int note = find_row(&ss, "note");
    DK_CHECK(note > 0);
    DK_CHECK(strncmp(val(&ss, note, 1), "3 findings were left out", 24) == 0);
    free_sheet(&ss);
    remove_dir(dir);
    free(dir);
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--keep"))
        keep_dir = argv[2];
    umask(022);
    DK_RUN(test_roundtrip);
    DK_RUN(test_free_abandons);
    DK_RUN(test_bad_paths);
    DK_RUN(test_dir_vanishes);
    DK_RUN(test_failure_is_sticky);
    DK_RUN(test_replace_and_empty);
    if (!keep_dir)
        DK_RUN(test_row_limit);
    DK_TEST_MAIN_END("test_report");
}
