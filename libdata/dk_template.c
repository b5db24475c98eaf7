/* dk_template: a Jinja2-subset interpreter that renders chat templates exactly as
 * @huggingface/jinja 0.5.11 does (see dk_template.h for the contract).
 *
 * Pipeline: preprocess (the reference's regex rewrites for lstrip_blocks, trim_blocks
 * and the {% generation %} tag, keeping each byte's original line) -> lexer (the
 * reference's token rules, quirks included) -> recursive-descent parser (same grammar
 * and precedence) -> tree-walking renderer over a small value model.
 *
 * Invariants of the implementation:
 *   - JavaScript semantics where they show in the output: numbers are doubles with an
 *     integer/float tag, printed as Number.prototype.toString does; string lengths and
 *     indices count UTF-16 units; slices count code points; white space is the set of
 *     JavaScript's \s; == is JavaScript's loose equality (an object against a scalar
 *     through its primitive); a none holds undefined, as the reference's does.
 *   - A render owns one arena; every value, scope and temporary lives in it, so the
 *     error path (longjmp to dk_template_render) and break/continue (longjmp to the
 *     innermost loop, as the reference's exceptions do) free nothing by hand. No code
 *     holds malloc'ed memory across a call that may allocate from the arena.
 *   - The parse tree is immutable after dk_template_parse; a render never writes it.
 */
#include "dk_template.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <unicode/ucasemap.h>
#include <unicode/ustring.h>

/* ------------------------------------------------------------------------------------
 * Arena: bump allocation in chunks, with an optional byte limit.
 */
typedef struct chunk {
    struct chunk *next;
    size_t        used, cap;
    max_align_t   data[];
} chunk;

typedef struct arena {
    chunk  *head;
    size_t  total;   /* bytes of chunks held */
    size_t  limit;   /* 0 = none */
} arena;

static void arena_free(arena *a)
{
    chunk *c = a->head;
    while (c) {
        chunk *n = c->next;
        free(c);
        c = n;
    }
    a->head = NULL;
    a->total = 0;
}

/* NULL on out of memory or over the limit (*over set to 1 for the latter). */
static void *arena_alloc(arena *a, size_t n, int *over)
{
    n = (n + 15) & ~(size_t)15;
    if (n == 0)
        n = 16;
    chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        /* Chunks grow from 16 KiB: a small render never frees a block big enough to
         * make glibc consolidate its fast bins, which showed in profiles. */
        size_t want = a->total < 16384 ? 16384 : a->total > ((size_t)1 << 20) ? (size_t)1 << 20 : a->total;
        size_t cap = n > want - sizeof(chunk) ? n : want - sizeof(chunk);
        if (cap > SIZE_MAX - sizeof(chunk))
            return NULL;
        if (a->limit && (a->total + cap + sizeof(chunk) > a->limit || cap > a->limit)) {
            if (over)
                *over = 1;
            return NULL;
        }
        c = malloc(sizeof(chunk) + cap);
        if (!c)
            return NULL;
        c->used = 0;
        c->cap = cap;
        c->next = a->head;
        a->head = c;
        a->total += sizeof(chunk) + cap;
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    return p;
}

/* ------------------------------------------------------------------------------------
 * UTF-8 helpers. Template sources and context strings are validated UTF-8, so the
 * decoder may assume well-formed input.
 */
static size_t u8_dec(const char *s, size_t n, uint32_t *cp)
{
    const unsigned char *p = (const unsigned char *)s;
    if (n == 0)
        return 0;
    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    }
    if ((p[0] & 0xE0) == 0xC0 && n >= 2) {
        *cp = ((uint32_t)(p[0] & 0x1F) << 6) | (p[1] & 0x3F);
        return 2;
    }
    if ((p[0] & 0xF0) == 0xE0 && n >= 3) {
        *cp = ((uint32_t)(p[0] & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
        return 3;
    }
    if ((p[0] & 0xF8) == 0xF0 && n >= 4) {
        *cp = ((uint32_t)(p[0] & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12) |
              ((uint32_t)(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
        return 4;
    }
    *cp = 0xFFFD;
    return 1;
}

static size_t u8_enc(uint32_t cp, char *out)
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

/* Strict UTF-8 (no overlongs, surrogates or values above U+10FFFF). */
static int u8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k;
        uint32_t cp, min;
        if (c >= 0xC2 && c <= 0xDF) { k = 1; cp = c & 0x1F; min = 0x80; }
        else if (c >= 0xE0 && c <= 0xEF) { k = 2; cp = c & 0x0F; min = 0x800; }
        else if (c >= 0xF0 && c <= 0xF4) { k = 3; cp = c & 0x07; min = 0x10000; }
        else return 0;
        if (n - i - 1 < k)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i + j] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += k + 1;
    }
    return 1;
}

/* JavaScript's white space (\s, String.prototype.trim): byte length of the white-space
 * character at s, or 0. */
static size_t js_ws(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    if (n == 0)
        return 0;
    if (p[0] < 0x80)
        return (p[0] == ' ' || (p[0] >= 9 && p[0] <= 13)) ? 1 : 0;
    uint32_t cp;
    size_t k = u8_dec(s, n, &cp);
    switch (cp) {
    case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F:
    case 0x3000: case 0xFEFF:
        return k;
    default:
        return (cp >= 0x2000 && cp <= 0x200A) ? k : 0;
    }
}

/* Length of the white-space character that ends at s[end) (looking no further back
 * than s[start]), or 0. */
static size_t js_ws_before(const char *s, size_t start, size_t end)
{
    for (size_t k = 1; k <= 3 && k <= end - start; k++) {
        unsigned char b = (unsigned char)s[end - k];
        if (k == 1 && b < 0x80)
            return js_ws(s + end - 1, 1);
        if (b >= 0xC0)
            return js_ws(s + end - k, k) == k ? k : 0;
    }
    return 0;
}

static size_t trim_start_len(const char *s, size_t n)
{
    size_t i = 0, k;
    while (i < n && (k = js_ws(s + i, n - i)) > 0)
        i += k;
    return i;
}

static size_t trim_end_len(const char *s, size_t n)
{
    size_t e = n, k;
    while (e > 0 && (k = js_ws_before(s, 0, e)) > 0)
        e -= k;
    return e;
}

/* UTF-16 length of valid UTF-8. */
static size_t u16_len(const char *s, size_t n)
{
    size_t u = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c & 0xC0) != 0x80)
            u += c >= 0xF0 ? 2 : 1;
    }
    return u;
}

/* Compares two strings in UTF-16 code-unit order (JavaScript's < on strings). */
static int u16_cmp(const char *a, size_t an, const char *b, size_t bn)
{
    size_t i = 0, j = 0;
    while (i < an && j < bn) {
        uint32_t x, y;
        size_t ka = u8_dec(a + i, an - i, &x), kb = u8_dec(b + j, bn - j, &y);
        if (x != y) {
            /* Astral code points sort as their lead surrogate (0xD800..0xDBFF). */
            uint32_t ux = x >= 0x10000 ? 0xD800 + ((x - 0x10000) >> 10) : x;
            uint32_t uy = y >= 0x10000 ? 0xD800 + ((y - 0x10000) >> 10) : y;
            if (ux != uy)
                return ux < uy ? -1 : 1;
            uint32_t lx = 0xDC00 + ((x - 0x10000) & 0x3FF), ly = 0xDC00 + ((y - 0x10000) & 0x3FF);
            return lx < ly ? -1 : 1;
        }
        i += ka;
        j += kb;
    }
    if (i < an)
        return 1;
    if (j < bn)
        return -1;
    return 0;
}

/* ------------------------------------------------------------------------------------
 * JavaScript number formatting.
 */

/* Number.prototype.toString() (radix 10). buf holds at least 40 bytes. */
static size_t js_num_str(double v, char *buf)
{
    if (isnan(v))
        return (size_t)sprintf(buf, "NaN");
    if (isinf(v))
        return (size_t)sprintf(buf, v < 0 ? "-Infinity" : "Infinity");
    if (v == 0)
        return (size_t)sprintf(buf, "0");
    char tmp[40], digits[24];
    int k = 0, e = 0;
    for (int p = 1; p <= 17; p++) {
        snprintf(tmp, sizeof tmp, "%.*e", p - 1, v);
        if (strtod(tmp, NULL) == v || p == 17) {
            const char *q = tmp;
            if (*q == '-')
                q++;
            k = 0;
            for (; *q && *q != 'e'; q++)
                if (isdigit((unsigned char)*q))
                    digits[k++] = *q;
            digits[k] = '\0';
            e = atoi(q + 1);
            break;
        }
    }
    while (k > 1 && digits[k - 1] == '0')
        digits[--k] = '\0';
    int n = e + 1;
    char *o = buf;
    if (v < 0)
        *o++ = '-';
    if (k <= n && n <= 21) {
        memcpy(o, digits, (size_t)k);
        o += k;
        for (int i = 0; i < n - k; i++)
            *o++ = '0';
    } else if (0 < n && n <= 21) {
        memcpy(o, digits, (size_t)n);
        o += n;
        *o++ = '.';
        memcpy(o, digits + n, (size_t)(k - n));
        o += k - n;
    } else if (-6 < n && n <= 0) {
        *o++ = '0';
        *o++ = '.';
        for (int i = 0; i < -n; i++)
            *o++ = '0';
        memcpy(o, digits, (size_t)k);
        o += k;
    } else {
        *o++ = digits[0];
        if (k > 1) {
            *o++ = '.';
            memcpy(o, digits + 1, (size_t)(k - 1));
            o += k - 1;
        }
        o += sprintf(o, "e%c%d", n - 1 >= 0 ? '+' : '-', abs(n - 1));
    }
    *o = '\0';
    return (size_t)(o - buf);
}

/* The reference's FloatValue.toString(): integral values keep one decimal. buf holds
 * at least 350 bytes (toFixed of values below 1e21). */
static size_t js_float_str(double v, char *buf)
{
    if (v == 0 && signbit(v))
        return (size_t)sprintf(buf, "-0.0");
    if (isfinite(v) && fmod(v, 1.0) == 0) {
        if (fabs(v) >= 1e21)
            return js_num_str(v, buf);
        return (size_t)sprintf(buf, "%.1f", v);
    }
    return js_num_str(v, buf);
}

/* ------------------------------------------------------------------------------------
 * Template: preprocessing, tokens, parse tree.
 */
enum {
    T_TEXT, T_NUM, T_STR, T_IDENT, T_EQUALS, T_LPAREN, T_RPAREN, T_OPEN_STMT, T_CLOSE_STMT,
    T_OPEN_EXPR, T_CLOSE_EXPR, T_LBRACK, T_RBRACK, T_LBRACE, T_RBRACE, T_COMMA, T_DOT,
    T_COLON, T_PIPE, T_ADD, T_MUL, T_POW, T_CMP, T_UNARY, T_COMMENT, T_EOF,
};

static const char *const tok_names[] = {
    "text", "number", "string", "identifier", "'='", "'('", "')'", "'{%'", "'%}'", "'{{'",
    "'}}'", "'['", "']'", "'{'", "'}'", "','", "'.'", "':'", "'|'", "operator", "operator",
    "'**'", "comparison", "unary operator", "comment", "end of template",
};

typedef struct tok {
    int         type;
    int         line;
    const char *s;
    size_t      n;
} tok;

enum {
    N_TEXT, N_COMMENT, N_IF, N_FOR, N_SET, N_MACRO, N_BREAK, N_CONTINUE, N_FILTERBLOCK, N_CALLBLOCK,
    N_INT, N_FLOAT, N_STR, N_ARRAY, N_TUPLE, N_OBJECT, N_IDENT, N_MEMBER, N_SLICE, N_CALL,
    N_KWARG, N_SPREAD, N_KWSPREAD, N_UNARY, N_BINARY, N_FILTER, N_TEST, N_SELECT,
    N_TERNARY,
};

/* Binary and unary operators. */
enum {
    OP_OR, OP_AND, OP_NOT, OP_EQ, OP_NE, OP_LT, OP_GT, OP_LE, OP_GE, OP_IN, OP_NOTIN,
    OP_ADD, OP_SUB, OP_CONCAT, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW,
};

typedef struct node node;
struct node {
    int     kind;
    int     line;
    int     op;      /* OP_* for unary/binary; negate for N_TEST; computed for N_MEMBER;
                        SPECIAL_* bits for N_MACRO / N_CALLBLOCK */
    int     sym;     /* symbol of N_IDENT / N_KWARG / N_MACRO / N_TEST */
    double  num;
    const char *s;   /* string literal / identifier text */
    size_t  n;
    node   *a, *b, *c;
    node  **list;    /* body / elements / args / object keys */
    size_t  nlist;
    node  **list2;   /* else-body / object values */
    size_t  nlist2;
};

/* Symbols fixed at startup, in this order. */
enum {
    SYM_false, SYM_true, SYM_none, SYM_True, SYM_False, SYM_None, SYM_raise_exception,
    SYM_range, SYM_strftime_now, SYM_namespace, SYM_loop, SYM_kwargs, SYM_varargs, SYM_caller,
    SYM_FIXED,
};
static const char *const fixed_syms[SYM_FIXED] = {
    "false", "true", "none", "True", "False", "None", "raise_exception", "range",
    "strftime_now", "namespace", "loop", "kwargs", "varargs", "caller",
};
#define SYM_N_GLOBALS 9 /* false .. strftime_now: variables of the root scope */

struct dk_template {
    char    *name;
    arena    mem;      /* tokens' strings, nodes, symbol names */
    char    *src;      /* preprocessed source */
    node   **body;
    size_t   nbody;
    char   **syms;     /* symbol id -> name */
    size_t  *symlen;
    size_t   nsyms, capsyms;
};

const char *dk_template_name(const dk_template *t) { return t && t->name ? t->name : ""; }

/* --- preprocessing --------------------------------------------------------------- */

typedef struct pbuf {
    char  *s;
    int   *ln;
    size_t n, cap;
} pbuf;

static int pbuf_put(pbuf *b, const char *s, const int *ln, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *ns = realloc(b->s, cap);
        if (!ns)
            return -1;
        b->s = ns;
        int *nl = realloc(b->ln, cap * sizeof *nl);
        if (!nl)
            return -1;
        b->ln = nl;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    memcpy(b->ln + b->n, ln, n * sizeof *ln);
    b->n += n;
    b->s[b->n] = '\0';
    return 0;
}

static int line_start(const char *s, size_t i)
{
    if (i == 0)
        return 1;
    if (s[i - 1] == '\n' || s[i - 1] == '\r')
        return 1;
    /* U+2028 and U+2029 are line terminators for the reference's ^ in m mode. */
    return i >= 3 && (unsigned char)s[i - 3] == 0xE2 && (unsigned char)s[i - 2] == 0x80 &&
           ((unsigned char)s[i - 1] == 0xA8 || (unsigned char)s[i - 1] == 0xA9);
}

/* Matches {%-?\s*(end)?generation\s*-?%} at s[i]; returns its length (0 if none) and
 * whether each side carries '-'. */
static size_t gen_tag(const char *s, size_t n, size_t i, int *lstrip, int *rstrip)
{
    size_t j = i, k;
    if (n - j < 2 || s[j] != '{' || s[j + 1] != '%')
        return 0;
    j += 2;
    *lstrip = j < n && s[j] == '-';
    if (*lstrip)
        j++;
    while ((k = js_ws(s + j, n - j)) > 0)
        j += k;
    if (n - j >= 3 && memcmp(s + j, "end", 3) == 0 &&
        n - j >= 13 && memcmp(s + j + 3, "generation", 10) == 0)
        j += 3;
    if (n - j < 10 || memcmp(s + j, "generation", 10) != 0)
        return 0;
    j += 10;
    while ((k = js_ws(s + j, n - j)) > 0)
        j += k;
    *rstrip = j < n && s[j] == '-';
    if (*rstrip)
        j++;
    if (n - j < 2 || s[j] != '%' || s[j + 1] != '}')
        return 0;
    return j + 2 - i;
}

/* The reference's preprocess(): drop one final "\n"; lstrip_blocks; trim_blocks; the
 * generation tag. Each output byte keeps the line it came from. */
static int preprocess(const char *src, size_t len, pbuf *out)
{
    pbuf a = { 0 }, b = { 0 };
    int rc = -1;
    int *ln = malloc((len + 1) * sizeof *ln);
    if (!ln)
        return -1;
    int line = 1;
    for (size_t i = 0; i < len; i++) {
        ln[i] = line;
        if (src[i] == '\n')
            line++;
    }
    if (len > 0 && src[len - 1] == '\n')
        len--;
    /* lstrip_blocks: /^[ \t]*({[#%-])/gm -> "$1" */
    for (size_t i = 0; i < len;) {
        if (line_start(src, i)) {
            size_t j = i;
            while (j < len && (src[j] == ' ' || src[j] == '\t'))
                j++;
            if (j > i && j + 1 < len && src[j] == '{' && strchr("#%-", src[j + 1]) && src[j + 1]) {
                i = j;
                continue;
            }
        }
        size_t j = i + 1;
        while (j < len && !(src[j - 1] == '\n' || src[j - 1] == '\r' || (unsigned char)src[j - 1] == 0xA8 ||
                             (unsigned char)src[j - 1] == 0xA9))
            j++;
        if (pbuf_put(&a, src + i, ln + i, j - i))
            goto out;
        i = j;
    }
    /* trim_blocks: /([#%-]})\n/g -> "$1" */
    for (size_t i = 0; i < a.n; i++) {
        if (a.s[i] == '\n' && i >= 2 && a.s[i - 1] == '}' && strchr("#%-", a.s[i - 2]) && a.s[i - 2])
            continue;
        if (pbuf_put(&b, a.s + i, a.ln + i, 1))
            goto out;
    }
    /* /(\s*){%(-?)\s*(?:end)?generation\s*(-?)%}(\s*)/gs -> before/after unless '-' */
    size_t last = 0; /* end of the previous match: a match's leading spaces start here at the earliest */
    for (size_t i = 0; i < b.n;) {
        int ls = 0, rs = 0;
        size_t tl = (b.s[i] == '{') ? gen_tag(b.s, b.n, i, &ls, &rs) : 0;
        if (!tl) {
            if (pbuf_put(out, b.s + i, b.ln + i, 1))
                goto out;
            i++;
            continue;
        }
        if (ls) {
            size_t s = i, k;
            while (s > last && (k = js_ws_before(b.s, last, s)) > 0)
                s -= k;
            out->n -= i - s;
        }
        i += tl;
        size_t e = i, k;
        while ((k = js_ws(b.s + e, b.n - e)) > 0)
            e += k;
        if (!rs && pbuf_put(out, b.s + i, b.ln + i, e - i))
            goto out;
        i = e;
        last = e;
    }
    if (!out->s && pbuf_put(out, "", ln, 0))
        goto out;
    rc = 0;
out:
    free(ln);
    free(a.s);
    free(a.ln);
    free(b.s);
    free(b.ln);
    return rc;
}

/* --- lexer ------------------------------------------------------------------------ */

typedef struct lexer {
    dk_template *t;
    const char  *s;
    const int   *ln;
    size_t       n, i;
    tok         *toks;
    size_t       ntok, cap;
    dk_error    *err;
} lexer;

