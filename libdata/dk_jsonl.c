/* dk_jsonl: the streaming JSON Lines reader and buffered writer (see dk_jsonl.h).
 *
 * Reader: one growable buffer holds decoded text; [start, end) is not yet handed out,
 * [scan, end) is not yet searched for '\n' (so a line spanning many refills is scanned
 * once, not once per refill), and end < cap always, so a last line without '\n' can
 * still be NUL-terminated in place. Lines are found with memchr and handed out as
 * pointers into the buffer (their '\n' or '\r' overwritten by the NUL), so the hot path
 * makes no allocation and no per-byte call. The buffer only grows (geometrically)
 * when one line does not fit, so memory is bounded by the longest line, never the file.
 * gzip is recognised by its magic on the first bytes, whatever the source, and
 * decoded with inflate (member after member, so concatenated members work).
 *
 * Writer: its own buffer; chunks larger than it go straight to write(2) (files),
 * fwrite (stdout, which the tool's stdio may share) or gzwrite (".gz" files).
 */
#define ZLIB_CONST
#include "dk_jsonl.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define DK_JSONL_RBUF   (1u << 20)  /* reader: initial text buffer and gzip input buffer */
#define DK_JSONL_WBUF   (1u << 18)  /* writer buffer */
#define DK_JSONL_ZCHUNK (1u << 30)  /* largest slice handed to zlib at once (uInt counts) */

enum { SRC_FD, SRC_MEM };

struct dk_jsonl_reader {
    char   *name;
    int     src;            /* SRC_FD or SRC_MEM */
    int     fd, own_fd;
    const unsigned char *mem;
    size_t  mem_len, mem_pos;
    int     src_eof;        /* the source (compressed or not) has no more bytes */

    char   *buf;
    size_t  cap, start, scan, end;
    int     sniffed;        /* gzip magic checked */
    int     eof;            /* no more decoded text will come */

    int     gz;             /* input is gzip */
    int     gz_inited, gz_member_done;
    z_stream z;
    unsigned char *zbuf;    /* compressed bytes from an fd source */
    size_t  zcap;

    long    lines, blank;
    int     failed;         /* sticky: once the buffered lines are out, every call */
    char    fwhat[200];     /* returns this error */
};

struct dk_jsonl_writer {
    char   *name;
    int     fd;             /* -1 for stdout and gzip */
    int     to_stdout;
    gzFile  gzf;
    char   *buf;
    size_t  len, cap;
    int     failed;
    dk_error ferr;
};

/* strerror in the house's lower case ("no such file or directory"). */
static const char *errstr(int e, char *tmp, size_t n)
{
    snprintf(tmp, n, "%s", strerror(e));
    if (tmp[0] && isupper((unsigned char)tmp[0]) && !isupper((unsigned char)tmp[1]))
        tmp[0] = (char)tolower((unsigned char)tmp[0]);
    return tmp;
}

/* Reports the reader's failure at the line being read. */
static int rreport(const dk_jsonl_reader *r, dk_error *err)
{
    long line = r->lines + 1;
    return dk_error_set(err, r->failed, r->name, line, "%s:%ld: %s", r->name, line, r->fwhat);
}

/* Records a failure, reported once the text decoded before it has been handed out. */
static void rfail_later(dk_jsonl_reader *r, int code, const char *what)
{
    if (!r->failed) {
        r->failed = code;
        snprintf(r->fwhat, sizeof r->fwhat, "%s", what);
    }
}

static int rfail(dk_jsonl_reader *r, dk_error *err, int code, const char *what)
{
    rfail_later(r, code, what);
    return rreport(r, err);
}

static int reader_new(dk_jsonl_reader **out, const char *name, size_t cap, dk_error *err)
{
    dk_jsonl_reader *r = calloc(1, sizeof *r);
    if (!r)
        goto nomem;
    r->fd = -1;
    r->name = strdup(name);
    r->cap = cap;
    r->buf = malloc(r->cap);
    if (!r->name || !r->buf)
        goto nomem;
    *out = r;
    return 0;
nomem:
    dk_jsonl_reader_free(r);
    return dk_error_set(err, DK_ENOMEM, name, 0, "%s: out of memory", name);
}

