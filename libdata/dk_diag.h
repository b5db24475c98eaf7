/* dk_diag: diagnostics about data, collected per line and written in the two forms of
 * DESIGN.md section 3:
 *   text  FILE:LINE: error: [E_ROLE] conv_12:/turns/3/role: role must be one of ...
 *   json  {"file":..,"line":..,"severity":..,"code":..,"dialog_id":..,"turn":..,
 *          "pointer":..,"message":..}
 * The place is the dialog id and a JSON pointer (RFC 6901) into the line, so a person
 * can go straight to the field. Control characters in ids and messages are escaped in
 * the text form, so a diagnostic is always exactly one line.
 *
 * Ownership: a dk_diag_list is a caller-owned value (zero-initialise it); the list owns
 * every string in its items. dk_diag_list_free frees the contents (not the struct) and
 * accepts a zeroed or already freed list. code strings are static literals (borrowed).
 */
#ifndef DK_DIAG_H
#define DK_DIAG_H

#include <stddef.h>
#include <stdio.h>
#include "dk_error.h"

typedef enum {
    DK_SEV_ERROR,
    DK_SEV_WARNING,
    DK_SEV_INFO,
} dk_severity;

typedef struct dk_diag {
    dk_severity sev;
    const char *code;      /* static, e.g. "E_ROLE" */
    long        line;      /* physical line in the input, 0 if none */
    char       *dialog_id; /* NULL when unknown */
    int         turn;      /* turn index, -1 when none */
    char       *pointer;   /* JSON pointer into the line, "" for the whole line */
    char       *message;
} dk_diag;

typedef struct dk_diag_list {
    dk_diag *items;
    size_t   n, cap;
    size_t   n_errors, n_warnings, n_infos;
} dk_diag_list;

/* Appends a diagnostic; dialog_id and pointer may be NULL. Returns 0 or DK_ENOMEM. */
int dk_diag_add(dk_diag_list *l, dk_severity sev, const char *code, long line,
                const char *dialog_id, int turn, const char *pointer, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));
/* Moves every item of src to the end of dst (src is left empty). */
int  dk_diag_list_move(dk_diag_list *dst, dk_diag_list *src);
void dk_diag_list_clear(dk_diag_list *l); /* frees items' strings, keeps capacity */
void dk_diag_list_free(dk_diag_list *l);

const char *dk_severity_name(dk_severity sev); /* "error", "warning", "info" */

/* One diagnostic as one line (with "\n") into a new malloc'ed string; file names the
 * input ("<stdin>" for standard input). NULL on out of memory. */
char *dk_diag_format_text(const dk_diag *d, const char *file);
char *dk_diag_format_json(const dk_diag *d, const char *file);

/* Appends the JSON-pointer escape (~0, ~1) of a key to a pointer being built. */
int dk_json_pointer_append(char *buf, size_t cap, const char *key);

#endif
