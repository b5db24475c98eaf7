/* fuzz_tokenizer_encode: arbitrary bytes to encode (two small tokenizers: one without a
 * normalizer, where decode(encode(x)) must give back x exactly, one with NFC and added
 * tokens of every flag), and the same bytes read as token ids to decode, unknown ids
 * included (a DK_ERANGE error, never a crash). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dk_tokenizer.h"
#include "tok_fixture.h"

static dk_tokenizer *plain, *nfc;
static dk_tok_scratch *sp, *sn;

static void init(void)
{
    char *a = tok_fixture_json("null", 0), *b = tok_fixture_json("{\"type\":\"NFC\"}", 1);
    if (!a || !b || dk_tokenizer_load_buffer(&plain, a, strlen(a), "plain", NULL) != 0 ||
        dk_tokenizer_load_buffer(&nfc, b, strlen(b), "nfc", NULL) != 0 ||
        dk_tok_scratch_new(&sp, plain, NULL) != 0 || dk_tok_scratch_new(&sn, nfc, NULL) != 0)
        abort();
    free(a);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!plain)
        init();
    dk_tok_ids ids = { 0 };
    dk_tok_text text = { 0 };
    dk_error err;
    if (dk_tokenizer_encode(plain, sp, (const char *)data, size, DK_TOK_ADD_SPECIAL, &ids, &err) == 0) {
        if (dk_tokenizer_decode(plain, ids.ids, ids.n, 0, &text, &err) != 0 || text.len != size ||
            memcmp(text.s, data, size) != 0)
            abort(); /* without a normalizer, decoding gives back the input */
    }
    if (dk_tokenizer_encode(nfc, sn, (const char *)data, size, DK_TOK_ADD_SPECIAL, &ids, &err) == 0)
        (void)dk_tokenizer_decode(nfc, ids.ids, ids.n, DK_TOK_SKIP_SPECIAL, &text, &err);
    size_t n = size / 2;
    uint32_t *raw = malloc((n ? n : 1) * sizeof *raw);
    if (raw) {
        for (size_t i = 0; i < n; i++)
            raw[i] = (uint32_t)(data[2 * i] | data[2 * i + 1] << 8) % 300; /* some past the last id */
        (void)dk_tokenizer_decode(nfc, raw, n, 0, &text, &err);
        free(raw);
    }
    dk_tok_ids_free(&ids);
    dk_tok_text_free(&text);
    return 0;
}
