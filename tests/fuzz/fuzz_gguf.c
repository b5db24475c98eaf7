/* fuzz_gguf: the GGUF parser on arbitrary bytes as a whole file. Whatever it accepts,
 * every tensor's bytes lie inside the input and every string key is readable. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dk_infer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dk_gguf g;
    dk_error e;
    if (dk_gguf_parse(data, size, "fuzz", &g, &e) == 0) {
        for (size_t i = 0; i < g.n_t; i++)
            if (g.t[i].data < data || g.t[i].data + g.t[i].nbytes > data + size)
                abort();
        for (size_t i = 0; i < g.n_kv; i++)
            if (g.kv[i].type == DK_GGUF_STRING && g.kv[i].str_len &&
                ((const uint8_t *)g.kv[i].str < data || (const uint8_t *)g.kv[i].str + g.kv[i].str_len > data + size))
                abort();
        (void)dk_gguf_find(&g, "general.architecture");
        dk_gguf_free(&g);
    }
    return 0;
}
