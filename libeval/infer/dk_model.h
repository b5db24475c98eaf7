/* dk_model: the inference core's one public interface (DESIGN.md section 6).
 *
 * A model is loaded from a Hugging Face folder (config.json + model.safetensors or
 * the shards of model.safetensors.index.json) or from one GGUF v3 file, validated in
 * full (every header, offset, shape and dtype against the file sizes and the config)
 * and then only read: weights stay memory-mapped and are used in place (bf16, f16,
 * f32, Q8_0 are converted in registers inside the matrix products). Only the small
 * one-dimensional tensors (norm weights, biases) are converted to f32 copies.
 *
 * Two jobs:
 *  - score: several token sequences of different lengths, packed back to back
 *    without padding, in one call; causal attention never crosses a sequence. For
 *    every token j >= 1 of a sequence it returns log p(tok[j] | tok[<j]) (natural
 *    log, a numerically stable log-softmax over the whole vocabulary), optionally the
 *    top-k (id, logit) after every token, and the pooled final hidden state (after
 *    the final norm) of every sequence. The result of a sequence does not depend on
 *    the other sequences of the batch.
 *  - generate: greedy decoding with a KV cache, stop ids and a token budget.
 *
 * Backends sit behind a table of functions chosen once at load time (dk_backend);
 * CPU is always built, CUDA reports "not built" until its backend exists.
 * A dk_model may be used by one thread at a time (the backend threads internally).
 *
 * Ownership: dk_model_load returns a model the caller frees with dk_model_free
 * (NULL is fine). dk_model_get_info returns a pointer borrowed from the model.
 * Score and generate write into arrays the caller owns and sizes (see each call).
 */
#ifndef DK_MODEL_H
#define DK_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include "dk_error.h"

typedef enum dk_backend {
    DK_BACKEND_AUTO = 0,  /* the best backend built and usable here */
    DK_BACKEND_CPU,
    DK_BACKEND_CUDA,
} dk_backend;

typedef enum dk_pool {
    DK_POOL_NONE = 0,
    DK_POOL_MEAN,         /* mean of the final hidden states of all tokens */
    DK_POOL_LAST,         /* the final hidden state of the last token */
} dk_pool;

typedef struct dk_model dk_model;

typedef struct dk_model_opts {
    dk_backend backend;
    int        n_threads; /* 0: the OpenMP default */
} dk_model_opts;

typedef struct dk_model_info {
    const char *arch;        /* "qwen2", "qwen3", "llama", "deepseek", "qwen3_moe" */
    const char *format;      /* "safetensors" or "gguf" */
    const char *dtype;       /* the large weights' type: "f32", "f16", "bf16", "q8_0", "mixed" */
    const char *backend;     /* "cpu", ... */
    int n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff;
    int n_expert, n_expert_used, n_expert_shared, n_ff_expert, n_dense_lead;
    size_t weight_bytes;     /* bytes of tensor data mapped */
} dk_model_info;

typedef struct dk_score_batch {
    const int32_t *tokens;   /* every sequence, back to back */
    const size_t  *seq_start;/* n_seq + 1 offsets into tokens, non-decreasing, seq_start[0] = 0 */
    int            n_seq;
} dk_score_batch;

typedef struct dk_score_opts {
    int     top_k;           /* 0: no top-k; else at most 64 */
    dk_pool pool;
} dk_score_opts;

/* Caller-owned outputs, NULL when not wanted. n = seq_start[n_seq] tokens.
 * logprob:   n floats; [j] = log p(tokens[j] | earlier tokens of its sequence),
 *            0 for the first token of each sequence.
 * top_id, top_logit: n * top_k; row j = the top_k most likely next tokens after
 *            tokens[j] (highest logit first, ties by lower id) and their raw logits.
 * pooled:    n_seq * n_embd floats (an empty sequence gives zeros). */
typedef struct dk_score_out {
    float   *logprob;
    int32_t *top_id;
    float   *top_logit;
    float   *pooled;
} dk_score_out;

typedef struct dk_gen_opts {
    int            max_new;  /* >= 1 */
    const int32_t *stop_ids; /* generation ends after one of these is produced */
    int            n_stop;
} dk_gen_opts;

typedef struct dk_gen_result {
    int    n_new;            /* tokens written to new_ids (a stop id included) */
    int    stopped;          /* 1: ended on a stop id, 0: on max_new */
    double ttft_s;           /* from the call to the first new token */
    double total_s;
} dk_gen_result;

/* Loads path (a folder with config.json, or a .gguf file). Errors (DK_EIO, DK_EPARSE,
 * DK_ERANGE, DK_ENOTFOUND, DK_EUNSUPPORTED, DK_ENOMEM) name the file and, where one
 * is at fault, the tensor or config key, in one line. */
int  dk_model_load(dk_model **out, const char *path, const dk_model_opts *opts, dk_error *err);
void dk_model_free(dk_model *m);
const dk_model_info *dk_model_get_info(const dk_model *m);

/* Token ids must lie in [0, n_vocab) (else DK_ERANGE naming the position). */
int dk_model_score(dk_model *m, const dk_score_batch *b, const dk_score_opts *opts,
                   dk_score_out *out, dk_error *err);

/* Greedy continuation of prompt (n_prompt >= 1) into new_ids (room for max_new). */
int dk_model_generate(dk_model *m, const int32_t *prompt, size_t n_prompt,
                      const dk_gen_opts *opts, int32_t *new_ids, dk_gen_result *res,
                      dk_error *err);

/* "cpu", "cuda", "auto" <-> dk_backend. parse returns 0 or DK_EINVAL. */
int         dk_backend_parse(const char *name, dk_backend *out);
const char *dk_backend_name(dk_backend b);

#endif