static int tpl_err(const dk_template *t, dk_error *err, int code, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int tpl_err(const dk_template *t, dk_error *err, int code, int line, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return dk_error_set(err, code, t->name, line, "%s", msg);
}

static int lx_line(const lexer *L)
{
    if (L->n == 0)
        return 1;
    return L->ln[L->i < L->n ? L->i : L->n - 1];
}

static int lx_push(lexer *L, int type, const char *s, size_t n, int line)
{
    if (L->ntok + 2 > L->cap) {
        size_t cap = L->cap ? L->cap * 2 : 256;
        tok *nt = realloc(L->toks, cap * sizeof *nt);
        if (!nt)
            return dk_error_set(L->err, DK_ENOMEM, L->t->name, 0, "out of memory");
        L->toks = nt;
        L->cap = cap;
    }
    L->toks[L->ntok++] = (tok){ type, line, s, n };
    return 0;
}

static int lx_last(const lexer *L) { return L->ntok ? L->toks[L->ntok - 1].type : -1; }

static void lx_strip_trailing(lexer *L)
{
    if (L->ntok && L->toks[L->ntok - 1].type == T_TEXT) {
        tok *t = &L->toks[L->ntok - 1];
        t->n = trim_end_len(t->s, t->n);
        if (t->n == 0)
            L->ntok--;
    }
}

static void lx_skip_ws(lexer *L)
{
    size_t k;
    while (L->i < L->n && (k = js_ws(L->s + L->i, L->n - L->i)) > 0)
        L->i += k;
}

static int lx_eof(lexer *L)
{
    return tpl_err(L->t, L->err, DK_EPARSE, lx_line(L), "unexpected end of template inside a tag");
}

static int is_word(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* A quoted string: the reference's consumeWhile with its escapes. */
static int lx_string(lexer *L, char q)
{
    int line = lx_line(L);
    L->i++;
    char *o = arena_alloc(&L->t->mem, L->n - L->i + 1, NULL);
    if (!o)
        return dk_error_set(L->err, DK_ENOMEM, L->t->name, 0, "out of memory");
    size_t on = 0;
    uint32_t pend_hi = 0; /* a \uD8xx waiting for its low half */
    for (;;) {
        if (L->i >= L->n)
            return lx_eof(L);
        char c = L->s[L->i];
        if (c == q)
            break;
        if (c != '\\') {
            if (pend_hi)
                goto lone;
            o[on++] = c;
            L->i++;
            if (L->i >= L->n)
                return lx_eof(L);
            continue;
        }
        L->i++;
        if (L->i >= L->n)
            return lx_eof(L);
        char e = L->s[L->i++];
        if (e == 'x' || e == 'u') {
            size_t len = e == 'x' ? 2 : 4;
            uint32_t v = 0;
            if (L->n - L->i < len)
                return tpl_err(L->t, L->err, DK_EPARSE, line, "invalid hexadecimal escape sequence");
            for (size_t k = 0; k < len; k++) {
                int h = hexval((unsigned char)L->s[L->i + k]);
                if (h < 0)
                    return tpl_err(L->t, L->err, DK_EPARSE, line, "invalid hexadecimal escape sequence");
                v = v * 16 + (uint32_t)h;
            }
            L->i += len;
            if (pend_hi) {
                if (v < 0xDC00 || v > 0xDFFF)
                    goto lone;
                v = 0x10000 + ((pend_hi - 0xD800) << 10) + (v - 0xDC00);
                pend_hi = 0;
            } else if (v >= 0xD800 && v <= 0xDBFF) {
                pend_hi = v;
                continue;
            } else if (v >= 0xDC00 && v <= 0xDFFF) {
                goto lone;
            }
            on += u8_enc(v, o + on);
            continue;
        }
        if (pend_hi)
            goto lone;
        switch (e) {
        case 'n': o[on++] = '\n'; break;
        case 't': o[on++] = '\t'; break;
        case 'r': o[on++] = '\r'; break;
        case 'b': o[on++] = '\b'; break;
        case 'f': o[on++] = '\f'; break;
        case 'v': o[on++] = '\v'; break;
        case '\'': o[on++] = '\''; break;
        case '"': o[on++] = '"'; break;
        case '\\': o[on++] = '\\'; break;
        default:
            return tpl_err(L->t, L->err, DK_EPARSE, line, "unexpected escaped character '%c'", e);
        }
    }
    if (pend_hi)
        goto lone;
    L->i++; /* closing quote */
    o[on] = '\0';
    return lx_push(L, T_STR, o, on, line);
lone:
    return tpl_err(L->t, L->err, DK_EUNSUPPORTED, line,
                   "unsupported: a \\u escape of an unpaired surrogate in a string literal");
}

/* Digits from L->i; error when they run to the end of the template (as the reference). */
static int lx_digits(lexer *L)
{
    size_t s = L->i;
    while (L->i < L->n && isdigit((unsigned char)L->s[L->i]))
        L->i++;
    if (L->i > s && L->i >= L->n)
        return lx_eof(L);
    return 0;
}

static const struct { const char *seq; int type; } lx_table[] = {
    { "{%", T_OPEN_STMT }, { "%}", T_CLOSE_STMT }, { "{{", T_OPEN_EXPR }, { "}}", T_CLOSE_EXPR },
    { "(", T_LPAREN }, { ")", T_RPAREN }, { "{", T_LBRACE }, { "}", T_RBRACE },
    { "[", T_LBRACK }, { "]", T_RBRACK }, { ",", T_COMMA }, { ".", T_DOT }, { ":", T_COLON },
    { "|", T_PIPE }, { "<=", T_CMP }, { ">=", T_CMP }, { "==", T_CMP }, { "!=", T_CMP },
    { "<", T_CMP }, { ">", T_CMP }, { "+", T_ADD }, { "-", T_ADD }, { "~", T_ADD },
    { "**", T_POW }, { "*", T_MUL }, { "//", T_MUL }, { "/", T_MUL }, { "%", T_MUL },
    { "=", T_EQUALS },
};

static int lx_run(lexer *L)
{
    int depth = 0; /* curly brackets open inside an expression */
    int rc;
    while (L->i < L->n) {
        const char *s = L->s;
        int last = lx_last(L);
        if (last < 0 || last == T_CLOSE_STMT || last == T_CLOSE_EXPR || last == T_COMMENT) {
            size_t b = L->i;
            while (L->i < L->n &&
                   !(s[L->i] == '{' && L->i + 1 < L->n && (s[L->i + 1] == '%' || s[L->i + 1] == '{' || s[L->i + 1] == '#')))
                L->i++;
            if (L->i > b) {
                if ((rc = lx_push(L, T_TEXT, s + b, L->i - b, L->ln[b])))
                    return rc;
                continue;
            }
        }
        int line = lx_line(L);
        if (s[L->i] == '{' && L->i + 1 < L->n && s[L->i + 1] == '#') {
            L->i += 2;
            int strip_before = L->i < L->n && s[L->i] == '-';
            if (strip_before)
                L->i++;
            size_t b = L->i;
            while (!(L->i + 1 < L->n && s[L->i] == '#' && s[L->i + 1] == '}')) {
                if (L->i + 2 >= L->n)
                    return tpl_err(L->t, L->err, DK_EPARSE, line, "missing end of comment tag");
                L->i++;
            }
            int strip_after = L->i > b && s[L->i - 1] == '-';
            if (strip_before)
                lx_strip_trailing(L);
            if ((rc = lx_push(L, T_COMMENT, s + b, L->i - b, line)))
                return rc;
            L->i += 2;
            if (strip_after)
                lx_skip_ws(L);
            continue;
        }
        if (L->n - L->i >= 3 && memcmp(s + L->i, "{%-", 3) == 0) {
            lx_strip_trailing(L);
            if ((rc = lx_push(L, T_OPEN_STMT, "{%", 2, line)))
                return rc;
            L->i += 3;
            continue;
        }
        if (L->n - L->i >= 3 && memcmp(s + L->i, "{{-", 3) == 0) {
            lx_strip_trailing(L);
            if ((rc = lx_push(L, T_OPEN_EXPR, "{{", 2, line)))
                return rc;
            depth = 0;
            L->i += 3;
            continue;
        }
        size_t before = L->i;
        lx_skip_ws(L);
        if (L->i > before && L->i >= L->n)
            return lx_eof(L);
        line = lx_line(L);
        if (L->n - L->i >= 3 && memcmp(s + L->i, "-%}", 3) == 0) {
            if ((rc = lx_push(L, T_CLOSE_STMT, "%}", 2, line)))
                return rc;
            L->i += 3;
            lx_skip_ws(L);
            continue;
        }
        if (L->n - L->i >= 3 && memcmp(s + L->i, "-}}", 3) == 0) {
            if ((rc = lx_push(L, T_CLOSE_EXPR, "}}", 2, line)))
                return rc;
            L->i += 3;
            lx_skip_ws(L);
            continue;
        }
        char c = s[L->i];
        if (c == '-' || c == '+') {
            last = lx_last(L);
            if (last < 0 || last == T_TEXT)
                return tpl_err(L->t, L->err, DK_EPARSE, line, "unexpected character '%c'", c);
            if (!(last == T_IDENT || last == T_NUM || last == T_STR || last == T_RPAREN || last == T_RBRACK)) {
                size_t b = L->i++;
                if ((rc = lx_digits(L)))
                    return rc;
                if (L->i > b + 1 && L->i + 1 < L->n && s[L->i] == '.' && isdigit((unsigned char)s[L->i + 1])) {
                    L->i++;
                    if ((rc = lx_digits(L)))
                        return rc;
                }
                if ((rc = lx_push(L, L->i > b + 1 ? T_NUM : T_UNARY, s + b, L->i - b, line)))
                    return rc;
                continue;
            }
        }
        int matched = 0;
        for (size_t k = 0; k < sizeof lx_table / sizeof lx_table[0]; k++) {
            size_t sl = strlen(lx_table[k].seq);
            if (lx_table[k].type == T_CLOSE_EXPR && depth > 0)
                continue;
            if (L->n - L->i >= sl && memcmp(s + L->i, lx_table[k].seq, sl) == 0) {
                if ((rc = lx_push(L, lx_table[k].type, s + L->i, sl, line)))
                    return rc;
                if (lx_table[k].type == T_OPEN_EXPR)
                    depth = 0;
                else if (lx_table[k].type == T_LBRACE)
                    depth++;
                else if (lx_table[k].type == T_RBRACE)
                    depth--;
                L->i += sl;
                matched = 1;
                break;
            }
        }
        if (matched)
            continue;
        if (c == '\'' || c == '"') {
            if ((rc = lx_string(L, c)))
                return rc;
            continue;
        }
        if (isdigit((unsigned char)c)) {
            size_t b = L->i;
            if ((rc = lx_digits(L)))
                return rc;
            if (lx_last(L) != T_DOT && L->i + 1 < L->n && s[L->i] == '.' && isdigit((unsigned char)s[L->i + 1])) {
                L->i++;
                if ((rc = lx_digits(L)))
                    return rc;
            }
            if ((rc = lx_push(L, T_NUM, s + b, L->i - b, line)))
                return rc;
            continue;
        }
        if (is_word(c)) {
            size_t b = L->i;
            while (L->i < L->n && is_word(s[L->i]))
                L->i++;
            if (L->i >= L->n)
                return lx_eof(L);
            if ((rc = lx_push(L, T_IDENT, s + b, L->i - b, line)))
                return rc;
            continue;
        }
        uint32_t cp;
        u8_dec(s + L->i, L->n - L->i, &cp);
        if (cp < 0x80 && isprint((int)cp))
            return tpl_err(L->t, L->err, DK_EPARSE, line, "unexpected character '%c'", (int)cp);
        return tpl_err(L->t, L->err, DK_EPARSE, line, "unexpected character U+%04X", (unsigned)cp);
    }
    return lx_push(L, T_EOF, "", 0, L->n ? L->ln[L->n - 1] : 1);
}

/* --- symbols ------------------------------------------------------------------------ */

static int sym_intern(dk_template *t, const char *s, size_t n)
{
    for (size_t i = 0; i < t->nsyms; i++)
        if (t->symlen[i] == n && memcmp(t->syms[i], s, n) == 0)
            return (int)i;
    if (t->nsyms == t->capsyms) {
        size_t cap = t->capsyms ? t->capsyms * 2 : 64;
        char **ns = realloc(t->syms, cap * sizeof *ns);
        if (!ns)
            return -1;
        t->syms = ns;
        size_t *nl = realloc(t->symlen, cap * sizeof *nl);
        if (!nl)
            return -1;
        t->symlen = nl;
        t->capsyms = cap;
    }
    char *c = arena_alloc(&t->mem, n + 1, NULL);
    if (!c)
        return -1;
    memcpy(c, s, n);
    c[n] = '\0';
    t->syms[t->nsyms] = c;
    t->symlen[t->nsyms] = n;
    return (int)t->nsyms++;
}

/* --- parser ------------------------------------------------------------------------- */

typedef struct parser {
    dk_template *t;
    const tok   *tk;
    size_t       n, i;
    dk_error    *err;
    jmp_buf      jb;
    int          depth, max_depth;
} parser;

typedef struct nvec {
    node  **v;
    size_t  n, cap;
} nvec;

static void perr(parser *P, int code, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5), noreturn));
static void perr(parser *P, int code, int line, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    dk_error_set(P->err, code, P->t->name, line, "%s", msg);
    longjmp(P->jb, 1);
}

static void *palloc(parser *P, size_t n)
{
    void *p = arena_alloc(&P->t->mem, n, NULL);
    if (!p)
        perr(P, DK_ENOMEM, 0, "out of memory");
    return p;
}

static node *nnew(parser *P, int kind, int line)
{
    node *x = palloc(P, sizeof *x);
    memset(x, 0, sizeof *x);
    x->kind = kind;
    x->line = line;
    x->sym = -1;
    return x;
}

static void nvec_push(parser *P, nvec *v, node *x)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 4;
        node **nv = palloc(P, cap * sizeof *nv);
        if (v->n)
            memcpy(nv, v->v, v->n * sizeof *nv);
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = x;
}

static const tok *cur(const parser *P) { return &P->tk[P->i]; }
static int is_t(const parser *P, int type) { return P->tk[P->i].type == type; }

static int tok_is(const tok *t, const char *name)
{
    return t->type == T_IDENT && t->n == strlen(name) && memcmp(t->s, name, t->n) == 0;
}

static int is_id(const parser *P, const char *name) { return tok_is(&P->tk[P->i], name); }

static int is_stmt(const parser *P, const char *a, const char *b, const char *c)
{
    if (P->tk[P->i].type != T_OPEN_STMT)
        return 0;
    const tok *t = &P->tk[P->i + 1];
    return tok_is(t, a) || (b && tok_is(t, b)) || (c && tok_is(t, c));
}

static const tok *expect(parser *P, int type, const char *what)
{
    const tok *t = cur(P);
    if (t->type != type)
        perr(P, DK_EPARSE, t->line, "expected %s, got %s", what, tok_names[t->type]);
    if (t->type != T_EOF)
        P->i++;
    return t;
}

static void expect_id(parser *P, const char *name)
{
    if (!is_id(P, name))
        perr(P, DK_EPARSE, cur(P)->line, "expected '%s', got %s", name, tok_names[cur(P)->type]);
    P->i++;
}

#define ENTER(P) do { if (++(P)->depth > (P)->max_depth) \
    perr((P), DK_ELIMIT, cur(P)->line, "template nesting deeper than %d", (P)->max_depth); } while (0)
#define LEAVE(P) ((P)->depth--)

static node *p_any(parser *P);
static node *p_expr(parser *P);
static node *p_primary(parser *P);
static node *p_member(parser *P, node *obj);
static node *p_call(parser *P, node *callee);

static int ident_sym(parser *P, const tok *t)
{
    int s = sym_intern(P->t, t->s, t->n);
    if (s < 0)
        perr(P, DK_ENOMEM, t->line, "out of memory");
    return s;
}

/* Statements up to one of the closing tags; the opener names what is left open. */
static void p_body(parser *P, nvec *v, const char *a, const char *b, const char *c,
                   const char *opener, int line)
{
    while (!is_stmt(P, a, b, c)) {
        if (is_t(P, T_EOF))
            perr(P, DK_EPARSE, line, "'%s' opened here is never closed (expected {%% %s %%})", opener, a);
        nvec_push(P, v, p_any(P));
    }
}

static node *p_seq(parser *P, int primary)
{
    node *first = primary ? p_primary(P) : p_expr(P);
    if (!is_t(P, T_COMMA))
        return first;
    node *tu = nnew(P, N_TUPLE, first->line);
    nvec v = { 0 };
    nvec_push(P, &v, first);
    while (1) {
        P->i++;
        nvec_push(P, &v, primary ? p_primary(P) : p_expr(P));
        if (!is_t(P, T_COMMA))
            break;
    }
    tu->list = v.v;
    tu->nlist = v.n;
    return tu;
}

static void p_args(parser *P, int params, nvec *out)
{
    expect(P, T_LPAREN, "'('");
    int saw_kw = 0, saw_spread = 0;
    while (!is_t(P, T_RPAREN)) {
        const tok *t = cur(P);
        int kwspread = t->type == T_POW;
        int spread = t->type == T_MUL && t->n == 1 && t->s[0] == '*';
        if (params && (kwspread || spread))
            perr(P, DK_EPARSE, t->line, "argument unpacking is not allowed in parameter declarations");
        if (kwspread) {
            P->i++;
            node *x = nnew(P, N_KWSPREAD, t->line);
            x->a = p_expr(P);
            nvec_push(P, out, x);
            if (is_t(P, T_COMMA))
                P->i++;
            if (!is_t(P, T_RPAREN))
                perr(P, DK_EPARSE, cur(P)->line, "'**' must be applied to the final argument");
            break;
        }
        node *arg;
        if (spread) {
            if (saw_spread)
                perr(P, DK_EPARSE, t->line, "only one '*' argument unpacking is allowed");
            saw_spread = 1;
            P->i++;
            arg = nnew(P, N_SPREAD, t->line);
            arg->a = p_expr(P);
        } else {
            arg = p_expr(P);
            if (is_t(P, T_EQUALS)) {
                P->i++;
                if (arg->kind != N_IDENT)
                    perr(P, DK_EPARSE, arg->line, params ? "expected identifier for parameter declaration"
                                                         : "expected identifier for keyword argument");
                node *kw = nnew(P, N_KWARG, arg->line);
                kw->sym = arg->sym;
                kw->s = arg->s;
                kw->n = arg->n;
                kw->a = p_expr(P);
                arg = kw;
            }
            if (params) {
                if (arg->kind != N_IDENT && arg->kind != N_KWARG)
                    perr(P, DK_EPARSE, arg->line, "expected identifier for parameter declaration");
                for (size_t k = 0; k < out->n; k++)
                    if (out->v[k]->sym == arg->sym)
                        perr(P, DK_EPARSE, arg->line, "duplicate parameter name '%s'", P->t->syms[arg->sym]);
            }
            if (arg->kind == N_KWARG)
                saw_kw = 1;
            else if (saw_kw)
                perr(P, DK_EPARSE, arg->line, params ? "non-default argument follows default argument"
                                                     : "positional arguments must come before keyword arguments");
            else if (saw_spread)
                perr(P, DK_EPARSE, arg->line, "positional arguments must not follow '*' argument unpacking");
        }
        nvec_push(P, out, arg);
        if (is_t(P, T_COMMA))
            P->i++;
    }
    expect(P, T_RPAREN, "')'");
}

static node *p_primary(parser *P)
{
    const tok *t = cur(P);
    if (t->type != T_EOF)
        P->i++;
    switch (t->type) {
    case T_NUM: {
        int is_float = memchr(t->s, '.', t->n) != NULL;
        node *x = nnew(P, is_float ? N_FLOAT : N_INT, t->line);
        char *buf = palloc(P, t->n + 1);
        memcpy(buf, t->s, t->n);
        buf[t->n] = '\0';
        x->num = strtod(buf, NULL);
        return x;
    }
    case T_STR: {
        size_t total = t->n, j = P->i;
        while (P->tk[j].type == T_STR)
            total += P->tk[j++].n;
        node *x = nnew(P, N_STR, t->line);
        if (j == P->i) {
            x->s = t->s;
            x->n = t->n;
            return x;
        }
        char *s = palloc(P, total + 1);
        memcpy(s, t->s, t->n);
        size_t o = t->n;
        while (is_t(P, T_STR)) {
            memcpy(s + o, cur(P)->s, cur(P)->n);
            o += cur(P)->n;
            P->i++;
        }
        s[o] = '\0';
        x->s = s;
        x->n = o;
        return x;
    }
    case T_IDENT: {
        node *x = nnew(P, N_IDENT, t->line);
        x->sym = ident_sym(P, t);
        x->s = P->t->syms[x->sym];
        x->n = t->n;
        return x;
    }
    case T_LPAREN: {
        ENTER(P);
        node *x = p_seq(P, 0);
        expect(P, T_RPAREN, "')'");
        LEAVE(P);
        return x;
    }
    case T_LBRACK: {
        ENTER(P);
        node *x = nnew(P, N_ARRAY, t->line);
        nvec v = { 0 };
        while (!is_t(P, T_RBRACK)) {
            nvec_push(P, &v, p_expr(P));
            if (is_t(P, T_COMMA))
                P->i++;
        }
        P->i++;
        x->list = v.v;
        x->nlist = v.n;
        LEAVE(P);
        return x;
    }
    case T_LBRACE: {
        ENTER(P);
        node *x = nnew(P, N_OBJECT, t->line);
        nvec k = { 0 }, v = { 0 };
        while (!is_t(P, T_RBRACE)) {
            nvec_push(P, &k, p_expr(P));
            expect(P, T_COLON, "':' between key and value in a dict literal");
            nvec_push(P, &v, p_expr(P));
            if (is_t(P, T_COMMA))
                P->i++;
        }
        P->i++;
        x->list = k.v;
        x->nlist = k.n;
        x->list2 = v.v;
        x->nlist2 = v.n;
        LEAVE(P);
        return x;
    }
    default:
        perr(P, DK_EPARSE, t->line, "unexpected %s", tok_names[t->type]);
    }
}

static node *p_member_args(parser *P, int line)
{
    node *sl[8];
    size_t n = 0;
    int is_slice = 0;
    while (!is_t(P, T_RBRACK)) {
        node *x = NULL;
        if (is_t(P, T_COLON)) {
            P->i++;
            is_slice = 1;
        } else {
            x = p_expr(P);
            if (is_t(P, T_COLON)) {
                P->i++;
                is_slice = 1;
            }
        }
        if (n == 8)
            perr(P, DK_EPARSE, line, "expected 0-3 arguments for a slice");
        sl[n++] = x;
    }
    if (n == 0)
        perr(P, DK_EPARSE, line, "expected at least one argument for a member or slice expression");
    if (!is_slice)
        return sl[0];
    if (n > 3)
        perr(P, DK_EPARSE, line, "expected 0-3 arguments for a slice");
    node *x = nnew(P, N_SLICE, line);
    x->a = sl[0];
    x->b = n > 1 ? sl[1] : NULL;
    x->c = n > 2 ? sl[2] : NULL;
    return x;
}

static node *p_member(parser *P, node *obj)
{
    while (is_t(P, T_DOT) || is_t(P, T_LBRACK)) {
        const tok *op = cur(P);
        P->i++;
        node *m = nnew(P, N_MEMBER, op->line);
        m->a = obj;
        if (op->type == T_LBRACK) {
            m->op = 1;
            m->b = p_member_args(P, op->line);
            expect(P, T_RBRACK, "']'");
        } else {
            m->b = p_primary(P);
            if (m->b->kind != N_IDENT && m->b->kind != N_INT)
                perr(P, DK_EPARSE, op->line, "expected identifier or integer following '.'");
        }
        obj = m;
    }
    return obj;
}

static node *p_call(parser *P, node *callee)
{
    ENTER(P);
    node *x = nnew(P, N_CALL, callee->line);
    x->a = callee;
    nvec v = { 0 };
    p_args(P, 0, &v);
    x->list = v.v;
    x->nlist = v.n;
    x = p_member(P, x);
    if (is_t(P, T_LPAREN))
        x = p_call(P, x);
    LEAVE(P);
    return x;
}

static node *p_call_member(parser *P)
{
    node *m = p_member(P, p_primary(P));
    if (is_t(P, T_LPAREN))
        return p_call(P, m);
    return m;
}

