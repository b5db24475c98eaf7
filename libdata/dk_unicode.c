/* dk_unicode: strict UTF-8 validation, normalization, case folding and code point
 * offsets (see dk_unicode.h).
 *
 * Validation and offsets are our own code because they run on every input line and
 * must stream at hundreds of MB/s: an 8-bytes-at-a-time ASCII path, then the
 * well-formed byte sequences of Unicode Table 3-7 for the rest. Normalization and
 * folding go through ICU's C API, which works on UTF-16: UTF-8 is validated first
 * (ICU would otherwise report a bare U_INVALID_CHAR_FOUND without an offset), then
 * converted, transformed, and converted back. ASCII is invariant under every
 * normalization form and folds by lower-casing A-Z, so pure-ASCII input never
 * reaches ICU.
 *
 * Invariants: every output is malloc'ed, NUL-terminated, valid UTF-8; on failure
 * *out is NULL and nothing is leaked. ICU string lengths are int32_t, so inputs
 * (and intermediate UTF-16 strings) over INT32_MAX units are DK_ELIMIT.
 */
#include "dk_unicode.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <unicode/unorm2.h>
#include <unicode/ustring.h>
#include <unicode/utypes.h>

#define HI_BITS 0x8080808080808080ull

/* ---- validation ------------------------------------------------------------------ */

/* Per lead byte: the sequence length (0 = cannot start a sequence) and the range the
 * second byte must lie in. The narrowed ranges of E0, ED, F0 and F4 are what exclude
 * overlongs, surrogates and code points above U+10FFFF (Unicode Table 3-7). */
typedef struct {
    uint8_t len, lo, hi;
} lead_info;

/* Constant, so validation needs no initialization and has no races. Entries left out
 * (80..BF: continuation bytes; C0, C1: overlong for U+0000..U+007F; F5..FF: above
 * U+10FFFF) are zero: they cannot start a sequence. */
static const lead_info LEAD[256] = {
    [0x00 ... 0x7F] = { 1, 0x00, 0x00 }, /* ASCII: handled before the table is read */
    [0xC2 ... 0xDF] = { 2, 0x80, 0xBF },
    [0xE0]          = { 3, 0xA0, 0xBF }, /* 80..9F would be overlong */
    [0xE1 ... 0xEC] = { 3, 0x80, 0xBF },
    [0xED]          = { 3, 0x80, 0x9F }, /* A0..BF would be a surrogate */
    [0xEE ... 0xEF] = { 3, 0x80, 0xBF },
    [0xF0]          = { 4, 0x90, 0xBF }, /* 80..8F would be overlong */
    [0xF1 ... 0xF3] = { 4, 0x80, 0xBF },
    [0xF4]          = { 4, 0x80, 0x8F }, /* 90..BF would be above U+10FFFF */
};

_Static_assert(sizeof LEAD / sizeof LEAD[0] == 256, "one entry per byte value");

static inline bool is_cont(uint8_t b)
{
    return (b & 0xC0) == 0x80;
}

/* Length of the valid sequence at p[0..n) (n >= 1, p[0] >= 0x80), or 0 if invalid. */
static inline size_t seq_len(const uint8_t *p, size_t n)
{
    lead_info li = LEAD[p[0]];
    if (li.len == 0 || li.len > n || p[1] < li.lo || p[1] > li.hi)
        return 0;
    if (li.len >= 3 && !is_cont(p[2]))
        return 0;
    if (li.len == 4 && !is_cont(p[3]))
        return 0;
    return li.len;
}

int dk_utf8_validate(const char *s, size_t len, size_t *bad_offset)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0;
    while (i < len) {
        /* Two words per step: JSON keys, digits and English text are long ASCII runs. */
        while (i + 16 <= len) {
            uint64_t a, b;
            memcpy(&a, p + i, 8);
            memcpy(&b, p + i + 8, 8);
            if ((a | b) & HI_BITS)
                break;
            i += 16;
        }
        if (i + 8 <= len) {
            uint64_t a;
            memcpy(&a, p + i, 8);
            if (!(a & HI_BITS)) {
                i += 8;
                continue;
            }
        }
        /* Byte by byte until 8 ASCII bytes in a row: mixed CJK and JSON punctuation
         * stays in this loop instead of bouncing through the word checks. */
        while (i < len) {
            if (p[i] < 0x80) {
                i++;
                if (i + 8 <= len) {
                    uint64_t w;
                    memcpy(&w, p + i, 8);
                    if (!(w & HI_BITS))
                        break;
                }
                continue;
            }
            /* Leads E1..EC (U+1000..U+CFFF, all of CJK) take any two continuation
             * bytes, so the common case needs no table; the rest goes to seq_len. */
            if (i + 3 <= len && (uint8_t)(p[i] - 0xE1) < 0x0C &&
                ((p[i + 1] & 0xC0) | ((p[i + 2] & 0xC0) << 8)) == 0x8080) {
                i += 3;
                continue;
            }
            size_t n = seq_len(p + i, len - i);
            if (n == 0) {
                if (bad_offset)
                    *bad_offset = i;
                return DK_EUTF8;
            }
            i += n;
        }
    }
    return 0;
}

