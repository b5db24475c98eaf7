/* libFuzzer target for dk_jsonl's reader: any bytes (plain or gzip) read line by line
 * with next() and, in lockstep on a second reader, in batches with fill() whose limits
 * come from the first byte. Invariants: both ways give the same lines; no line holds
 * '\n' and each is NUL-terminated; line numbers strictly increase and never pass the
 * physical count; returned + blank lines = physical lines at a clean end; for plain
 * input the text handed out is no longer than the input. */
#include "dk_jsonl.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dk_jsonl_reader *a = NULL, *b = NULL;
    dk_jsonl_batch batch = {0};
    dk_error ea, eb;
    size_t max_lines = size ? (data[0] & 7) : 1;
    size_t max_bytes = size > 1 ? (data[1] & 63) : 0;
    int plain = !(size >= 2 && data[0] == 0x1f && data[1] == 0x8b);
    if (dk_jsonl_reader_open_mem(&a, (const char *)data, size, "fuzz", &ea) < 0
        || dk_jsonl_reader_open_mem(&b, (const char *)data, size, "fuzz", &eb) < 0)
        abort();

    size_t total = 0, i = 0;
    long last = 0;
    int rb = 0, ra;
    for (;;) {
        dk_jsonl_line l;
        ra = dk_jsonl_reader_next(a, &l, &ea);
        if (ra != 1)
            break;
        if (memchr(l.text, '\n', l.len) || l.text[l.len] != '\0' || l.lineno <= last
            || l.lineno > dk_jsonl_reader_lines(a))
            abort();
        last = l.lineno;
        total += l.len;
        if (plain && total > size)
            abort();
        if (i == batch.n) {
            rb = dk_jsonl_reader_fill(b, &batch, max_lines, max_bytes, &eb);
            if (rb <= 0 || batch.n == 0 || (max_lines && batch.n > max_lines))
                abort();
            size_t held = 0;
            for (size_t k = 0; k + 1 < batch.n; k++)
                held += batch.lines[k].len;
            if (max_bytes && held >= max_bytes)
                abort();  /* the batch went on after its byte limit */
            i = 0;
        }
        const dk_jsonl_line *m = &batch.lines[i++];
        if (m->len != l.len || m->lineno != l.lineno || memcmp(m->text, l.text, l.len + 1) != 0)
            abort();
    }
    if (i != batch.n)
        abort();
    rb = dk_jsonl_reader_fill(b, &batch, max_lines, max_bytes, &eb);
    if (ra == 0) {
        if (rb != 0 || dk_jsonl_reader_lines(a) != dk_jsonl_reader_lines(b)
            || dk_jsonl_reader_blank_lines(a) != dk_jsonl_reader_blank_lines(b))
            abort();
    } else {
        /* Both fail alike, at the same line, and the failure stays. */
        if (ra >= 0 || rb != ra || ea.line != eb.line || strcmp(ea.msg, eb.msg) != 0
            || ea.line != dk_jsonl_reader_lines(a) + 1)
            abort();
        dk_jsonl_line l;
        if (dk_jsonl_reader_next(a, &l, &ea) != ra)
            abort();
    }
    dk_jsonl_batch_free(&batch);
    dk_jsonl_reader_free(a);
    dk_jsonl_reader_free(b);
    return 0;
}