static node *p_unary_sign(parser *P)
{
    const tok *t = cur(P);
    if ((t->type == T_UNARY || t->type == T_ADD) && t->n == 1 && (t->s[0] == '-' || t->s[0] == '+')) {
        ENTER(P);
        P->i++;
        node *x = nnew(P, N_UNARY, t->line);
        x->op = t->s[0] == '-' ? OP_SUB : OP_ADD;
        x->a = p_unary_sign(P);
        LEAVE(P);
        return x;
    }
    return p_call_member(P);
}

static node *p_filter(parser *P)
{
    node *operand = p_unary_sign(P);
    while (is_t(P, T_PIPE)) {
        int line = cur(P)->line;
        P->i++;
        node *f = p_primary(P);
        if (f->kind != N_IDENT)
            perr(P, DK_EPARSE, line, "expected identifier for the filter");
        if (is_t(P, T_LPAREN))
            f = p_call(P, f);
        node *x = nnew(P, N_FILTER, line);
        x->a = operand;
        x->b = f;
        operand = x;
    }
    return operand;
}

static node *p_test(parser *P)
{
    node *operand = p_filter(P);
    while (is_id(P, "is")) {
        int line = cur(P)->line;
        P->i++;
        int negate = is_id(P, "not");
        if (negate)
            P->i++;
        node *f = p_primary(P);
        if (f->kind != N_IDENT)
            perr(P, DK_EPARSE, line, "expected identifier for the test");
        node *x = nnew(P, N_TEST, line);
        x->a = operand;
        x->op = negate;
        x->sym = f->sym;
        x->s = f->s;
        x->n = f->n;
        operand = x;
    }
    return operand;
}

static node *p_binary(parser *P, int op, node *l, node *r, int line)
{
    node *x = nnew(P, N_BINARY, line);
    x->op = op;
    x->a = l;
    x->b = r;
    return x;
}

static node *p_power(parser *P)
{
    node *l = p_test(P);
    while (is_t(P, T_POW)) {
        int line = cur(P)->line;
        P->i++;
        l = p_binary(P, OP_POW, l, p_test(P), line);
    }
    return l;
}

static node *p_mul(parser *P)
{
    node *l = p_power(P);
    while (is_t(P, T_MUL)) {
        const tok *t = cur(P);
        P->i++;
        int op = t->n == 2 ? OP_FLOORDIV : t->s[0] == '*' ? OP_MUL : t->s[0] == '/' ? OP_DIV : OP_MOD;
        l = p_binary(P, op, l, p_power(P), t->line);
    }
    return l;
}

static node *p_add(parser *P)
{
    node *l = p_mul(P);
    while (is_t(P, T_ADD)) {
        const tok *t = cur(P);
        P->i++;
        int op = t->s[0] == '+' ? OP_ADD : t->s[0] == '-' ? OP_SUB : OP_CONCAT;
        l = p_binary(P, op, l, p_mul(P), t->line);
    }
    return l;
}

static node *p_compare(parser *P)
{
    node *l = p_add(P);
    for (;;) {
        const tok *t = cur(P);
        int op;
        if (is_id(P, "not") && tok_is(&P->tk[P->i + 1], "in")) {
            op = OP_NOTIN;
            P->i += 2;
        } else if (is_id(P, "in")) {
            op = OP_IN;
            P->i++;
        } else if (t->type == T_CMP) {
            P->i++;
            if (t->n == 2)
                op = t->s[0] == '<' ? OP_LE : t->s[0] == '>' ? OP_GE : t->s[0] == '=' ? OP_EQ : OP_NE;
            else
                op = t->s[0] == '<' ? OP_LT : OP_GT;
        } else {
            break;
        }
        l = p_binary(P, op, l, p_add(P), t->line);
    }
    return l;
}

static node *p_not(parser *P)
{
    node *right = NULL;
    while (is_id(P, "not")) {
        ENTER(P);
        int line = cur(P)->line;
        P->i++;
        node *x = nnew(P, N_UNARY, line);
        x->op = OP_NOT;
        x->a = p_not(P);
        right = x;
        LEAVE(P);
    }
    return right ? right : p_compare(P);
}

static node *p_and(parser *P)
{
    node *l = p_not(P);
    while (is_id(P, "and")) {
        int line = cur(P)->line;
        P->i++;
        l = p_binary(P, OP_AND, l, p_not(P), line);
    }
    return l;
}

static node *p_or(parser *P)
{
    node *l = p_and(P);
    while (is_id(P, "or")) {
        int line = cur(P)->line;
        P->i++;
        l = p_binary(P, OP_OR, l, p_and(P), line);
    }
    return l;
}

static node *p_ifexpr(parser *P)
{
    ENTER(P);
    node *a = p_or(P);
    if (is_id(P, "if")) {
        int line = cur(P)->line;
        P->i++;
        node *test = p_or(P);
        if (is_id(P, "else")) {
            P->i++;
            node *x = nnew(P, N_TERNARY, line);
            x->a = test;
            x->b = a;
            x->c = p_ifexpr(P);
            a = x;
        } else {
            node *x = nnew(P, N_SELECT, line);
            x->a = a;
            x->b = test;
            a = x;
        }
    }
    LEAVE(P);
    return a;
}

static node *p_expr(parser *P) { return p_ifexpr(P); }

/* Which of `kwargs` / `varargs` a macro or call block reads before declaring them,
 * following the reference's findAccessedSpecialMacroArguments (Jinja's visit order:
 * a name is declared by a parameter, a loop variable or a set target anywhere earlier
 * in the walk). The bits decide whether extra arguments are collected or rejected. */
enum { SPECIAL_KWARGS = 1, SPECIAL_VARARGS = 2 };

typedef struct special_walk {
    int declared, accessed;
} special_walk;

static int special_bit(int sym)
{
    return sym == SYM_kwargs ? SPECIAL_KWARGS : sym == SYM_varargs ? SPECIAL_VARARGS : 0;
}

static void sw_visit(special_walk *w, const node *x);

static void sw_list(special_walk *w, node *const *l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sw_visit(w, l[i]);
}

static void sw_declare_target(special_walk *w, const node *t)
{
    if (t->kind == N_IDENT)
        w->declared |= special_bit(t->sym);
    else if (t->kind == N_TUPLE)
        for (size_t i = 0; i < t->nlist; i++)
            sw_declare_target(w, t->list[i]);
}

static void sw_params(special_walk *w, node *const *params, size_t n)
{
    for (size_t i = 0; i < n; i++)
        w->declared |= special_bit(params[i]->sym);
    for (size_t i = 0; i < n; i++)
        if (params[i]->kind == N_KWARG)
            sw_visit(w, params[i]->a);
}

static void sw_filter(special_walk *w, const node *f)
{
    if (f->kind == N_CALL)
        sw_list(w, f->list, f->nlist);
}

static void sw_visit(special_walk *w, const node *x)
{
    if (!x)
        return;
    switch (x->kind) {
    case N_FOR:
        sw_declare_target(w, x->a);
        if (x->b->kind == N_SELECT) {
            sw_visit(w, x->b->a);
            sw_list(w, x->list, x->nlist);
            sw_list(w, x->list2, x->nlist2);
            sw_visit(w, x->b->b);
        } else {
            sw_visit(w, x->b);
            sw_list(w, x->list, x->nlist);
            sw_list(w, x->list2, x->nlist2);
        }
        return;
    case N_SET:
        sw_declare_target(w, x->a);
        sw_visit(w, x->b);
        sw_list(w, x->list, x->nlist);
        return;
    case N_MACRO:
        sw_params(w, x->list, x->nlist);
        sw_list(w, x->list2, x->nlist2);
        return;
    case N_CALLBLOCK:
        sw_visit(w, x->a);
        sw_params(w, x->list, x->nlist);
        sw_list(w, x->list2, x->nlist2);
        return;
    case N_FILTERBLOCK:
        sw_list(w, x->list, x->nlist);
        sw_filter(w, x->a);
        return;
    case N_IDENT:
        w->accessed |= special_bit(x->sym) & ~w->declared;
        return;
    case N_MEMBER:
        sw_visit(w, x->a);
        if (x->op)
            sw_visit(w, x->b);
        return;
    case N_FILTER:
        sw_visit(w, x->a);
        sw_filter(w, x->b);
        return;
    case N_TEST: case N_KWARG: case N_UNARY: case N_SPREAD: case N_KWSPREAD:
        sw_visit(w, x->a);
        return;
    case N_SELECT:
        sw_visit(w, x->b);
        sw_visit(w, x->a);
        return;
    case N_OBJECT:
        for (size_t i = 0; i < x->nlist; i++) {
            sw_visit(w, x->list[i]);
            sw_visit(w, x->list2[i]);
        }
        return;
    default: /* the remaining nodes in the reference's field order */
        sw_visit(w, x->a);
        sw_visit(w, x->b);
        sw_visit(w, x->c);
        sw_list(w, x->list, x->nlist);
        sw_list(w, x->list2, x->nlist2);
        return;
    }
}

static int special_args(node *const *params, size_t np, node *const *body, size_t nb)
{
    special_walk w = { 0, 0 };
    for (size_t i = 0; i < np; i++)
        w.declared |= special_bit(params[i]->sym);
    sw_list(&w, body, nb);
    return w.accessed;
}

static node *p_if(parser *P, int line)
{
    node *x = nnew(P, N_IF, line);
    x->a = p_expr(P);
    expect(P, T_CLOSE_STMT, "'%}'");
    nvec body = { 0 }, alt = { 0 };
    p_body(P, &body, "elif", "else", "endif", "if", line);
    if (is_stmt(P, "elif", NULL, NULL)) {
        int l2 = P->tk[P->i + 1].line;
        P->i += 2;
        nvec_push(P, &alt, p_if(P, l2));
    } else if (is_stmt(P, "else", NULL, NULL)) {
        P->i += 2;
        expect(P, T_CLOSE_STMT, "'%}'");
        p_body(P, &alt, "endif", NULL, NULL, "if", line);
    }
    x->list = body.v;
    x->nlist = body.n;
    x->list2 = alt.v;
    x->nlist2 = alt.n;
    return x;
}

static node *p_stmt(parser *P)
{
    expect(P, T_OPEN_STMT, "'{%'");
    const tok *t = cur(P);
    if (t->type != T_IDENT)
        perr(P, DK_EPARSE, t->line, "expected a statement name, got %s", tok_names[t->type]);
    int line = t->line;
    P->i++;
    node *x;
    if (tok_is(t, "set")) {
        x = nnew(P, N_SET, line);
        x->a = p_seq(P, 0);
        if (is_t(P, T_EQUALS)) {
            P->i++;
            x->b = p_seq(P, 0);
        } else {
            expect(P, T_CLOSE_STMT, "'%}'");
            nvec body = { 0 };
            p_body(P, &body, "endset", NULL, NULL, "set", line);
            x->list = body.v;
            x->nlist = body.n;
            P->i++;
            expect_id(P, "endset");
        }
        expect(P, T_CLOSE_STMT, "'%}'");
    } else if (tok_is(t, "if")) {
        x = p_if(P, line);
        expect(P, T_OPEN_STMT, "'{%'");
        expect_id(P, "endif");
        expect(P, T_CLOSE_STMT, "'%}'");
    } else if (tok_is(t, "macro")) {
        x = nnew(P, N_MACRO, line);
        node *name = p_primary(P);
        if (name->kind != N_IDENT)
            perr(P, DK_EPARSE, line, "expected identifier following macro statement");
        x->sym = name->sym;
        x->s = name->s;
        nvec params = { 0 }, body = { 0 };
        p_args(P, 1, &params);
        expect(P, T_CLOSE_STMT, "'%}'");
        p_body(P, &body, "endmacro", NULL, NULL, "macro", line);
        x->list = params.v;
        x->nlist = params.n;
        x->list2 = body.v;
        x->nlist2 = body.n;
        x->op = special_args(params.v, params.n, body.v, body.n);
        expect(P, T_OPEN_STMT, "'{%'");
        expect_id(P, "endmacro");
        expect(P, T_CLOSE_STMT, "'%}'");
    } else if (tok_is(t, "for")) {
        x = nnew(P, N_FOR, line);
        x->a = p_seq(P, 1);
        if (x->a->kind != N_IDENT && x->a->kind != N_TUPLE)
            perr(P, DK_EPARSE, line, "expected identifier or tuple for the loop variable");
        if (!is_id(P, "in"))
            perr(P, DK_EPARSE, line, "expected 'in' following the loop variable");
        P->i++;
        x->b = p_expr(P);
        expect(P, T_CLOSE_STMT, "'%}'");
        nvec body = { 0 }, alt = { 0 };
        p_body(P, &body, "endfor", "else", NULL, "for", line);
        if (is_stmt(P, "else", NULL, NULL)) {
            P->i += 2;
            expect(P, T_CLOSE_STMT, "'%}'");
            p_body(P, &alt, "endfor", NULL, NULL, "for", line);
        }
        x->list = body.v;
        x->nlist = body.n;
        x->list2 = alt.v;
        x->nlist2 = alt.n;
        expect(P, T_OPEN_STMT, "'{%'");
        expect_id(P, "endfor");
        expect(P, T_CLOSE_STMT, "'%}'");
    } else if (tok_is(t, "call")) {
        x = nnew(P, N_CALLBLOCK, line);
        nvec params = { 0 }, body = { 0 }, args = { 0 };
        if (is_t(P, T_LPAREN))
            p_args(P, 1, &params);
        node *callee = p_primary(P);
        if (callee->kind != N_IDENT)
            perr(P, DK_EPARSE, line, "expected identifier following call statement");
        node *call = nnew(P, N_CALL, line);
        call->a = callee;
        p_args(P, 0, &args);
        call->list = args.v;
        call->nlist = args.n;
        expect(P, T_CLOSE_STMT, "'%}'");
        p_body(P, &body, "endcall", NULL, NULL, "call", line);
        x->a = call;
        x->list = params.v;
        x->nlist = params.n;
        x->list2 = body.v;
        x->nlist2 = body.n;
        x->op = special_args(params.v, params.n, body.v, body.n);
        expect(P, T_OPEN_STMT, "'{%'");
        expect_id(P, "endcall");
        expect(P, T_CLOSE_STMT, "'%}'");
    } else if (tok_is(t, "break") || tok_is(t, "continue")) {
        x = nnew(P, tok_is(t, "break") ? N_BREAK : N_CONTINUE, line);
        expect(P, T_CLOSE_STMT, "'%}'");
    } else if (tok_is(t, "filter")) {
        x = nnew(P, N_FILTERBLOCK, line);
        node *f = p_primary(P);
        if (f->kind == N_IDENT && is_t(P, T_LPAREN))
            f = p_call(P, f);
        x->a = f;
        expect(P, T_CLOSE_STMT, "'%}'");
        nvec body = { 0 };
        p_body(P, &body, "endfilter", NULL, NULL, "filter", line);
        x->list = body.v;
        x->nlist = body.n;
        expect(P, T_OPEN_STMT, "'{%'");
        expect_id(P, "endfilter");
        expect(P, T_CLOSE_STMT, "'%}'");
    } else {
        static const char *const jinja_only[] = {
            "raw", "include", "import", "from", "extends", "block", "with",
            "autoescape", "do", "trans", "pluralize", "print",
        };
        for (size_t k = 0; k < sizeof jinja_only / sizeof *jinja_only; k++)
            if (tok_is(t, jinja_only[k]))
                perr(P, DK_EUNSUPPORTED, line, "unsupported statement '%s'", jinja_only[k]);
        perr(P, DK_EPARSE, line, "unknown statement '%.*s'", (int)(t->n > 40 ? 40 : t->n), t->s);
    }
    return x;
}

static node *p_any(parser *P)
{
    const tok *t = cur(P);
    node *x;
    ENTER(P);
    switch (t->type) {
    case T_COMMENT:
        P->i++;
        x = nnew(P, N_COMMENT, t->line);
        break;
    case T_TEXT:
        P->i++;
        x = nnew(P, N_TEXT, t->line);
        x->s = t->s;
        x->n = t->n;
        break;
    case T_OPEN_STMT:
        x = p_stmt(P);
        break;
    case T_OPEN_EXPR:
        P->i++;
        x = p_expr(P);
        expect(P, T_CLOSE_EXPR, "'}}'");
        break;
    default:
        perr(P, DK_EPARSE, t->line, "unexpected %s", tok_names[t->type]);
    }
    LEAVE(P);
    return x;
}

/* ------------------------------------------------------------------------------------
 * Values and the render state.
 */
enum { VT_UNDEF, VT_NULL, VT_BOOL, VT_INT, VT_FLOAT, VT_STR, VT_LIST, VT_DICT, VT_NS, VT_FUNC };

static const char *const vt_names[] = {
    "undefined", "none", "boolean", "integer", "float", "string", "list", "dict", "namespace",
    "function",
};

typedef struct vlist vlist;
typedef struct vdict vdict;
typedef struct vfunc vfunc;

typedef struct val {
    unsigned char t;
    unsigned char tuple; /* a VT_LIST made by a tuple literal (the reference's TupleValue) */
    union {
        double n;
        int    b;
        struct { const char *p; size_t n; } s;
        vlist *l;
        vdict *d;
        vfunc *f;
    } u;
} val;

struct vlist { size_t n; val *v; };
struct vdict { size_t n, cap; const char **kp; size_t *kn; val *v; };

enum { F_NAMESPACE, F_RAISE, F_RANGE, F_STRFTIME, F_MACRO, F_CALLER, F_SMETH, F_DMETH };
enum { SM_UPPER, SM_LOWER, SM_STRIP, SM_TITLE, SM_CAPITALIZE, SM_RSTRIP, SM_LSTRIP,
       SM_STARTSWITH, SM_ENDSWITH, SM_SPLIT, SM_REPLACE };
enum { DM_GET, DM_ITEMS, DM_KEYS, DM_VALUES, DM_DICTSORT };

struct vfunc {
    int           kind;
    int           meth;   /* F_SMETH / F_DMETH: which method */
    val           self;   /* the string or dict a method is bound to */
    const node   *macro;  /* F_MACRO: the macro; F_CALLER: the call block */
    struct scope *env;    /* F_CALLER: the scope of the call block */
};

typedef struct scope {
    struct scope *parent;
    size_t n, cap;
    int   *sym;
    val   *v;
} scope;

#define V_UNDEF ((val){ .t = VT_UNDEF })
#define V_NULL  ((val){ .t = VT_NULL })
static val vbool(int b) { val v = { .t = VT_BOOL }; v.u.b = !!b; return v; }
static val vint(double n) { val v = { .t = VT_INT }; v.u.n = n; return v; }
static val vfloat(double n) { val v = { .t = VT_FLOAT }; v.u.n = n; return v; }
static val vstr(const char *p, size_t n) { val v = { .t = VT_STR }; v.u.s.p = p; v.u.s.n = n; return v; }

typedef struct rstate {
    const dk_template *t;
    arena      mem;
    dk_error  *err;
    jmp_buf   *err_jb;
    jmp_buf   *loop_jb;     /* innermost loop body being run, NULL outside loops */
    char      *out;         /* output, also the scratch stack of captures */
    size_t     on, ocap;
    dk_template_limits lim;
    long       steps;
    int        depth;
    val        f_namespace; /* the builtin every scope holds */
} rstate;

enum { JMP_ERROR = 1, JMP_BREAK = 2, JMP_CONTINUE = 3 };

static void rerr(rstate *R, int code, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5), noreturn));
static void rerr(rstate *R, int code, int line, const char *fmt, ...)
{
    char msg[480];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    dk_error_set(R->err, code, R->t->name, line, "%s", msg);
    longjmp(*R->err_jb, JMP_ERROR);
}

#define UNSUP(R, line, ...) rerr((R), DK_EUNSUPPORTED, (line), "unsupported: " __VA_ARGS__)
#define FAIL(R, line, ...)  rerr((R), DK_EINVAL, (line), __VA_ARGS__)

static void *ralloc(rstate *R, size_t n, int line)
{
    int over = 0;
    void *p = arena_alloc(&R->mem, n, &over);
    if (!p) {
        if (over)
            rerr(R, DK_ELIMIT, line, "render memory over the limit of %zu bytes", R->lim.max_memory);
        rerr(R, DK_ENOMEM, line, "out of memory");
    }
    return p;
}

static size_t mul_or_die(rstate *R, size_t a, size_t b, int line)
{
    if (b && a > SIZE_MAX / b)
        rerr(R, DK_ELIMIT, line, "size overflow");
    return a * b;
}

static void out_put(rstate *R, const char *s, size_t n, int line)
{
    if (n > R->lim.max_output || R->on > R->lim.max_output - n)
        rerr(R, DK_ELIMIT, line, "output over the limit of %zu bytes", R->lim.max_output);
    if (R->on + n + 1 > R->ocap) {
        size_t cap = R->ocap ? R->ocap : 4096;
        while (cap < R->on + n + 1)
            cap *= 2;
        char *no = realloc(R->out, cap);
        if (!no)
            rerr(R, DK_ENOMEM, line, "out of memory");
        R->out = no;
        R->ocap = cap;
    }
    if (n)
        memcpy(R->out + R->on, s, n);
    R->on += n;
}

static void out_c(rstate *R, char c, int line) { out_put(R, &c, 1, line); }

/* The bytes written since mark, as a string value; the output goes back to mark. */
static val take(rstate *R, size_t mark, int line)
{
    size_t n = R->on - mark;
    char *p = ralloc(R, n + 1, line);
    if (n)
        memcpy(p, R->out + mark, n);
    p[n] = '\0';
    R->on = mark;
    return vstr(p, n);
}

static val str_dup(rstate *R, const char *s, size_t n, int line)
{
    char *p = ralloc(R, n + 1, line);
    memcpy(p, s, n);
    p[n] = '\0';
    return vstr(p, n);
}

