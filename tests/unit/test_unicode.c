/* Unit tests of dk_unicode. Expected values are worked by hand from the Unicode
 * standard (Table 3-7 for UTF-8, UnicodeData.txt decompositions, CaseFolding.txt) or
 * come from an independent reference inside this file: a UTF-8 checker written from
 * the scalar-value definition (RFC 3629) rather than from Table 3-7, and ICU called
 * directly for the ASCII fast path. Hex escapes are split ("\xBD" "a") where a
 * following letter would otherwise be read as a hex digit.
 */
#include "dk_test.h"
#include "dk_unicode.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <unicode/unorm2.h>
#include <unicode/ustring.h>

/* ---- validation ---------------------------------------------------------------- */

typedef struct {
    const char *s;
    size_t len;        /* 0: strlen(s) */
    int rc;
    size_t bad;        /* expected offset when rc != 0 */
} vcase;

static void test_validate_table(void)
{
    static const vcase cases[] = {
        { "", 0, 0, 0 },
        { "hello, world", 0, 0, 0 },
        { "\0", 1, 0, 0 },                         /* NUL is valid */
        { "a\0b", 3, 0, 0 },
        { "\xC2\x80", 0, 0, 0 },                   /* U+0080, smallest 2-byte */
        { "\xC3\xA9", 0, 0, 0 },                   /* é */
        { "\xDF\xBF", 0, 0, 0 },                   /* U+07FF */
        { "\xE0\xA0\x80", 0, 0, 0 },               /* U+0800, smallest 3-byte */
        { "\xE4\xBD\xA0\xE5\xA5\xBD", 0, 0, 0 },   /* 你好 */
        { "\xED\x9F\xBF", 0, 0, 0 },               /* U+D7FF, just below surrogates */
        { "\xEE\x80\x80", 0, 0, 0 },               /* U+E000, just above */
        { "\xEF\xBF\xBF", 0, 0, 0 },               /* U+FFFF */
        { "\xF0\x90\x80\x80", 0, 0, 0 },           /* U+10000, smallest 4-byte */
        { "\xF0\x9F\x98\x80", 0, 0, 0 },           /* 😀 U+1F600 */
        { "\xF4\x8F\xBF\xBF", 0, 0, 0 },           /* U+10FFFF, the last */
        /* overlong */
        { "\xC0\x80", 0, DK_EUTF8, 0 },
        { "ab\xC0\xAF", 0, DK_EUTF8, 2 },
        { "\xC1\xBF", 0, DK_EUTF8, 0 },
        { "x\xE0\x80\x80", 0, DK_EUTF8, 1 },
        { "\xE0\x9F\xBF", 0, DK_EUTF8, 0 },        /* would be U+07FF */
        { "\xF0\x80\x80\x80", 0, DK_EUTF8, 0 },
        { "\xF0\x8F\xBF\xBF", 0, DK_EUTF8, 0 },    /* would be U+FFFF */
        /* surrogates */
        { "\xED\xA0\x80", 0, DK_EUTF8, 0 },        /* U+D800 */
        { "ok\xED\xBF\xBF", 0, DK_EUTF8, 2 },      /* U+DFFF */
        { "\xED\xA0\xBD\xED\xB8\x80", 0, DK_EUTF8, 0 }, /* CESU-8 pair for U+1F600 */
        /* above U+10FFFF */
        { "\xF4\x90\x80\x80", 0, DK_EUTF8, 0 },    /* would be U+110000 */
        { "\xF5\x80\x80\x80", 0, DK_EUTF8, 0 },
        { "\xF8\x88\x80\x80\x80", 0, DK_EUTF8, 0 },
        { "\xFE", 0, DK_EUTF8, 0 },
        { "a\xFF", 0, DK_EUTF8, 1 },
        /* stray continuation bytes */
        { "\x80", 0, DK_EUTF8, 0 },
        { "a\xBF" "b", 0, DK_EUTF8, 1 },
        { "\xC3\xA9\xA9", 0, DK_EUTF8, 2 },        /* one continuation too many */
        /* truncated: the offset is the lead byte */
        { "\xC3", 0, DK_EUTF8, 0 },
        { "\xE4\xBD", 0, DK_EUTF8, 0 },
        { "x\xF0\x9F\x98", 0, DK_EUTF8, 1 },
        { "\xE4\xBD" "a", 0, DK_EUTF8, 0 },        /* cut short by ASCII */
        { "\xF0\x9F\xE4\xBD\xA0", 0, DK_EUTF8, 0 },/* cut short by another lead */
        /* the first error wins */
        { "\xE4\xBD\xA0\xE5\xA5\xBD" "aaaaaaaaaaaaaaaaaaaa" "\xED\xA0\x80" "\xFF", 0, DK_EUTF8, 26 },
        /* an error past the end of len is not seen */
        { "abc\xFF", 3, 0, 0 },
        { "\xE4\xBD\xA0", 2, DK_EUTF8, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const vcase *c = &cases[i];
        size_t len = c->len ? c->len : strlen(c->s);
        size_t bad = 12345;
        int rc = dk_utf8_validate(c->s, len, &bad);
        if (rc != c->rc || (rc && bad != c->bad))
            fprintf(stderr, "  validate case %zu: rc %d bad %zu\n", i, rc, bad);
        DK_CHECK_INT(rc, c->rc);
        if (c->rc)
            DK_CHECK_INT(bad, c->bad);
        DK_CHECK_INT(dk_utf8_validate(c->s, len, NULL), c->rc);
    }
}

/* The error offset must survive every position relative to the 8- and 16-byte
 * ASCII words, before and after non-ASCII text. */
static void test_validate_positions(void)
{
    char buf[128];
    for (size_t k = 0; k < 80; k++) {
        memset(buf, 'a', sizeof buf);
        buf[k] = (char)0xFF;
        size_t bad = 0;
        DK_CHECK_INT(dk_utf8_validate(buf, sizeof buf, &bad), DK_EUTF8);
        DK_CHECK_INT(bad, k);
        /* a truncated 3-byte sequence at the very end of a long ASCII run */
        memset(buf, 'a', sizeof buf);
        buf[k] = (char)0xE4;
        buf[k + 1] = (char)0xBD;
        DK_CHECK_INT(dk_utf8_validate(buf, k + 2, &bad), DK_EUTF8);
        DK_CHECK_INT(bad, k);
        /* 你 then ASCII then a surrogate */
        memset(buf, 'b', sizeof buf);
        memcpy(buf, "\xE4\xBD\xA0", 3);
        memcpy(buf + 3 + k, "\xED\xA0\x80", 3);
        DK_CHECK_INT(dk_utf8_validate(buf, sizeof buf, &bad), DK_EUTF8);
        DK_CHECK_INT(bad, 3 + k);
    }
}

/* Reference: UTF-8 from its definition (RFC 3629 section 3): the lead byte's high
 * bits give the length, continuation bytes are 10xxxxxx, and the decoded value must
 * need exactly that length, not be a surrogate and not exceed U+10FFFF. */
static int ref_validate(const uint8_t *p, size_t n, size_t *bad)
{
    static const uint32_t min_for_len[5] = { 0, 0, 0x80, 0x800, 0x10000 };
    size_t i = 0;
    while (i < n) {
        uint8_t b = p[i];
        size_t L;
        uint32_t cp;
        if (b < 0x80)       { L = 1; cp = b; }
        else if (b >> 5 == 6)  { L = 2; cp = b & 0x1F; }
        else if (b >> 4 == 14) { L = 3; cp = b & 0x0F; }
        else if (b >> 3 == 30) { L = 4; cp = b & 0x07; }
        else goto bad;
        if (i + L > n)
            goto bad;
        for (size_t j = 1; j < L; j++) {
            if (p[i + j] >> 6 != 2)
                goto bad;
            cp = cp << 6 | (p[i + j] & 0x3F);
        }
        if (cp < min_for_len[L] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
            goto bad;
        i += L;
        continue;
    bad:
        *bad = i;
        return DK_EUTF8;
    }
    return 0;
}

static void test_validate_exhaustive(void)
{
    uint8_t b[4];
    long mismatches = 0;
    /* every 1-, 2- and 3-byte string */
    for (uint32_t v = 0; v < (1u << 24); v++) {
        b[0] = (uint8_t)(v >> 16), b[1] = (uint8_t)(v >> 8), b[2] = (uint8_t)v;
        for (size_t n = 1; n <= 3; n++) {
            if (n < 3 && (v & ((1u << (8 * (3 - n))) - 1)))
                continue;   /* shorter strings once each */
            size_t bad1 = 99, bad2 = 99;
            int r1 = dk_utf8_validate((const char *)b, n, &bad1);
            int r2 = ref_validate(b, n, &bad2);
            if (r1 != r2 || (r1 && bad1 != bad2))
                mismatches++;
        }
    }
    DK_CHECK_INT(mismatches, 0);
    /* 4-byte strings: every first two bytes, the boundary values of the last two */
    static const uint8_t tails[] = { 0x00, 0x41, 0x7F, 0x80, 0x9F, 0xA0, 0xBF, 0xC0, 0xF0, 0xFF };
    mismatches = 0;
    for (uint32_t v = 0; v < (1u << 16); v++)
        for (size_t x = 0; x < sizeof tails; x++)
            for (size_t y = 0; y < sizeof tails; y++) {
                b[0] = (uint8_t)(v >> 8), b[1] = (uint8_t)v, b[2] = tails[x], b[3] = tails[y];
                size_t bad1 = 99, bad2 = 99;
                int r1 = dk_utf8_validate((const char *)b, 4, &bad1);
                int r2 = ref_validate(b, 4, &bad2);
                if (r1 != r2 || (r1 && bad1 != bad2))
                    mismatches++;
            }
    DK_CHECK_INT(mismatches, 0);
}

/* Every scalar value, encoded by the RFC 3629 bit layout, validates, decodes back
 * and counts as one code point. */
static void test_decode_all_scalars(void)
{
    long wrong = 0;
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF)
            continue;
        uint8_t b[4];
        size_t n;
        if (cp < 0x80)         { b[0] = (uint8_t)cp; n = 1; }
        else if (cp < 0x800)   { b[0] = (uint8_t)(0xC0 | cp >> 6); n = 2; }
        else if (cp < 0x10000) { b[0] = (uint8_t)(0xE0 | cp >> 12); n = 3; }
        else                   { b[0] = (uint8_t)(0xF0 | cp >> 18); n = 4; }
        for (size_t j = 1; j < n; j++)
            b[j] = (uint8_t)(0x80 | ((cp >> (6 * (n - 1 - j))) & 0x3F));
        uint32_t got = 0;
        if (dk_utf8_validate((const char *)b, n, NULL) != 0 ||
            dk_utf8_decode((const char *)b, n, &got) != n || got != cp ||
            dk_utf8_cp_count((const char *)b, n) != 1)
            wrong++;
    }
    DK_CHECK_INT(wrong, 0);
}

