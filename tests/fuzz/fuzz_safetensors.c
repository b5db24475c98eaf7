/* fuzz_safetensors: the safetensors header parser on arbitrary bytes as a whole file.
 * Whatever it accepts, every tensor's bytes must lie inside the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dk_infer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dk_st_file f;
    dk_error e;
    if (dk_st_parse(data, size, "fuzz", &f, &e) == 0) {
        for (size_t i = 0; i < f.n; i++)
            if (f.t[i].data < data || f.t[i].data + f.t[i].nbytes > data + size)
                abort();
        dk_st_file_free(&f);
    }
    return 0;
}
