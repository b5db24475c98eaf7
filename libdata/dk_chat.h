/* dk_chat: what the tools that render dialogs with a model's chat template share:
 * finding the tokenizer_config.json of a -t argument, parsing --kwarg name=value into
 * template variables, and rendering one dialog line into {"dialog_id", "text"}
 * (`tokenizer render`).
 *
 * Invariants: a kwarg value that parses as JSON (true, false, null, numbers, strings in
 * quotes, arrays, objects) is that JSON value; anything else is the string as written,
 * so enable_thinking=false is the boolean and system=hello the string "hello".
 *
 * Ownership: dk_chat_template_open returns a dk_chat_template freed with
 * dk_chat_template_free. dk_chat_render_line's *out is a new malloc'ed string the
 * caller frees. Templates, kwargs and line text are borrowed for the call.
 */
#ifndef DK_CHAT_H
#define DK_CHAT_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "dk_diag.h"
#include "dk_error.h"
#include "dk_template.h"

/* path: a model folder, a tokenizer_config.json, or a tokenizer.json (then the
 * tokenizer_config.json next to it is read). */
int dk_chat_template_open(dk_chat_template **out, const char *path, dk_error *err);

/* Adds name=value (arg) to kwargs (a cJSON object); a repeated name replaces the
 * earlier value. DK_EINVAL when arg has no '=' or an empty name. */
int dk_chat_kwarg_add(cJSON *kwargs, const char *arg, dk_error *err);

/* Parses the dialog line text[0..len) (physical line lineno), renders it and sets *out
 * to the line {"dialog_id": ..., "text": ...} (no line end). Returns 0; DK_ESCHEMA or
 * DK_EPARSE when the line is not a valid dialog, DK_EINVAL when the template fails on
 * it (each with its diagnostic appended to diags: E_TEMPLATE for a failed render);
 * DK_ENOMEM. */
int dk_chat_render_line(const dk_chat_template *ct, const char *text, size_t len, long lineno,
                        int add_generation_prompt, const cJSON *kwargs, char **out,
                        size_t *out_len, dk_diag_list *diags);

#endif