static void test_decode(void)
{
    uint32_t cp = 0;
    DK_CHECK_INT(dk_utf8_decode("a", 1, &cp), 1);
    DK_CHECK_INT(cp, 0x61);
    DK_CHECK_INT(dk_utf8_decode("\0", 1, &cp), 1);
    DK_CHECK_INT(cp, 0);
    DK_CHECK_INT(dk_utf8_decode("\xC3\xA9xyz", 5, &cp), 2);
    DK_CHECK_INT(cp, 0xE9);
    DK_CHECK_INT(dk_utf8_decode("\xE4\xBD\xA0", 3, &cp), 3);
    DK_CHECK_INT(cp, 0x4F60);
    DK_CHECK_INT(dk_utf8_decode("\xF0\x9F\x98\x80" "a", 5, &cp), 4);
    DK_CHECK_INT(cp, 0x1F600);
    DK_CHECK_INT(dk_utf8_decode("\xF4\x8F\xBF\xBF", 4, &cp), 4);
    DK_CHECK_INT(cp, 0x10FFFF);
    DK_CHECK_INT(dk_utf8_decode("", 0, &cp), 0);
    /* outside the contract, but it must stay in bounds and move on */
    DK_CHECK_INT(dk_utf8_decode("\xE4\xBD\xA0", 2, &cp), 1);
    DK_CHECK_INT(cp, 0xFFFD);
    DK_CHECK_INT(dk_utf8_decode("\x80", 1, &cp), 1);
}