static val str_cat(rstate *R, const char *a, size_t an, const char *b, size_t bn, int line)
{
    if (an > SIZE_MAX / 2 || bn > SIZE_MAX / 2)
        rerr(R, DK_ELIMIT, line, "size overflow");
    char *p = ralloc(R, an + bn + 1, line);
    memcpy(p, a, an);
    memcpy(p + an, b, bn);
    p[an + bn] = '\0';
    return vstr(p, an + bn);
}

static vlist *list_new(rstate *R, size_t n, int line)
{
    vlist *l = ralloc(R, sizeof *l, line);
    l->n = n;
    l->v = ralloc(R, mul_or_die(R, n ? n : 1, sizeof(val), line), line);
    return l;
}

static val vlistv(vlist *l) { val v = { .t = VT_LIST }; v.u.l = l; return v; }

static vdict *dict_new(rstate *R, size_t cap, int line)
{
    vdict *d = ralloc(R, sizeof *d, line);
    d->n = 0;
    d->cap = cap ? cap : 4;
    d->kp = ralloc(R, mul_or_die(R, d->cap, sizeof *d->kp, line), line);
    d->kn = ralloc(R, mul_or_die(R, d->cap, sizeof *d->kn, line), line);
    d->v = ralloc(R, mul_or_die(R, d->cap, sizeof *d->v, line), line);
    return d;
}

static val vdictv(vdict *d, int t) { val v = { .t = (unsigned char)t }; v.u.d = d; return v; }

static long dict_find(const vdict *d, const char *k, size_t kn)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->kn[i] == kn && memcmp(d->kp[i], k, kn) == 0)
            return (long)i;
    return -1;
}

/* Sets k (borrowed; must outlive the dict) to v, keeping the first position of k. */
static void dict_set(rstate *R, vdict *d, const char *k, size_t kn, val v, int line)
{
    long i = dict_find(d, k, kn);
    if (i >= 0) {
        d->v[i] = v;
        return;
    }
    if (d->n == d->cap) {
        size_t cap = mul_or_die(R, d->cap, 2, line);
        const char **kp = ralloc(R, mul_or_die(R, cap, sizeof *kp, line), line);
        size_t *kl = ralloc(R, mul_or_die(R, cap, sizeof *kl, line), line);
        val *vv = ralloc(R, mul_or_die(R, cap, sizeof *vv, line), line);
        memcpy(kp, d->kp, d->n * sizeof *kp);
        memcpy(kl, d->kn, d->n * sizeof *kl);
        memcpy(vv, d->v, d->n * sizeof *vv);
        d->kp = kp;
        d->kn = kl;
        d->v = vv;
        d->cap = cap;
    }
    d->kp[d->n] = k;
    d->kn[d->n] = kn;
    d->v[d->n] = v;
    d->n++;
}

static val func_new(rstate *R, int kind, int meth, val self, const node *macro, int line)
{
    vfunc *f = ralloc(R, sizeof *f, line);
    f->kind = kind;
    f->meth = meth;
    f->self = self;
    f->macro = macro;
    f->env = NULL;
    val v = { .t = VT_FUNC };
    v.u.f = f;
    return v;
}

static int is_num(val v) { return v.t == VT_INT || v.t == VT_FLOAT; }
static int is_numlike(val v) { return is_num(v) || v.t == VT_BOOL; }
static double numlike(val v) { return v.t == VT_BOOL ? (double)v.u.b : v.u.n; }

static int truthy(val v)
{
    switch (v.t) {
    case VT_UNDEF: case VT_NULL: return 0;
    case VT_BOOL: return v.u.b;
    case VT_INT: case VT_FLOAT: return v.u.n != 0 && !isnan(v.u.n);
    case VT_STR: return v.u.s.n > 0;
    case VT_LIST: return v.u.l->n > 0;
    case VT_DICT: return v.u.d->n > 0;
    default: return 1; /* namespace, function */
    }
}

/* --- scopes -------------------------------------------------------------------------- */

static scope *scope_new(rstate *R, scope *parent, int line)
{
    scope *s = ralloc(R, sizeof *s, line);
    s->parent = parent;
    s->n = 0;
    s->cap = 0;
    s->sym = NULL;
    s->v = NULL;
    return s;
}

static int scope_get(const scope *s, int sym, val *out)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->sym[i] == sym) {
            *out = s->v[i];
            return 1;
        }
    return 0;
}

static void scope_set(rstate *R, scope *s, int sym, val v, int line)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->sym[i] == sym) {
            s->v[i] = v;
            return;
        }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        int *ns = ralloc(R, cap * sizeof *ns, line);
        val *nv = ralloc(R, cap * sizeof *nv, line);
        if (s->n) {
            memcpy(ns, s->sym, s->n * sizeof *ns);
            memcpy(nv, s->v, s->n * sizeof *nv);
        }
        s->sym = ns;
        s->v = nv;
        s->cap = cap;
    }
    s->sym[s->n] = sym;
    s->v[s->n] = v;
    s->n++;
}

/* Every scope of the reference holds its own `namespace`, so that name resolves in the
 * innermost scope; every other name walks up to the root. */
static val lookup(rstate *R, const scope *s, int sym)
{
    val v;
    if (sym == SYM_namespace)
        return scope_get(s, sym, &v) ? v : R->f_namespace;
    for (; s; s = s->parent)
        if (scope_get(s, sym, &v))
            return v;
    return V_UNDEF;
}

/* --- printing ------------------------------------------------------------------------ */

/* The JavaScript string of a scalar's raw value, as `~` and string `+` make it. */
static val js_tostr(rstate *R, val v, int line)
{
    char buf[64];
    switch (v.t) {
    case VT_STR:
        return v;
    case VT_INT: case VT_FLOAT:
        return str_dup(R, buf, js_num_str(v.u.n, buf), line);
    case VT_BOOL:
        return v.u.b ? vstr("true", 4) : vstr("false", 5);
    default:
        UNSUP(R, line, "a %s turned into a string by '~' or '+' (the reference prints JavaScript internals)",
              vt_names[v.t]);
    }
}

static void json_str(rstate *R, const char *s, size_t n, int ascii, int line)
{
    static const char hex[] = "0123456789abcdef";
    out_c(R, '"', line);
    size_t run = 0; /* start of bytes copied verbatim */
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char ebuf[16];
        size_t k = 1;
        if (c == '"') esc = "\\\"";
        else if (c == '\\') esc = "\\\\";
        else if (c == '\b') esc = "\\b";
        else if (c == '\f') esc = "\\f";
        else if (c == '\n') esc = "\\n";
        else if (c == '\r') esc = "\\r";
        else if (c == '\t') esc = "\\t";
        else if (c < 0x20 || (ascii && c == 0x7F)) {
            snprintf(ebuf, sizeof ebuf, "\\u%04x", c);
            esc = ebuf;
        } else if (ascii && c >= 0x80) {
            uint32_t cp;
            k = u8_dec(s + i, n - i, &cp);
            if (cp >= 0x10000) {
                uint32_t hi = 0xD800 + ((cp - 0x10000) >> 10), lo = 0xDC00 + ((cp - 0x10000) & 0x3FF);
                snprintf(ebuf, sizeof ebuf, "\\u%c%c%c%c\\u%c%c%c%c", hex[hi >> 12], hex[(hi >> 8) & 15],
                         hex[(hi >> 4) & 15], hex[hi & 15], hex[lo >> 12], hex[(lo >> 8) & 15],
                         hex[(lo >> 4) & 15], hex[lo & 15]);
            } else {
                snprintf(ebuf, sizeof ebuf, "\\u%04x", (unsigned)cp);
            }
            esc = ebuf;
        }
        if (esc) {
            out_put(R, s + run, i - run, line);
            out_put(R, esc, strlen(esc), line);
            i += k;
            run = i;
        } else {
            i++;
        }
    }
    out_put(R, s + run, n - run, line);
    out_c(R, '"', line);
}

typedef struct jopts {
    long        indent;   /* 0 = none */
    int         ascii;
    const char *isep, *ksep;
    size_t      isepn, ksepn;
} jopts;

static void json_pad(rstate *R, const jopts *o, int depth, int line)
{
    if (o->indent < 0)
        FAIL(R, line, "invalid tojson indent (negative)");
    if (o->indent > 1000000)
        rerr(R, DK_ELIMIT, line, "tojson indent over the limit");
    out_c(R, '\n', line);
    for (int d = 0; d < depth; d++)
        for (long k = 0; k < o->indent; k++)
            out_c(R, ' ', line);
}

/* The reference's toJSON(). */
static void json_write(rstate *R, val v, const jopts *o, int depth, int undef_null, int line)
{
    char buf[64];
    if (depth > 512)
        rerr(R, DK_ELIMIT, line, "value nested deeper than 512 levels (or containing itself)");
    switch (v.t) {
    case VT_NULL:
        out_put(R, "null", 4, line);
        return;
    case VT_UNDEF:
        if (undef_null)
            out_put(R, "null", 4, line);
        else
            out_put(R, "undefined", 9, line);
        return;
    case VT_INT: case VT_FLOAT:
        if (isfinite(v.u.n))
            out_put(R, buf, js_num_str(v.u.n, buf), line);
        else
            out_put(R, "null", 4, line);
        return;
    case VT_BOOL:
        if (v.u.b)
            out_put(R, "true", 4, line);
        else
            out_put(R, "false", 5, line);
        return;
    case VT_STR:
        json_str(R, v.u.s.p, v.u.s.n, o->ascii, line);
        return;
    case VT_LIST:
        if (v.tuple)
            FAIL(R, line, "cannot convert a tuple to JSON");
        if (o->indent < 0)
            json_pad(R, o, depth, line);
        out_c(R, '[', line);
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i)
                out_put(R, o->isep, o->isepn, line);
            if (o->indent)
                json_pad(R, o, depth + 1, line);
            json_write(R, v.u.l->v[i], o, depth + 1, undef_null, line);
        }
        if (o->indent && v.u.l->n)
            json_pad(R, o, depth, line);
        out_c(R, ']', line);
        return;
    case VT_DICT: case VT_NS:
        if (v.tuple)
            FAIL(R, line, "cannot convert keyword arguments to JSON");
        if (o->indent < 0)
            json_pad(R, o, depth, line);
        out_c(R, '{', line);
        for (size_t i = 0; i < v.u.d->n; i++) {
            if (i)
                out_put(R, o->isep, o->isepn, line);
            if (o->indent)
                json_pad(R, o, depth + 1, line);
            json_str(R, v.u.d->kp[i], v.u.d->kn[i], o->ascii, line);
            out_put(R, o->ksep, o->ksepn, line);
            json_write(R, v.u.d->v[i], o, depth + 1, undef_null, line);
        }
        if (o->indent && v.u.d->n)
            json_pad(R, o, depth, line);
        out_c(R, '}', line);
        return;
    default:
        FAIL(R, line, "cannot convert a %s to JSON", vt_names[v.t]);
    }
}

static const jopts json_default = { 0, 0, ", ", ": ", 2, 2 };

/* RuntimeValue.toString(): what {{ v }} prints. */
static void emit_value(rstate *R, val v, int line)
{
    char buf[400];
    switch (v.t) {
    case VT_UNDEF: case VT_NULL:
        return;
    case VT_BOOL:
        if (v.u.b)
            out_put(R, "true", 4, line);
        else
            out_put(R, "false", 5, line);
        return;
    case VT_INT:
        out_put(R, buf, js_num_str(v.u.n, buf), line);
        return;
    case VT_FLOAT:
        out_put(R, buf, js_float_str(v.u.n, buf), line);
        return;
    case VT_STR:
        out_put(R, v.u.s.p, v.u.s.n, line);
        return;
    case VT_LIST: case VT_DICT: case VT_NS:
        json_write(R, v, &json_default, 0, 0, line);
        return;
    default:
        UNSUP(R, line, "printing a function (the reference prints its JavaScript source)");
    }
}

static val to_string_value(rstate *R, val v, int line)
{
    if (v.t == VT_STR)
        return v;
    size_t m = R->on;
    emit_value(R, v, line);
    return take(R, m, line);
}

/* --- equality -------------------------------------------------------------------------- */

/* JavaScript's StringToNumber. */
static double js_str_to_num(const char *s, size_t n)
{
    size_t b = trim_start_len(s, n), e = trim_end_len(s, n);
    if (e <= b)
        return 0;
    s += b;
    n = e - b;
    if (n > 2 && s[0] == '0' && strchr("xXoObB", s[1]) && s[1]) {
        int base = (s[1] == 'x' || s[1] == 'X') ? 16 : (s[1] == 'o' || s[1] == 'O') ? 8 : 2;
        double v = 0;
        for (size_t i = 2; i < n; i++) {
            int d = hexval((unsigned char)s[i]);
            if (d < 0 || d >= base)
                return NAN;
            v = v * base + d;
        }
        return v;
    }
    size_t i = 0;
    int neg = 0;
    if (s[i] == '+' || s[i] == '-')
        neg = s[i++] == '-';
    if (n - i == 8 && memcmp(s + i, "Infinity", 8) == 0)
        return neg ? -INFINITY : INFINITY;
    size_t digits = 0, j = i;
    while (j < n && isdigit((unsigned char)s[j]))
        j++, digits++;
    if (j < n && s[j] == '.') {
        j++;
        while (j < n && isdigit((unsigned char)s[j]))
            j++, digits++;
    }
    if (!digits)
        return NAN;
    if (j < n && (s[j] == 'e' || s[j] == 'E')) {
        j++;
        if (j < n && (s[j] == '+' || s[j] == '-'))
            j++;
        size_t ed = 0;
        while (j < n && isdigit((unsigned char)s[j]))
            j++, ed++;
        if (!ed)
            return NAN;
    }
    if (j != n)
        return NAN;
    char tmp[512];
    if (n >= sizeof tmp)
        return NAN;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    return strtod(tmp, NULL);
}

static int is_obj(val v) { return v.t == VT_LIST || v.t == VT_DICT || v.t == VT_NS || v.t == VT_FUNC; }

static int same_obj(val a, val b)
{
    if (a.t != b.t)
        return 0;
    switch (a.t) {
    case VT_LIST: return a.u.l == b.u.l;
    case VT_DICT: case VT_NS: return a.u.d == b.u.d;
    default: return 0;
    }
}

/* The string JavaScript makes of a list when == compares it with a scalar
 * (Array.prototype.join(",") over the elements' toString()). */
static val js_list_str(rstate *R, val l, int line)
{
    size_t m = R->on;
    for (size_t i = 0; i < l.u.l->n; i++) {
        val x = l.u.l->v[i];
        if (i)
            out_c(R, ',', line);
        if (x.t == VT_NULL || x.t == VT_UNDEF)
            out_put(R, "undefined", 9, line); /* the reference's none holds undefined too */
        else
            emit_value(R, x, line);
    }
    return take(R, m, line);
}

/* JavaScript's == on the raw values. */
static int loose_eq(rstate *R, val a, val b, int line)
{
    int an = a.t == VT_UNDEF || a.t == VT_NULL, bn = b.t == VT_UNDEF || b.t == VT_NULL;
    if (an || bn)
        return an && bn;
    if (a.t == VT_FUNC || b.t == VT_FUNC)
        UNSUP(R, line, "comparing functions");
    if (is_obj(a) && is_obj(b))
        return same_obj(a, b);
    if (is_obj(b))
        return loose_eq(R, b, a, line);
    if (is_obj(a)) {
        /* An object against a scalar compares its primitive: a Map is "[object Map]",
         * a list the comma-join of its elements. */
        if (a.t == VT_DICT || a.t == VT_NS)
            return b.t == VT_STR && b.u.s.n == 12 && memcmp(b.u.s.p, "[object Map]", 12) == 0;
        a = js_list_str(R, a, line);
    }
    if (a.t == VT_BOOL)
        return loose_eq(R, vint(a.u.b), b, line);
    if (b.t == VT_BOOL)
        return loose_eq(R, a, vint(b.u.b), line);
    if (a.t == VT_STR && b.t == VT_STR)
        return a.u.s.n == b.u.s.n && memcmp(a.u.s.p, b.u.s.p, a.u.s.n) == 0;
    double x = a.t == VT_STR ? js_str_to_num(a.u.s.p, a.u.s.n) : a.u.n;
    double y = b.t == VT_STR ? js_str_to_num(b.u.s.p, b.u.s.n) : b.u.n;
    return x == y;
}

/* JavaScript's === on the raw values. The reference's none is built without a value,
 * so its raw value is undefined, like an undefined variable's. */
static int strict_eq(val a, val b)
{
    if (is_num(a) && is_num(b))
        return a.u.n == b.u.n;
    if ((a.t == VT_NULL || a.t == VT_UNDEF) && (b.t == VT_NULL || b.t == VT_UNDEF))
        return 1;
    if (a.t != b.t)
        return 0;
    switch (a.t) {
    case VT_UNDEF: case VT_NULL: return 1;
    case VT_BOOL: return a.u.b == b.u.b;
    case VT_STR: return a.u.s.n == b.u.s.n && memcmp(a.u.s.p, b.u.s.p, a.u.s.n) == 0;
    default: return same_obj(a, b);
    }
}

/* --- string helpers ---------------------------------------------------------------- */

/* Full Unicode upper/lower case mapping (JavaScript's toUpperCase/toLowerCase, which
 * are locale-independent: ICU's root locale). */
static val str_case(rstate *R, val s, int upper, int line)
{
    int ascii = 1;
    for (size_t i = 0; i < s.u.s.n && ascii; i++)
        ascii = (unsigned char)s.u.s.p[i] < 0x80;
    if (ascii) {
        char *p = ralloc(R, s.u.s.n + 1, line);
        for (size_t i = 0; i < s.u.s.n; i++) {
            char c = s.u.s.p[i];
            p[i] = upper ? (char)((c >= 'a' && c <= 'z') ? c - 32 : c) : (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
        }
        p[s.u.s.n] = '\0';
        return vstr(p, s.u.s.n);
    }
    if (s.u.s.n > INT32_MAX / 4)
        rerr(R, DK_ELIMIT, line, "string too long for case mapping");
    /* Full mappings grow a string at most threefold (U+0390 -> 3 code points). The
     * buffer comes first: nothing may longjmp while the ICU case map is open. */
    int32_t cap = (int32_t)s.u.s.n * 3 + 16;
    char *p = ralloc(R, (size_t)cap + 1, line);
    UErrorCode st = U_ZERO_ERROR;
    UCaseMap *cm = ucasemap_open("", 0, &st);
    int32_t n = -1;
    if (U_SUCCESS(st))
        n = upper ? ucasemap_utf8ToUpper(cm, p, cap, s.u.s.p, (int32_t)s.u.s.n, &st)
                  : ucasemap_utf8ToLower(cm, p, cap, s.u.s.p, (int32_t)s.u.s.n, &st);
    ucasemap_close(cm);
    if (U_FAILURE(st) || n < 0)
        rerr(R, DK_EICU, line, "icu case mapping: %s", u_errorName(st));
    p[n] = '\0';
    return vstr(p, (size_t)n);
}

static val str_trim(val s, int start, int end)
{
    size_t b = start ? trim_start_len(s.u.s.p, s.u.s.n) : 0;
    size_t e = end ? trim_end_len(s.u.s.p, s.u.s.n) : s.u.s.n;
    if (e < b)
        e = b;
    return vstr(s.u.s.p + b, e - b);
}

/* /\b\w/g -> upper case (ASCII word characters only, as JavaScript's \w). */
static val str_title(rstate *R, val s, int line)
{
    char *p = ralloc(R, s.u.s.n + 1, line);
    memcpy(p, s.u.s.p, s.u.s.n);
    p[s.u.s.n] = '\0';
    for (size_t i = 0; i < s.u.s.n; i++)
        if (is_word(p[i]) && (i == 0 || !is_word(p[i - 1])) && p[i] >= 'a' && p[i] <= 'z')
            p[i] = (char)(p[i] - 32);
    return vstr(p, s.u.s.n);
}

static val str_capitalize(rstate *R, val s, int line)
{
    if (s.u.s.n == 0)
        return s;
    uint32_t cp;
    size_t k = u8_dec(s.u.s.p, s.u.s.n, &cp);
    if (cp >= 0x10000)
        return s; /* charAt(0) is a lone surrogate: toUpperCase leaves it */
    val first = str_case(R, vstr(s.u.s.p, k), 1, line);
    return str_cat(R, first.u.s.p, first.u.s.n, s.u.s.p + k, s.u.s.n - k, line);
}

static const char *memfind(const char *h, size_t hn, const char *n, size_t nn)
{
    if (nn == 0)
        return h;
    if (nn > hn)
        return NULL;
    return memmem(h, hn, n, nn);
}

static int str_starts(val s, val p) { return p.u.s.n <= s.u.s.n && memcmp(s.u.s.p, p.u.s.p, p.u.s.n) == 0; }
static int str_ends(val s, val p)
{
    return p.u.s.n <= s.u.s.n && memcmp(s.u.s.p + s.u.s.n - p.u.s.n, p.u.s.p, p.u.s.n) == 0;
}

/* A growable list under construction. */
typedef struct lbuild {
    val   *v;
    size_t n, cap;
} lbuild;

static void lb_push(rstate *R, lbuild *b, val v, int line)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? mul_or_die(R, b->cap, 2, line) : 8;
        val *nv = ralloc(R, mul_or_die(R, cap, sizeof *nv, line), line);
        if (b->n)
            memcpy(nv, b->v, b->n * sizeof *nv);
        b->v = nv;
        b->cap = cap;
    }
    b->v[b->n++] = v;
}

static val lb_done(rstate *R, lbuild *b, int line)
{
    if (!b->v)
        b->v = ralloc(R, sizeof(val), line);
    vlist *l = ralloc(R, sizeof *l, line);
    l->n = b->n;
    l->v = b->v;
    return vlistv(l);
}

