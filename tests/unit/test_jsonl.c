/* Unit tests of dk_jsonl: line ends, BOM, blank lines, huge lines, gzip (checked
 * against zlib's own deflate/gzread, not our reader), batches, errors. Expected line
 * lists are worked out by hand from the inputs. Temporary files live in /tmp. */
#include "dk_jsonl.h"
#include "dk_test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

/* Every line of a reader as "LINENO:TEXT|", plus the end status. */
static char *collect(dk_jsonl_reader *r, int *status, dk_error *err)
{
    size_t cap = 4096, n = 0;
    char *s = malloc(cap);
    s[0] = '\0';
    dk_jsonl_line l;
    int rc;
    while ((rc = dk_jsonl_reader_next(r, &l, err)) == 1) {
        size_t need = n + l.len + 32;
        if (need > cap) {
            while (cap < need)
                cap *= 2;
            s = realloc(s, cap);
        }
        n += (size_t)sprintf(s + n, "%ld:", l.lineno);
        memcpy(s + n, l.text, l.len);
        n += l.len;
        s[n++] = '|';
        s[n] = '\0';
    }
    *status = rc;
    return s;
}

/* Reads data from memory and compares the lines, physical and blank counts. */
static void expect_mem(const char *data, size_t len, const char *want, long lines, long blank)
{
    dk_jsonl_reader *r = NULL;
    dk_error err;
    DK_CHECK_INT(dk_jsonl_reader_open_mem(&r, data, len, "t.jsonl", &err), 0);
    int st;
    char *got = collect(r, &st, &err);
    DK_CHECK_INT(st, 0);
    DK_CHECK_STR(got, want);
    DK_CHECK_INT(dk_jsonl_reader_lines(r), lines);
    DK_CHECK_INT(dk_jsonl_reader_blank_lines(r), blank);
    free(got);
    dk_jsonl_reader_free(r);
}
#define EXPECT(lit, want, lines, blank) expect_mem(lit, sizeof(lit) - 1, want, lines, blank)

/* A temporary file holding len bytes; path receives its name. */
static void tmp_file(char *path, const char *suffix, const void *data, size_t len)
{
    snprintf(path, 64, "/tmp/dk_jsonl_XXXXXX%s", suffix);
    int fd = mkstemps(path, (int)strlen(suffix));
    DK_CHECK(fd >= 0);
    if (fd < 0)
        return;
    const char *p = data;
    while (len > 0) {
        ssize_t k = write(fd, p, len);
        if (k <= 0)
            break;
        p += k;
        len -= (size_t)k;
    }
    DK_CHECK_INT(len, 0);
    close(fd);
}

/* gzip of data made by zlib's deflate (one member). */
static unsigned char *gzip_mem(const char *data, size_t len, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    size_t cap = deflateBound(&z, len) + 64;
    unsigned char *out = malloc(cap);
    z.next_in = (unsigned char *)data;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int zr = deflate(&z, Z_FINISH);
    DK_CHECK_INT(zr, Z_STREAM_END);
    *out_len = cap - z.avail_out;
    deflateEnd(&z);
    return out;
}

static void test_line_ends(void)
{
    EXPECT("a\nb\n", "1:a|2:b|", 2, 0);
    EXPECT("a\r\nb\r\n", "1:a|2:b|", 2, 0);
    EXPECT("{\"x\":1}\r\n{\"y\":2}\n", "1:{\"x\":1}|2:{\"y\":2}|", 2, 0);
    /* Only one \r belongs to the line end. */
    EXPECT("a\r\r\nb\n", "1:a\r|2:b|", 2, 0);
    /* A line may hold NUL bytes: len counts them. */
    dk_jsonl_reader *r = NULL;
    DK_CHECK_INT(dk_jsonl_reader_open_mem(&r, "a\0b\n", 4, NULL, NULL), 0);
    dk_jsonl_line l;
    DK_CHECK_INT(dk_jsonl_reader_next(r, &l, NULL), 1);
    DK_CHECK_INT(l.len, 3);
    DK_CHECK(memcmp(l.text, "a\0b", 4) == 0);
    DK_CHECK_STR(dk_jsonl_reader_name(r), "<memory>");
    dk_jsonl_reader_free(r);
}