/* ---- code point offsets --------------------------------------------------------- */

/* 你 E4 BD A0 (bytes 0-2), 好 E5 A5 BD (3-5), 😀 F0 9F 98 80 (6-9), a (10). */
#define NIHAO "\xE4\xBD\xA0\xE5\xA5\xBD\xF0\x9F\x98\x80" "a"

static void test_offsets(void)
{
    const char *s = NIHAO;
    size_t len = strlen(s), b = 999, c = 999;
    DK_CHECK_INT(len, 11);
    DK_CHECK_INT(dk_utf8_cp_count(s, len), 4);
    DK_CHECK_INT(dk_utf8_cp_count("", 0), 0);
    DK_CHECK_INT(dk_utf8_cp_count("e\xCC\x81", 3), 2);    /* e + U+0301: two code points */
    DK_CHECK_INT(dk_utf8_cp_count("a\0b", 3), 3);

    static const size_t cp_byte[][2] = { { 0, 0 }, { 1, 3 }, { 2, 6 }, { 3, 10 }, { 4, 11 } };
    for (size_t i = 0; i < 5; i++) {
        DK_CHECK_INT(dk_utf8_cp_to_byte(s, len, cp_byte[i][0], &b), 0);
        DK_CHECK_INT(b, cp_byte[i][1]);
        DK_CHECK_INT(dk_utf8_byte_to_cp(s, len, cp_byte[i][1], &c), 0);
        DK_CHECK_INT(c, cp_byte[i][0]);
    }
    b = 777;
    DK_CHECK_INT(dk_utf8_cp_to_byte(s, len, 5, &b), DK_ERANGE);
    DK_CHECK_INT(b, 777);                                  /* untouched on error */
    DK_CHECK_INT(dk_utf8_cp_to_byte(s, len, (size_t)-1, &b), DK_ERANGE);
    DK_CHECK_INT(dk_utf8_byte_to_cp(s, len, 12, &c), DK_ERANGE);
    static const size_t inside[] = { 1, 2, 4, 5, 7, 8, 9 };  /* inside a character */
    for (size_t i = 0; i < sizeof inside / sizeof inside[0]; i++)
        DK_CHECK_INT(dk_utf8_byte_to_cp(s, len, inside[i], &c), DK_ERANGE);

    DK_CHECK_INT(dk_utf8_cp_to_byte("", 0, 0, &b), 0);
    DK_CHECK_INT(b, 0);
    DK_CHECK_INT(dk_utf8_cp_to_byte("", 0, 1, &b), DK_ERANGE);
    DK_CHECK_INT(dk_utf8_byte_to_cp("", 0, 0, &c), 0);
    DK_CHECK_INT(c, 0);

    /* ten copies: 40 code points in 110 bytes, crossing the 8-byte words */
    char big[111];
    for (int i = 0; i < 10; i++)
        memcpy(big + 11 * i, NIHAO, 11);
    DK_CHECK_INT(dk_utf8_cp_count(big, 110), 40);
    DK_CHECK_INT(dk_utf8_cp_to_byte(big, 110, 27, &b), 0);   /* copy 6, code point 3 */
    DK_CHECK_INT(b, 6 * 11 + 10);
    DK_CHECK_INT(dk_utf8_byte_to_cp(big, 110, 6 * 11 + 10, &c), 0);
    DK_CHECK_INT(c, 27);
    DK_CHECK_INT(dk_utf8_byte_to_cp(big, 110, 6 * 11 + 7, &c), DK_ERANGE);
    DK_CHECK_INT(dk_utf8_cp_to_byte(big, 110, 40, &b), 0);
    DK_CHECK_INT(b, 110);
    DK_CHECK_INT(dk_utf8_cp_to_byte(big, 110, 41, &b), DK_ERANGE);
    /* a slice need not be NUL-terminated or end on a code point */
    DK_CHECK_INT(dk_utf8_cp_count(big, 12), 5);
}

