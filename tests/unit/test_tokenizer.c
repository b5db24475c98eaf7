/* Unit tests of dk_tokenizer on a small byte-level file (tests/fuzz/tok_fixture.h: byte b
 * has id b, merges "Ġ t" "h e" "Ġt he" "i n" "l l" "Ġ Ġ" ranked in that order, added
 * tokens 262-265). Expected ids are worked out by hand from those merges and the flags;
 * agreement with the reference on real files is tests/scripts/t_tokenizer_*.sh. */
#include <stdlib.h>
#include <string.h>

#include "dk_test.h"
#include "dk_tokenizer.h"
#include "../fuzz/tok_fixture.h"

static dk_tokenizer *tok, *plain;

static int enc_is(dk_tokenizer *t, const char *text, const uint32_t *want, size_t n)
{
    dk_tok_ids ids = { 0 };
    dk_error err = { 0 };
    int ok = dk_tokenizer_encode(t, NULL, text, strlen(text), DK_TOK_ADD_SPECIAL, &ids, &err) == 0 &&
             ids.n == n && (n == 0 || memcmp(ids.ids, want, n * sizeof *want) == 0);
    if (!ok) {
        fprintf(stderr, "  encode(\"%s\") gave", text);
        for (size_t i = 0; i < ids.n; i++)
            fprintf(stderr, " %u", ids.ids[i]);
        fprintf(stderr, " (%s)\n", err.msg);
    }
    dk_tok_ids_free(&ids);
    return ok;
}

#define ENC(t, text, ...) do { static const uint32_t w_[] = { __VA_ARGS__ }; \
    DK_CHECK(enc_is(t, text, w_, sizeof w_ / sizeof w_[0])); } while (0)

static void test_bpe_merges(void)
{
    ENC(plain, " the", 258);                 /* Ġ t -> Ġt, h e -> he, Ġt he -> Ġthe */
    ENC(plain, "hello", 257, 260, 111);      /* he, ll, o */
    ENC(plain, "lll", 260, 108);             /* the leftmost pair merges first */
    ENC(plain, "   ", 261, 32);              /* one whitespace piece: ĠĠ then Ġ */
    ENC(plain, "in the", 259, 258);          /* two pieces: "in", " the" */
    ENC(plain, "x", 120);
    dk_tok_ids ids = { 0 };
    DK_CHECK_INT(dk_tokenizer_encode(plain, NULL, "", 0, 0, &ids, NULL), 0);
    DK_CHECK_INT(ids.n, 0);
    dk_tok_ids_free(&ids);
}

static void test_added_tokens(void)
{
    ENC(tok, "<|im_start|>x", 262, 120);
    ENC(tok, "<|im_start|", 60, 124, 105, 109, 95, 115, 116, 97, 114, 116, 124);
    ENC(tok, "a  <|im_end|>  b", 97, 263, 98);         /* lstrip and rstrip take the spaces */
    ENC(tok, "a word b", 97, 32, 264, 32, 98);          /* single_word between spaces */
    ENC(tok, "awordb", 97, 119, 111, 114, 100, 98);     /* ... but not inside a word */
    ENC(tok, "cafe\xcc\x81", 265);                      /* NFC first, then the normalized token */
    ENC(plain, "<|im_start|>", 60, 124, 105, 109, 95, 115, 116, 97, 114, 116, 124, 62);
    DK_CHECK_INT(dk_tokenizer_token_to_id(tok, "<|im_end|>", 10), 263);
    DK_CHECK_INT(dk_tokenizer_token_to_id(tok, "\xc4\xa0the", 5), 258);
    DK_CHECK_INT(dk_tokenizer_token_to_id(tok, "nope", 4), -1);
    size_t n = 0;
    DK_CHECK_STR(dk_tokenizer_id_to_token(tok, 262, &n), "<|im_start|>");
    DK_CHECK(dk_tokenizer_id_to_token(tok, 9999, &n) == NULL);
    DK_CHECK(dk_tokenizer_is_special(tok, 262));
    DK_CHECK(!dk_tokenizer_is_special(tok, 264));
    DK_CHECK_INT(dk_tokenizer_n_ids(tok), 266);
}

