/* dk_expand: multi-turn dialogs cut into training samples (turn-expander), rendered
 * with the model's chat template, with exact token counts and loss masks.
 *
 * A sample is a run of the dialog's turns: the system turn (if the dialog has one),
 * history, and a target. --mode prefix makes one sample per assistant turn t (turns
 * before t as history, t the target); --mode whole one sample per dialog, ending at its
 * last assistant turn, every chosen assistant turn trained. History is cut only at
 * whole-turn boundaries, in units that start at a user turn (a user turn and the
 * assistant and tool turns answering it); the system turn, the unit holding the last
 * user turn before the target, and the target are never dropped.
 *
 * Exactness: n_tokens is the tokenizer's count of the sample rendered with the chat
 * template (add_generation_prompt off), the count Hugging Face gets for that text. A
 * trained turn's span is found in that rendered text: its start is where the rendered
 * prefix of the turns before it ends (the prefix is checked to be a prefix: Qwen3
 * re-renders earlier assistant turns without their reasoning, so a sample is never
 * assumed to extend another), its end the template's end-of-turn token (the config's
 * eos_token) that closes it. Within that span the label starts at the reply's content
 * (plain replies), or at the start of what the model writes after the generation
 * prompt (replies with reasoning or tool calls, which the model must write too).
 *
 * Speed: the rendered text is tokenized in pieces cut after each end-of-turn token (an
 * added token, which the tokenizer splits out before normalizing and pre-tokenizing,
 * so cutting there cannot change a token; checked at dk_expander_new) and at each span
 * start, and the pieces' ids are cached per dialog, so the history that prefix samples
 * repeat is tokenized once. A cut at a span start is only trusted after checking, once
 * per piece, that the ids of the text before it are a prefix of the ids of the whole
 * piece (then the tokenization has a boundary there); otherwise the label starts at the
 * first token the two encodings do not share, with a warning.
 *
 * Ownership: dk_expander_new borrows tok, ct and everything in opts (kwargs, the train
 * list), which must outlive it; an expander is immutable and shared by threads, each
 * with its own dk_expand_ctx (dk_expand_ctx_free). Results are caller-owned values
 * (zero-initialise; dk_expand_result_free frees the buffer).
 */
#ifndef DK_EXPAND_H
#define DK_EXPAND_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "dk_dialog.h"
#include "dk_diag.h"
#include "dk_error.h"
#include "dk_template.h"
#include "dk_tokenizer.h"

typedef enum { DK_EXPAND_PREFIX, DK_EXPAND_WHOLE } dk_expand_mode;
typedef enum { DK_EXPAND_DROP_OLDEST, DK_EXPAND_WINDOW, DK_EXPAND_SKIP } dk_expand_truncate;
typedef enum { DK_EXPAND_TRAIN_ALL, DK_EXPAND_TRAIN_LAST, DK_EXPAND_TRAIN_LIST } dk_expand_train;
typedef enum {
    DK_EXPAND_MESSAGES, DK_EXPAND_SHAREGPT, DK_EXPAND_TEXT, DK_EXPAND_IDS,
} dk_expand_format;

typedef struct dk_expand_opts {
    dk_expand_mode     mode;
    long               max_tokens;   /* 0: no budget */
    dk_expand_truncate truncate;
    long               window;       /* DK_EXPAND_WINDOW: units of history kept */
    dk_expand_train    train;
    const long        *train_list;   /* DK_EXPAND_TRAIN_LIST: turn indices, sorted */
    size_t             n_train_list;
    dk_expand_format   format;
    const cJSON       *kwargs;       /* extra template variables, may be NULL */
} dk_expand_opts;

typedef struct dk_expander dk_expander;
typedef struct dk_expand_ctx dk_expand_ctx;

typedef struct dk_expand_result {
    char  *out;            /* the samples, one JSON line each ("\n"-terminated) */
    size_t len, cap;
    long   samples, skipped, turns_dropped, tokens;
} dk_expand_result;

/* DK_EINVAL when the config has no eos_token or it is not one added token of tok,
 * DK_ENOTFOUND when the config has no chat template. */
int  dk_expander_new(dk_expander **out, const dk_tokenizer *tok, const dk_chat_template *ct,
                     const dk_expand_opts *opts, dk_error *err);
void dk_expander_free(dk_expander *ex);

int  dk_expand_ctx_new(dk_expand_ctx **out, const dk_expander *ex, dk_error *err);
void dk_expand_ctx_free(dk_expand_ctx *c);

/* Appends the samples of dialog d (a valid dialog from dk_dialog_parse) to r (its
 * buffer is reset first, counters too). Problems of this dialog (a render the template
 * refuses, a sample that cannot fit) are diagnostics in diags; the return value is 0,
 * or DK_ENOMEM. */
int  dk_expand_dialog(dk_expand_ctx *c, const dk_dialog *d, dk_expand_result *r, dk_diag_list *diags);

void dk_expand_result_free(dk_expand_result *r);

#endif