/* Python's str.split(sep, maxsplit) as the reference implements it. */
static val str_split(rstate *R, val s, val sep, double maxsplit, int line)
{
    lbuild b = { 0 };
    if (sep.t == VT_NULL) {
        size_t st = trim_start_len(s.u.s.p, s.u.s.n);
        const char *t = s.u.s.p + st;
        size_t tn = s.u.s.n - st, i = 0, k;
        while (i < tn) {
            while (i < tn && (k = js_ws(t + i, tn - i)) > 0)
                i += k;
            if (i >= tn)
                break;
            size_t b0 = i;
            while (i < tn && js_ws(t + i, tn - i) == 0) {
                uint32_t cp;
                i += u8_dec(t + i, tn - i, &cp);
            }
            if (maxsplit != -1 && (double)b.n >= maxsplit) {
                lb_push(R, &b, vstr(t + b0, tn - b0), line);
                break;
            }
            lb_push(R, &b, vstr(t + b0, i - b0), line);
        }
        return lb_done(R, &b, line);
    }
    if (sep.u.s.n == 0)
        FAIL(R, line, "empty separator");
    const char *p = s.u.s.p, *end = s.u.s.p + s.u.s.n, *q;
    while ((q = memfind(p, (size_t)(end - p), sep.u.s.p, sep.u.s.n)) != NULL) {
        lb_push(R, &b, vstr(p, (size_t)(q - p)), line);
        p = q + sep.u.s.n;
    }
    lb_push(R, &b, vstr(p, (size_t)(end - p)), line);
    if (maxsplit != -1 && (double)b.n > maxsplit) {
        /* result.push(result.splice(maxsplit).join(sep)) */
        double k = maxsplit < 0 ? fmax((double)b.n + maxsplit, 0) : maxsplit;
        size_t from = (size_t)k;
        size_t m = R->on;
        for (size_t i = from; i < b.n; i++) {
            if (i > from)
                out_put(R, sep.u.s.p, sep.u.s.n, line);
            out_put(R, b.v[i].u.s.p, b.v[i].u.s.n, line);
        }
        val joined = take(R, m, line);
        b.n = from;
        lb_push(R, &b, joined, line);
    }
    return lb_done(R, &b, line);
}

/* Python's str.replace(old, new, count) as the reference implements it. */
static val str_replace(rstate *R, val s, val old, val nw, int has_count, double count, int line)
{
    if (has_count && count == 0)
        return s;
    double remaining = (!has_count || count < 0) ? INFINITY : count;
    size_t m = R->on;
    const char *p = s.u.s.p, *end = s.u.s.p + s.u.s.n;
    if (old.u.s.n == 0) {
        /* An empty pattern matches before every code point and at the end. */
        for (;;) {
            if (remaining > 0) {
                out_put(R, nw.u.s.p, nw.u.s.n, line);
                remaining--;
            }
            if (p >= end)
                break;
            uint32_t cp;
            size_t k = u8_dec(p, (size_t)(end - p), &cp);
            out_put(R, p, k, line);
            p += k;
        }
        return take(R, m, line);
    }
    const char *q;
    while (remaining > 0 && (q = memfind(p, (size_t)(end - p), old.u.s.p, old.u.s.n)) != NULL) {
        out_put(R, p, (size_t)(q - p), line);
        out_put(R, nw.u.s.p, nw.u.s.n, line);
        p = q + old.u.s.n;
        remaining--;
    }
    out_put(R, p, (size_t)(end - p), line);
    return take(R, m, line);
}

/* Code-point offsets of s: off[i] = byte start of code point i, off[n] = length. */
static size_t *cp_offsets(rstate *R, val s, size_t *ncp, int line)
{
    size_t n = 0;
    for (size_t i = 0; i < s.u.s.n; i++)
        n += ((unsigned char)s.u.s.p[i] & 0xC0) != 0x80;
    size_t *off = ralloc(R, mul_or_die(R, n + 1, sizeof *off, line), line);
    size_t k = 0;
    for (size_t i = 0; i < s.u.s.n; i++)
        if (((unsigned char)s.u.s.p[i] & 0xC0) != 0x80)
            off[k++] = i;
    off[n] = s.u.s.n;
    *ncp = n;
    return off;
}

/* JavaScript's parseInt(s, 10) and parseFloat(s); NaN when no number starts s. */
static double js_parse_int(val s)
{
    size_t i = trim_start_len(s.u.s.p, s.u.s.n), n = s.u.s.n;
    const char *p = s.u.s.p;
    int neg = 0;
    if (i < n && (p[i] == '+' || p[i] == '-'))
        neg = p[i++] == '-';
    if (i >= n || !isdigit((unsigned char)p[i]))
        return NAN;
    double v = 0;
    size_t b = i;
    while (i < n && isdigit((unsigned char)p[i]))
        i++;
    if (i - b < 300) {
        char tmp[320];
        memcpy(tmp, p + b, i - b);
        tmp[i - b] = '\0';
        v = strtod(tmp, NULL);
    } else {
        v = INFINITY;
    }
    return neg ? -v : v;
}

static double js_parse_float(val s)
{
    size_t i = trim_start_len(s.u.s.p, s.u.s.n), n = s.u.s.n;
    const char *p = s.u.s.p;
    size_t b = i;
    if (i < n && (p[i] == '+' || p[i] == '-'))
        i++;
    if (n - i >= 8 && memcmp(p + i, "Infinity", 8) == 0)
        return p[b] == '-' ? -INFINITY : INFINITY;
    size_t digits = 0;
    while (i < n && isdigit((unsigned char)p[i]))
        i++, digits++;
    if (i < n && p[i] == '.') {
        size_t j = i + 1, fd = 0;
        while (j < n && isdigit((unsigned char)p[j]))
            j++, fd++;
        if (digits || fd) {
            i = j;
            digits += fd;
        }
    }
    if (!digits)
        return NAN;
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        size_t j = i + 1;
        if (j < n && (p[j] == '+' || p[j] == '-'))
            j++;
        size_t ed = 0;
        while (j < n && isdigit((unsigned char)p[j]))
            j++, ed++;
        if (ed)
            i = j;
    }
    if (i - b > 1000)
        return NAN;
    char tmp[1024];
    memcpy(tmp, p + b, i - b);
    tmp[i - b] = '\0';
    return strtod(tmp, NULL);
}

/* ------------------------------------------------------------------------------------
 * Evaluation.
 */
static val  eval(rstate *R, const node *x, scope *env);
static void exec_block(rstate *R, node *const *list, size_t n, scope *env);

static void step(rstate *R, int line)
{
    if (++R->steps > R->lim.max_steps)
        rerr(R, DK_ELIMIT, line, "evaluation over the limit of %ld steps", R->lim.max_steps);
}

static val kwval(const vdict *kw, const char *name)
{
    if (!kw)
        return V_UNDEF;
    long i = dict_find(kw, name, strlen(name));
    return i < 0 ? V_UNDEF : kw->v[i];
}

/* Arguments of a call: positional (with *spread) first, then keyword (with **spread). */
typedef struct args {
    val   *pos;
    size_t npos;
    vdict *kw;   /* NULL when no keyword argument */
} args;

static void eval_args(rstate *R, node *const *list, size_t n, scope *env, args *a, int line)
{
    lbuild b = { 0 };
    for (size_t i = 0; i < n; i++) {
        const node *x = list[i];
        if (x->kind == N_SPREAD) {
            val v = eval(R, x->a, env);
            if (v.t != VT_LIST)
                FAIL(R, x->line, "cannot unpack non-iterable type: %s", vt_names[v.t]);
            for (size_t k = 0; k < v.u.l->n; k++)
                lb_push(R, &b, v.u.l->v[k], line);
        } else if (x->kind != N_KWARG && x->kind != N_KWSPREAD) {
            lb_push(R, &b, eval(R, x, env), line);
        }
    }
    a->pos = b.v;
    a->npos = b.n;
    a->kw = NULL;
    for (size_t i = 0; i < n; i++) {
        const node *x = list[i];
        if (x->kind == N_KWARG) {
            val v = eval(R, x->a, env);
            if (!a->kw)
                a->kw = dict_new(R, 4, line);
            if (dict_find(a->kw, x->s, x->n) >= 0)
                FAIL(R, x->line, "got multiple values for keyword argument '%s'", x->s);
            dict_set(R, a->kw, x->s, x->n, v, line);
        } else if (x->kind == N_KWSPREAD) {
            val v = eval(R, x->a, env);
            if (v.t != VT_DICT)
                FAIL(R, x->line, "argument after ** must be a mapping, not %s", vt_names[v.t]);
            for (size_t k = 0; k < v.u.d->n; k++) {
                if (!a->kw)
                    a->kw = dict_new(R, 4, line);
                if (dict_find(a->kw, v.u.d->kp[k], v.u.d->kn[k]) >= 0)
                    FAIL(R, x->line, "got multiple values for keyword argument '%.*s'", (int)v.u.d->kn[k],
                         v.u.d->kp[k]);
                dict_set(R, a->kw, v.u.d->kp[k], v.u.d->kn[k], v.u.d->v[k], line);
            }
        }
    }
}

/* The reference passes keyword arguments to builtins as one trailing dict argument
 * (when there are any); arg(i) sees the argument list that way. */
static int arg(const args *a, size_t i, val *out)
{
    if (i < a->npos) {
        *out = a->pos[i];
        return 1;
    }
    if (i == a->npos && a->kw && a->kw->n) {
        *out = vdictv(a->kw, VT_DICT);
        out->tuple = 1; /* marks the keyword-arguments dict */
        return 1;
    }
    return 0;
}

static size_t nargs(const args *a) { return a->npos + (a->kw && a->kw->n ? 1 : 0); }

/* compareRuntimeValues() of the reference (sort, dictsort). */
static int compare_values(rstate *R, val a, val b, int case_sensitive, int line)
{
    if (a.t == VT_NULL || b.t == VT_NULL) {
        if (a.t == b.t)
            return 0;
        FAIL(R, line, "cannot compare %s with %s", vt_names[a.t], vt_names[b.t]);
    }
    if (a.t == VT_UNDEF || b.t == VT_UNDEF) {
        if (a.t == b.t)
            return 0;
        FAIL(R, line, "cannot compare %s with %s", vt_names[a.t], vt_names[b.t]);
    }
    if (is_numlike(a) && is_numlike(b)) {
        double x = numlike(a), y = numlike(b);
        return x < y ? -1 : x > y ? 1 : 0;
    }
    if (a.t != b.t || a.tuple != b.tuple)
        FAIL(R, line, "cannot compare different types: %s and %s", vt_names[a.t], vt_names[b.t]);
    if (a.t != VT_STR)
        FAIL(R, line, "cannot compare type: %s", vt_names[a.t]);
    if (!case_sensitive) {
        a = str_case(R, a, 0, line);
        b = str_case(R, b, 0, line);
    }
    return u16_cmp(a.u.s.p, a.u.s.n, b.u.s.p, b.u.s.n);
}

typedef struct sortkey {
    val item, key;
} sortkey;

/* Stable merge sort (JavaScript's Array.prototype.sort is stable). */
static void sort_keys(rstate *R, sortkey *v, size_t n, int cs, int reverse, int line)
{
    if (n < 2)
        return;
    sortkey *tmp = ralloc(R, mul_or_die(R, n, sizeof *tmp, line), line);
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                int c = compare_values(R, v[i].key, v[j].key, cs, line);
                if (reverse)
                    c = -c;
                tmp[k++] = c <= 0 ? v[i++] : v[j++];
            }
            while (i < mid)
                tmp[k++] = v[i++];
            while (j < hi)
                tmp[k++] = v[j++];
        }
        memcpy(v, tmp, n * sizeof *v);
        if (w > n / 2)
            break;
    }
}

/* getAttributeValue(): "a.b.0" through dicts, namespaces and lists. */
static val attr_path(val item, const char *path, size_t n)
{
    val v = item;
    const char *p = path, *end = path + n;
    for (;;) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        size_t pn = dot ? (size_t)(dot - p) : (size_t)(end - p);
        if (v.t == VT_DICT || v.t == VT_NS) {
            long i = dict_find(v.u.d, p, pn);
            v = i < 0 ? V_UNDEF : v.u.d->v[i];
        } else if (v.t == VT_LIST) {
            /* parseInt(part, 10): leading digits, else not a number */
            size_t k = 0;
            double idx = 0;
            int neg = 0;
            size_t ws = trim_start_len(p, pn);
            k = ws;
            if (k < pn && (p[k] == '-' || p[k] == '+'))
                neg = p[k++] == '-';
            size_t d0 = k;
            while (k < pn && isdigit((unsigned char)p[k]))
                idx = idx * 10 + (p[k++] - '0');
            if (k == d0 || neg)
                return V_UNDEF;
            if (idx >= (double)v.u.l->n)
                return V_UNDEF;
            v = v.u.l->v[(size_t)idx];
        } else {
            return V_UNDEF;
        }
        if (!dot)
            return v;
        p = dot + 1;
    }
}

/* --- tests ----------------------------------------------------------------------- */

/* Runs the named test; has_b says whether a second operand was given (selectattr). */
static int run_test(rstate *R, const char *name, val a, int has_b, val b, int line)
{
#define IS(s) (strcmp(name, s) == 0)
    if (IS("boolean")) return a.t == VT_BOOL;
    if (IS("callable")) return a.t == VT_FUNC;
    if (IS("odd") || IS("even")) {
        if (a.t != VT_INT)
            FAIL(R, line, "cannot %s on %s", name, vt_names[a.t]);
        int odd = fmod(a.u.n, 2) != 0;
        return IS("odd") ? odd : !odd;
    }
    if (IS("false")) return a.t == VT_BOOL && !a.u.b;
    if (IS("true")) return a.t == VT_BOOL && a.u.b;
    if (IS("none")) return a.t == VT_NULL;
    if (IS("string")) return a.t == VT_STR;
    if (IS("number")) return is_num(a);
    if (IS("integer")) return a.t == VT_INT;
    if (IS("iterable")) return (a.t == VT_LIST && !a.tuple) || a.t == VT_STR;
    if (IS("mapping")) return a.t == VT_DICT;
    if (IS("sequence")) return a.t == VT_LIST || a.t == VT_DICT || a.t == VT_STR;
    if (IS("lower") || IS("upper")) {
        if (a.t != VT_STR)
            return 0;
        val c = str_case(R, a, IS("upper"), line);
        return c.u.s.n == a.u.s.n && memcmp(c.u.s.p, a.u.s.p, a.u.s.n) == 0;
    }
    if (IS("defined")) return a.t != VT_UNDEF;
    if (IS("undefined")) return a.t == VT_UNDEF;
    if (IS("equalto") || IS("eq")) {
        if (!has_b)
            FAIL(R, line, "test '%s' needs a value to compare with", name);
        return strict_eq(a, b);
    }
#undef IS
    FAIL(R, line, "unknown test '%s'", name);
}

static int known_test(const char *name)
{
    static const char *const names[] = {
        "boolean", "callable", "odd", "even", "false", "true", "none", "string", "number",
        "integer", "iterable", "mapping", "sequence", "lower", "upper", "defined", "undefined",
        "equalto", "eq",
    };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strcmp(names[i], name) == 0)
            return 1;
    return 0;
}

/* --- calls ---------------------------------------------------------------------------- */

static val dict_items(rstate *R, const vdict *d, int line)
{
    vlist *l = list_new(R, d->n, line);
    for (size_t i = 0; i < d->n; i++) {
        vlist *pair = list_new(R, 2, line);
        pair->v[0] = vstr(d->kp[i], d->kn[i]);
        pair->v[1] = d->v[i];
        l->v[i] = vlistv(pair);
    }
    return vlistv(l);
}

static val dict_keys(rstate *R, const vdict *d, int line)
{
    vlist *l = list_new(R, d->n, line);
    for (size_t i = 0; i < d->n; i++)
        l->v[i] = vstr(d->kp[i], d->kn[i]);
    return vlistv(l);
}

static val call_dmeth(rstate *R, int meth, val self, const args *a, int line)
{
    const vdict *d = self.u.d;
    switch (meth) {
    case DM_GET: {
        val key, def;
        if (!arg(a, 0, &key) || key.t != VT_STR)
            FAIL(R, line, "dict key must be a string");
        long i = dict_find(d, key.u.s.p, key.u.s.n);
        if (i >= 0)
            return d->v[i];
        return arg(a, 1, &def) ? def : V_NULL;
    }
    case DM_ITEMS:
        return dict_items(R, d, line);
    case DM_KEYS:
        return dict_keys(R, d, line);
    case DM_VALUES: {
        vlist *l = list_new(R, d->n, line);
        memcpy(l->v, d->v, d->n * sizeof(val));
        return vlistv(l);
    }
    default: { /* DM_DICTSORT */
        val cs = a->npos > 0 ? a->pos[0] : kwval(a->kw, "case_sensitive");
        val by = a->npos > 1 ? a->pos[1] : kwval(a->kw, "by");
        val rev = a->npos > 2 ? a->pos[2] : kwval(a->kw, "reverse");
        if (cs.t == VT_UNDEF) cs = vbool(0);
        if (by.t == VT_UNDEF) by = vstr("key", 3);
        if (rev.t == VT_UNDEF) rev = vbool(0);
        if (cs.t != VT_BOOL)
            FAIL(R, line, "case_sensitive must be a boolean");
        if (by.t != VT_STR)
            FAIL(R, line, "by must be a string");
        int by_value = by.u.s.n == 5 && memcmp(by.u.s.p, "value", 5) == 0;
        if (!by_value && !(by.u.s.n == 3 && memcmp(by.u.s.p, "key", 3) == 0))
            FAIL(R, line, "by must be either 'key' or 'value'");
        if (rev.t != VT_BOOL)
            FAIL(R, line, "reverse must be a boolean");
        val items = dict_items(R, d, line);
        size_t n = items.u.l->n;
        sortkey *k = ralloc(R, mul_or_die(R, n ? n : 1, sizeof *k, line), line);
        for (size_t i = 0; i < n; i++) {
            k[i].item = items.u.l->v[i];
            k[i].key = items.u.l->v[i].u.l->v[by_value];
        }
        sort_keys(R, k, n, cs.u.b, rev.u.b, line);
        for (size_t i = 0; i < n; i++)
            items.u.l->v[i] = k[i].item;
        return items;
    }
    }
}

static val call_smeth(rstate *R, int meth, val s, const args *a, int line)
{
    val x, y;
    switch (meth) {
    case SM_UPPER: return str_case(R, s, 1, line);
    case SM_LOWER: return str_case(R, s, 0, line);
    case SM_STRIP: return str_trim(s, 1, 1);
    case SM_LSTRIP: return str_trim(s, 1, 0);
    case SM_RSTRIP: return str_trim(s, 0, 1);
    case SM_TITLE: return str_title(R, s, line);
    case SM_CAPITALIZE: return str_capitalize(R, s, line);
    case SM_STARTSWITH: case SM_ENDSWITH: {
        const char *nm = meth == SM_STARTSWITH ? "startswith" : "endswith";
        if (!arg(a, 0, &x))
            FAIL(R, line, "%s() requires at least one argument", nm);
        if (x.t == VT_STR)
            return vbool(meth == SM_STARTSWITH ? str_starts(s, x) : str_ends(s, x));
        if (x.t == VT_LIST) {
            for (size_t i = 0; i < x.u.l->n; i++) {
                val p = x.u.l->v[i];
                if (p.t != VT_STR)
                    FAIL(R, line, "%s() tuple elements must be strings", nm);
                if (meth == SM_STARTSWITH ? str_starts(s, p) : str_ends(s, p))
                    return vbool(1);
            }
            return vbool(0);
        }
        FAIL(R, line, "%s() argument must be a string or tuple of strings", nm);
    }
    case SM_SPLIT: {
        val sep = arg(a, 0, &x) ? x : V_NULL;
        if (sep.t != VT_STR && sep.t != VT_NULL)
            FAIL(R, line, "sep argument must be a string or null");
        val ms = arg(a, 1, &y) ? y : vint(-1);
        if (ms.t != VT_INT)
            FAIL(R, line, "maxsplit argument must be a number");
        return str_split(R, s, sep, ms.u.n, line);
    }
    default: { /* SM_REPLACE */
        val old, nw, count = V_NULL;
        if (nargs(a) < 2)
            FAIL(R, line, "replace() requires at least two arguments");
        arg(a, 0, &old);
        arg(a, 1, &nw);
        if (old.t != VT_STR || nw.t != VT_STR || (old.t == VT_DICT && old.tuple))
            FAIL(R, line, "replace() arguments must be strings");
        if (nargs(a) > 2) {
            arg(a, 2, &count);
            if (count.t == VT_DICT && count.tuple) {
                count = kwval(count.u.d, "count");
                if (count.t == VT_UNDEF)
                    count = V_NULL;
            }
        }
        if (count.t != VT_INT && count.t != VT_NULL)
            FAIL(R, line, "replace() count argument must be a number or null");
        return str_replace(R, s, old, nw, count.t == VT_INT, count.t == VT_INT ? count.u.n : 0, line);
    }
    }
}

static void strftime_js(rstate *R, val fmt, int line)
{
    static const char *const mon_long[] = { "January", "February", "March", "April", "May", "June", "July",
                                            "August", "September", "October", "November", "December" };
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    const char *p = fmt.u.s.p;
    size_t n = fmt.u.s.n;
    char buf[32];
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '%' && i + 1 < n && strchr("YmdbBHM%", p[i + 1]) && p[i + 1]) {
            char c = p[++i];
            switch (c) {
            case 'Y': snprintf(buf, sizeof buf, "%d", tm.tm_year + 1900); break;
            case 'm': snprintf(buf, sizeof buf, "%02d", tm.tm_mon + 1); break;
            case 'd': snprintf(buf, sizeof buf, "%02d", tm.tm_mday); break;
            case 'b': snprintf(buf, sizeof buf, "%.3s", mon_long[tm.tm_mon]); break;
            case 'B': snprintf(buf, sizeof buf, "%s", mon_long[tm.tm_mon]); break;
            case 'H': snprintf(buf, sizeof buf, "%02d", tm.tm_hour); break;
            case 'M': snprintf(buf, sizeof buf, "%02d", tm.tm_min); break;
            default: snprintf(buf, sizeof buf, "%%"); break;
            }
            out_put(R, buf, strlen(buf), line);
        } else {
            out_c(R, p[i], line);
        }
    }
}

