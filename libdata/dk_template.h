/* dk_template: the model's own chat template (a Jinja2 subset) run in C, with output
 * equal byte for byte to @huggingface/jinja, the renderer DESIGN.md section 9 checks
 * it against (Hugging Face transformers renders the same templates with
 * trim_blocks=True and lstrip_blocks=True; @huggingface/jinja applies the same
 * preprocessing, and where the two renderers differ this module follows
 * @huggingface/jinja: `true` prints as "true", `s.strip('\n')` strips all white
 * space, `%` takes the sign of the dividend, output of a loop iteration left by
 * `continue` is dropped).
 *
 * Invariants:
 *   - A template is parsed once (dk_template_parse) into an immutable tree; any number
 *     of threads may render one template at the same time.
 *   - A render either returns the exact text or fails: a construct this engine does not
 *     implement is DK_EUNSUPPORTED naming it and its line in the template, never a
 *     different output. Not implemented: tojson(sort_keys=true) (locale collation),
 *     a {% call %} block on a builtin, `**` other than an integer to a non-negative
 *     integer power below 2**53 (V8 rounds pow differently from C), and the cases where
 *     @huggingface/jinja would print JavaScript internals: a list, dict or function
 *     turned into a string by `~`, `+` or `join` ("1,2", "[object Map]", source
 *     code), `first`/`last` of an empty list (a JavaScript undefined).
 *   - Errors the reference raises (unknown filter or test, a wrong operand type,
 *     break outside a loop, ...) are DK_EINVAL; template syntax errors DK_EPARSE.
 *   - Hostile templates are bounded: nesting depth, output bytes, memory and evaluation
 *     steps each have a limit (dk_template_limits); going over is DK_ELIMIT.
 *   - raise_exception("msg") in a template fails the render with DK_EINVAL and the
 *     message "raise_exception: msg".
 *   - Errors name the template (the name given at parse) and its 1-based line.
 *
 * The render context is a cJSON object: each member is a template variable (messages,
 * tools, add_generation_prompt, bos_token, eos_token, enable_thinking, ...), converted
 * as JavaScript's JSON.parse would see it (integral numbers are integers, keys that
 * are array indices come first in numeric order, a repeated key keeps its first place
 * and its last value).
 *
 * Ownership: dk_template_parse, dk_chat_template_load and _from_json return objects the caller
 * frees with dk_template_free / dk_chat_template_free (both accept NULL). Rendered text
 * is a new malloc'ed NUL-terminated string the caller frees. Contexts and dialogs are
 * borrowed for the duration of the call. A dk_template returned by
 * dk_chat_template_pick is borrowed from its dk_chat_template.
 */
#ifndef DK_TEMPLATE_H
#define DK_TEMPLATE_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "dk_error.h"

typedef struct dk_template dk_template;

typedef struct dk_template_limits {
    size_t max_output;   /* bytes of rendered text */
    size_t max_memory;   /* bytes held by one render (values, strings, scopes) */
    long   max_steps;    /* evaluated nodes and loop iterations */
    int    max_depth;    /* evaluation nesting (expressions, blocks, macro calls) is
                            bounded by 8 * max_depth; parsing always stops at 128 */
} dk_template_limits;

/* The defaults: 64 MiB output, 512 MiB memory, 50 million steps, depth 128. */
void dk_template_limits_default(dk_template_limits *lim);

/* Parses src[0..len) (UTF-8). name is used in error messages (may be NULL). */
int  dk_template_parse(dk_template **out, const char *src, size_t len, const char *name,
                       dk_error *err);
void dk_template_free(dk_template *t);
const char *dk_template_name(const dk_template *t); /* borrowed */

/* Renders t with the variables of context (a cJSON object, or NULL for none). lim may
 * be NULL (defaults). On success *out is the text (caller frees) and *out_len its
 * length; on failure *out is NULL. */
int  dk_template_render(const dk_template *t, const cJSON *context,
                        const dk_template_limits *lim, char **out, size_t *out_len,
                        dk_error *err);

/* The chat template(s) and special tokens of a tokenizer_config.json. */
typedef struct dk_chat_template dk_chat_template;

/* path: a tokenizer_config.json, or a folder that holds one. chat_template may be a
 * string, or a list of {"name", "template"} (transformers' named templates); a model
 * folder's chat_template.jinja / chat_template.json is not read. bos_token and
 * eos_token may be strings or {"content": ...} objects; absent or null gives none. */
int  dk_chat_template_load(dk_chat_template **out, const char *path, dk_error *err);
/* The same from an already parsed tokenizer_config object; name is for messages. */
int  dk_chat_template_from_json(dk_chat_template **out, const cJSON *config,
                                const char *name, dk_error *err);
void dk_chat_template_free(dk_chat_template *ct);

/* The template transformers would pick: with tools, "tool_use" when the config names
 * one; else "default" (or the single string template). NULL when there is none (a list
 * without "default"); dk_chat_template_render_dialog then fails with DK_ENOTFOUND. */
const dk_template *dk_chat_template_pick(const dk_chat_template *ct, int has_tools);
const char *dk_chat_template_bos(const dk_chat_template *ct); /* NULL when none */
const char *dk_chat_template_eos(const dk_chat_template *ct); /* NULL when none */

/* The context transformers' apply_chat_template gives the template for a dialog line
 * (DESIGN.md section 1): messages = the turns with every field they carry (borrowed
 * references into dialog, so dialog must outlive the context), tools = the dialog's
 * tools or null, documents = null, add_generation_prompt, the special tokens the
 * config sets (bos_token, eos_token, unk_token, sep_token, pad_token, cls_token,
 * mask_token as strings, additional_special_tokens as a list when non-empty: what
 * transformers passes as special_tokens_map), then every member of kwargs (may be
 * NULL; a kwarg replaces a variable of the same name). The caller frees *out with cJSON_Delete. DK_EINVAL when dialog has no
 * "turns" array. ct may be NULL (no special tokens). */
int  dk_chat_template_context(cJSON **out, const dk_chat_template *ct, const cJSON *dialog,
                              int add_generation_prompt, const cJSON *kwargs, dk_error *err);

/* Picks the template (tools = the dialog has a non-null "tools" member), builds the
 * context and renders it. lim may be NULL. */
int  dk_chat_template_render_dialog(const dk_chat_template *ct, const cJSON *dialog,
                                    int add_generation_prompt, const cJSON *kwargs,
                                    const dk_template_limits *lim, char **out,
                                    size_t *out_len, dk_error *err);

#endif