static int dec_is(const uint32_t *ids, size_t n, unsigned flags, const char *want)
{
    dk_tok_text t = { 0 };
    int ok = dk_tokenizer_decode(tok, ids, n, flags, &t, NULL) == 0 && t.len == strlen(want) &&
             memcmp(t.s, want, t.len) == 0;
    dk_tok_text_free(&t);
    return ok;
}

static void test_decode(void)
{
    static const uint32_t a[] = { 262, 258, 120 }, ni[] = { 0xE4, 0xBD, 0xA0 }, half[] = { 0xE4, 0xBD },
        ff[] = { 0xFF, 0x41 }, mixed[] = { 0xE4, 0x41, 0xF0, 0x9F, 0x98 };
    DK_CHECK(dec_is(a, 3, 0, "<|im_start|> thex"));
    DK_CHECK(dec_is(a, 3, DK_TOK_SKIP_SPECIAL, " thex"));
    DK_CHECK(dec_is(ni, 3, 0, "\xe4\xbd\xa0"));                  /* a character split over three tokens */
    DK_CHECK(dec_is(half, 2, 0, "\xef\xbf\xbd"));                /* a cut one: one U+FFFD */
    DK_CHECK(dec_is(ff, 2, 0, "\xef\xbf\xbd" "A"));
    DK_CHECK(dec_is(mixed, 5, 0, "\xef\xbf\xbd" "A" "\xef\xbf\xbd"));
    static const uint32_t bad[] = { 1, 266 };
    dk_tok_text t = { 0 };
    dk_error err = { 0 };
    DK_CHECK_INT(dk_tokenizer_decode(tok, bad, 2, 0, &t, &err), DK_ERANGE);
    DK_CHECK(strstr(err.msg, "266") != NULL);
    dk_tok_text_free(&t);
}

static void test_bad_text(void)
{
    dk_tok_ids ids = { 0 };
    dk_error err = { 0 };
    DK_CHECK_INT(dk_tokenizer_encode(tok, NULL, "ab\xff", 3, 0, &ids, &err), DK_EUTF8);
    DK_CHECK(strstr(err.msg, "byte 2") != NULL);
    DK_CHECK_INT(dk_tokenizer_encode(tok, NULL, "\xed\xa0\x80", 3, 0, &ids, &err), DK_EUTF8); /* surrogate */
    dk_tok_ids_free(&ids);
}

static int load_variant(const char *from, const char *to, dk_error *err)
{
    char *base = tok_fixture_json("null", 1);
    char *p = strstr(base, from);
    if (!p) {
        free(base);
        return 1;
    }
    size_t n = strlen(base), fl = strlen(from), tl = strlen(to);
    char *s = malloc(n - fl + tl + 1);
    memcpy(s, base, (size_t)(p - base));
    memcpy(s + (p - base), to, tl);
    strcpy(s + (p - base) + tl, p + fl);
    dk_tokenizer *t = NULL;
    int rc = dk_tokenizer_load_buffer(&t, s, strlen(s), "variant.json", err);
    dk_tokenizer_free(t);
    free(s);
    free(base);
    return rc;
}

