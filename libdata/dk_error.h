/* dk_error: status codes and the caller-owned error record every dlgkit library fills.
 *
 * Ownership: a dk_error is owned by the caller (usually on its stack); libraries
 * only write into it and never allocate inside it. Every library function returns 0
 * or a negative DK_E... code; on failure it fills the dk_error (when non-NULL) with
 * the code, the place (file, 1-based line, 0 when unknown) and a one-line message in
 * lower case without a final period. Libraries never print and never exit().
 */
#ifndef DK_ERROR_H
#define DK_ERROR_H

#include <stddef.h>

enum {
    DK_OK           = 0,
    DK_ENOMEM       = -1,  /* out of memory */
    DK_EIO          = -2,  /* read/write/open failed (errno kept in the message) */
    DK_EPARSE       = -3,  /* malformed input (JSON, gzip, a header) */
    DK_EINVAL       = -4,  /* bad argument or option value */
    DK_EUTF8        = -5,  /* invalid UTF-8 */
    DK_EUNSUPPORTED = -6,  /* a feature of the input that dlgkit does not implement */
    DK_ERANGE       = -7,  /* a value out of range (offset, size, index) */
    DK_ENOTFOUND    = -8,  /* a named file, field or tensor is missing */
    DK_ELIMIT       = -9,  /* an input exceeds a hard limit */
    DK_ESCHEMA      = -10, /* the data violates the dialog schema */
    DK_EICU         = -11, /* ICU reported a failure */
};

typedef struct dk_error {
    int  code;        /* DK_E... or DK_OK */
    char file[256];   /* input named by the error, "" when none */
    long line;        /* 1-based line in file, 0 when unknown */
    char msg[512];    /* one line, lower case, no final period */
} dk_error;

/* A static description of a status code ("out of memory"). Never NULL. */
const char *dk_strerror(int code);

/* Fills err (if non-NULL) and returns code, so callers can write
 * `return dk_error_set(err, DK_EPARSE, path, line, "bad %s", x);`. file may be NULL. */
int dk_error_set(dk_error *err, int code, const char *file, long line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Resets err to DK_OK with empty fields. NULL is allowed. */
void dk_error_clear(dk_error *err);

#endif
