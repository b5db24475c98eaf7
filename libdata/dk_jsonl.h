/* dk_jsonl: streaming JSON Lines input and buffered output, plain or gzip.
 *
 * Reader invariants: lines come out in file order with their physical 1-based line
 * numbers; the line end (\n or \r\n) is removed; a UTF-8 BOM at the start of line 1
 * is removed; blank lines (empty or only spaces/tabs/\r) are skipped and counted;
 * a last line without \n is a line; a line may be of any length (memory grows to the
 * longest line, never to the file). Input that starts with the gzip magic (1f 8b) is
 * decompressed through zlib whatever its name, so stdin may be gzip too.
 *
 * Ownership: dk_jsonl_reader_open/dk_jsonl_writer_open return objects the caller frees
 * with dk_jsonl_reader_free / dk_jsonl_writer_close (both accept NULL). A line from
 * dk_jsonl_reader_next is borrowed: valid until the next call on that reader.
 * Lines of a dk_jsonl_batch are owned by the batch (its arena) until the next fill or
 * dk_jsonl_batch_free; a batch starts zeroed ({0}) and keeps its memory between fills. Line texts are NUL-terminated (the NUL is not counted in len),
 * but may hold NUL bytes themselves: always use len.
 *
 * Errors: a message names its place itself ("FILE: no such file or directory",
 * "FILE:LINE: truncated gzip stream"; LINE is the line being read), and err->file and
 * err->line hold the same place. After a read error (I/O, damaged gzip) the lines
 * complete before it are still handed out, then every call returns the error.
 */
#ifndef DK_JSONL_H
#define DK_JSONL_H

#include <stddef.h>
#include <stdio.h>
#include "dk_error.h"

typedef struct dk_jsonl_reader dk_jsonl_reader;
typedef struct dk_jsonl_writer dk_jsonl_writer;

typedef struct dk_jsonl_line {
    const char *text;   /* line without its end; NUL-terminated */
    size_t      len;
    long        lineno; /* physical line number, 1-based */
} dk_jsonl_line;

typedef struct dk_jsonl_batch {
    dk_jsonl_line *lines;
    size_t         n, cap;
    char          *arena;     /* the texts, back to back */
    size_t         arena_len, arena_cap;
} dk_jsonl_batch;

/* Opens path for reading; NULL or "-" is stdin (then name() is "<stdin>"). */
int  dk_jsonl_reader_open(dk_jsonl_reader **out, const char *path, dk_error *err);
/* Reads the len bytes at data (gzip detected as for files), for tests and fuzzing.
 * data is borrowed and must outlive the reader; name (NULL: "<memory>") is copied. */
int  dk_jsonl_reader_open_mem(dk_jsonl_reader **out, const char *data, size_t len,
                              const char *name, dk_error *err);
/* Next non-blank line: returns 1 and fills *line, 0 at end of input, or a negative
 * DK_E... (I/O or gzip error; err names the file and line). */
int  dk_jsonl_reader_next(dk_jsonl_reader *r, dk_jsonl_line *line, dk_error *err);
/* Replaces b's lines with up to max_lines lines (stopping early once max_bytes of text
 * are held; a single longer line is still taken whole). Returns the number of lines
 * (0 at end of input) or a negative DK_E.... A limit of 0 means no limit. When an error
 * ends a batch that already holds lines, those lines are returned and the error comes
 * from the next call. */
int  dk_jsonl_reader_fill(dk_jsonl_reader *r, dk_jsonl_batch *b, size_t max_lines,
                          size_t max_bytes, dk_error *err);
long dk_jsonl_reader_blank_lines(const dk_jsonl_reader *r);
long dk_jsonl_reader_lines(const dk_jsonl_reader *r);   /* physical lines read so far */
const char *dk_jsonl_reader_name(const dk_jsonl_reader *r); /* borrowed */
void dk_jsonl_reader_free(dk_jsonl_reader *r);
void dk_jsonl_batch_free(dk_jsonl_batch *b);            /* frees b's contents, not b */

/* Opens path for writing; NULL or "-" is stdout. A name ending in ".gz" is written
 * gzip-compressed. Output is buffered; nothing is guaranteed on disk before close. */
int  dk_jsonl_writer_open(dk_jsonl_writer **out, const char *path, dk_error *err);
/* Appends len raw bytes. */
int  dk_jsonl_writer_write(dk_jsonl_writer *w, const char *data, size_t len, dk_error *err);
/* Appends len bytes and a "\n". */
int  dk_jsonl_writer_line(dk_jsonl_writer *w, const char *text, size_t len, dk_error *err);
/* Flushes and frees w; a file is closed (its close status checked), stdout is only
 * flushed and checked with ferror (the tool's main() closes stdout). Accepts NULL. */
int  dk_jsonl_writer_close(dk_jsonl_writer *w, dk_error *err);

#endif