static void test_no_final_newline(void)
{
    EXPECT("a\nb", "1:a|2:b|", 2, 0);
    EXPECT("{}", "1:{}|", 1, 0);
    EXPECT("a\r\nb\r", "1:a|2:b\r|", 2, 0);
    /* The text of a last line without \n is NUL-terminated too. */
    dk_jsonl_reader *r = NULL;
    const char in[] = "x\nlast";
    DK_CHECK_INT(dk_jsonl_reader_open_mem(&r, in, 6, NULL, NULL), 0);
    dk_jsonl_line l;
    DK_CHECK_INT(dk_jsonl_reader_next(r, &l, NULL), 1);
    DK_CHECK_INT(dk_jsonl_reader_next(r, &l, NULL), 1);
    DK_CHECK_STR(l.text, "last");
    DK_CHECK_INT(l.lineno, 2);
    DK_CHECK_INT(dk_jsonl_reader_next(r, &l, NULL), 0);
    DK_CHECK_INT(dk_jsonl_reader_next(r, &l, NULL), 0);
    dk_jsonl_reader_free(r);
}

static void test_bom(void)
{
    EXPECT("\xEF\xBB\xBF{}\n{}\n", "1:{}|2:{}|", 2, 0);
    EXPECT("\xEF\xBB\xBF{}\r\n", "1:{}|", 1, 0);
    /* Only on line 1. */
    EXPECT("x\n\xEF\xBB\xBFy\n", "1:x|2:\xEF\xBB\xBFy|", 2, 0);
    /* A line 1 that is only a BOM is blank. */
    EXPECT("\xEF\xBB\xBF\nx", "2:x|", 2, 1);
    EXPECT("\xEF\xBB\xBF", "", 1, 1);
    /* A partial BOM is text. */
    EXPECT("\xEF\xBB" "a\n", "1:\xEF\xBB" "a|", 1, 0);
}

static void test_blank_lines(void)
{
    EXPECT("\n  \n\t\r\n{}\n \r\n\n[1]\n", "4:{}|7:[1]|", 7, 5);
    EXPECT("  x  \n", "1:  x  |", 1, 0);
    EXPECT("\t{}\n", "1:\t{}|", 1, 0);
}

static void test_empty_and_only_blank(void)
{
    EXPECT("", "", 0, 0);
    EXPECT("\n\n  \n", "", 3, 3);
    EXPECT("\r\n \t", "", 2, 2);

    /* The same from files. */
    char path[64];
    tmp_file(path, ".jsonl", "", 0);
    dk_jsonl_reader *r = NULL;
    dk_error err;
    dk_jsonl_line l;
    DK_CHECK_INT(dk_jsonl_reader_open(&r, path, &err), 0);
    DK_CHECK_INT(dk_jsonl_reader_next(r, &l, &err), 0);
    DK_CHECK_INT(dk_jsonl_reader_lines(r), 0);
    DK_CHECK_STR(dk_jsonl_reader_name(r), path);
    dk_jsonl_reader_free(r);
    unlink(path);

    tmp_file(path, ".jsonl", "\n \n\r\n\t\n", 7);
    DK_CHECK_INT(dk_jsonl_reader_open(&r, path, &err), 0);
    DK_CHECK_INT(dk_jsonl_reader_next(r, &l, &err), 0);
    DK_CHECK_INT(dk_jsonl_reader_lines(r), 4);
    DK_CHECK_INT(dk_jsonl_reader_blank_lines(r), 4);
    dk_jsonl_reader_free(r);
    unlink(path);
}

