/* tok_fixture: a small byte-level BPE tokenizer.json built in memory for the tokenizer
 * fuzz targets and unit tests: the 256 ByteLevel characters, a few merges, added tokens
 * with every flag, and the Qwen2 split regex. Returns a malloc'ed NUL-terminated JSON text.
 * normalizer: a JSON value ("null", "{\"type\":\"NFC\"}"). */
#ifndef TOK_FIXTURE_H
#define TOK_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void tok_fixture_char(char *o, unsigned cp)
{
    /* JSON \u escape of one BMP code point */
    sprintf(o, "\\u%04x", cp);
}

static char *tok_fixture_json(const char *normalizer, int with_added)
{
    size_t cap = 1 << 16, n = 0;
    char *s = malloc(cap);
    if (!s)
        return NULL;
#define PUT(...) n += (size_t)snprintf(s + n, cap - n, __VA_ARGS__)
    PUT("{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\"added_tokens\":[");
    if (with_added)
        PUT("{\"id\":262,\"content\":\"<|im_start|>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true},"
            "{\"id\":263,\"content\":\"<|im_end|>\",\"single_word\":false,\"lstrip\":true,\"rstrip\":true,\"normalized\":false,\"special\":true},"
            "{\"id\":264,\"content\":\"word\",\"single_word\":true,\"lstrip\":false,\"rstrip\":false,\"normalized\":true,\"special\":false},"
            "{\"id\":265,\"content\":\"caf\\u00e9\",\"single_word\":false,\"lstrip\":false,\"rstrip\":true,\"normalized\":true,\"special\":false}");
    PUT("],\"normalizer\":%s,", normalizer);
    PUT("\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":"
        "\"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}| ?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"},"
        "\"behavior\":\"Isolated\",\"invert\":false},{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":false,\"use_regex\":false}]},");
    PUT("\"post_processor\":null,\"decoder\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":false,\"use_regex\":false},");
    PUT("\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":null,\"ignore_merges\":false,\"vocab\":{");
    /* GPT-2's byte map: printable Latin-1 stands for itself, the rest from U+0100 */
    unsigned next = 0x100;
    for (unsigned b = 0; b < 256; b++) {
        int printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        char ch[8];
        tok_fixture_char(ch, printable ? b : next++);
        PUT("%s\"%s\":%u", b ? "," : "", ch, b);
    }
    /* merges: "Ġ t" (U+0120 = space), "h e", "Ġt he", "i n" */
    PUT(",\"\\u0120t\":256,\"he\":257,\"\\u0120the\":258,\"in\":259,\"ll\":260,\"\\u0120\\u0120\":261");
    PUT("},\"merges\":[\"\\u0120 t\",\"h e\",\"\\u0120t he\",\"i n\",\"l l\",\"\\u0120 \\u0120\"]}}");
#undef PUT
    return s;
}

#endif