int dk_jsonl_reader_open(dk_jsonl_reader **out, const char *path, dk_error *err)
{
    *out = NULL;
    int use_stdin = !path || strcmp(path, "-") == 0;
    const char *name = use_stdin ? "<stdin>" : path;
    int fd = 0;
    if (!use_stdin) {
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            char tmp[128];
            return dk_error_set(err, DK_EIO, path, 0, "%s: %s", path,
                                errstr(errno, tmp, sizeof tmp));
        }
        (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    }
    dk_jsonl_reader *r = NULL;
    int rc = reader_new(&r, name, DK_JSONL_RBUF, err);
    if (rc < 0) {
        if (!use_stdin)
            close(fd);
        return rc;
    }
    r->src = SRC_FD;
    r->fd = fd;
    r->own_fd = !use_stdin;
    *out = r;
    return 0;
}

int dk_jsonl_reader_open_mem(dk_jsonl_reader **out, const char *data, size_t len,
                             const char *name, dk_error *err)
{
    *out = NULL;
    dk_jsonl_reader *r = NULL;
    /* Small inputs (tests, fuzzing) get a small buffer, grown like any other. */
    size_t cap = len < DK_JSONL_RBUF ? len + 16 : DK_JSONL_RBUF;
    int rc = reader_new(&r, name ? name : "<memory>", cap, err);
    if (rc < 0)
        return rc;
    r->src = SRC_MEM;
    r->mem = (const unsigned char *)data;
    r->mem_len = data ? len : 0;
    *out = r;
    return 0;
}

void dk_jsonl_reader_free(dk_jsonl_reader *r)
{
    if (!r)
        return;
    if (r->gz_inited)
        inflateEnd(&r->z);
    if (r->own_fd && r->fd >= 0)
        close(r->fd);
    free(r->zbuf);
    free(r->buf);
    free(r->name);
    free(r);
}

/* Raw bytes from the source into dst: count, 0 at end, or a negative DK_E.... */
static long src_read(dk_jsonl_reader *r, void *dst, size_t n, dk_error *err)
{
    if (r->src == SRC_MEM) {
        size_t k = r->mem_len - r->mem_pos;
        if (k > n)
            k = n;
        memcpy(dst, r->mem + r->mem_pos, k);
        r->mem_pos += k;
        return (long)k;
    }
    if (n > (size_t)LONG_MAX)
        n = (size_t)LONG_MAX;
    for (;;) {
        ssize_t k = read(r->fd, dst, n);
        if (k >= 0)
            return (long)k;
        if (errno != EINTR) {
            char tmp[128], what[160];
            snprintf(what, sizeof what, "read error: %s", errstr(errno, tmp, sizeof tmp));
            return rfail(r, err, DK_EIO, what);
        }
    }
}

/* Makes compressed input available to inflate; sets src_eof when there is none. */
static int gz_feed(dk_jsonl_reader *r, dk_error *err)
{
    if (r->src == SRC_MEM) {
        size_t k = r->mem_len - r->mem_pos;
        if (k > DK_JSONL_ZCHUNK)
            k = DK_JSONL_ZCHUNK;
        r->z.next_in = r->mem + r->mem_pos;
        r->z.avail_in = (uInt)k;
        r->mem_pos += k;
        if (k == 0)
            r->src_eof = 1;
        return 0;
    }
    long k = src_read(r, r->zbuf, r->zcap, err);
    if (k < 0)
        return (int)k;
    r->z.next_in = r->zbuf;
    r->z.avail_in = (uInt)k;
    if (k == 0)
        r->src_eof = 1;
    return 0;
}