/* A 50 MB line between two short ones, from a file. */
static void test_huge_line(void)
{
    const size_t big = 50u << 20;
    size_t total = 3 + big + 3 + 1 + 3;
    char *data = malloc(total);
    memcpy(data, "{}\n", 3);
    memcpy(data + 3, "{\"", 2);
    for (size_t i = 5; i < 3 + big - 2; i++)
        data[i] = (char)('a' + i % 26);
    memcpy(data + 3 + big - 2, "\"}", 2);
    memcpy(data + 3 + big, "\r\n\n[1]", 6);
    char path[64];
    tmp_file(path, ".jsonl", data, total - 1);

    dk_jsonl_reader *r = NULL;
    dk_error err;
    dk_jsonl_line l;
    DK_CHECK_INT(dk_jsonl_reader_open(&r, path, &err), 0);
    DK_CHECK_INT(dk_jsonl_reader_next(r, &l, &err), 1);
    DK_CHECK_INT(l.len, 2);
    DK_CHECK_INT(dk_jsonl_reader_next(r, &l, &err), 1);
    DK_CHECK_INT(l.lineno, 2);
    DK_CHECK_INT(l.len, big);
    DK_CHECK(l.len == big && memcmp(l.text, data + 3, big) == 0);
    DK_CHECK(l.len == big && l.text[big] == '\0');
    DK_CHECK_INT(dk_jsonl_reader_next(r, &l, &err), 1);
    DK_CHECK_INT(l.lineno, 4);
    DK_CHECK_STR(l.text, "[1]");
    DK_CHECK_INT(dk_jsonl_reader_next(r, &l, &err), 0);
    DK_CHECK_INT(dk_jsonl_reader_blank_lines(r), 1);
    dk_jsonl_reader_free(r);
    unlink(path);
    free(data);
}

/* Writer (".gz") -> reader, and the file checked with zlib's gzread. */
static void test_gzip_round_trip(void)
{
    char path[64];
    tmp_file(path, ".jsonl.gz", "", 0);
    dk_jsonl_writer *w = NULL;
    dk_error err;
    DK_CHECK_INT(dk_jsonl_writer_open(&w, path, &err), 0);
    size_t cap = 1u << 21, n = 0;
    char *want = malloc(cap), line[64];
    int wfailed = 0;
    for (int i = 0; i < 20000; i++) {
        int k = snprintf(line, sizeof line, "{\"i\":%d}", i);
        wfailed += dk_jsonl_writer_line(w, line, (size_t)k, &err) != 0;
        memcpy(want + n, line, (size_t)k);
        n += (size_t)k;
        want[n++] = '\n';
    }
    DK_CHECK_INT(wfailed, 0);
    /* A write bigger than the writer's buffer goes straight through. */
    size_t bigw = 600000;
    memset(want + n, 'z', bigw);
    DK_CHECK_INT(dk_jsonl_writer_write(w, want + n, bigw, &err), 0);
    n += bigw;
    DK_CHECK_INT(dk_jsonl_writer_write(w, "\n", 1, &err), 0);
    want[n++] = '\n';
    DK_CHECK_INT(dk_jsonl_writer_close(w, &err), 0);

    gzFile g = gzopen(path, "rb");
    DK_CHECK(g != NULL);
    char *got = malloc(cap);
    int k = g ? gzread(g, got, (unsigned)cap) : -1;
    DK_CHECK_INT(k, n);
    DK_CHECK(k == (int)n && memcmp(got, want, n) == 0);
    DK_CHECK_INT(gzdirect(g), 0);
    if (g)
        gzclose(g);

    dk_jsonl_reader *r = NULL;
    DK_CHECK_INT(dk_jsonl_reader_open(&r, path, &err), 0);
    dk_jsonl_line l;
    long count = 0;
    int rc;
    while ((rc = dk_jsonl_reader_next(r, &l, &err)) == 1) {
        if (count < 20000) {
            int m = snprintf(line, sizeof line, "{\"i\":%ld}", count);
            if ((size_t)m != l.len || memcmp(line, l.text, l.len) != 0) {
                DK_CHECK(!"line differs");
                break;
            }
        } else {
            DK_CHECK_INT(l.len, bigw);
        }
        count++;
        if (l.lineno != count) {
            DK_CHECK_INT(l.lineno, count);
            break;
        }
    }
    DK_CHECK_INT(rc, 0);
    DK_CHECK_INT(count, 20001);
    dk_jsonl_reader_free(r);

    /* The same file on stdin (gzip found by its magic, not its name). */
    int saved = dup(0), fd = open(path, O_RDONLY);
    DK_CHECK(saved >= 0 && fd >= 0);
    dup2(fd, 0);
    close(fd);
    DK_CHECK_INT(dk_jsonl_reader_open(&r, "-", &err), 0);
    DK_CHECK_STR(dk_jsonl_reader_name(r), "<stdin>");
    count = 0;
    while ((rc = dk_jsonl_reader_next(r, &l, &err)) == 1)
        count++;
    DK_CHECK_INT(rc, 0);
    DK_CHECK_INT(count, 20001);
    dk_jsonl_reader_free(r);
    dup2(saved, 0);
    close(saved);

    unlink(path);
    free(want);
    free(got);
}