/* ---- code points and offsets ----------------------------------------------------- */

size_t dk_utf8_decode(const char *s, size_t len, uint32_t *cp)
{
    const uint8_t *p = (const uint8_t *)s;
    if (len == 0)
        return 0;
    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    }
    size_t n = seq_len(p, len);
    switch (n) {
    case 2:
        *cp = (uint32_t)(p[0] & 0x1F) << 6 | (p[1] & 0x3F);
        break;
    case 3:
        *cp = (uint32_t)(p[0] & 0x0F) << 12 | (uint32_t)(p[1] & 0x3F) << 6 | (p[2] & 0x3F);
        break;
    case 4:
        *cp = (uint32_t)(p[0] & 0x07) << 18 | (uint32_t)(p[1] & 0x3F) << 12 |
              (uint32_t)(p[2] & 0x3F) << 6 | (p[3] & 0x3F);
        break;
    default:
        /* Outside the contract (invalid input); one replacement character per bad
         * byte keeps callers that loop on the return value moving and in bounds. */
        *cp = 0xFFFD;
        n = 1;
        break;
    }
    return n;
}

/* Continuation bytes (10xxxxxx) among the 8 bytes of w. */
static inline size_t count_cont(uint64_t w)
{
    uint64_t c = (w >> 7) & ~(w >> 6) & 0x0101010101010101ull;
    return (size_t)__builtin_popcountll(c);
}

size_t dk_utf8_cp_count(const char *s, size_t len)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0, cont = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        cont += count_cont(w);
    }
    for (; i < len; i++)
        cont += is_cont(p[i]);
    return len - cont;
}

int dk_utf8_cp_to_byte(const char *s, size_t len, size_t cp, size_t *byte)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0, n = 0;
    while (n < cp && i < len) {
        i++;
        while (i < len && is_cont(p[i]))
            i++;
        n++;
    }
    if (n < cp)
        return DK_ERANGE;
    *byte = i;
    return 0;
}

int dk_utf8_byte_to_cp(const char *s, size_t len, size_t byte, size_t *cp)
{
    if (byte > len || (byte < len && is_cont((uint8_t)s[byte])))
        return DK_ERANGE;
    *cp = dk_utf8_cp_count(s, byte);
    return 0;
}

/* ---- ICU transforms ---------------------------------------------------------------- */

static bool is_ascii(const char *s, size_t len)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        if (w & HI_BITS)
            return false;
    }
    for (; i < len; i++)
        if (p[i] & 0x80)
            return false;
    return true;
}

/* A UTF-16 string being built; cap counts UChars and leaves room for a NUL. */
typedef struct {
    UChar  *u;
    int32_t len, cap;
} ustr;

static int ustr_reserve(ustr *b, int64_t need, dk_error *err)
{
    if (need + 1 > INT32_MAX)
        return dk_error_set(err, DK_ELIMIT, NULL, 0,
                            "text of %lld utf-16 units exceeds icu's limit", (long long)need);
    if (need + 1 <= b->cap)
        return 0;
    UChar *u = realloc(b->u, (size_t)(need + 1) * sizeof *u);
    if (!u)
        return dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory for %lld utf-16 units",
                            (long long)need);
    b->u = u;
    b->cap = (int32_t)(need + 1);
    return 0;
}

static int icu_fail(dk_error *err, const char *what, UErrorCode st)
{
    return dk_error_set(err, DK_EICU, NULL, 0, "icu: %s: %s", what, u_errorName(st));
}

static int check_utf8(const char *s, size_t len, dk_error *err)
{
    size_t bad = 0;
    if (dk_utf8_validate(s, len, &bad) != 0)
        return dk_error_set(err, DK_EUTF8, NULL, 0, "invalid utf-8 at byte %zu", bad);
    if (len > INT32_MAX - 1)
        return dk_error_set(err, DK_ELIMIT, NULL, 0,
                            "text of %zu bytes exceeds icu's 2 gib string limit", len);
    return 0;
}