/* Binds a macro's (or call block's) parameters as the reference's bindMacroArguments
 * and renders its body: positional, then keyword, then defaults (evaluated last, in the
 * new scope); extra arguments go to `kwargs` / `varargs` when the body reads them. */
static val run_macro(rstate *R, node *const *params, size_t np, node *const *body, size_t nb, int special,
                     const char *name, const args *a, scope *parent, int line)
{
    scope *ms = scope_new(R, parent, line);
    int *used = NULL;
    if (a->kw) {
        used = ralloc(R, (a->kw->n + 1) * sizeof *used, line);
        memset(used, 0, (a->kw->n + 1) * sizeof *used);
    }
    const node **pending = ralloc(R, (np + 1) * sizeof *pending, line);
    size_t npend = 0;
    for (size_t i = 0; i < np; i++) {
        const node *p = params[i];
        int have = 0;
        val v = V_UNDEF;
        if (i < a->npos) {
            v = a->pos[i];
            have = 1;
        } else if (a->kw) {
            long k = dict_find(a->kw, p->s, p->n);
            if (k >= 0 && !used[k]) {
                v = a->kw->v[k];
                used[k] = 1;
                have = 1;
            }
        }
        if (!have && p->kind == N_KWARG)
            pending[npend++] = p;
        scope_set(R, ms, p->sym, v, line);
    }
    if (special & SPECIAL_KWARGS) {
        vdict *rest = dict_new(R, 4, line);
        for (size_t k = 0; a->kw && k < a->kw->n; k++)
            if (!used[k])
                dict_set(R, rest, a->kw->kp[k], a->kw->kn[k], a->kw->v[k], line);
        scope_set(R, ms, SYM_kwargs, vdictv(rest, VT_DICT), line);
    } else {
        for (size_t k = 0; a->kw && k < a->kw->n; k++)
            if (!used[k])
                FAIL(R, line, "macro %s takes no keyword argument '%.*s'", name, (int)a->kw->kn[k], a->kw->kp[k]);
    }
    if (special & SPECIAL_VARARGS) {
        size_t extra = a->npos > np ? a->npos - np : 0;
        vlist *l = list_new(R, extra, line);
        for (size_t k = 0; k < extra; k++)
            l->v[k] = a->pos[np + k];
        scope_set(R, ms, SYM_varargs, vlistv(l), line);
    } else if (a->npos > np) {
        FAIL(R, line, "macro %s takes not more than %zu argument(s)", name, np);
    }
    for (size_t i = 0; i < npend; i++)
        scope_set(R, ms, pending[i]->sym, eval(R, pending[i]->a, ms), line);
    size_t mark = R->on;
    exec_block(R, body, nb, ms);
    return take(R, mark, line);
}

static val call_macro(rstate *R, const node *m, const args *a, scope *caller, int line)
{
    char name[128];
    snprintf(name, sizeof name, "'%s'", m->s);
    return run_macro(R, m->list, m->nlist, m->list2, m->nlist2, m->op, name, a, caller, line);
}

static val call_func(rstate *R, const vfunc *f, const args *a, scope *caller, int line)
{
    switch (f->kind) {
    case F_MACRO:
        return call_macro(R, f->macro, a, caller, line);
    case F_CALLER:
        /* A call block's body runs in a scope below the call statement's own. */
        return run_macro(R, f->macro->list, f->macro->nlist, f->macro->list2, f->macro->nlist2, f->macro->op,
                         "None", a, f->env, line);
    case F_SMETH:
        return call_smeth(R, f->meth, f->self, a, line);
    case F_DMETH:
        return call_dmeth(R, f->meth, f->self, a, line);
    case F_NAMESPACE: {
        if (a->npos > 1)
            FAIL(R, line, "namespace expected at most 1 argument, got %zu", a->npos);
        vdict *d = dict_new(R, 8, line);
        if (a->npos == 1) {
            val src = a->pos[0];
            if (src.t == VT_DICT) {
                for (size_t i = 0; i < src.u.d->n; i++)
                    dict_set(R, d, src.u.d->kp[i], src.u.d->kn[i], src.u.d->v[i], line);
            } else if (src.t == VT_LIST) {
                for (size_t i = 0; i < src.u.l->n; i++) {
                    val pr = src.u.l->v[i], k, v;
                    if (pr.t == VT_LIST && pr.u.l->n == 2) {
                        k = pr.u.l->v[0];
                        v = pr.u.l->v[1];
                    } else if (pr.t == VT_STR) {
                        size_t ncp;
                        size_t *off = cp_offsets(R, pr, &ncp, line);
                        if (ncp != 2)
                            FAIL(R, line, "namespace expected an object or an iterable of [key, value] pairs");
                        k = vstr(pr.u.s.p, off[1]);
                        v = vstr(pr.u.s.p + off[1], off[2] - off[1]);
                    } else {
                        FAIL(R, line, "namespace expected an object or an iterable of [key, value] pairs");
                    }
                    if (k.t != VT_STR)
                        FAIL(R, line, "namespace keys must be strings");
                    dict_set(R, d, k.u.s.p, k.u.s.n, v, line);
                }
            } else {
                FAIL(R, line, "'%s' object is not iterable", vt_names[src.t]);
            }
        }
        if (a->kw)
            for (size_t i = 0; i < a->kw->n; i++)
                dict_set(R, d, a->kw->kp[i], a->kw->kn[i], a->kw->v[i], line);
        return vdictv(d, VT_NS);
    }
    case F_RAISE: {
        val m = a->npos ? a->pos[0] : V_UNDEF;
        const char *s = "";
        size_t n = 0;
        if (m.t == VT_STR || is_num(m) || m.t == VT_BOOL) {
            m = js_tostr(R, m, line);
            s = m.u.s.p;
            n = m.u.s.n;
        }
        rerr(R, DK_EINVAL, line, "raise_exception: %.*s", (int)(n > 400 ? 400 : n), s);
    }
    case F_RANGE: {
        if (a->kw && a->kw->n)
            UNSUP(R, line, "keyword arguments to range()");
        for (size_t i = 0; i < a->npos; i++)
            if (!is_num(a->pos[i]))
                UNSUP(R, line, "range() of a %s", vt_names[a->pos[i].t]);
        lbuild b = { 0 };
        if (a->npos == 0)
            return lb_done(R, &b, line);
        double start = 0, stop, st = 1;
        if (a->npos == 1) {
            stop = a->pos[0].u.n;
        } else {
            start = a->pos[0].u.n;
            stop = a->pos[1].u.n;
            if (a->npos > 2)
                st = a->pos[2].u.n;
        }
        if (st == 0)
            FAIL(R, line, "range() step must not be zero");
        if (isnan(st))
            return lb_done(R, &b, line);
        for (double i = start; st > 0 ? i < stop : i > stop; i += st) {
            step(R, line);
            lb_push(R, &b, (isfinite(i) && floor(i) == i) ? vint(i) : vfloat(i), line);
        }
        return lb_done(R, &b, line);
    }
    default: { /* F_STRFTIME */
        val fmt = a->npos ? a->pos[0] : V_UNDEF;
        if (fmt.t != VT_STR)
            UNSUP(R, line, "strftime_now() of a %s", vt_names[fmt.t]);
        size_t mark = R->on;
        strftime_js(R, fmt, line);
        return take(R, mark, line);
    }
    }
}

/* --- member access and slices ---------------------------------------------------------- */

static val smeth(rstate *R, val s, const char *name, size_t n, int line)
{
    static const char *const names[] = { "upper", "lower", "strip", "title", "capitalize", "rstrip",
                                          "lstrip", "startswith", "endswith", "split", "replace" };
    if (n == 6 && memcmp(name, "length", 6) == 0)
        return vint((double)u16_len(s.u.s.p, s.u.s.n));
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strlen(names[i]) == n && memcmp(names[i], name, n) == 0)
            return func_new(R, F_SMETH, (int)i, s, NULL, line);
    return V_UNDEF;
}

static val dmeth(rstate *R, val d, const char *name, size_t n, int line)
{
    static const char *const names[] = { "get", "items", "keys", "values", "dictsort" };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strlen(names[i]) == n && memcmp(names[i], name, n) == 0)
            return func_new(R, F_DMETH, (int)i, d, NULL, line);
    return V_UNDEF;
}

/* JavaScript's .at(i) index for a length. -1 when out of range. */
static long at_index(double i, size_t len)
{
    if (isnan(i))
        i = 0;
    i = trunc(i);
    if (i < 0)
        i += (double)len;
    if (i < 0 || i >= (double)len)
        return -1;
    return (long)i;
}

static val str_at(rstate *R, val s, double i, int line)
{
    long k = at_index(i, u16_len(s.u.s.p, s.u.s.n));
    if (k < 0)
        return V_UNDEF;
    size_t u = 0;
    for (size_t b = 0; b < s.u.s.n;) {
        uint32_t cp;
        size_t n = u8_dec(s.u.s.p + b, s.u.s.n - b, &cp);
        size_t w = cp >= 0x10000 ? 2 : 1;
        if ((size_t)k < u + w) {
            if (w == 2)
                UNSUP(R, line, "indexing half of a character outside the BMP");
            return vstr(s.u.s.p + b, n);
        }
        u += w;
        b += n;
    }
    return V_UNDEF;
}

static val eval_slice(rstate *R, val obj, const node *sl, scope *env, int line)
{
    if (obj.t != VT_LIST && obj.t != VT_STR)
        FAIL(R, line, "slice object must be a list or string");
    val sv[3];
    const node *parts[3] = { sl->a, sl->b, sl->c };
    for (int i = 0; i < 3; i++) {
        sv[i] = parts[i] ? eval(R, parts[i], env) : V_UNDEF;
        if (sv[i].t != VT_INT && sv[i].t != VT_UNDEF)
            FAIL(R, line, "slice %s must be an integer or undefined", i == 0 ? "start" : i == 1 ? "stop" : "step");
    }
    size_t len, *off = NULL;
    if (obj.t == VT_LIST)
        len = obj.u.l->n;
    else
        off = cp_offsets(R, obj, &len, line);
    double L = (double)len;
    double st = sv[2].t == VT_UNDEF ? 1 : sv[2].u.n;
    int dir = st > 0 ? 1 : st < 0 ? -1 : 0;
    double start, stop;
    if (dir >= 0) {
        start = sv[0].t == VT_UNDEF ? 0 : sv[0].u.n;
        start = start < 0 ? fmax(L + start, 0) : fmin(start, L);
        stop = sv[1].t == VT_UNDEF ? L : sv[1].u.n;
        stop = stop < 0 ? fmax(L + stop, 0) : fmin(stop, L);
    } else {
        start = sv[0].t == VT_UNDEF ? L - 1 : sv[0].u.n;
        start = start < 0 ? fmax(L + start, -1) : fmin(start, L - 1);
        stop = sv[1].t == VT_UNDEF ? -1 : sv[1].u.n;
        stop = stop < -1 ? fmax(L + stop, -1) : fmin(stop, L - 1);
    }
    lbuild b = { 0 };
    size_t m = R->on;
    if (dir != 0)
        for (double i = start; dir * i < dir * stop; i += st) {
            size_t k = (size_t)i;
            if (obj.t == VT_LIST)
                lb_push(R, &b, obj.u.l->v[k], line);
            else
                out_put(R, obj.u.s.p + off[k], off[k + 1] - off[k], line);
        }
    if (obj.t == VT_STR)
        return take(R, m, line);
    return lb_done(R, &b, line);
}

static val eval_member(rstate *R, const node *x, scope *env)
{
    val obj = eval(R, x->a, env), prop;
    int line = x->line;
    if (x->op) {
        if (x->b->kind == N_SLICE)
            return eval_slice(R, obj, x->b, env, line);
        prop = eval(R, x->b, env);
    } else if (x->b->kind == N_INT) {
        prop = vint(x->b->num);
    } else {
        prop = vstr(x->b->s, x->b->n);
    }
    if (obj.t == VT_DICT || obj.t == VT_NS) {
        if (prop.t != VT_STR)
            FAIL(R, line, "cannot access property with non-string: got %s", vt_names[prop.t]);
        long i = dict_find(obj.u.d, prop.u.s.p, prop.u.s.n);
        if (i >= 0)
            return obj.u.d->v[i];
        return obj.t == VT_DICT ? dmeth(R, obj, prop.u.s.p, prop.u.s.n, line) : V_UNDEF;
    }
    if (obj.t == VT_LIST || obj.t == VT_STR) {
        if (prop.t == VT_INT) {
            if (obj.t == VT_STR)
                return str_at(R, obj, prop.u.n, line);
            long k = at_index(prop.u.n, obj.u.l->n);
            return k < 0 ? V_UNDEF : obj.u.l->v[k];
        }
        if (prop.t == VT_STR) {
            if (obj.t == VT_STR)
                return smeth(R, obj, prop.u.s.p, prop.u.s.n, line);
            if (prop.u.s.n == 6 && memcmp(prop.u.s.p, "length", 6) == 0)
                return vint((double)obj.u.l->n);
            return V_UNDEF;
        }
        FAIL(R, line, "cannot access property with non-string/non-number: got %s", vt_names[prop.t]);
    }
    if (prop.t != VT_STR)
        FAIL(R, line, "cannot access property with non-string: got %s", vt_names[prop.t]);
    return V_UNDEF;
}

/* --- filters -------------------------------------------------------------------------- */

static val json_value(rstate *R, val v, const jopts *o, int undef_null, int line)
{
    size_t m = R->on;
    json_write(R, v, o, 0, undef_null, line);
    return take(R, m, line);
}

/* Raw-value join of the reference's `join` filter on lists. */
static val list_join(rstate *R, val l, val sep, int line)
{
    size_t m = R->on;
    char buf[64];
    for (size_t i = 0; i < l.u.l->n; i++) {
        if (i)
            out_put(R, sep.u.s.p, sep.u.s.n, line);
        val x = l.u.l->v[i];
        switch (x.t) {
        case VT_STR: out_put(R, x.u.s.p, x.u.s.n, line); break;
        case VT_INT: case VT_FLOAT: out_put(R, buf, js_num_str(x.u.n, buf), line); break;
        case VT_BOOL: out_put(R, x.u.b ? "true" : "false", x.u.b ? 4 : 5, line); break;
        case VT_NULL: case VT_UNDEF: break;
        default: UNSUP(R, line, "joining a list that holds a %s", vt_names[x.t]);
        }
    }
    return take(R, m, line);
}

static val str_indent(rstate *R, val s, val width, int first, int blank, int line)
{
    size_t m = R->on;
    const char *p = s.u.s.p, *end = p + s.u.s.n;
    size_t w = (size_t)fmax(width.u.n, 0);
    for (size_t ln = 0;; ln++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (!((!first && ln == 0) || (!blank && n == 0)))
            for (size_t k = 0; k < w; k++)
                out_c(R, ' ', line);
        out_put(R, p, n, line);
        if (!nl)
            break;
        out_c(R, '\n', line);
        p = nl + 1;
    }
    return take(R, m, line);
}

/* JavaScript truthiness of a raw value (the indent filter's first/blank flags). */
static int raw_truthy(val v) { return truthy(v) || v.t == VT_LIST || v.t == VT_DICT; }

