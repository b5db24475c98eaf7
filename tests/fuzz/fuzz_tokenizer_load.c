/* fuzz_tokenizer_load: arbitrary bytes as a tokenizer.json; a file that loads must then
 * encode and decode a fixed text without fault. Seeds are small valid files with every
 * supported feature, so mutations reach deep into the loader. */
#include <stdint.h>
#include <string.h>

#include "dk_tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dk_tokenizer *t = NULL;
    dk_error err;
    if (dk_tokenizer_load_buffer(&t, (const char *)data, size, "fuzz.json", &err) != 0)
        return 0;
    static const char text[] = "Hello <|im_start|>wörld 123 你好\r\n\t  'll ";
    dk_tok_ids ids = { 0 };
    dk_tok_text out = { 0 };
    if (dk_tokenizer_encode(t, NULL, text, sizeof text - 1, DK_TOK_ADD_SPECIAL, &ids, &err) == 0)
        (void)dk_tokenizer_decode(t, ids.ids, ids.n, 0, &out, &err);
    dk_tok_ids_free(&ids);
    dk_tok_text_free(&out);
    dk_tokenizer_free(t);
    return 0;
}