/* Valid UTF-8 -> UTF-16. n bytes never need more than n UTF-16 units (4-byte
 * sequences give 2 units), so one call suffices. */
static int to_utf16(const char *s, size_t len, ustr *dst, dk_error *err)
{
    int rc = ustr_reserve(dst, (int64_t)len, err);
    if (rc)
        return rc;
    UErrorCode st = U_ZERO_ERROR;
    int32_t n = 0;
    u_strFromUTF8(dst->u, dst->cap, &n, s, (int32_t)len, &st);
    if (U_FAILURE(st))
        return icu_fail(err, "u_strFromUTF8", st);
    dst->len = n;
    return 0;
}

/* UTF-16 -> a new UTF-8 string. Each unit needs at most 3 bytes (a surrogate pair
 * gives 4 from 2 units); the first guess is tighter for mostly-ASCII text and grows
 * once on overflow, as ICU reports the needed length. */
static int from_utf16(const ustr *src, char **out, size_t *out_len, dk_error *err)
{
    int rc = 0;
    int64_t cap = (int64_t)src->len + src->len / 2 + 16;
    char *buf = NULL;
    for (;;) {
        if (cap + 1 > INT32_MAX) {
            rc = dk_error_set(err, DK_ELIMIT, NULL, 0, "utf-8 result exceeds icu's limit");
            goto out;
        }
        char *nb = realloc(buf, (size_t)cap + 1);
        if (!nb) {
            rc = dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory for %lld bytes",
                              (long long)cap);
            goto out;
        }
        buf = nb;
        UErrorCode st = U_ZERO_ERROR;
        int32_t n = 0;
        u_strToUTF8(buf, (int32_t)cap, &n, src->u, src->len, &st);
        if (st == U_BUFFER_OVERFLOW_ERROR && n > cap) {
            cap = n;
            continue;
        }
        if (U_FAILURE(st)) {
            rc = icu_fail(err, "u_strToUTF8", st);
            goto out;
        }
        buf[n] = '\0';
        *out = buf;
        if (out_len)
            *out_len = (size_t)n;
        buf = NULL;
        goto out;
    }
out:
    free(buf);
    return rc;
}

static const UNormalizer2 *normalizer(dk_norm_form form, dk_error *err, int *rc)
{
    UErrorCode st = U_ZERO_ERROR;
    const UNormalizer2 *n2 = NULL;
    const char *name = "";
    switch (form) {
    case DK_NORM_NFC:  n2 = unorm2_getNFCInstance(&st);  name = "unorm2_getNFCInstance";  break;
    case DK_NORM_NFD:  n2 = unorm2_getNFDInstance(&st);  name = "unorm2_getNFDInstance";  break;
    case DK_NORM_NFKC: n2 = unorm2_getNFKCInstance(&st); name = "unorm2_getNFKCInstance"; break;
    case DK_NORM_NFKD: n2 = unorm2_getNFKDInstance(&st); name = "unorm2_getNFKDInstance"; break;
    default:
        *rc = dk_error_set(err, DK_EINVAL, NULL, 0, "unknown normalization form %d", (int)form);
        return NULL;
    }
    if (U_FAILURE(st)) {
        *rc = icu_fail(err, name, st);
        return NULL;
    }
    return n2;
}

/* Normalizes *b in place (swapping with *tmp). *changed tells whether the text
 * differs from the input; a quick-check YES skips the work. */
static int norm16(const UNormalizer2 *n2, ustr *b, ustr *tmp, bool *changed, dk_error *err)
{
    UErrorCode st = U_ZERO_ERROR;
    if (unorm2_quickCheck(n2, b->u, b->len, &st) == UNORM_YES && U_SUCCESS(st))
        return 0;
    if (U_FAILURE(st))
        return icu_fail(err, "unorm2_quickCheck", st);
    /* Most text grows little; ICU reports the exact length when the guess is short. */
    int64_t need = (int64_t)b->len + b->len / 4 + 16;
    for (;;) {
        int rc = ustr_reserve(tmp, need, err);
        if (rc)
            return rc;
        st = U_ZERO_ERROR;
        int32_t n = unorm2_normalize(n2, b->u, b->len, tmp->u, tmp->cap, &st);
        if (st == U_BUFFER_OVERFLOW_ERROR && n >= tmp->cap) {
            need = n;
            continue;
        }
        if (U_FAILURE(st))
            return icu_fail(err, "unorm2_normalize", st);
        tmp->len = n;
        break;
    }
    ustr t = *b;
    *b = *tmp;
    *tmp = t;
    *changed = true;
    return 0;
}