static val apply_filter(rstate *R, val v, const node *f, scope *env)
{
    int line = f->line;
    if (f->kind == N_IDENT) {
        const char *nm = f->s;
#define IS(s) (strcmp(nm, s) == 0)
        if (IS("safe"))
            return v;
        if (IS("tojson"))
            return json_value(R, v, &json_default, 1, line);
        if (v.t == VT_LIST) {
            size_t n = v.u.l->n;
            if (IS("list"))
                return v;
            if (IS("first") || IS("last")) {
                if (n == 0)
                    UNSUP(R, line, "'%s' of an empty list (the reference returns a JavaScript undefined)", nm);
                return v.u.l->v[IS("first") ? 0 : n - 1];
            }
            if (IS("length"))
                return vint((double)n);
            if (IS("reverse")) {
                vlist *l = list_new(R, n, line);
                for (size_t i = 0; i < n; i++)
                    l->v[i] = v.u.l->v[n - 1 - i];
                return vlistv(l);
            }
            if (IS("sort")) {
                sortkey *k = ralloc(R, mul_or_die(R, n ? n : 1, sizeof *k, line), line);
                for (size_t i = 0; i < n; i++)
                    k[i].item = k[i].key = v.u.l->v[i];
                sort_keys(R, k, n, 0, 0, line);
                vlist *l = list_new(R, n, line);
                for (size_t i = 0; i < n; i++)
                    l->v[i] = k[i].item;
                return vlistv(l);
            }
            if (IS("join"))
                return list_join(R, v, vstr("", 0), line);
            if (IS("string"))
                return json_value(R, v, &json_default, 0, line);
            if (IS("unique")) {
                lbuild b = { 0 };
                for (size_t i = 0; i < n; i++) {
                    val x = v.u.l->v[i];
                    int seen = 0;
                    for (size_t j = 0; j < b.n && !seen; j++)
                        seen = strict_eq(b.v[j], x) || (is_num(x) && is_num(b.v[j]) && isnan(x.u.n) && isnan(b.v[j].u.n));
                    if (!seen)
                        lb_push(R, &b, x, line);
                }
                return lb_done(R, &b, line);
            }
            FAIL(R, line, "unknown list filter '%s'", nm);
        }
        if (v.t == VT_STR) {
            if (IS("length")) return vint((double)u16_len(v.u.s.p, v.u.s.n));
            if (IS("upper")) return str_case(R, v, 1, line);
            if (IS("lower")) return str_case(R, v, 0, line);
            if (IS("title")) return str_title(R, v, line);
            if (IS("capitalize")) return str_capitalize(R, v, line);
            if (IS("trim")) return str_trim(v, 1, 1);
            if (IS("indent")) return str_indent(R, v, vint(4), 0, 0, line);
            if (IS("join") || IS("string")) return v;
            if (IS("int")) {
                double d = js_parse_int(v);
                return vint(isnan(d) ? 0 : d);
            }
            if (IS("float")) {
                double d = js_parse_float(v);
                return vfloat(isnan(d) ? 0 : d);
            }
            FAIL(R, line, "unknown string filter '%s'", nm);
        }
        if (is_num(v)) {
            if (IS("abs")) return v.t == VT_INT ? vint(fabs(v.u.n)) : vfloat(fabs(v.u.n));
            if (IS("int")) return vint(floor(v.u.n));
            if (IS("float")) return vfloat(v.u.n);
            if (IS("string")) return to_string_value(R, v, line);
            FAIL(R, line, "unknown number filter '%s'", nm);
        }
        if (v.t == VT_DICT) {
            if (IS("items")) return dict_items(R, v.u.d, line);
            if (IS("length")) return vint((double)v.u.d->n);
            val m = dmeth(R, v, nm, strlen(nm), line);
            if (m.t == VT_FUNC) {
                args none = { 0 };
                return call_dmeth(R, m.u.f->meth, v, &none, line);
            }
            FAIL(R, line, "unknown dict filter '%s'", nm);
        }
        if (v.t == VT_BOOL) {
            if (IS("bool")) return v;
            if (IS("int")) return vint(v.u.b);
            if (IS("float")) return vfloat(v.u.b);
            if (IS("string")) return v.u.b ? vstr("true", 4) : vstr("false", 5);
            FAIL(R, line, "unknown boolean filter '%s'", nm);
        }
        FAIL(R, line, "cannot apply filter '%s' to type %s", nm, vt_names[v.t]);
    }
    if (f->kind != N_CALL || f->a->kind != N_IDENT)
        FAIL(R, line, "unknown filter");
    const char *nm = f->a->s;
    args a;
    if (IS("tojson")) {
        eval_args(R, f->list, f->nlist, env, &a, line);
        val indent = kwval(a.kw, "indent"), ea = kwval(a.kw, "ensure_ascii");
        val sk = kwval(a.kw, "sort_keys"), seps = kwval(a.kw, "separators");
        jopts o = json_default;
        if (indent.t != VT_UNDEF && indent.t != VT_NULL && indent.t != VT_INT)
            FAIL(R, line, "if set, indent must be a number");
        if (ea.t != VT_UNDEF && ea.t != VT_BOOL)
            FAIL(R, line, "if set, ensure_ascii must be a boolean");
        if (sk.t != VT_UNDEF && sk.t != VT_BOOL)
            FAIL(R, line, "if set, sort_keys must be a boolean");
        if (sk.t == VT_BOOL && sk.u.b)
            UNSUP(R, line, "tojson(sort_keys=true) (locale collation)");
        if (indent.t == VT_INT && indent.u.n != 0) {
            /* Checked where a container is written: a scalar never uses the indent. */
            o.indent = indent.u.n < 0 ? -1 : indent.u.n > 1e6 ? 1000001 : (long)indent.u.n;
            o.isep = ",";
            o.isepn = 1;
        }
        o.ascii = ea.t == VT_BOOL && ea.u.b;
        if (seps.t == VT_LIST) {
            if (seps.u.l->n != 2 || seps.u.l->v[0].t != VT_STR || seps.u.l->v[1].t != VT_STR)
                FAIL(R, line, "separators must be a tuple of two strings");
            o.isep = seps.u.l->v[0].u.s.p;
            o.isepn = seps.u.l->v[0].u.s.n;
            o.ksep = seps.u.l->v[1].u.s.p;
            o.ksepn = seps.u.l->v[1].u.s.n;
        } else if (seps.t != VT_UNDEF && seps.t != VT_NULL) {
            FAIL(R, line, "if set, separators must be a tuple of two strings");
        }
        return json_value(R, v, &o, 1, line);
    }
    if (IS("join")) {
        if (v.t != VT_STR && v.t != VT_LIST)
            FAIL(R, line, "cannot apply filter 'join' to type %s", vt_names[v.t]);
        eval_args(R, f->list, f->nlist, env, &a, line);
        val sep = a.npos ? a.pos[0] : kwval(a.kw, "separator");
        if (sep.t == VT_UNDEF)
            sep = vstr("", 0);
        if (sep.t != VT_STR)
            FAIL(R, line, "separator must be a string");
        if (v.t == VT_LIST)
            return list_join(R, v, sep, line);
        size_t ncp, *off = cp_offsets(R, v, &ncp, line), m = R->on;
        for (size_t i = 0; i < ncp; i++) {
            if (i)
                out_put(R, sep.u.s.p, sep.u.s.n, line);
            out_put(R, v.u.s.p + off[i], off[i + 1] - off[i], line);
        }
        return take(R, m, line);
    }
    if (IS("int") || IS("float")) {
        int isint = IS("int");
        eval_args(R, f->list, f->nlist, env, &a, line);
        val def = a.npos ? a.pos[0] : kwval(a.kw, "default");
        if (def.t == VT_UNDEF)
            def = isint ? vint(0) : vfloat(0);
        if (v.t == VT_STR) {
            double d = isint ? js_parse_int(v) : js_parse_float(v);
            return isnan(d) ? def : isint ? vint(d) : vfloat(d);
        }
        if (is_num(v))
            return v;
        if (v.t == VT_BOOL)
            return isint ? vint(v.u.b) : vfloat(v.u.b);
        FAIL(R, line, "cannot apply filter '%s' to type %s", nm, vt_names[v.t]);
    }
    if (IS("default")) {
        eval_args(R, f->list, f->nlist, env, &a, line);
        val def = a.npos ? a.pos[0] : vstr("", 0);
        val boolean = a.npos > 1 ? a.pos[1] : kwval(a.kw, "boolean");
        if (boolean.t == VT_UNDEF)
            boolean = vbool(0);
        if (boolean.t != VT_BOOL)
            FAIL(R, line, "'default' filter flag must be a boolean");
        if (v.t == VT_UNDEF || (boolean.u.b && !truthy(v)))
            return def;
        return v;
    }
    if (v.t == VT_LIST) {
        size_t n = v.u.l->n;
        if (IS("sort")) {
            eval_args(R, f->list, f->nlist, env, &a, line);
            val rev = a.npos > 0 ? a.pos[0] : kwval(a.kw, "reverse");
            val cs = a.npos > 1 ? a.pos[1] : kwval(a.kw, "case_sensitive");
            val at = a.npos > 2 ? a.pos[2] : kwval(a.kw, "attribute");
            if (rev.t == VT_UNDEF) rev = vbool(0);
            if (cs.t == VT_UNDEF) cs = vbool(0);
            if (at.t == VT_UNDEF) at = V_NULL;
            if (rev.t != VT_BOOL) FAIL(R, line, "reverse must be a boolean");
            if (cs.t != VT_BOOL) FAIL(R, line, "case_sensitive must be a boolean");
            if (at.t != VT_STR && at.t != VT_INT && at.t != VT_NULL)
                FAIL(R, line, "attribute must be a string, integer, or null");
            if (at.t == VT_INT)
                at = js_tostr(R, at, line);
            sortkey *k = ralloc(R, mul_or_die(R, n ? n : 1, sizeof *k, line), line);
            for (size_t i = 0; i < n; i++) {
                k[i].item = v.u.l->v[i];
                k[i].key = at.t == VT_NULL ? v.u.l->v[i] : attr_path(v.u.l->v[i], at.u.s.p, at.u.s.n);
            }
            sort_keys(R, k, n, cs.u.b, rev.u.b, line);
            vlist *l = list_new(R, n, line);
            for (size_t i = 0; i < n; i++)
                l->v[i] = k[i].item;
            return vlistv(l);
        }
        if (IS("selectattr") || IS("rejectattr")) {
            int sel = IS("selectattr");
            for (size_t i = 0; i < n; i++)
                if (v.u.l->v[i].t != VT_DICT && v.u.l->v[i].t != VT_NS)
                    FAIL(R, line, "'%s' can only be applied to a list of objects", nm);
            for (size_t i = 0; i < f->nlist; i++)
                if (f->list[i]->kind != N_STR)
                    FAIL(R, line, "arguments of '%s' must be strings", nm);
            if (f->nlist == 0)
                FAIL(R, line, "'%s' needs an attribute name", nm);
            val attr = eval(R, f->list[0], env);
            const char *test = f->nlist > 1 ? f->list[1]->s : NULL;
            val cmp = f->nlist > 2 ? eval(R, f->list[2], env) : V_UNDEF;
            if (test && !known_test(test))
                FAIL(R, line, "unknown test '%s'", test);
            lbuild b = { 0 };
            for (size_t i = 0; i < n; i++) {
                val item = v.u.l->v[i];
                long k = dict_find(item.u.d, attr.u.s.p, attr.u.s.n);
                int r = 0;
                if (k >= 0)
                    r = test ? run_test(R, test, item.u.d->v[k], f->nlist > 2, cmp, line) : truthy(item.u.d->v[k]);
                if (sel ? r : !r)
                    lb_push(R, &b, item, line);
            }
            return lb_done(R, &b, line);
        }
        if (IS("map")) {
            eval_args(R, f->list, f->nlist, env, &a, line);
            val at = kwval(a.kw, "attribute");
            if (at.t == VT_UNDEF)
                FAIL(R, line, "'map' without 'attribute' is not supported by the reference");
            if (at.t != VT_STR)
                FAIL(R, line, "attribute must be a string");
            val def = kwval(a.kw, "default");
            vlist *l = list_new(R, n, line);
            for (size_t i = 0; i < n; i++) {
                val item = v.u.l->v[i];
                if (item.t != VT_DICT && item.t != VT_NS)
                    FAIL(R, line, "items in map must be an object");
                val x = attr_path(item, at.u.s.p, at.u.s.n);
                l->v[i] = x.t == VT_UNDEF ? def : x;
            }
            return vlistv(l);
        }
        FAIL(R, line, "unknown list filter '%s'", nm);
    }
    if (v.t == VT_STR) {
        if (IS("indent")) {
            eval_args(R, f->list, f->nlist, env, &a, line);
            val w = a.npos > 0 ? a.pos[0] : kwval(a.kw, "width");
            val first = a.npos > 1 ? a.pos[1] : kwval(a.kw, "first");
            val blank = a.npos > 2 ? a.pos[2] : kwval(a.kw, "blank");
            if (w.t == VT_UNDEF)
                w = vint(4);
            if (w.t != VT_INT)
                FAIL(R, line, "width must be a number");
            if (w.u.n < 0)
                FAIL(R, line, "invalid indent width (negative)");
            if (w.u.n > 1e6)
                rerr(R, DK_ELIMIT, line, "indent width over the limit");
            return str_indent(R, v, w, raw_truthy(first), raw_truthy(blank), line);
        }
        if (IS("replace")) {
            eval_args(R, f->list, f->nlist, env, &a, line);
            /* The reference always appends the keyword dict, even empty. */
            if (!a.kw)
                a.kw = dict_new(R, 1, line);
            val old, nw, count = V_NULL;
            size_t na = a.npos + 1;
            if (na < 2)
                FAIL(R, line, "replace() requires at least two arguments");
            old = a.pos[0];
            nw = a.npos > 1 ? a.pos[1] : V_UNDEF;
            if (old.t != VT_STR || nw.t != VT_STR)
                FAIL(R, line, "replace() arguments must be strings");
            if (a.npos > 2)
                count = a.pos[2];
            else {
                count = kwval(a.kw, "count");
                if (count.t == VT_UNDEF)
                    count = V_NULL;
            }
            if (count.t != VT_INT && count.t != VT_NULL)
                FAIL(R, line, "replace() count argument must be a number or null");
            return str_replace(R, v, old, nw, count.t == VT_INT, count.t == VT_INT ? count.u.n : 0, line);
        }
        FAIL(R, line, "unknown string filter '%s'", nm);
    }
    if (v.t == VT_DICT) {
        val m = dmeth(R, v, nm, strlen(nm), line);
        if (m.t == VT_FUNC) {
            eval_args(R, f->list, f->nlist, env, &a, line);
            return call_dmeth(R, m.u.f->meth, v, &a, line);
        }
        FAIL(R, line, "unknown dict filter '%s'", nm);
    }
    FAIL(R, line, "cannot apply filter '%s' to type %s", nm, vt_names[v.t]);
#undef IS
}

/* --- operators -------------------------------------------------------------------------- */

static const char *const op_names[] = {
    "or", "and", "not", "==", "!=", "<", ">", "<=", ">=", "in", "not in", "+", "-", "~", "*",
    "/", "//", "%", "**",
};

static val eval_binary(rstate *R, const node *x, scope *env)
{
    int line = x->line, op = x->op;
    val l = eval(R, x->a, env);
    if (op == OP_AND)
        return truthy(l) ? eval(R, x->b, env) : l;
    if (op == OP_OR)
        return truthy(l) ? l : eval(R, x->b, env);
    val r = eval(R, x->b, env);
    if (op == OP_EQ)
        return vbool(loose_eq(R, l, r, line));
    if (op == OP_NE)
        return vbool(!loose_eq(R, l, r, line));
    if (l.t == VT_UNDEF || r.t == VT_UNDEF) {
        if (r.t == VT_UNDEF && (op == OP_IN || op == OP_NOTIN))
            return vbool(op == OP_NOTIN);
        FAIL(R, line, "cannot perform operation %s on undefined values", op_names[op]);
    }
    if (l.t == VT_NULL || r.t == VT_NULL)
        FAIL(R, line, "cannot perform operation %s on null values", op_names[op]);
    if (op == OP_CONCAT) {
        val a = js_tostr(R, l, line), b = js_tostr(R, r, line);
        return str_cat(R, a.u.s.p, a.u.s.n, b.u.s.p, b.u.s.n, line);
    }
    if (op == OP_POW && is_numlike(l) && is_numlike(r)) {
        double a = numlike(l), b = numlike(r);
        if (a == 0 && b < 0)
            FAIL(R, line, "0.0 cannot be raised to a negative power");
        /* Only exact integer powers: V8's pow rounds differently from the C library's
         * in the last bit, so any other result could differ from the reference. */
        if (!(floor(a) == a && floor(b) == b && b >= 0 && fabs(a) <= 9007199254740992.0 && b <= 1100))
            UNSUP(R, line, "'**' other than an integer to a non-negative integer power");
        double res = 1;
        for (double k = 0; k < b && fabs(res) < 9007199254740992.0; k++)
            res *= a;
        if (fabs(res) >= 9007199254740992.0)
            UNSUP(R, line, "'**' with a result above 2**53");
        return (l.t == VT_FLOAT || r.t == VT_FLOAT) ? vfloat(res) : vint(res);
    }
    if (is_num(l) && is_num(r)) {
        double a = l.u.n, b = r.u.n;
        int fl = l.t == VT_FLOAT || r.t == VT_FLOAT;
        switch (op) {
        case OP_ADD: return fl ? vfloat(a + b) : vint(a + b);
        case OP_SUB: return fl ? vfloat(a - b) : vint(a - b);
        case OP_MUL: return fl ? vfloat(a * b) : vint(a * b);
        case OP_DIV: return vfloat(a / b);
        case OP_FLOORDIV: return fl ? vfloat(floor(a / b)) : vint(floor(a / b));
        case OP_MOD: return fl ? vfloat(fmod(a, b)) : vint(fmod(a, b));
        case OP_LT: return vbool(a < b);
        case OP_GT: return vbool(a > b);
        case OP_GE: return vbool(a >= b);
        case OP_LE: return vbool(a <= b);
        default: break;
        }
    } else if (l.t == VT_LIST && r.t == VT_LIST) {
        if (op == OP_ADD) {
            vlist *o = list_new(R, l.u.l->n + r.u.l->n, line);
            memcpy(o->v, l.u.l->v, l.u.l->n * sizeof(val));
            memcpy(o->v + l.u.l->n, r.u.l->v, r.u.l->n * sizeof(val));
            return vlistv(o);
        }
    } else if (r.t == VT_LIST && (op == OP_IN || op == OP_NOTIN)) {
        int member = 0;
        for (size_t i = 0; i < r.u.l->n && !member; i++)
            member = strict_eq(r.u.l->v[i], l);
        return vbool(op == OP_IN ? member : !member);
    }
    if ((l.t == VT_STR || r.t == VT_STR) && op == OP_ADD) {
        val a = js_tostr(R, l, line), b = js_tostr(R, r, line);
        return str_cat(R, a.u.s.p, a.u.s.n, b.u.s.p, b.u.s.n, line);
    }
    if (l.t == VT_STR && r.t == VT_STR && (op == OP_IN || op == OP_NOTIN)) {
        int has = memfind(r.u.s.p, r.u.s.n, l.u.s.p, l.u.s.n) != NULL;
        return vbool(op == OP_IN ? has : !has);
    }
    if (l.t == VT_STR && r.t == VT_DICT && (op == OP_IN || op == OP_NOTIN)) {
        int has = dict_find(r.u.d, l.u.s.p, l.u.s.n) >= 0;
        return vbool(op == OP_IN ? has : !has);
    }
    FAIL(R, line, "unknown operator '%s' between %s and %s", op_names[op], vt_names[l.t], vt_names[r.t]);
}

static val eval_unary(rstate *R, const node *x, scope *env)
{
    val a = eval(R, x->a, env);
    if (x->op == OP_NOT)
        return vbool(!truthy(a));
    if (is_numlike(a)) {
        double v = (x->op == OP_SUB ? -1 : 1) * numlike(a);
        return a.t == VT_FLOAT ? vfloat(v) : vint(v);
    }
    FAIL(R, x->line, "unknown operator '%s' for %s", x->op == OP_SUB ? "-" : "+", vt_names[a.t]);
}

/* --- expressions --------------------------------------------------------------------- */

static val eval(rstate *R, const node *x, scope *env)
{
    step(R, x->line);
    if (++R->depth > R->lim.max_depth * 8)
        rerr(R, DK_ELIMIT, x->line, "evaluation nested deeper than the limit");
    val v;
    switch (x->kind) {
    case N_TEXT: case N_STR:
        v = vstr(x->s, x->n);
        break;
    case N_INT:
        v = vint(x->num);
        break;
    case N_FLOAT:
        v = vfloat(x->num);
        break;
    case N_ARRAY: case N_TUPLE: {
        vlist *l = list_new(R, x->nlist, x->line);
        for (size_t i = 0; i < x->nlist; i++)
            l->v[i] = eval(R, x->list[i], env);
        v = vlistv(l);
        v.tuple = x->kind == N_TUPLE;
        break;
    }
    case N_OBJECT: {
        vdict *d = dict_new(R, x->nlist, x->line);
        for (size_t i = 0; i < x->nlist; i++) {
            val k = eval(R, x->list[i], env);
            if (k.t != VT_STR)
                FAIL(R, x->line, "dict keys must be strings: got %s", vt_names[k.t]);
            dict_set(R, d, k.u.s.p, k.u.s.n, eval(R, x->list2[i], env), x->line);
        }
        v = vdictv(d, VT_DICT);
        break;
    }
    case N_IDENT:
        v = lookup(R, env, x->sym);
        break;
    case N_CALL: {
        args a;
        eval_args(R, x->list, x->nlist, env, &a, x->line);
        val fn = eval(R, x->a, env);
        if (fn.t != VT_FUNC)
            FAIL(R, x->line, "cannot call something that is not a function: got %s", vt_names[fn.t]);
        v = call_func(R, fn.u.f, &a, env, x->line);
        break;
    }
    case N_MEMBER:
        v = eval_member(R, x, env);
        break;
    case N_UNARY:
        v = eval_unary(R, x, env);
        break;
    case N_BINARY:
        v = eval_binary(R, x, env);
        break;
    case N_FILTER:
        v = apply_filter(R, eval(R, x->a, env), x->b, env);
        break;
    case N_TEST: {
        val a = eval(R, x->a, env);
        if (!known_test(x->s))
            FAIL(R, x->line, "unknown test '%s'", x->s);
        int r = run_test(R, x->s, a, 0, V_UNDEF, x->line);
        v = vbool(x->op ? !r : r);
        break;
    }
    case N_SELECT:
        v = truthy(eval(R, x->b, env)) ? eval(R, x->a, env) : V_UNDEF;
        break;
    case N_TERNARY:
        v = truthy(eval(R, x->a, env)) ? eval(R, x->b, env) : eval(R, x->c, env);
        break;
    default:
        FAIL(R, x->line, "unexpected construct in an expression");
    }
    R->depth--;
    return v;
}

/* --- statements ------------------------------------------------------------------------ */

static void assign_loopvar(rstate *R, scope *s, const node *lv, val cur, int line)
{
    if (lv->kind == N_IDENT) {
        scope_set(R, s, lv->sym, cur, line);
        return;
    }
    for (size_t j = 0; j < lv->nlist; j++) {
        if (lv->list[j]->kind != N_IDENT)
            FAIL(R, line, "cannot unpack to a non-identifier");
        scope_set(R, s, lv->list[j]->sym, cur.u.l->v[j], line);
    }
}

static void exec_for(rstate *R, const node *x, scope *env)
{
    int line = x->line;
    scope *sc = scope_new(R, env, line);
    const node *itn = x->b, *test = NULL;
    if (itn->kind == N_SELECT) {
        test = itn->b;
        itn = itn->a;
    }
    val it = eval(R, itn, sc);
    if (it.t == VT_DICT)
        it = dict_keys(R, it.u.d, line);
    else if (it.t != VT_LIST)
        FAIL(R, line, "expected iterable or object type in for loop: got %s", vt_names[it.t]);
    const vlist *src = it.u.l;
    vlist *items = list_new(R, src->n, line);
    size_t n = 0;
    for (size_t i = 0; i < src->n; i++) {
        val cur = src->v[i];
        if (x->a->kind == N_TUPLE) {
            if (cur.t != VT_LIST || cur.tuple)
                FAIL(R, line, "cannot unpack non-iterable type: %s", cur.tuple ? "tuple" : vt_names[cur.t]);
            if (cur.u.l->n != x->a->nlist)
                FAIL(R, line, "too %s items to unpack", x->a->nlist > cur.u.l->n ? "few" : "many");
        }
        if (test) {
            scope *ls = scope_new(R, sc, line);
            assign_loopvar(R, ls, x->a, cur, line);
            if (!truthy(eval(R, test, ls)))
                continue;
        }
        items->v[n++] = cur;
    }
    static const char *const kn[] = { "index", "index0", "revindex", "revindex0", "first", "last",
                                      "length", "previtem", "nextitem" };
    jmp_buf jb;
    jmp_buf *volatile saved = R->loop_jb;
    volatile int no_iter = 1;
    for (volatile size_t i = 0; i < n; i++) {
        step(R, line);
        vdict *lp = dict_new(R, 9, line);
        val lv[9] = { vint((double)i + 1), vint((double)i), vint((double)(n - i)), vint((double)(n - i - 1)),
                      vbool(i == 0), vbool(i == n - 1), vint((double)n), i > 0 ? items->v[i - 1] : V_UNDEF,
                      i + 1 < n ? items->v[i + 1] : V_UNDEF };
        for (int k = 0; k < 9; k++)
            dict_set(R, lp, kn[k], strlen(kn[k]), lv[k], line);
        scope_set(R, sc, SYM_loop, vdictv(lp, VT_DICT), line);
        assign_loopvar(R, sc, x->a, items->v[i], line);
        size_t mark = R->on;
        int depth = R->depth;
        R->loop_jb = &jb;
        int c = setjmp(jb);
        if (c == 0) {
            exec_block(R, x->list, x->nlist, sc);
            no_iter = 0;
        } else {
            /* The reference's loop catches Break/Continue exceptions: the output of
             * the interrupted iteration is lost, and `continue` does not count as
             * an iteration for the else block. */
            R->on = mark;
            R->depth = depth;
            if (c == JMP_BREAK)
                break;
        }
    }
    R->loop_jb = saved;
    if (no_iter)
        exec_block(R, x->list2, x->nlist2, sc);
}

static void exec_set(rstate *R, const node *x, scope *env)
{
    int line = x->line;
    val rhs;
    if (x->b) {
        rhs = eval(R, x->b, env);
    } else {
        size_t mark = R->on;
        exec_block(R, x->list, x->nlist, env);
        rhs = take(R, mark, line);
    }
    const node *t = x->a;
    if (t->kind == N_IDENT) {
        scope_set(R, env, t->sym, rhs, line);
    } else if (t->kind == N_TUPLE) {
        if (rhs.t != VT_LIST)
            FAIL(R, line, "cannot unpack non-iterable type in set: %s", vt_names[rhs.t]);
        if (rhs.u.l->n != t->nlist)
            FAIL(R, line, "too %s items to unpack in set", t->nlist > rhs.u.l->n ? "few" : "many");
        for (size_t i = 0; i < t->nlist; i++) {
            if (t->list[i]->kind != N_IDENT)
                FAIL(R, line, "cannot unpack to non-identifier in set");
            scope_set(R, env, t->list[i]->sym, rhs.u.l->v[i], line);
        }
    } else if (t->kind == N_MEMBER) {
        val obj = eval(R, t->a, env);
        if (obj.t != VT_NS)
            FAIL(R, line, "cannot assign attribute on non-namespace object");
        if (t->b->kind != N_IDENT)
            FAIL(R, line, "cannot assign to member with non-identifier property");
        dict_set(R, obj.u.d, t->b->s, t->b->n, rhs, line);
    } else {
        FAIL(R, line, "invalid left-hand side of an assignment");
    }
}