/* Plain stdin and a plain written file. */
static void test_plain_file_and_stdin(void)
{
    char path[64];
    tmp_file(path, ".jsonl", "", 0);
    dk_jsonl_writer *w = NULL;
    dk_error err;
    DK_CHECK_INT(dk_jsonl_writer_open(&w, path, &err), 0);
    DK_CHECK_INT(dk_jsonl_writer_line(w, "{\"a\":1}", 7, &err), 0);
    DK_CHECK_INT(dk_jsonl_writer_write(w, "\r\n\n", 3, &err), 0);
    DK_CHECK_INT(dk_jsonl_writer_write(w, "[2]", 3, &err), 0);
    DK_CHECK_INT(dk_jsonl_writer_close(w, &err), 0);
    DK_CHECK_INT(dk_jsonl_writer_close(NULL, &err), 0);

    int saved = dup(0), fd = open(path, O_RDONLY);
    dup2(fd, 0);
    close(fd);
    dk_jsonl_reader *r = NULL;
    DK_CHECK_INT(dk_jsonl_reader_open(&r, NULL, &err), 0);
    int st;
    char *got = collect(r, &st, &err);
    DK_CHECK_INT(st, 0);
    DK_CHECK_STR(got, "1:{\"a\":1}|4:[2]|");
    DK_CHECK_INT(dk_jsonl_reader_blank_lines(r), 2);
    free(got);
    dk_jsonl_reader_free(r);
    dk_jsonl_reader_free(NULL);
    dup2(saved, 0);
    close(saved);
    unlink(path);
}

/* gzip from memory: concatenated members, a line split across them. */
static void test_gzip_mem(void)
{
    size_t n1, n2;
    unsigned char *m1 = gzip_mem("\xEF\xBB\xBF" "a\r\nb", 7, &n1);
    unsigned char *m2 = gzip_mem("c\n\nd\n", 5, &n2);
    unsigned char *both = malloc(n1 + n2);
    memcpy(both, m1, n1);
    memcpy(both + n1, m2, n2);
    expect_mem((const char *)both, n1 + n2, "1:a|2:bc|4:d|", 4, 1);
    expect_mem((const char *)m1, n1, "1:a|2:b|", 2, 0);
    /* An empty member is fine too. */
    size_t n0;
    unsigned char *m0 = gzip_mem("", 0, &n0);
    expect_mem((const char *)m0, n0, "", 0, 0);
    free(m0);
    free(m1);
    free(m2);
    free(both);
}

