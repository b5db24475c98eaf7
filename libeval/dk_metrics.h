/* dk_metrics: dialog metrics (DESIGN.md section 7). This module holds the ones that run
 * without a model: the entity gazetteer and entity consistency (Nan et al., EACL 2021,
 * adapted to dialog).
 *
 * Entity consistency of assistant turn t:
 *   h = distinct mentions found in the reply by the gazetteer (over folded text:
 *       NFKC + case folding, see dk_utf8_fold), leftmost-longest, non-overlapping; an
 *       entry that starts or ends with an ASCII letter or digit only matches at an
 *       ASCII word boundary (so "4" is not found in "14", "east" not in "feast");
 *   s = the folded texts of every earlier turn's annotated entities and mentions;
 *   g = the reply's own annotated entities (folded);
 *   prec_s = |h n s| / |h|   (grounded share; 1 - prec_s is the hallucination rate)
 *   prec_t = |h n g| / |h|,  recall_t = |h n g| / |g|,  f1 of the two;
 * a ratio with an empty denominator is undefined (NAN) and left out of averages.
 * A mention conflicts when an earlier turn fixed another value of the same entity type
 * and the reply names a value not in s. The type of a mention is its annotation's type
 * in the reply if it has one, else the gazetteer's most frequent type for that text.
 *
 * Ownership: dk_gazetteer_new/_load return a gazetteer the caller frees with
 * dk_gazetteer_free (NULL ok). A loaded gazetteer is read-only during matching, so any
 * number of threads may call dk_entity_consistency on it at once. A dk_consistency is
 * a caller-owned value; dk_consistency_free frees its contents.
 */
#ifndef DK_METRICS_H
#define DK_METRICS_H

#include <stddef.h>

#include "dk_dialog.h"
#include "dk_error.h"
#include "dk_jsonl.h"

typedef struct dk_gazetteer dk_gazetteer;

dk_gazetteer *dk_gazetteer_new(void);
/* Loads gazetteer JSON Lines: {"text": ..., "type": ... (optional), "count": ... (optional)}. */
int  dk_gazetteer_load(dk_gazetteer **out, const char *path, dk_error *err);
/* Adds count occurrences of (text, type); type may be NULL. */
int  dk_gazetteer_add(dk_gazetteer *g, const char *text, const char *type, long count);
/* Adds every annotated entity of a dialog (once per annotation). */
int  dk_gazetteer_add_dialog(dk_gazetteer *g, const dk_dialog *d);
/* Merges src into dst (for per-thread gazetteers). */
int  dk_gazetteer_merge(dk_gazetteer *dst, const dk_gazetteer *src);
size_t dk_gazetteer_size(const dk_gazetteer *g);   /* distinct (text, type) pairs */
/* Writes {"text","type","count"} lines, most frequent first, then by text and type. */
int  dk_gazetteer_write(const dk_gazetteer *g, dk_jsonl_writer *w, dk_error *err);
void dk_gazetteer_free(dk_gazetteer *g);

typedef struct dk_consistency_finding {
    int   turn;
    int   conflict;        /* 0 ungrounded, 1 conflicting */
    char *text;            /* the mention (folded) */
    char *type;            /* may be NULL */
    char *fixed;           /* conflict: the value fixed earlier (folded) */
    int   fixed_turn;      /* conflict: the turn that fixed it */
} dk_consistency_finding;

typedef struct dk_consistency_turn {
    int    turn;
    size_t n_mentions;     /* |h| */
    size_t n_grounded;     /* |h n s| */
    size_t n_gold;         /* |g| */
    size_t n_hit;          /* |h n g| */
    double prec_s, prec_t, recall_t, f1;  /* NAN when undefined */
} dk_consistency_turn;

typedef struct dk_consistency {
    dk_consistency_turn    *turns;     /* one per assistant turn with content */
    size_t                  n_turns;
    dk_consistency_finding *findings;
    size_t                  n_findings;
} dk_consistency;

int  dk_entity_consistency(const dk_dialog *d, const dk_gazetteer *g, dk_consistency *out);
void dk_consistency_free(dk_consistency *c);

#endif