/* Inflates into dst: bytes produced (> 0), 0 at the end of the last member, or a
 * negative DK_E.... */
static long gz_read(dk_jsonl_reader *r, char *dst, size_t room, dk_error *err)
{
    if (room > DK_JSONL_ZCHUNK)
        room = DK_JSONL_ZCHUNK;
    r->z.next_out = (unsigned char *)dst;
    r->z.avail_out = (uInt)room;
    for (;;) {
        if (r->z.avail_in == 0 && !r->src_eof) {
            int rc = gz_feed(r, err);
            if (rc < 0)
                return rc;
        }
        size_t produced = room - r->z.avail_out;
        if (r->gz_member_done) {
            if (r->z.avail_in == 0) {
                if (r->src_eof)
                    return (long)produced;
                continue;
            }
            /* Another member follows (or garbage, which inflate then rejects). */
            inflateReset(&r->z);
            r->gz_member_done = 0;
        }
        int zr = inflate(&r->z, Z_NO_FLUSH);
        produced = room - r->z.avail_out;
        if (zr == Z_STREAM_END) {
            r->gz_member_done = 1;
            if (produced > 0)
                return (long)produced;
            continue;
        }
        if (zr == Z_OK) {
            if (produced > 0)
                return (long)produced;
            continue;
        }
        if (zr == Z_BUF_ERROR && r->z.avail_in == 0) {
            if (produced > 0)
                return (long)produced;
            if (r->src_eof)
                return rfail(r, err, DK_EPARSE, "truncated gzip stream");
            continue;
        }
        char what[160];
        snprintf(what, sizeof what, "corrupt gzip data (%s)", r->z.msg ? r->z.msg : "zlib error");
        if (zr == Z_MEM_ERROR)
            snprintf(what, sizeof what, "out of memory");
        rfail_later(r, zr == Z_MEM_ERROR ? DK_ENOMEM : DK_EPARSE, what);
        /* The text inflated before the damage is handed out first. */
        return produced > 0 ? (long)produced : rreport(r, err);
    }
}

/* On the first read: looks for the gzip magic and, if found, switches to inflate.
 * Plain bytes read while looking stay in the text buffer. */
static int sniff(dk_jsonl_reader *r, dk_error *err)
{
    r->sniffed = 1;
    int is_gz;
    if (r->src == SRC_MEM) {
        is_gz = r->mem_len >= 2 && r->mem[0] == 0x1f && r->mem[1] == 0x8b;
    } else {
        /* A pipe may deliver one byte at a time: read until two or the end. */
        while (r->end < 2) {
            long k = src_read(r, r->buf + r->end, r->cap - 1 - r->end, err);
            if (k < 0)
                return (int)k;
            if (k == 0) {
                r->src_eof = 1;
                break;
            }
            r->end += (size_t)k;
        }
        is_gz = r->end >= 2 && (unsigned char)r->buf[0] == 0x1f
                && (unsigned char)r->buf[1] == 0x8b;
    }
    if (!is_gz) {
        if (r->src_eof)
            r->eof = 1;
        return 0;
    }
    r->gz = 1;
    if (r->src == SRC_FD) {
        /* The bytes read so far are compressed input: that buffer becomes zbuf. */
        r->zbuf = (unsigned char *)r->buf;
        r->zcap = r->cap;
        r->z.next_in = r->zbuf;
        r->z.avail_in = (uInt)r->end;
        r->buf = malloc(r->cap);
        r->end = r->scan = r->start = 0;
        if (!r->buf)
            return rfail(r, err, DK_ENOMEM, "out of memory");
    }
    if (inflateInit2(&r->z, 16 + MAX_WBITS) != Z_OK)
        return rfail(r, err, DK_ENOMEM, "out of memory");
    r->gz_inited = 1;
    return 0;
}

/* Adds decoded text after end, first compacting or growing the buffer; sets eof when
 * there is no more. */