/* Truncated and corrupt gzip: DK_EPARSE naming the file and the line reached. */
static void test_gzip_corrupt(void)
{
    char text[4000];
    size_t n = 0;
    for (int i = 1; i <= 300; i++)
        n += (size_t)sprintf(text + n, "{\"n\":%d}\n", i);
    size_t zn;
    unsigned char *z = gzip_mem(text, n, &zn);

    /* Cut inside the trailer: every line arrives, then the error. */
    dk_jsonl_reader *r = NULL;
    dk_error err;
    DK_CHECK_INT(dk_jsonl_reader_open_mem(&r, (const char *)z, zn - 4, "cut.jsonl.gz", &err), 0);
    int st;
    char *got = collect(r, &st, &err);
    DK_CHECK_INT(st, DK_EPARSE);
    DK_CHECK_INT(dk_jsonl_reader_lines(r), 300);
    DK_CHECK_STR(err.file, "cut.jsonl.gz");
    DK_CHECK_INT(err.line, 301);
    DK_CHECK_STR(err.msg, "cut.jsonl.gz:301: truncated gzip stream");
    /* The error is sticky. */
    dk_jsonl_line l;
    dk_error err2;
    DK_CHECK_INT(dk_jsonl_reader_next(r, &l, &err2), DK_EPARSE);
    DK_CHECK_STR(err2.msg, err.msg);
    free(got);
    dk_jsonl_reader_free(r);

    /* Cut in the middle: the partial last line is never handed out. */
    DK_CHECK_INT(dk_jsonl_reader_open_mem(&r, (const char *)z, zn / 2, "half.gz", &err), 0);
    got = collect(r, &st, &err);
    DK_CHECK_INT(st, DK_EPARSE);
    DK_CHECK(dk_jsonl_reader_lines(r) < 300);
    DK_CHECK_INT(err.line, dk_jsonl_reader_lines(r) + 1);
    DK_CHECK(strstr(err.msg, "truncated gzip stream") != NULL);
    free(got);
    dk_jsonl_reader_free(r);

    /* Only the magic. */
    DK_CHECK_INT(dk_jsonl_reader_open_mem(&r, "\x1f\x8b", 2, "m.gz", &err), 0);
    DK_CHECK_INT(dk_jsonl_reader_next(r, &l, &err), DK_EPARSE);
    DK_CHECK_STR(err.msg, "m.gz:1: truncated gzip stream");
    dk_jsonl_reader_free(r);

    /* A damaged byte in the compressed data, or in the CRC. */
    unsigned char *bad = malloc(zn);
    memcpy(bad, z, zn);
    bad[zn - 6] ^= 0x55;
    DK_CHECK_INT(dk_jsonl_reader_open_mem(&r, (const char *)bad, zn, "crc.gz", &err), 0);
    got = collect(r, &st, &err);
    DK_CHECK_INT(st, DK_EPARSE);
    DK_CHECK(strstr(err.msg, "crc.gz:301: corrupt gzip data") == err.msg);
    free(got);
    dk_jsonl_reader_free(r);

    memcpy(bad, z, zn);
    bad[3] = 0xe0;  /* reserved flag bits: not a gzip header */
    DK_CHECK_INT(dk_jsonl_reader_open_mem(&r, (const char *)bad, zn, "hdr.gz", &err), 0);
    got = collect(r, &st, &err);
    DK_CHECK_INT(st, DK_EPARSE);
    DK_CHECK_STR(got, "");
    DK_CHECK(strstr(err.msg, "hdr.gz:1: corrupt gzip data") == err.msg);
    free(got);
    dk_jsonl_reader_free(r);

    /* Garbage after a complete member. */
    unsigned char *tail = malloc(zn + 3);
    memcpy(tail, z, zn);
    memcpy(tail + zn, "xyz", 3);
    DK_CHECK_INT(dk_jsonl_reader_open_mem(&r, (const char *)tail, zn + 3, "tail.gz", &err), 0);
    got = collect(r, &st, &err);
    DK_CHECK_INT(st, DK_EPARSE);
    DK_CHECK_INT(dk_jsonl_reader_lines(r), 300);
    free(got);
    dk_jsonl_reader_free(r);

    /* A file on disk names its path. */
    char path[64];
    tmp_file(path, ".jsonl.gz", z, zn - 4);
    DK_CHECK_INT(dk_jsonl_reader_open(&r, path, &err), 0);
    got = collect(r, &st, &err);
    DK_CHECK_INT(st, DK_EPARSE);
    DK_CHECK_STR(err.file, path);
    char want[128];
    snprintf(want, sizeof want, "%s:301: truncated gzip stream", path);
    DK_CHECK_STR(err.msg, want);
    free(got);
    dk_jsonl_reader_free(r);
    unlink(path);

    free(tail);
    free(bad);
    free(z);
}

/* Checks a batch against the lines it should hold. */
static void check_batch(const dk_jsonl_batch *b, const char *const *want, const long *lineno, size_t n)
{
    DK_CHECK_INT(b->n, n);
    for (size_t i = 0; i < n && i < b->n; i++) {
        DK_CHECK_INT(b->lines[i].len, strlen(want[i]));
        DK_CHECK_STR(b->lines[i].text, want[i]);
        DK_CHECK_INT(b->lines[i].lineno, lineno[i]);
        DK_CHECK(b->lines[i].text >= b->arena && b->lines[i].text < b->arena + b->arena_len);
    }
}

