/* dk_tokenizer: byte-level BPE exactly as Hugging Face `tokenizers` runs a tokenizer.json
 * of Qwen2/2.5/3, DeepSeek-V3/R1 and Llama-3 (DESIGN.md section 5).
 *
 * Pipeline of one encode, in the reference's order:
 *   1. added tokens with normalized=false are split out of the raw text (leftmost-longest,
 *      with their single_word/lstrip/rstrip flags);
 *   2. every other piece is normalized (NFC on ICU, a Sequence of NFC, or none),
 *      then added tokens with normalized=true are split out of the normalized piece;
 *   3. the pre-tokenizer (a Sequence of Split regexes on PCRE2 JIT, then ByteLevel) cuts
 *      the rest into pieces; the Split regexes are rewritten at load time so that their
 *      Unicode classes equal those of the reference's regex engine (see the .c file);
 *   4. each piece's bytes are merged by BPE rank; the result is cached per scratch;
 *   5. with DK_TOK_ADD_SPECIAL, the post-processor's template adds its tokens (the
 *      Qwen and DeepSeek files add none; Llama-3's adds <|begin_of_text|>).
 * Anything in a tokenizer.json this module does not implement is a load error
 * (DK_EUNSUPPORTED) that names the feature: there is never a silent difference.
 *
 * Invariants: a loaded dk_tokenizer is immutable, so any number of threads may encode and
 * decode with it at once, each with its own dk_tok_scratch (the per-thread piece cache,
 * regex match data and buffers). Token ids are uint32 below dk_tokenizer_n_ids().
 *
 * Ownership: dk_tokenizer_load* returns a tokenizer freed with dk_tokenizer_free;
 * dk_tok_scratch_new returns a scratch freed with dk_tok_scratch_free (both accept NULL);
 * a scratch borrows its tokenizer, which must outlive it, and serves only that tokenizer.
 * dk_tok_ids and dk_tok_text are caller-owned values (zero-initialise them) whose buffers
 * the library grows; release them with dk_tok_ids_free / dk_tok_text_free. Strings
 * returned by accessors are borrowed from the tokenizer.
 */
#ifndef DK_TOKENIZER_H
#define DK_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>
#include "dk_error.h"

typedef struct dk_tokenizer dk_tokenizer;
typedef struct dk_tok_scratch dk_tok_scratch;

typedef struct dk_tok_ids {
    uint32_t *ids;
    size_t    n, cap;
} dk_tok_ids;

typedef struct dk_tok_text {
    char  *s;      /* NUL-terminated UTF-8 after a successful decode */
    size_t len, cap;
} dk_tok_text;

enum {
    DK_TOK_ADD_SPECIAL  = 1u << 0, /* encode: apply the post-processor (HF add_special_tokens) */
    DK_TOK_SKIP_SPECIAL = 1u << 1, /* decode: leave out special added tokens */
};

/* Loads path: a tokenizer.json file, or a folder holding tokenizer.json. Errors name the
 * file: DK_EIO, DK_EPARSE (malformed JSON, with its line), DK_EUNSUPPORTED (a feature
 * this module does not implement, named), DK_EINVAL (an inconsistent file, e.g. a merge
 * of tokens not in the vocabulary), DK_ELIMIT, DK_ENOMEM. */
int  dk_tokenizer_load(dk_tokenizer **out, const char *path, dk_error *err);
/* The same from a tokenizer.json held in memory (borrowed; name is used in errors). */
int  dk_tokenizer_load_buffer(dk_tokenizer **out, const char *json, size_t len,
                              const char *name, dk_error *err);
void dk_tokenizer_free(dk_tokenizer *tok);

/* One more than the largest id (vocabulary and added tokens). */
uint32_t dk_tokenizer_n_ids(const dk_tokenizer *tok);
/* The id of a token given in the file's spelling (byte-level characters for vocabulary
 * entries, the content for added tokens); -1 when there is none. */
int64_t dk_tokenizer_token_to_id(const dk_tokenizer *tok, const char *s, size_t len);
/* The file's spelling of id (borrowed, *len set), or NULL for an id that has no token. */
const char *dk_tokenizer_id_to_token(const dk_tokenizer *tok, uint32_t id, size_t *len);
/* 1 when id is a special added token. */
int dk_tokenizer_is_special(const dk_tokenizer *tok, uint32_t id);

int  dk_tok_scratch_new(dk_tok_scratch **out, const dk_tokenizer *tok, dk_error *err);
void dk_tok_scratch_free(dk_tok_scratch *s);

/* Encodes text[0..len) (strict UTF-8; DK_EUTF8 with the byte offset in the message
 * otherwise) into out, replacing its contents. scratch may be NULL: a temporary one is
 * made, which is correct but slow in a loop. flags: DK_TOK_ADD_SPECIAL. */
int dk_tokenizer_encode(const dk_tokenizer *tok, dk_tok_scratch *scratch, const char *text,
                        size_t len, unsigned flags, dk_tok_ids *out, dk_error *err);

/* Decodes ids into out (replacing its contents) as the reference's ByteLevel decoder does:
 * the tokens' bytes are joined and any invalid UTF-8 sequence becomes U+FFFD, so a split
 * character is exact once its tokens are together. An id with no token is DK_ERANGE
 * (the message names it and its index). flags: DK_TOK_SKIP_SPECIAL. */
int dk_tokenizer_decode(const dk_tokenizer *tok, const uint32_t *ids, size_t n, unsigned flags,
                        dk_tok_text *out, dk_error *err);

void dk_tok_ids_free(dk_tok_ids *v);
void dk_tok_text_free(dk_tok_text *t);

#endif