static int refill(dk_jsonl_reader *r, dk_error *err)
{
    if (r->failed)
        return rreport(r, err);
    if (!r->sniffed) {
        int rc = sniff(r, err);
        if (rc < 0 || r->end > 0 || r->eof)
            return rc;
    }
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->scan -= r->start;
        r->start = 0;
    }
    /* The unfinished line fills most of the buffer: grow it, so every read stays large. */
    if (r->cap - 1 - r->end < r->cap / 4) {
        if (r->cap > SIZE_MAX / 2)
            return rfail(r, err, DK_ENOMEM, "line too long for memory");
        char *nb = realloc(r->buf, r->cap * 2);
        if (!nb)
            return rfail(r, err, DK_ENOMEM, "out of memory");
        r->buf = nb;
        r->cap *= 2;
    }
    size_t room = r->cap - 1 - r->end;
    long k = r->gz ? gz_read(r, r->buf + r->end, room, err)
                   : src_read(r, r->buf + r->end, room, err);
    if (k < 0)
        return (int)k;
    if (k == 0)
        r->eof = 1;
    r->end += (size_t)k;
    return 0;
}

static inline int is_blank(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
            return 0;
    return 1;
}

int dk_jsonl_reader_next(dk_jsonl_reader *r, dk_jsonl_line *line, dk_error *err)
{
    for (;;) {
        char *p = r->buf + r->start;
        size_t len;
        char *nl = r->scan < r->end ? memchr(r->buf + r->scan, '\n', r->end - r->scan) : NULL;
        if (nl) {
            len = (size_t)(nl - p);
            r->start = r->scan = (size_t)(nl - r->buf) + 1;
            if (len > 0 && p[len - 1] == '\r')
                len--;
        } else {
            r->scan = r->end;
            if (!r->eof) {
                int rc = refill(r, err);
                if (rc < 0)
                    return rc;
                continue;
            }
            if (r->start == r->end)
                return 0;
            len = r->end - r->start;
            r->start = r->scan = r->end;
        }
        r->lines++;
        if (r->lines == 1 && len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) {
            p += 3;
            len -= 3;
        }
        if (is_blank(p, len)) {
            r->blank++;
            continue;
        }
        p[len] = '\0';
        line->text = p;
        line->len = len;
        line->lineno = r->lines;
        return 1;
    }
}

/* The capacity (from cap, doubling; first when 0) that holds need, or 0 on overflow. */
static size_t grown(size_t cap, size_t need, size_t sz, size_t first)
{
    size_t nc = cap ? cap : first;
    while (nc < need) {
        if (nc > SIZE_MAX / 2 / sz)
            return 0;
        nc *= 2;
    }
    return nc;
}

/* Makes room in b for one more line of len bytes (and its NUL). */
static int batch_reserve(dk_jsonl_batch *b, size_t len)
{
    if (b->n + 1 > b->cap) {
        size_t nc = grown(b->cap, b->n + 1, sizeof *b->lines, 256);
        dk_jsonl_line *nl = nc ? realloc(b->lines, nc * sizeof *nl) : NULL;
        if (!nl)
            return -1;
        b->lines = nl;
        b->cap = nc;
    }
    if (len > SIZE_MAX - 1 - b->arena_len)
        return -1;
    if (b->arena_len + len + 1 > b->arena_cap) {
        size_t nc = grown(b->arena_cap, b->arena_len + len + 1, 1, 1u << 16);
        char *na = nc ? realloc(b->arena, nc) : NULL;
        if (!na)
            return -1;
        b->arena = na;
        b->arena_cap = nc;
    }
    return 0;
}