/* ---- normalization and folding ------------------------------------------------- */

typedef int (*xform_fn)(const char *, size_t, char **, size_t *, dk_error *);

static int nfc(const char *s, size_t n, char **o, size_t *l, dk_error *e)
{ return dk_utf8_normalize(s, n, DK_NORM_NFC, o, l, e); }
static int nfd(const char *s, size_t n, char **o, size_t *l, dk_error *e)
{ return dk_utf8_normalize(s, n, DK_NORM_NFD, o, l, e); }
static int nfkc(const char *s, size_t n, char **o, size_t *l, dk_error *e)
{ return dk_utf8_normalize(s, n, DK_NORM_NFKC, o, l, e); }
static int nfkd(const char *s, size_t n, char **o, size_t *l, dk_error *e)
{ return dk_utf8_normalize(s, n, DK_NORM_NFKD, o, l, e); }

/* Runs fn on in and checks the result, its length and the NUL terminator. */
static void check_xform(xform_fn fn, const char *name, const char *in, size_t in_len,
                        const char *want, size_t want_len)
{
    char *out = NULL;
    size_t out_len = 999;
    dk_error err;
    dk_error_clear(&err);
    int rc = fn(in, in_len, &out, &out_len, &err);
    DK_CHECK_INT(rc, 0);
    DK_CHECK(out != NULL);
    if (rc == 0 && out) {
        int ok = out_len == want_len && memcmp(out, want, want_len) == 0 && out[out_len] == '\0';
        if (!ok) {
            fprintf(stderr, "  %s of", name);
            for (size_t i = 0; i < in_len && i < 40; i++)
                fprintf(stderr, " %02X", (unsigned char)in[i]);
            fprintf(stderr, ": got %zu bytes:", out_len);
            for (size_t i = 0; i < out_len && i < 40; i++)
                fprintf(stderr, " %02X", (unsigned char)out[i]);
            fprintf(stderr, "\n");
        }
        DK_CHECK(ok);
    } else {
        fprintf(stderr, "  %s failed: %s\n", name, err.msg);
    }
    free(out);
}