static void test_batch_limits(void)
{
    const char in[] = "aaaa\nbbbb\n\ncccc\ndddd\neeee\nffff\ngggg\n";
    dk_jsonl_reader *r = NULL;
    dk_error err;
    dk_jsonl_batch b = {0};

    /* max_lines. */
    DK_CHECK_INT(dk_jsonl_reader_open_mem(&r, in, sizeof in - 1, NULL, &err), 0);
    DK_CHECK_INT(dk_jsonl_reader_fill(r, &b, 3, 0, &err), 3);
    check_batch(&b, (const char *[]){"aaaa", "bbbb", "cccc"}, (const long[]){1, 2, 4}, 3);
    DK_CHECK_INT(dk_jsonl_reader_fill(r, &b, 3, 0, &err), 3);
    check_batch(&b, (const char *[]){"dddd", "eeee", "ffff"}, (const long[]){5, 6, 7}, 3);
    DK_CHECK_INT(dk_jsonl_reader_fill(r, &b, 3, 0, &err), 1);
    check_batch(&b, (const char *[]){"gggg"}, (const long[]){8}, 1);
    DK_CHECK_INT(dk_jsonl_reader_fill(r, &b, 3, 0, &err), 0);
    DK_CHECK_INT(b.n, 0);
    dk_jsonl_reader_free(r);

    /* max_bytes: a batch stops once 10 bytes of text are held (4 + 4 + 4). */
    DK_CHECK_INT(dk_jsonl_reader_open_mem(&r, in, sizeof in - 1, NULL, &err), 0);
    DK_CHECK_INT(dk_jsonl_reader_fill(r, &b, 100, 10, &err), 3);
    DK_CHECK_INT(dk_jsonl_reader_fill(r, &b, 100, 10, &err), 3);
    check_batch(&b, (const char *[]){"dddd", "eeee", "ffff"}, (const long[]){5, 6, 7}, 3);
    DK_CHECK_INT(dk_jsonl_reader_fill(r, &b, 100, 8, &err), 1);
    DK_CHECK_INT(dk_jsonl_reader_fill(r, &b, 100, 8, &err), 0);
    dk_jsonl_reader_free(r);

    /* A line longer than max_bytes is still taken whole, alone. */
    char big[300];
    memset(big, 'x', 200);
    memcpy(big + 200, "\nab\ncd\n", 8);
    DK_CHECK_INT(dk_jsonl_reader_open_mem(&r, big, strlen(big), NULL, &err), 0);
    DK_CHECK_INT(dk_jsonl_reader_fill(r, &b, 10, 16, &err), 1);
    DK_CHECK_INT(b.lines[0].len, 200);
    DK_CHECK(b.lines[0].text[0] == 'x' && b.lines[0].text[199] == 'x' && b.lines[0].text[200] == '\0');
    DK_CHECK_INT(dk_jsonl_reader_fill(r, &b, 10, 16, &err), 2);
    check_batch(&b, (const char *[]){"ab", "cd"}, (const long[]){2, 3}, 2);
    dk_jsonl_reader_free(r);
    dk_jsonl_batch_free(&b);
    dk_jsonl_batch_free(&b);
    dk_jsonl_batch_free(NULL);
}

/* Many lines in one batch: the arena moves while filling, the texts must follow. */
static void test_batch_arena_moves(void)
{
    size_t n = 0, cap = 1u << 20;
    char *in = malloc(cap);
    for (int i = 0; i < 20000; i++)
        n += (size_t)sprintf(in + n, "{\"line\":%d,\"pad\":\"................\"}\n", i);
    dk_jsonl_reader *r = NULL;
    dk_error err;
    dk_jsonl_batch b = {0};
    DK_CHECK_INT(dk_jsonl_reader_open_mem(&r, in, n, NULL, &err), 0);
    DK_CHECK_INT(dk_jsonl_reader_fill(r, &b, 0, 0, &err), 20000);
    char want[80];
    int bad = 0;
    for (size_t i = 0; i < b.n; i++) {
        int k = sprintf(want, "{\"line\":%zu,\"pad\":\"................\"}", i);
        if (b.lines[i].len != (size_t)k || strcmp(b.lines[i].text, want) != 0
            || b.lines[i].lineno != (long)i + 1)
            bad++;
    }
    DK_CHECK_INT(bad, 0);
    DK_CHECK_INT(b.arena_len, n);
    DK_CHECK_INT(dk_jsonl_reader_fill(r, &b, 0, 0, &err), 0);
    dk_jsonl_reader_free(r);
    dk_jsonl_batch_free(&b);
    free(in);
}