int dk_jsonl_reader_fill(dk_jsonl_reader *r, dk_jsonl_batch *b, size_t max_lines,
                         size_t max_bytes, dk_error *err)
{
    b->n = 0;
    b->arena_len = 0;
    if (max_lines == 0 || max_lines > INT_MAX)
        max_lines = INT_MAX;
    size_t held = 0;
    dk_error lerr;
    while (b->n < max_lines) {
        dk_jsonl_line l;
        int rc = dk_jsonl_reader_next(r, &l, &lerr);
        if (rc < 0) {
            if (b->n > 0)
                break;  /* the error is sticky: the next call returns it */
            if (err)
                *err = lerr;
            return rc;
        }
        if (rc == 0)
            break;
        if (batch_reserve(b, l.len) < 0) {
            b->n = 0;
            return dk_error_set(err, DK_ENOMEM, r->name, l.lineno, "%s:%ld: out of memory",
                                r->name, l.lineno);
        }
        /* Texts are placed by offset; pointers are set once the arena stops moving. */
        memcpy(b->arena + b->arena_len, l.text, l.len + 1);
        b->lines[b->n].text = NULL;
        b->lines[b->n].len = l.len;
        b->lines[b->n].lineno = l.lineno;
        b->n++;
        b->arena_len += l.len + 1;
        held += l.len;
        if (max_bytes && held >= max_bytes)
            break;
    }
    size_t off = 0;
    for (size_t i = 0; i < b->n; i++) {
        b->lines[i].text = b->arena + off;
        off += b->lines[i].len + 1;
    }
    return (int)b->n;
}

long dk_jsonl_reader_blank_lines(const dk_jsonl_reader *r) { return r->blank; }
long dk_jsonl_reader_lines(const dk_jsonl_reader *r) { return r->lines; }
const char *dk_jsonl_reader_name(const dk_jsonl_reader *r) { return r->name; }

void dk_jsonl_batch_free(dk_jsonl_batch *b)
{
    if (!b)
        return;
    free(b->lines);
    free(b->arena);
    memset(b, 0, sizeof *b);
}

/* ---- writer ---- */

static int wfail(dk_jsonl_writer *w, dk_error *err, int code, const char *what)
{
    if (!w->failed) {
        dk_error_set(&w->ferr, code, w->name, 0, "%s: %s", w->name, what);
        w->failed = code;
    }
    if (err)
        *err = w->ferr;
    return w->failed;
}

static int wfail_errno(dk_jsonl_writer *w, dk_error *err, int e)
{
    char tmp[128], what[160];
    snprintf(what, sizeof what, "write error: %s", errstr(e, tmp, sizeof tmp));
    return wfail(w, err, DK_EIO, what);
}

static int wfail_gz(dk_jsonl_writer *w, dk_error *err)
{
    int zerr = Z_OK;
    const char *m = gzerror(w->gzf, &zerr);
    if (zerr == Z_ERRNO)
        return wfail_errno(w, err, errno);
    char what[160];
    snprintf(what, sizeof what, "gzip write error: %s", m ? m : "zlib error");
    return wfail(w, err, zerr == Z_MEM_ERROR ? DK_ENOMEM : DK_EIO, what);
}

/* Writes data out unbuffered. */
static int wout(dk_jsonl_writer *w, const char *data, size_t len, dk_error *err)
{
    if (w->gzf) {
        while (len > 0) {
            unsigned k = len > DK_JSONL_ZCHUNK ? DK_JSONL_ZCHUNK : (unsigned)len;
            if (gzwrite(w->gzf, data, k) != (int)k)
                return wfail_gz(w, err);
            data += k;
            len -= k;
        }
        return 0;
    }
    if (w->to_stdout) {
        if (len > 0 && fwrite(data, 1, len, stdout) != len)
            return wfail_errno(w, err, errno ? errno : EIO);
        return 0;
    }
    while (len > 0) {
        ssize_t k = write(w->fd, data, len);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return wfail_errno(w, err, errno);
        }
        data += k;
        len -= (size_t)k;
    }
    return 0;
}

static int wflush(dk_jsonl_writer *w, dk_error *err)
{
    size_t n = w->len;
    w->len = 0;
    return n ? wout(w, w->buf, n, err) : 0;
}