#define X(fn, in, want) check_xform(fn, #fn, in, strlen(in), want, strlen(want))

static void test_normalize(void)
{
    X(nfc, "e\xCC\x81", "\xC3\xA9");                       /* e + U+0301 -> é */
    X(nfd, "\xC3\xA9", "e\xCC\x81");
    X(nfc, "\xC3\xA9", "\xC3\xA9");                        /* already NFC: quick check */
    X(nfc, "caf\xC3\xA9 \xE4\xBD\xA0\xE5\xA5\xBD", "caf\xC3\xA9 \xE4\xBD\xA0\xE5\xA5\xBD");
    /* canonical order: U+0323 (ccc 220) before U+0301 (ccc 230); NFC composes a+0323 */
    X(nfd, "a\xCC\x81\xCC\xA3", "a\xCC\xA3\xCC\x81");
    X(nfc, "a\xCC\x81\xCC\xA3", "\xE1\xBA\xA1\xCC\x81");     /* U+1EA1 U+0301 */
    X(nfkc, "\xEF\xAC\x81", "fi");                         /* U+FB01 ligature */
    X(nfc, "\xEF\xAC\x81", "\xEF\xAC\x81");                /* compatibility only */
    X(nfkc, "\xE2\x91\xA0", "1");                          /* ① U+2460 */
    X(nfkc, "\xEF\xBC\xA1\xEF\xBC\xA2\xEF\xBC\xA3", "ABC"); /* fullwidth ＡＢＣ */
    X(nfc, "\xEF\xBC\xA1\xEF\xBC\xA2\xEF\xBC\xA3", "\xEF\xBC\xA1\xEF\xBC\xA2\xEF\xBC\xA3");
    X(nfkc, "\xE2\x85\xAB", "XII");                        /* Ⅻ U+216B */
    /* halfwidth katakana: ｶ U+FF76 -> カ U+30AB; ｶﾞ (+U+FF9E) -> ガ U+30AC */
    X(nfkc, "\xEF\xBD\xB6", "\xE3\x82\xAB");
    X(nfkc, "\xEF\xBD\xB6\xEF\xBE\x9E", "\xE3\x82\xAC");
    X(nfkd, "\xEF\xBD\xB6\xEF\xBE\x9E", "\xE3\x82\xAB\xE3\x82\x99"); /* U+30AB U+3099 */
    /* Hangul: jamo compose algorithmically (U+1100 U+1161 -> U+AC00, + U+11A8 -> U+AC01) */
    X(nfc, "\xE1\x84\x80\xE1\x85\xA1", "\xEA\xB0\x80");
    X(nfc, "\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8", "\xEA\xB0\x81");
    X(nfd, "\xED\x95\x9C", "\xE1\x84\x92\xE1\x85\xA1\xE1\x86\xAB"); /* 한 -> U+1112 U+1161 U+11AB */
    X(nfkc, "\xED\x95\x9C", "\xED\x95\x9C");
    /* ASCII is invariant under every form (and takes the no-ICU path) */
    X(nfc, "Hello, World!", "Hello, World!");
    X(nfd, "Hello, World!", "Hello, World!");
    X(nfkc, "Hello, World!", "Hello, World!");
    X(nfkd, "Hello, World!", "Hello, World!");
    /* the input need not be NUL-terminated, and NULs inside are kept */
    check_xform(nfc, "nfc", "e\xCC\x81" "XYZ", 3, "\xC3\xA9", 2);
    check_xform(nfc, "nfc", "e\xCC\x81\0e\xCC\x81", 7, "\xC3\xA9\0\xC3\xA9", 5);
}