static int fold16(ustr *b, ustr *tmp, dk_error *err)
{
    /* Full folding grows text by at most a factor of 3 (U+0390 -> 3 units); start
     * with a little slack and let ICU say how much more it needs. */
    int64_t need = (int64_t)b->len + b->len / 8 + 16;
    for (;;) {
        int rc = ustr_reserve(tmp, need, err);
        if (rc)
            return rc;
        UErrorCode st = U_ZERO_ERROR;
        int32_t n = u_strFoldCase(tmp->u, tmp->cap, b->u, b->len, U_FOLD_CASE_DEFAULT, &st);
        if (st == U_BUFFER_OVERFLOW_ERROR && n >= tmp->cap) {
            need = n;
            continue;
        }
        if (U_FAILURE(st))
            return icu_fail(err, "u_strFoldCase", st);
        tmp->len = n;
        break;
    }
    ustr t = *b;
    *b = *tmp;
    *tmp = t;
    return 0;
}

static int copy_out(const char *s, size_t len, bool lower, char **out, size_t *out_len,
                    dk_error *err)
{
    char *r = malloc(len + 1);
    if (!r)
        return dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory for %zu bytes", len);
    if (lower) {
        for (size_t i = 0; i < len; i++) {
            char c = s[i];
            r[i] = (c >= 'A' && c <= 'Z') ? (char)(c + ('a' - 'A')) : c;
        }
    } else if (len) {
        memcpy(r, s, len);
    }
    r[len] = '\0';
    *out = r;
    if (out_len)
        *out_len = len;
    return 0;
}

/* The steps dk_utf8_normalize, dk_utf8_casefold and dk_utf8_fold share: first
 * normalization (n_first, may be NULL), folding (when fold), second normalization
 * (n_last, may be NULL). If no step changes the text, the input bytes are copied. */
static int transform(const char *s, size_t len, const UNormalizer2 *n_first, bool fold,
                     const UNormalizer2 *n_last, char **out, size_t *out_len, dk_error *err)
{
    ustr b = { 0 }, tmp = { 0 };
    bool changed = false;
    int rc = to_utf16(s, len, &b, err);
    if (rc)
        goto out;
    if (n_first && (rc = norm16(n_first, &b, &tmp, &changed, err)) != 0)
        goto out;
    if (fold) {
        if ((rc = fold16(&b, &tmp, err)) != 0)
            goto out;
        changed = true;
    }
    if (n_last && (rc = norm16(n_last, &b, &tmp, &changed, err)) != 0)
        goto out;
    rc = changed ? from_utf16(&b, out, out_len, err) : copy_out(s, len, false, out, out_len, err);
out:
    free(b.u);
    free(tmp.u);
    return rc;
}

int dk_utf8_normalize(const char *s, size_t len, dk_norm_form form,
                      char **out, size_t *out_len, dk_error *err)
{
    *out = NULL;
    int rc = 0;
    const UNormalizer2 *n2 = normalizer(form, err, &rc);
    if (!n2)
        return rc;
    if ((rc = check_utf8(s, len, err)) != 0)
        return rc;
    if (is_ascii(s, len))
        return copy_out(s, len, false, out, out_len, err);
    return transform(s, len, n2, false, NULL, out, out_len, err);
}

int dk_utf8_casefold(const char *s, size_t len, char **out, size_t *out_len, dk_error *err)
{
    *out = NULL;
    int rc = check_utf8(s, len, err);
    if (rc)
        return rc;
    if (is_ascii(s, len))
        return copy_out(s, len, true, out, out_len, err);
    return transform(s, len, NULL, true, NULL, out, out_len, err);
}

int dk_utf8_fold(const char *s, size_t len, char **out, size_t *out_len, dk_error *err)
{
    *out = NULL;
    int rc = check_utf8(s, len, err);
    if (rc)
        return rc;
    if (is_ascii(s, len))
        return copy_out(s, len, true, out, out_len, err);
    const UNormalizer2 *nfkc = normalizer(DK_NORM_NFKC, err, &rc);
    if (!nfkc)
        return rc;
    return transform(s, len, nfkc, true, nfkc, out, out_len, err);
}