/* An error after some lines of a batch: those lines first, then the error. */
static void test_batch_error(void)
{
    size_t zn;
    unsigned char *z = gzip_mem("a\nb\nc\n", 6, &zn);
    dk_jsonl_reader *r = NULL;
    dk_error err;
    dk_jsonl_batch b = {0};
    DK_CHECK_INT(dk_jsonl_reader_open_mem(&r, (const char *)z, zn - 1, "e.gz", &err), 0);
    DK_CHECK_INT(dk_jsonl_reader_fill(r, &b, 10, 0, &err), 3);
    DK_CHECK_INT(dk_jsonl_reader_fill(r, &b, 10, 0, &err), DK_EPARSE);
    DK_CHECK_STR(err.msg, "e.gz:4: truncated gzip stream");
    DK_CHECK_INT(b.n, 0);
    dk_jsonl_reader_free(r);
    dk_jsonl_batch_free(&b);
    free(z);
}

static void test_open_errors(void)
{
    dk_jsonl_reader *r = (dk_jsonl_reader *)&r;
    dk_error err;
    DK_CHECK_INT(dk_jsonl_reader_open(&r, "/nonexistent-dir/x.jsonl", &err), DK_EIO);
    DK_CHECK(r == NULL);
    DK_CHECK_INT(err.code, DK_EIO);
    DK_CHECK_STR(err.file, "/nonexistent-dir/x.jsonl");
    DK_CHECK_STR(err.msg, "/nonexistent-dir/x.jsonl: no such file or directory");

    /* A directory opens but cannot be read. */
    DK_CHECK_INT(dk_jsonl_reader_open(&r, "/tmp", &err), 0);
    dk_jsonl_line l;
    DK_CHECK_INT(dk_jsonl_reader_next(r, &l, &err), DK_EIO);
    DK_CHECK_STR(err.msg, "/tmp:1: read error: is a directory");
    dk_jsonl_reader_free(r);

    dk_jsonl_writer *w = NULL;
    DK_CHECK_INT(dk_jsonl_writer_open(&w, "/nonexistent-dir/o.jsonl.gz", &err), DK_EIO);
    DK_CHECK(w == NULL);
    DK_CHECK_STR(err.msg, "/nonexistent-dir/o.jsonl.gz: no such file or directory");
}

/* A full disk: small writes fail at close, a large one at once; both name the file. */
static void test_writer_full_disk(void)
{
    if (access("/dev/full", W_OK) != 0) {
        printf("test_writer_full_disk: /dev/full missing, skipped\n");
        return;
    }
    dk_jsonl_writer *w = NULL;
    dk_error err;
    DK_CHECK_INT(dk_jsonl_writer_open(&w, "/dev/full", &err), 0);
    DK_CHECK_INT(dk_jsonl_writer_line(w, "{}", 2, &err), 0);
    DK_CHECK_INT(dk_jsonl_writer_close(w, &err), DK_EIO);
    DK_CHECK_STR(err.file, "/dev/full");
    DK_CHECK_STR(err.msg, "/dev/full: write error: no space left on device");

    DK_CHECK_INT(dk_jsonl_writer_open(&w, "/dev/full", &err), 0);
    size_t n = 1u << 20;
    char *big = calloc(1, n);
    DK_CHECK_INT(dk_jsonl_writer_line(w, big, n, &err), DK_EIO);
    DK_CHECK_INT(dk_jsonl_writer_line(w, "{}", 2, &err), DK_EIO);
    DK_CHECK_INT(dk_jsonl_writer_close(w, &err), DK_EIO);
    DK_CHECK_STR(err.msg, "/dev/full: write error: no space left on device");
    free(big);
}

int main(void)
{
    DK_RUN(test_line_ends);
    DK_RUN(test_no_final_newline);
    DK_RUN(test_bom);
    DK_RUN(test_blank_lines);
    DK_RUN(test_empty_and_only_blank);
    DK_RUN(test_huge_line);
    DK_RUN(test_gzip_round_trip);
    DK_RUN(test_plain_file_and_stdin);
    DK_RUN(test_gzip_mem);
    DK_RUN(test_gzip_corrupt);
    DK_RUN(test_batch_limits);
    DK_RUN(test_batch_arena_moves);
    DK_RUN(test_batch_error);
    DK_RUN(test_open_errors);
    DK_RUN(test_writer_full_disk);
    DK_TEST_MAIN_END("test_jsonl");
}
