/* dk_dialog: one dialog line (DESIGN.md section 1) parsed, checked and serialized.
 *
 * dk_dialog_parse checks everything that can be checked on one line:
 *   - that the bytes are strict UTF-8 and one JSON object (E_UTF8, E_JSON, E_SURROGATE,
 *     E_NUL, E_DUPLICATE_KEY, E_NOT_OBJECT);
 *   - every rule of schemas/dialog.schema.json (E_DIALOG_ID ... E_META), agreeing
 *     with a JSON Schema validator line for line;
 *   - unless DK_DIALOG_SCHEMA_ONLY: the rules a schema cannot say (E_ENTITY_NOT_IN_TEXT,
 *     E_ENTITY_OFFSET, E_TOOL_POSITION) and the warnings (W_...).
 * Rules that span lines (E_DUPLICATE_ID) belong to the caller; dk_dialog_idset helps.
 * Codes are stable: tests, users' scripts and --errors-json consumers key on them.
 * The list with their rules is in schemas/README.md.
 *
 * Ownership: *out from dk_dialog_parse is owned by the caller (dk_dialog_free). Every
 * string in a dk_dialog and its turns is borrowed from the dialog's own cJSON tree and
 * lives as long as the dialog. Diagnostics are appended to the caller's list.
 * A dk_dialog is immutable after parsing, so threads may read one concurrently.
 */
#ifndef DK_DIALOG_H
#define DK_DIALOG_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "dk_diag.h"
#include "dk_error.h"

typedef enum {
    DK_ROLE_SYSTEM,
    DK_ROLE_USER,
    DK_ROLE_ASSISTANT,
    DK_ROLE_TOOL,
    DK_ROLE_INVALID,   /* missing or unknown (an E_ROLE was reported) */
} dk_role;

typedef struct dk_entity {
    const char *text;  /* never NULL in a parsed dialog */
    const char *type;  /* NULL when absent */
    long        start; /* code points into content, -1 when absent */
    long        end;   /* exclusive, -1 when absent */
    int         index; /* position in the turn's "entities" array (invalid items are skipped) */
} dk_entity;

typedef struct dk_turn {
    dk_role      role;
    const char  *content;      /* NULL when null, missing or not a string */
    size_t       content_len;
    dk_entity   *entities;
    size_t       n_entities;
    const char **intents;      /* intent as a list (a single string is a list of one) */
    size_t       n_intents;
    const char **actions;
    size_t       n_actions;
    int          has_tool_calls;
    int          train;        /* -1 absent, else 0/1 */
    const cJSON *json;         /* the turn object, for fields dlgkit does not model */
} dk_turn;

typedef struct dk_dialog {
    const char *id;            /* NULL when missing or invalid */
    dk_turn    *turns;
    size_t      n_turns;
    long        line;          /* physical input line */
    cJSON      *json;          /* the whole line, owned by the dialog */
} dk_dialog;

enum {
    DK_DIALOG_SCHEMA_ONLY = 1u << 0,  /* only the JSON Schema's rules (and the parser's) */
};

/* Parses and checks one line. Returns
 *   0            the line is a valid dialog (warnings may have been added);
 *   DK_ESCHEMA   it is a JSON object with errors: *out is still set (partial fields are
 *                NULL / -1), the errors are in diags;
 *   DK_EPARSE    not UTF-8, not JSON or not an object: *out is NULL, the error is in diags;
 *   DK_ENOMEM. */
int  dk_dialog_parse(const char *text, size_t len, long line, unsigned flags,
                     dk_dialog **out, dk_diag_list *diags);
void dk_dialog_free(dk_dialog *d);

const char *dk_role_name(dk_role role);   /* "user" ...; "invalid" */

/* The dialog as compact JSON (cJSON printer): unknown fields and key order kept.
 * New malloc'ed string, caller frees; NULL on out of memory. */
char *dk_dialog_serialize(const dk_dialog *d);

/* Adds "key": value_json as the last member of the JSON object text[0..len) without
 * re-serializing it, so every byte of the original is kept (numbers, escapes, spacing).
 * If the object already has key, the old member is replaced (that line is then
 * re-serialized). value_json must be valid JSON. New malloc'ed string (*out_len set),
 * or NULL on out of memory or when text is not an object. */
char *dk_json_set_member(const char *text, size_t len, const char *key,
                         const char *value_json, size_t *out_len);

/* A set of dialog ids for the uniqueness rule, memory proportional to the ids.
 * dk_dialog_idset_add returns 1 if id was new, 0 if already present, <0 on error. */
typedef struct dk_dialog_idset dk_dialog_idset;
dk_dialog_idset *dk_dialog_idset_new(void);
int  dk_dialog_idset_add(dk_dialog_idset *s, const char *id, long line, long *first_line);
void dk_dialog_idset_free(dk_dialog_idset *s);

/* 64-bit FNV-1a of the id's bytes: the --shard-by id hash, stable across versions and
 * machines (so shards made today are the shards made next year). */
uint64_t dk_dialog_id_hash(const char *id);

#endif