/* Results larger than every first buffer guess: ICU must be asked again. */
static void test_growth(void)
{
    /* ﷺ U+FDFA: NFKC gives 18 code points, 33 UTF-8 bytes, from 3 bytes */
    static const char fdfa_nfkc[] =
        "\xD8\xB5\xD9\x84\xD9\x89 \xD8\xA7\xD9\x84\xD9\x84\xD9\x87 "
        "\xD8\xB9\xD9\x84\xD9\x8A\xD9\x87 \xD9\x88\xD8\xB3\xD9\x84\xD9\x85";
    DK_CHECK_INT(strlen(fdfa_nfkc), 33);
    enum { N = 3000 };
    char *in = malloc(3 * N), *want = malloc(33 * N);
    for (int i = 0; i < N; i++) {
        memcpy(in + 3 * i, "\xEF\xB7\xBA", 3);
        memcpy(want + 33 * i, fdfa_nfkc, 33);
    }
    check_xform(nfkc, "nfkc", in, 3 * N, want, 33 * N);
    check_xform(nfkc, "nfkc", in, 3, want, 33);
    /* NFD of Hangul syllables: 1 UTF-16 unit -> 3 */
    for (int i = 0; i < N; i++) {
        memcpy(in + 3 * i, "\xED\x95\x9C", 3);
        memcpy(want + 9 * i, "\xE1\x84\x92\xE1\x85\xA1\xE1\x86\xAB", 9);
    }
    check_xform(nfd, "nfd", in, 3 * N, want, 9 * N);
    /* folding ß -> ss (1 unit -> 2), and U+0390 -> U+03B9 U+0308 U+0301 (1 -> 3) */
    for (int i = 0; i < N; i++) {
        memcpy(in + 2 * i, "\xC3\x9F", 2);
        memcpy(want + 2 * i, "ss", 2);
    }
    check_xform(dk_utf8_casefold, "casefold", in, 2 * N, want, 2 * N);
    for (int i = 0; i < N; i++) {
        memcpy(in + 2 * i, "\xCE\x90", 2);
        memcpy(want + 6 * i, "\xCE\xB9\xCC\x88\xCC\x81", 6);
    }
    check_xform(dk_utf8_casefold, "casefold", in, 2 * N, want, 6 * N);
    free(in);
    free(want);
}