int dk_jsonl_writer_open(dk_jsonl_writer **out, const char *path, dk_error *err)
{
    *out = NULL;
    int use_stdout = !path || strcmp(path, "-") == 0;
    const char *name = use_stdout ? "<stdout>" : path;
    char tmp[128];
    int rc = 0;
    dk_jsonl_writer *w = calloc(1, sizeof *w);
    if (!w || !(w->name = strdup(name)) || !(w->buf = malloc(DK_JSONL_WBUF))) {
        rc = dk_error_set(err, DK_ENOMEM, name, 0, "%s: out of memory", name);
        goto out;
    }
    w->cap = DK_JSONL_WBUF;
    w->fd = -1;
    w->to_stdout = use_stdout;
    if (use_stdout)
        goto out;
    w->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (w->fd < 0) {
        rc = dk_error_set(err, DK_EIO, path, 0, "%s: %s", path, errstr(errno, tmp, sizeof tmp));
        goto out;
    }
    size_t n = strlen(path);
    if (n >= 3 && strcmp(path + n - 3, ".gz") == 0) {
        w->gzf = gzdopen(w->fd, "wb");
        if (!w->gzf) {
            rc = dk_error_set(err, DK_ENOMEM, path, 0, "%s: out of memory", path);
            goto out;
        }
        w->fd = -1;  /* gzclose closes it */
        gzbuffer(w->gzf, DK_JSONL_WBUF);
    }
out:
    if (rc < 0) {
        if (w && w->fd >= 0)
            close(w->fd);
        if (w) {
            free(w->buf);
            free(w->name);
        }
        free(w);
        return rc;
    }
    *out = w;
    return 0;
}

int dk_jsonl_writer_write(dk_jsonl_writer *w, const char *data, size_t len, dk_error *err)
{
    if (w->failed)
        return wfail(w, err, w->failed, NULL);
    if (len <= w->cap - w->len) {
        memcpy(w->buf + w->len, data, len);
        w->len += len;
        return 0;
    }
    int rc = wflush(w, err);
    if (rc < 0)
        return rc;
    if (len >= w->cap)
        return wout(w, data, len, err);
    memcpy(w->buf, data, len);
    w->len = len;
    return 0;
}

int dk_jsonl_writer_line(dk_jsonl_writer *w, const char *text, size_t len, dk_error *err)
{
    if (len < w->cap - w->len) {  /* the common case: text and "\n" fit */
        if (w->failed)
            return wfail(w, err, w->failed, NULL);
        memcpy(w->buf + w->len, text, len);
        w->buf[w->len + len] = '\n';
        w->len += len + 1;
        return 0;
    }
    int rc = dk_jsonl_writer_write(w, text, len, err);
    return rc < 0 ? rc : dk_jsonl_writer_write(w, "\n", 1, err);
}

int dk_jsonl_writer_close(dk_jsonl_writer *w, dk_error *err)
{
    if (!w)
        return 0;
    int rc = w->failed ? wfail(w, err, w->failed, NULL) : wflush(w, err);
    if (w->gzf) {
        int zr = gzclose_w(w->gzf);
        if (zr != Z_OK && rc == 0) {
            char what[160];
            if (zr == Z_ERRNO)
                rc = wfail_errno(w, err, errno);
            else {
                snprintf(what, sizeof what, "gzip close error %d", zr);
                rc = wfail(w, err, zr == Z_MEM_ERROR ? DK_ENOMEM : DK_EIO, what);
            }
        }
    } else if (w->to_stdout) {
        if ((fflush(stdout) != 0 || ferror(stdout)) && rc == 0)
            rc = wfail_errno(w, err, errno ? errno : EIO);
    } else if (w->fd >= 0) {
        if (close(w->fd) != 0 && rc == 0)
            rc = wfail_errno(w, err, errno);
    }
    free(w->buf);
    free(w->name);
    free(w);
    return rc;
}