static void exec_stmt(rstate *R, const node *x, scope *env)
{
    int line = x->line;
    step(R, line);
    if (++R->depth > R->lim.max_depth * 8)
        rerr(R, DK_ELIMIT, line, "evaluation nested deeper than the limit");
    switch (x->kind) {
    case N_TEXT:
        out_put(R, x->s, x->n, line);
        break;
    case N_COMMENT:
        break;
    case N_IF:
        if (truthy(eval(R, x->a, env)))
            exec_block(R, x->list, x->nlist, env);
        else
            exec_block(R, x->list2, x->nlist2, env);
        break;
    case N_FOR:
        exec_for(R, x, env);
        break;
    case N_SET:
        exec_set(R, x, env);
        break;
    case N_MACRO:
        scope_set(R, env, x->sym, func_new(R, F_MACRO, 0, V_UNDEF, x, line), line);
        break;
    case N_BREAK: case N_CONTINUE:
        if (!R->loop_jb)
            FAIL(R, line, "'%s' outside a loop", x->kind == N_BREAK ? "break" : "continue");
        longjmp(*R->loop_jb, x->kind == N_BREAK ? JMP_BREAK : JMP_CONTINUE);
    case N_CALLBLOCK: {
        val caller = func_new(R, F_CALLER, 0, V_UNDEF, x, line);
        caller.u.f->env = env;
        args a;
        eval_args(R, x->a->list, x->a->nlist, env, &a, line);
        val fn = eval(R, x->a->a, env);
        if (fn.t != VT_FUNC)
            FAIL(R, line, "cannot call something that is not a function: got %s", vt_names[fn.t]);
        if (fn.u.f->kind != F_MACRO)
            UNSUP(R, line, "a call block on a builtin function");
        scope *ns = scope_new(R, env, line);
        scope_set(R, ns, SYM_caller, caller, line);
        emit_value(R, call_macro(R, fn.u.f->macro, &a, ns, line), line);
        break;
    }
    case N_FILTERBLOCK: {
        size_t mark = R->on;
        exec_block(R, x->list, x->nlist, env);
        val body = take(R, mark, line);
        emit_value(R, apply_filter(R, body, x->a, env), line);
        break;
    }
    default:
        emit_value(R, eval(R, x, env), line);
        break;
    }
    R->depth--;
}

static void exec_block(rstate *R, node *const *list, size_t n, scope *env)
{
    for (size_t i = 0; i < n; i++)
        exec_stmt(R, list[i], env);
}

/* ------------------------------------------------------------------------------------
 * Context: cJSON -> values, as JSON.parse + the reference's convertToRuntimeValues.
 */

/* An array-index key ("0", "17", below 2^32 - 1) and its value. */
static int index_key(const char *k, double *out)
{
    size_t n = strlen(k);
    if (n == 0 || n > 10 || (n > 1 && k[0] == '0'))
        return 0;
    double v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)k[i]))
            return 0;
        v = v * 10 + (k[i] - '0');
    }
    if (v >= 4294967295.0)
        return 0;
    *out = v;
    return 1;
}

static val from_json(rstate *R, const cJSON *j, int depth)
{
    if (depth > 1000)
        rerr(R, DK_ELIMIT, 0, "context nested deeper than 1000 levels");
    if (cJSON_IsNull(j))
        return V_NULL;
    if (cJSON_IsBool(j))
        return vbool(cJSON_IsTrue(j));
    if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;
        return (isfinite(d) && floor(d) == d) ? vint(d) : vfloat(d);
    }
    if (cJSON_IsString(j)) {
        size_t n = strlen(j->valuestring);
        if (!u8_valid(j->valuestring, n))
            rerr(R, DK_EUTF8, 0, "context string is not valid UTF-8");
        return vstr(j->valuestring, n);
    }
    size_t n = 0;
    if (cJSON_IsArray(j) || cJSON_IsObject(j))
        for (const cJSON *c = j->child; c; c = c->next)
            n++;
    if (cJSON_IsArray(j)) {
        size_t i = 0;
        vlist *l = list_new(R, n, 0);
        for (const cJSON *c = j->child; c && i < n; c = c->next)
            l->v[i++] = from_json(R, c, depth + 1);
        l->n = i;
        return vlistv(l);
    }
    if (cJSON_IsObject(j)) {
        vdict *d = dict_new(R, n, 0);
        /* JavaScript objects list array-index keys first, in numeric order. */
        int has_index = 0;
        for (const cJSON *c = j->child; c; c = c->next) {
            double ix;
            if (c->string && index_key(c->string, &ix))
                has_index = 1;
        }
        if (has_index) {
            for (;;) {
                double best = -1;
                const cJSON *bc = NULL;
                for (const cJSON *c = j->child; c; c = c->next) {
                    double ix;
                    if (c->string && index_key(c->string, &ix) && dict_find(d, c->string, strlen(c->string)) < 0 &&
                        (bc == NULL || ix < best)) {
                        best = ix;
                        bc = c;
                    }
                }
                if (!bc)
                    break;
                dict_set(R, d, bc->string, strlen(bc->string), V_UNDEF, 0);
            }
        }
        for (const cJSON *c = j->child; c; c = c->next) {
            const char *k = c->string ? c->string : "";
            size_t kn = strlen(k);
            if (!u8_valid(k, kn))
                rerr(R, DK_EUTF8, 0, "context key is not valid UTF-8");
            dict_set(R, d, k, kn, from_json(R, c, depth + 1), 0);
        }
        return vdictv(d, VT_DICT);
    }
    rerr(R, DK_EINVAL, 0, "context holds a raw JSON value");
}

/* ------------------------------------------------------------------------------------
 * Public API.
 */
void dk_template_limits_default(dk_template_limits *lim)
{
    lim->max_output = (size_t)64 << 20;
    lim->max_memory = (size_t)512 << 20;
    lim->max_steps = 50000000;
    lim->max_depth = 128;
}

void dk_template_free(dk_template *t)
{
    if (!t)
        return;
    arena_free(&t->mem);
    free(t->name);
    free(t->src);
    free(t->syms);
    free(t->symlen);
    free(t);
}

int dk_template_parse(dk_template **out, const char *src, size_t len, const char *name, dk_error *err)
{
    *out = NULL;
    dk_template *t = calloc(1, sizeof *t);
    if (!t)
        return dk_error_set(err, DK_ENOMEM, name, 0, "out of memory");
    int rc = 0;
    pbuf pp = { 0 };
    lexer L = { 0 };
    t->name = strdup(name ? name : "<template>");
    if (!t->name) {
        rc = dk_error_set(err, DK_ENOMEM, name, 0, "out of memory");
        goto out;
    }
    if (!u8_valid(src, len)) {
        rc = dk_error_set(err, DK_EUTF8, t->name, 0, "template is not valid UTF-8");
        goto out;
    }
    for (int i = 0; i < SYM_FIXED; i++)
        if (sym_intern(t, fixed_syms[i], strlen(fixed_syms[i])) != i) {
            rc = dk_error_set(err, DK_ENOMEM, t->name, 0, "out of memory");
            goto out;
        }
    if (preprocess(src, len, &pp)) {
        rc = dk_error_set(err, DK_ENOMEM, t->name, 0, "out of memory");
        goto out;
    }
    t->src = pp.s;
    pp.s = NULL;
    L.t = t;
    L.s = t->src;
    L.ln = pp.ln;
    L.n = pp.n;
    L.err = err;
    if ((rc = lx_run(&L)))
        goto out;
    if ((rc = lx_push(&L, T_EOF, "", 0, L.toks[L.ntok - 1].line)))
        goto out;
    parser *P = calloc(1, sizeof *P);
    if (!P) {
        rc = dk_error_set(err, DK_ENOMEM, t->name, 0, "out of memory");
        goto out;
    }
    P->t = t;
    P->tk = L.toks;
    P->n = L.ntok;
    P->err = err;
    P->max_depth = 128;
    if (setjmp(P->jb)) {
        rc = err ? err->code : DK_EPARSE;
        if (rc == 0)
            rc = DK_EPARSE;
        free(P);
        goto out;
    }
    nvec body = { 0 };
    while (!is_t(P, T_EOF))
        nvec_push(P, &body, p_any(P));
    t->body = body.v;
    t->nbody = body.n;
    free(P);
out:
    free(pp.s);
    free(pp.ln);
    free(L.toks);
    if (rc) {
        if (err && err->code == 0)
            dk_error_set(err, rc, t->name, 0, "%s", dk_strerror(rc));
        dk_template_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

int dk_template_render(const dk_template *t, const cJSON *context, const dk_template_limits *lim,
                       char **out, size_t *out_len, dk_error *err_arg)
{
    *out = NULL;
    if (out_len)
        *out_len = 0;
    dk_error local;
    dk_error *const err = err_arg ? err_arg : &local;
    dk_error_clear(err);
    rstate *const R = calloc(1, sizeof *R);
    if (!R)
        return dk_error_set(err, DK_ENOMEM, t->name, 0, "out of memory");
    R->t = t;
    R->err = err;
    if (lim)
        R->lim = *lim;
    else
        dk_template_limits_default(&R->lim);
    R->mem.limit = R->lim.max_memory;
    jmp_buf jb;
    R->err_jb = &jb;
    int rc = 0;
    if (setjmp(jb)) {
        rc = R->err->code ? R->err->code : DK_EINVAL;
        goto done;
    }
    R->f_namespace = func_new(R, F_NAMESPACE, 0, V_UNDEF, NULL, 0);
    scope *root = scope_new(R, NULL, 0);
    scope_set(R, root, SYM_false, vbool(0), 0);
    scope_set(R, root, SYM_true, vbool(1), 0);
    scope_set(R, root, SYM_none, V_NULL, 0);
    scope_set(R, root, SYM_True, vbool(1), 0);
    scope_set(R, root, SYM_False, vbool(0), 0);
    scope_set(R, root, SYM_None, V_NULL, 0);
    scope_set(R, root, SYM_raise_exception, func_new(R, F_RAISE, 0, V_UNDEF, NULL, 0), 0);
    scope_set(R, root, SYM_range, func_new(R, F_RANGE, 0, V_UNDEF, NULL, 0), 0);
    scope_set(R, root, SYM_strftime_now, func_new(R, F_STRFTIME, 0, V_UNDEF, NULL, 0), 0);
    if (context) {
        if (!cJSON_IsObject(context))
            rerr(R, DK_EINVAL, 0, "the render context must be a JSON object");
        for (const cJSON *c = context->child; c; c = c->next) {
            const char *k = c->string ? c->string : "";
            size_t kn = strlen(k);
            int sym = -1;
            for (size_t i = 0; i < t->nsyms; i++)
                if (t->symlen[i] == kn && memcmp(t->syms[i], k, kn) == 0)
                    sym = (int)i;
            if (sym >= 0 && sym <= SYM_namespace)
                rerr(R, DK_EINVAL, 0, "context variable '%s' would replace a builtin", k);
            /* Names the template never mentions cannot be read by it. */
            if (sym >= 0)
                scope_set(R, root, sym, from_json(R, c, 0), 0);
        }
    }
    exec_block(R, t->body, t->nbody, root);
    out_put(R, "", 0, 0);
    R->out[R->on] = '\0';
    *out = R->out;
    if (out_len)
        *out_len = R->on;
    R->out = NULL;
done:
    free(R->out);
    arena_free(&R->mem);
    free(R);
    return rc;
}

/* ------------------------------------------------------------------------------------
 * Chat templates of a tokenizer_config.json.
 */
struct dk_chat_template {
    dk_template *def;      /* "default", or the single string template */
    dk_template *tool_use; /* "tool_use" of a named list, NULL when none */
    char        *bos, *eos;
    cJSON       *specials; /* transformers' special_tokens_map: name -> string (or list) */
};

/* The special tokens transformers hands every template (special_tokens_map). */
static const char *const special_names[] = {
    "bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token",
};

void dk_chat_template_free(dk_chat_template *ct)
{
    if (!ct)
        return;
    dk_template_free(ct->def);
    dk_template_free(ct->tool_use);
    free(ct->bos);
    free(ct->eos);
    cJSON_Delete(ct->specials);
    free(ct);
}

/* A special token: a string, or an AddedToken object with "content". */
static int special_token(const cJSON *config, const char *key, char **out, const char *name, dk_error *err)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(config, key);
    *out = NULL;
    if (!j || cJSON_IsNull(j))
        return 0;
    if (cJSON_IsObject(j))
        j = cJSON_GetObjectItemCaseSensitive(j, "content");
    if (!cJSON_IsString(j))
        return dk_error_set(err, DK_EPARSE, name, 0, "%s must be a string or an object with a string content", key);
    *out = strdup(j->valuestring);
    if (!*out)
        return dk_error_set(err, DK_ENOMEM, name, 0, "out of memory");
    return 0;
}

static int parse_named(dk_template **out, const char *src, const char *name, const char *which, dk_error *err)
{
    char label[512];
    snprintf(label, sizeof label, "%s:%s", name, which);
    return dk_template_parse(out, src, strlen(src), label, err);
}

int dk_chat_template_from_json(dk_chat_template **out, const cJSON *config, const char *name, dk_error *err)
{
    *out = NULL;
    if (!name)
        name = "tokenizer_config.json";
    if (!cJSON_IsObject(config))
        return dk_error_set(err, DK_EPARSE, name, 0, "tokenizer config is not a JSON object");
    dk_chat_template *ct = calloc(1, sizeof *ct);
    if (!ct)
        return dk_error_set(err, DK_ENOMEM, name, 0, "out of memory");
    int rc;
    const cJSON *tpl = cJSON_GetObjectItemCaseSensitive(config, "chat_template");
    if (cJSON_IsString(tpl)) {
        if ((rc = parse_named(&ct->def, tpl->valuestring, name, "chat_template", err)))
            goto fail;
    } else if (cJSON_IsArray(tpl)) {
        const cJSON *it;
        cJSON_ArrayForEach(it, tpl) {
            const cJSON *nm = cJSON_GetObjectItemCaseSensitive(it, "name");
            const cJSON *src = cJSON_GetObjectItemCaseSensitive(it, "template");
            if (!cJSON_IsString(nm) || !cJSON_IsString(src)) {
                rc = dk_error_set(err, DK_EPARSE, name, 0, "chat_template list items need string name and template");
                goto fail;
            }
            dk_template **slot = strcmp(nm->valuestring, "default") == 0 ? &ct->def
                               : strcmp(nm->valuestring, "tool_use") == 0 ? &ct->tool_use : NULL;
            if (!slot)
                continue;
            dk_template_free(*slot);
            *slot = NULL;
            if ((rc = parse_named(slot, src->valuestring, name, nm->valuestring, err)))
                goto fail;
        }
        if (!ct->def && !ct->tool_use) {
            rc = dk_error_set(err, DK_ENOTFOUND, name, 0, "chat_template list has neither 'default' nor 'tool_use'");
            goto fail;
        }
    } else {
        rc = dk_error_set(err, DK_ENOTFOUND, name, 0, "no chat_template in the tokenizer config");
        goto fail;
    }
    if (!(ct->specials = cJSON_CreateObject())) {
        rc = dk_error_set(err, DK_ENOMEM, name, 0, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < sizeof special_names / sizeof *special_names; i++) {
        char *tok;
        if ((rc = special_token(config, special_names[i], &tok, name, err)))
            goto fail;
        if (!tok)
            continue;
        cJSON *item = cJSON_CreateString(tok);
        if (i == 0)
            ct->bos = tok;
        else if (i == 1)
            ct->eos = tok;
        else
            free(tok);
        if (!item || !cJSON_AddItemToObject(ct->specials, special_names[i], item)) {
            cJSON_Delete(item);
            rc = dk_error_set(err, DK_ENOMEM, name, 0, "out of memory");
            goto fail;
        }
    }
    /* additional_special_tokens: a list of strings or AddedToken objects; kept when non-empty */
    const cJSON *add = cJSON_GetObjectItemCaseSensitive(config, "additional_special_tokens");
    if (cJSON_IsArray(add) && cJSON_GetArraySize(add) > 0) {
        cJSON *list = cJSON_AddArrayToObject(ct->specials, "additional_special_tokens");
        const cJSON *it;
        if (!list) {
            rc = dk_error_set(err, DK_ENOMEM, name, 0, "out of memory");
            goto fail;
        }
        cJSON_ArrayForEach(it, add) {
            const cJSON *c = cJSON_IsObject(it) ? cJSON_GetObjectItemCaseSensitive(it, "content") : it;
            if (!cJSON_IsString(c)) {
                rc = dk_error_set(err, DK_EPARSE, name, 0, "additional_special_tokens holds a non-string");
                goto fail;
            }
            cJSON *item = cJSON_CreateString(c->valuestring);
            if (!item || !cJSON_AddItemToArray(list, item)) {
                cJSON_Delete(item);
                rc = dk_error_set(err, DK_ENOMEM, name, 0, "out of memory");
                goto fail;
            }
        }
    }
    *out = ct;
    return 0;
fail:
    dk_chat_template_free(ct);
    return rc;
}

int dk_chat_template_load(dk_chat_template **out, const char *path, dk_error *err)
{
    *out = NULL;
    char file[4096];
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        snprintf(file, sizeof file, "%s/tokenizer_config.json", path);
    else
        snprintf(file, sizeof file, "%s", path);
    FILE *f = fopen(file, "rb");
    if (!f)
        return dk_error_set(err, errno == ENOENT ? DK_ENOTFOUND : DK_EIO, file, 0, "cannot open: %s", strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (n + 65536 > cap) {
            cap = cap ? cap * 2 : 131072;
            char *nb = realloc(buf, cap);
            if (!nb) {
                rc = dk_error_set(err, DK_ENOMEM, file, 0, "out of memory");
                break;
            }
            buf = nb;
        }
        size_t k = fread(buf + n, 1, cap - n - 1, f);
        n += k;
        if (k == 0) {
            if (ferror(f))
                rc = dk_error_set(err, DK_EIO, file, 0, "read error");
            break;
        }
    }
    fclose(f);
    if (rc) {
        free(buf);
        return rc;
    }
    cJSON *j = cJSON_ParseWithLength(buf, n);
    free(buf);
    if (!j)
        return dk_error_set(err, DK_EPARSE, file, 0, "not valid JSON");
    rc = dk_chat_template_from_json(out, j, file, err);
    cJSON_Delete(j);
    return rc;
}

const dk_template *dk_chat_template_pick(const dk_chat_template *ct, int has_tools)
{
    if (has_tools && ct->tool_use)
        return ct->tool_use;
    return ct->def;
}

const char *dk_chat_template_bos(const dk_chat_template *ct) { return ct ? ct->bos : NULL; }
const char *dk_chat_template_eos(const dk_chat_template *ct) { return ct ? ct->eos : NULL; }

/* Sets ctx[key] = item, replacing an earlier member; item is owned by ctx afterwards,
 * or freed when the set fails. */
static int ctx_set(cJSON *ctx, const char *key, cJSON *item)
{
    if (!item)
        return -1;
    cJSON_DeleteItemFromObjectCaseSensitive(ctx, key);
    if (!cJSON_AddItemToObject(ctx, key, item)) {
        cJSON_Delete(item);
        return -1;
    }
    return 0;
}

int dk_chat_template_context(cJSON **out, const dk_chat_template *ct, const cJSON *dialog,
                             int add_generation_prompt, const cJSON *kwargs, dk_error *err)
{
    *out = NULL;
    const cJSON *turns = cJSON_GetObjectItemCaseSensitive(dialog, "turns");
    if (!cJSON_IsArray(turns))
        return dk_error_set(err, DK_EINVAL, NULL, 0, "dialog has no turns array");
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(dialog, "tools");
    cJSON *ctx = cJSON_CreateObject();
    if (!ctx)
        return dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
    cJSON *tv;
    if (!tools || cJSON_IsNull(tools))
        tv = cJSON_CreateNull();
    else if (cJSON_IsArray(tools))
        tv = cJSON_CreateArrayReference(tools->child);
    else if (cJSON_IsObject(tools))
        tv = cJSON_CreateObjectReference(tools->child);
    else
        tv = cJSON_Duplicate(tools, 1);
    /* ctx_set takes its item even on failure, so each is made right before its set */
    if (ctx_set(ctx, "tools", tv) || ctx_set(ctx, "messages", cJSON_CreateArrayReference(turns->child)) ||
        ctx_set(ctx, "documents", cJSON_CreateNull()) ||
        ctx_set(ctx, "add_generation_prompt", cJSON_CreateBool(add_generation_prompt)))
        goto nomem;
    if (ct) {
        const cJSON *sp;
        cJSON_ArrayForEach(sp, ct->specials) {
            if (ctx_set(ctx, sp->string, cJSON_Duplicate(sp, 1)))
                goto nomem;
        }
    }
    if (kwargs) {
        const cJSON *kv;
        cJSON_ArrayForEach(kv, kwargs) {
            if (!kv->string)
                continue;
            cJSON *dup = cJSON_Duplicate(kv, 1);
            if (ctx_set(ctx, kv->string, dup))
                goto nomem;
        }
    }
    *out = ctx;
    return 0;
nomem:
    cJSON_Delete(ctx);
    return dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
}

int dk_chat_template_render_dialog(const dk_chat_template *ct, const cJSON *dialog, int add_generation_prompt,
                                   const cJSON *kwargs, const dk_template_limits *lim, char **out,
                                   size_t *out_len, dk_error *err)
{
    *out = NULL;
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(dialog, "tools");
    const dk_template *t = dk_chat_template_pick(ct, tools && !cJSON_IsNull(tools));
    if (!t)
        return dk_error_set(err, DK_ENOTFOUND, NULL, 0, "the tokenizer config has no 'default' chat template");
    cJSON *ctx;
    int rc = dk_chat_template_context(&ctx, ct, dialog, add_generation_prompt, kwargs, err);
    if (rc)
        return rc;
    rc = dk_template_render(t, ctx, lim, out, out_len, err);
    cJSON_Delete(ctx);
    return rc;
}