static void test_casefold(void)
{
    X(dk_utf8_casefold, "Stra\xC3\x9F" "e", "strasse");              /* Straße */
    X(dk_utf8_casefold, "\xCE\xA3\xCE\x91\xCE\xA3", "\xCF\x83\xCE\xB1\xCF\x83"); /* ΣΑΣ -> σασ */
    X(dk_utf8_casefold, "\xCF\x82", "\xCF\x83");                     /* final ς -> σ */
    X(dk_utf8_casefold, "\xC4\xB0", "i\xCC\x87");                    /* İ -> i + U+0307 */
    X(dk_utf8_casefold, "\xE2\x84\xAA", "k");                        /* Kelvin sign */
    X(dk_utf8_casefold, "\xE1\xBA\x9E", "ss");                       /* ẞ U+1E9E */
    X(dk_utf8_casefold, "\xEF\xAC\x81", "fi");                       /* ﬁ folds fully */
    /* folding alone does not normalize: ΐ U+0390 stays decomposed */
    X(dk_utf8_casefold, "\xCE\x90", "\xCE\xB9\xCC\x88\xCC\x81");
    X(dk_utf8_casefold, "\xEF\xBC\xA1", "\xEF\xBD\x81");             /* Ａ -> ａ, not a */
    X(dk_utf8_casefold, "Hello \xE4\xB8\x96\xE7\x95\x8C", "hello \xE4\xB8\x96\xE7\x95\x8C");
    X(dk_utf8_casefold, "MiXeD 123", "mixed 123");
}

static void test_fold(void)
{
    /* ＢＥＩＪＩＮＧ */
    X(dk_utf8_fold, "\xEF\xBC\xA2\xEF\xBC\xA5\xEF\xBC\xA9\xEF\xBC\xAA\xEF\xBC\xA9\xEF\xBC\xAE\xEF\xBC\xA7",
      "beijing");
    X(dk_utf8_fold, "Stra\xC3\x9F" "e", "strasse");
    X(dk_utf8_fold, "\xEF\xAC\x81", "fi");
    X(dk_utf8_fold, "\xE2\x91\xA0", "1");
    X(dk_utf8_fold, "\xE2\x85\xAB", "xii");                          /* Ⅻ -> XII -> xii */
    X(dk_utf8_fold, "\xC4\xB0", "i\xCC\x87");
    /* the second NFKC recomposes what folding decomposed: ΐ -> ι ̈ ́ -> ΐ */
    X(dk_utf8_fold, "\xCE\x90", "\xCE\x90");
    X(dk_utf8_fold, "\xE4\xBD\xA0\xE5\xA5\xBD", "\xE4\xBD\xA0\xE5\xA5\xBD");
    X(dk_utf8_fold, "Hotel \xE5\x8C\x97\xE4\xBA\xAC", "hotel \xE5\x8C\x97\xE4\xBA\xAC");
    /* halfwidth ｶﾞ -> ガ, full-width digits -> ASCII digits */
    X(dk_utf8_fold, "\xEF\xBD\xB6\xEF\xBE\x9E\xEF\xBC\x91\xEF\xBC\x92", "\xE3\x82\xAC" "12");
    X(dk_utf8_fold, "e\xCC\x81", "\xC3\xA9");
}

/* ICU's own answer for the full fold, computed here without dk_unicode. */
static size_t icu_fold_ascii(const char *s, size_t n, char *out, size_t cap)
{
    UErrorCode st = U_ZERO_ERROR;
    UChar a[256], b[256];
    int32_t la = 0, lb;
    u_strFromUTF8(a, 256, &la, s, (int32_t)n, &st);
    const UNormalizer2 *k = unorm2_getNFKCInstance(&st);
    lb = unorm2_normalize(k, a, la, b, 256, &st);
    la = u_strFoldCase(a, 256, b, lb, U_FOLD_CASE_DEFAULT, &st);
    lb = unorm2_normalize(k, a, la, b, 256, &st);
    int32_t lo = 0;
    u_strToUTF8(out, (int32_t)cap, &lo, b, lb, &st);
    DK_CHECK(U_SUCCESS(st));
    return (size_t)lo;
}