static void test_load_errors(void)
{
    dk_error err = { 0 };
    DK_CHECK_INT(load_variant("\"dropout\":null", "\"dropout\":0.1", &err), DK_EUNSUPPORTED);
    DK_CHECK(strstr(err.msg, "dropout") != NULL);
    DK_CHECK_INT(load_variant("\"type\":\"BPE\"", "\"type\":\"WordPiece\"", &err), DK_EUNSUPPORTED);
    DK_CHECK(strstr(err.msg, "WordPiece") != NULL);
    DK_CHECK_INT(load_variant("\"Isolated\"", "\"Sideways\"", &err), DK_EUNSUPPORTED);
    DK_CHECK_INT(load_variant("\"truncation\":null", "\"truncation\":{\"max_length\":5}", &err), DK_EUNSUPPORTED);
    DK_CHECK_INT(load_variant("\"unk_token\":null", "\"unk_token\":null,\"continuing_subword_prefix\":\"##\"", &err), DK_EUNSUPPORTED);
    DK_CHECK_INT(load_variant("\"h e\"", "\"h q\"", &err), DK_EINVAL);    /* "hq" is not a token */
    DK_CHECK_INT(load_variant("\"he\":257", "\"he\":256", &err), DK_EINVAL); /* two tokens, one id */
    DK_CHECK_INT(load_variant("{\"version\"", "[{\"version\"", &err), DK_EPARSE);
    DK_CHECK_INT(load_variant("\"i n\"", "\"i n\",[\"l\",\"l\"]", &err), DK_EPARSE); /* mixed merge forms */
    DK_CHECK_INT(load_variant("(?i:'s", "(?m:'s", &err), DK_EUNSUPPORTED);
    DK_CHECK_INT(load_variant("(?i:'s", "^(?i:'s", &err), DK_EUNSUPPORTED);
    DK_CHECK_INT(load_variant("(?i:'s", "(?i:ss|'s", &err), DK_EUNSUPPORTED);  /* folds onto ß */
    DK_CHECK_INT(load_variant("\\\\p{N}|", "\\\\p{Lu}|", &err), DK_EUNSUPPORTED);
    DK_CHECK_INT(load_variant("\"\\u0120t\":256", "\"\\ud800t\":256", &err), DK_EPARSE); /* lone surrogate */
    DK_CHECK(err.line == 1);
    DK_CHECK_INT(load_variant("\"version\":\"1.0\"", "\"version\":\"1.0\"", &err), 0);
    dk_tokenizer *t = NULL;
    DK_CHECK_INT(dk_tokenizer_load(&t, "/nonexistent/dir", &err), DK_EIO);
    DK_CHECK(t == NULL);
    dk_tokenizer_free(NULL);
    dk_tok_scratch_free(NULL);
}

static void test_threads(void)
{
    /* concurrent encodes on one tokenizer, each thread with its scratch, equal one by one */
    static const char *texts[] = { "hello the world", "<|im_start|>in the lll   <|im_end|>", "cafe\xcc\x81 word",
                                   "\xe4\xbd\xa0\xe5\xa5\xbd, 123 4567", "   \t\r\n x" };
    size_t want[5];
    for (int i = 0; i < 5; i++) {
        dk_tok_ids ids = { 0 };
        dk_tokenizer_encode(tok, NULL, texts[i], strlen(texts[i]), 0, &ids, NULL);
        want[i] = ids.n;
        dk_tok_ids_free(&ids);
    }
    int bad = 0;
    #pragma omp parallel num_threads(4) reduction(+:bad)
    {
        dk_tok_scratch *s = NULL;
        dk_tok_ids ids = { 0 };
        dk_tok_scratch_new(&s, tok, NULL);
        for (int k = 0; k < 2000; k++) {
            int i = k % 5;
            if (dk_tokenizer_encode(tok, s, texts[i], strlen(texts[i]), 0, &ids, NULL) != 0 || ids.n != want[i])
                bad++;
        }
        dk_tok_ids_free(&ids);
        dk_tok_scratch_free(s);
    }
    DK_CHECK_INT(bad, 0);
}

int main(void)
{
    char *a = tok_fixture_json("{\"type\":\"NFC\"}", 1), *b = tok_fixture_json("null", 0);
    dk_error err = { 0 };
    if (dk_tokenizer_load_buffer(&tok, a, strlen(a), "fixture", &err) != 0 ||
        dk_tokenizer_load_buffer(&plain, b, strlen(b), "plain", &err) != 0) {
        fprintf(stderr, "cannot load the fixture: %s\n", err.msg);
        return 1;
    }
    free(a);
    free(b);
    DK_RUN(test_bpe_merges);
    DK_RUN(test_added_tokens);
    DK_RUN(test_decode);
    DK_RUN(test_bad_text);
    DK_RUN(test_load_errors);
    DK_RUN(test_threads);
    dk_tokenizer_free(tok);
    dk_tokenizer_free(plain);
    DK_TEST_MAIN_END("test_tokenizer");
}