static void test_ascii_fast_path(void)
{
    char want[512];
    /* every ASCII character, NUL included, alone and inside a string */
    for (int c = 0; c < 128; c++) {
        char in[3] = { 'x', (char)c, 'Y' };
        size_t n = icu_fold_ascii(in + 1, 1, want, sizeof want);
        check_xform(dk_utf8_fold, "fold", in + 1, 1, want, n);
        n = icu_fold_ascii(in, 3, want, sizeof want);
        check_xform(dk_utf8_fold, "fold", in, 3, want, n);
    }
    static const char *strs[] = {
        "", "A", "Hello, World!", "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG 0123456789",
        "{\"dialog_id\":\"MUL0001\",\"turns\":[]}", "Istanbul IS Big", "\t\r\n~`@[\\]^_{|}",
    };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        size_t n = icu_fold_ascii(strs[i], strlen(strs[i]), want, sizeof want);
        check_xform(dk_utf8_fold, "fold", strs[i], strlen(strs[i]), want, n);
        /* casefold of ASCII equals the same answer, as NFKC leaves ASCII alone */
        check_xform(dk_utf8_casefold, "casefold", strs[i], strlen(strs[i]), want, n);
    }
    /* ASCII next to one non-ASCII character goes through ICU: same ASCII part */
    check_xform(dk_utf8_fold, "fold", "THE LAZY DOG \xC3\xA9", 15, "the lazy dog \xC3\xA9", 15);
}

static void test_empty_and_errors(void)
{
    xform_fn fns[] = { nfc, nfd, nfkc, nfkd, dk_utf8_casefold, dk_utf8_fold };
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        char *out = (char *)1;
        size_t len = 99;
        DK_CHECK_INT(fns[i]("", 0, &out, &len, NULL), 0);
        DK_CHECK(out != NULL && out[0] == '\0');
        DK_CHECK_INT(len, 0);
        free(out);
        /* out_len may be NULL */
        out = NULL;
        DK_CHECK_INT(fns[i]("\xC3\xA9", 2, &out, NULL, NULL), 0);
        DK_CHECK(out != NULL && strlen(out) >= 2);
        free(out);
        /* invalid UTF-8 is an error, not replaced */
        dk_error err;
        dk_error_clear(&err);
        out = (char *)1;
        DK_CHECK_INT(fns[i]("ab\xE4\xBD\xA0\xED\xA0\x80" "cd", 10, &out, &len, &err), DK_EUTF8);
        DK_CHECK(out == NULL);
        DK_CHECK_INT(err.code, DK_EUTF8);
        DK_CHECK_STR(err.msg, "invalid utf-8 at byte 5");
        out = (char *)1;
        DK_CHECK_INT(fns[i]("\xC3", 1, &out, NULL, NULL), DK_EUTF8);
        DK_CHECK(out == NULL);
    }
    char *out = (char *)1;
    dk_error err;
    dk_error_clear(&err);
    DK_CHECK_INT(dk_utf8_normalize("a", 1, (dk_norm_form)42, &out, NULL, &err), DK_EINVAL);
    DK_CHECK(out == NULL);
    DK_CHECK_INT(err.code, DK_EINVAL);
}

int main(void)
{
    DK_RUN(test_validate_table);
    DK_RUN(test_validate_positions);
    DK_RUN(test_validate_exhaustive);
    DK_RUN(test_decode_all_scalars);
    DK_RUN(test_decode);
    DK_RUN(test_offsets);
    DK_RUN(test_normalize);
    DK_RUN(test_growth);
    DK_RUN(test_casefold);
    DK_RUN(test_fold);
    DK_RUN(test_ascii_fast_path);
    DK_RUN(test_empty_and_errors);
    DK_TEST_MAIN_END("test_unicode");
}
