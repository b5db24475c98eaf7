/* dk_infer: the inside of the inference core, shared by its loaders, its model binder
 * and its backends (not a public header: tools include dk_model.h only).
 *
 * Invariants once dk_model_load has returned a model:
 *  - every dk_tensor points into a live mapping (or a model-owned f32 copy for 1-D
 *    tensors), its bytes lie inside the file, and its shape equals what the
 *    hyper-parameters demand;
 *  - matrices are stored row-major as [rows = outputs][cols = inputs] (the layout of
 *    both a Hugging Face Linear weight and a GGUF tensor with ne0 = inputs), so one
 *    output is one contiguous row; Q8_0 rows are whole 32-value blocks;
 *  - expert matrices are per-expert views (a GGUF merged tensor is sliced, Hugging
 *    Face per-expert tensors are used as they are).
 *
 * Ownership: dk_st_file and dk_gguf own their parsed headers (names, arrays) but not
 * the bytes they were parsed from. The model owns mappings, copies and layers.
 */
#ifndef DK_INFER_H
#define DK_INFER_H

#include <stddef.h>
#include <stdint.h>
#include "dk_error.h"
#include "dk_model.h"

typedef enum dk_dtype {
    DK_DT_F32 = 0,
    DK_DT_F16,
    DK_DT_BF16,
    DK_DT_Q8_0,
} dk_dtype;

#define DK_Q8_0_BLOCK 32      /* values per Q8_0 block: an f16 scale, then 32 int8 */
#define DK_Q8_0_BYTES 34

const char *dk_dtype_name(dk_dtype t);
/* Bytes of n values of type t (n a multiple of 32 for Q8_0); 0 on overflow. */
size_t dk_dtype_row_bytes(dk_dtype t, int64_t n);

/* A tensor as a loader found it: ne[0] is the innermost (contiguous) dimension. */
typedef struct dk_raw_tensor {
    char          *name;
    dk_dtype       dt;
    int            n_dims;
    int64_t        ne[4];
    const uint8_t *data;
    size_t         nbytes;
    const char    *file;   /* borrowed from the loader's file list */
} dk_raw_tensor;

/* ---- safetensors: header parsing from memory (fuzzed on its own) ---- */
typedef struct dk_st_file {
    dk_raw_tensor *t;
    size_t         n;
    size_t         data_start;   /* 8 + header length */
} dk_st_file;

/* Parses and validates buf[0..len) as a whole safetensors file: header length, JSON,
 * dtypes, shapes, offsets (inside the data, shape * dtype size, no overlaps).
 * Tensor data pointers point into buf; file names the input in errors. */
int  dk_st_parse(const uint8_t *buf, size_t len, const char *file, dk_st_file *out, dk_error *err);
void dk_st_file_free(dk_st_file *f);
/* The Hugging Face name of a binder (GGUF-style) tensor name, for messages about a
 * folder's tensors; -1 when the name has no Hugging Face spelling. */
int  dk_hf_tensor_name(const char *gguf_name, char *out, size_t cap);

/* ---- GGUF v3: parsing from memory (fuzzed on its own) ---- */
typedef enum dk_gguf_type {
    DK_GGUF_U8 = 0, DK_GGUF_I8, DK_GGUF_U16, DK_GGUF_I16, DK_GGUF_U32, DK_GGUF_I32,
    DK_GGUF_F32, DK_GGUF_BOOL, DK_GGUF_STRING, DK_GGUF_ARRAY, DK_GGUF_U64, DK_GGUF_I64,
    DK_GGUF_F64,
} dk_gguf_type;

typedef struct dk_gguf_kv {
    char          *key;
    dk_gguf_type   type;
    dk_gguf_type   arr_type;    /* for arrays */
    uint64_t       arr_n;
    const uint8_t *arr_data;    /* raw array payload inside the buffer */
    struct { uint64_t u; int64_t i; double f; } v;   /* every view a number has */
    const char    *str;         /* strings: points into the buffer, not NUL-terminated */
    uint64_t       str_len;
} dk_gguf_kv;

typedef struct dk_gguf {
    uint32_t       version;
    dk_gguf_kv    *kv;
    size_t         n_kv;
    dk_raw_tensor *t;
    size_t         n_t;
    size_t         alignment;
    size_t         data_start;
} dk_gguf;

int  dk_gguf_parse(const uint8_t *buf, size_t len, const char *file, dk_gguf *out, dk_error *err);
void dk_gguf_free(dk_gguf *g);
const dk_gguf_kv *dk_gguf_find(const dk_gguf *g, const char *key);

/* ---- the model ---- */
typedef enum dk_arch {
    DK_ARCH_QWEN2 = 0,
    DK_ARCH_QWEN3,
    DK_ARCH_LLAMA,
    DK_ARCH_DEEPSEEK,
    DK_ARCH_QWEN3_MOE,
} dk_arch;

typedef enum dk_rope_scaling {
    DK_ROPE_NONE = 0,
    DK_ROPE_LINEAR,
    DK_ROPE_YARN,
} dk_rope_scaling;

typedef struct dk_hparams {
    dk_arch arch;
    int     n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff;
    int     n_expert, n_expert_used, n_expert_shared, n_ff_exp, n_dense_lead;
    int     moe_every;          /* qwen3_moe decoder_sparse_step, deepseek moe_layer_freq */
    unsigned char *mlp_only;    /* qwen3_moe mlp_only_layers as flags, may be NULL */
    int     norm_topk;          /* renormalize the top-k gate weights */
    float   routed_scale;       /* routed experts' output scale (1 for these models) */
    float   rms_eps;
    double  rope_theta;
    int     rope_interleaved;   /* 1: rotate adjacent pairs (GGUF llama/deepseek, permuted q/k) */
    dk_rope_scaling rope_scaling;
    double  rope_factor;
    double  rope_orig_ctx;
    double  yarn_beta_fast, yarn_beta_slow, yarn_attn_factor;
    int     tie_embeddings;
    int     qkv_bias;           /* qwen2 */
    int     qk_norm;            /* qwen3, qwen3_moe */
} dk_hparams;

typedef struct dk_tensor {
    dk_dtype       dt;
    int64_t        cols;        /* inputs (contiguous) */
    int64_t        rows;        /* outputs */
    const uint8_t *data;
    size_t         row_bytes;
} dk_tensor;

typedef struct dk_layer {
    const float *attn_norm, *ffn_norm, *q_norm, *k_norm;   /* f32 copies */
    const float *bq, *bk, *bv;
    dk_tensor    wq, wk, wv, wo;
    int          is_moe;
    dk_tensor    ffn_gate, ffn_up, ffn_down;          /* dense layers */
    dk_tensor    gate_inp;                             /* router [n_expert][n_embd] */
    dk_tensor   *exp_gate, *exp_up, *exp_down;         /* n_expert views each */
    dk_tensor    sh_gate, sh_up, sh_down;              /* deepseek shared experts */
    int          has_shared;
} dk_layer;

typedef struct dk_backend_ops dk_backend_ops;

struct dk_model {
    dk_hparams   hp;
    dk_model_info info;
    dk_tensor    tok_embd;     /* [n_vocab][n_embd] */
    dk_tensor    output;       /* [n_vocab][n_embd] (== tok_embd when tied) */
    const float *output_norm;
    dk_layer    *layers;
    float       *rope_inv_freq;   /* head_dim / 2 */
    float        rope_mscale;     /* cos/sin multiplier (yarn) */
    /* owned storage */
    void       **maps;  size_t *map_len;  size_t n_maps;
    float      **f32s;  size_t n_f32s;
    char       **files; size_t n_files;
    int          n_threads;
    const dk_backend_ops *ops;
    void        *be;       /* the backend's private state */
};

/* The one dispatch point a backend fills. */
struct dk_backend_ops {
    const char *name;
    int  (*init)(dk_model *m, dk_error *err);
    void (*release)(dk_model *m);
    int  (*score)(dk_model *m, const dk_score_batch *b, const dk_score_opts *o,
                  dk_score_out *out, dk_error *err);
    int  (*generate)(dk_model *m, const int32_t *prompt, size_t n_prompt,
                     const dk_gen_opts *o, int32_t *new_ids, dk_gen_result *res, dk_error *err);
};

extern const dk_backend_ops dk_cpu_backend;

/* Loader entry points (dk_model.c calls them, then dk_model_bind). They fill the
 * hyper-parameters and a table of raw tensors; mappings go to m->maps. */
int dk_load_hf_folder(dk_model *m, const char *dir, dk_raw_tensor **ts, size_t *nts, dk_error *err);
int dk_load_gguf_file(dk_model *m, const char *path, dk_raw_tensor **ts, size_t *nts, dk_error *err);
int dk_model_map_file(dk_model *m, const char *path, const uint8_t **data, size_t *len, dk_error *err);
const char *dk_model_keep_name(dk_model *m, const char *name);
float *dk_model_alloc_f32(dk_model *m, size_t n);

/* ---- numeric kernels (dk_kernels.c), run-time ISA choice ---- */
#define DK_MR 6      /* rows of a register tile (tokens or weight rows, see dk_kernels.c) */

/* The matrix product's scratch, sized once for the largest product a caller runs:
 * at most n_max tokens, k_max inputs, and the OpenMP thread count at init. */
typedef struct dk_mm_ws {
    float  *p;
    int     n_max, n_thr;
    int64_t k_max;
    size_t  xp_floats, thr_floats;
} dk_mm_ws;
int  dk_mm_ws_init(dk_mm_ws *ws, int n_max, int64_t k_max);   /* 0 or DK_ENOMEM */
void dk_mm_ws_free(dk_mm_ws *ws);                             /* NULL and zeroed are safe */

/* Y[i][r] = sum_k X[i][k] * W[r][k] for i < n, all rows r of W; X is n x W->cols,
 * Y is n x W->rows, both contiguous. OpenMP threads split the rows of W. Every output
 * is one chain of fused multiply-adds over k in order, so it does not depend on n,
 * the other tokens, the thread count or the instruction set (batch invariance). */
void dk_matmul(const float *X, int n, const dk_tensor *W, float *Y, const dk_mm_ws *ws);
/* Row r of W as f32 (the embedding lookup). */
void dk_tensor_row_f32(const dk_tensor *W, int64_t r, float *out);
/* Converts n values of a 1-D tensor's data to f32. */
void dk_convert_f32(dk_dtype t, const uint8_t *src, int64_t n, float *dst);
float dk_f16_to_f32(uint16_t h);
float dk_bf16_to_f32(uint16_t h);
/* Which SIMD path the kernels chose: "avx512", "avx2" or "scalar". DK_SIMD=scalar|avx2
 * in the environment forces a lower one (for tests). */
const char *dk_kernels_isa(void);

/* OpenMP's thread count and the calling thread's number (1 and 0 without OpenMP). */
int dk_threads_max(void);
int dk_thread_num(void);
/* log-sum-exp of x[0..n) computed stably (max first). */
double dk_logsumexp(const float *x, int64_t n);
/* g[i] = silu(g[i]) * u[i], the SwiGLU gate. */
void dk_swiglu(float *g, const float *u, size_t n);
/* One query row against n key/value rows (stride ld floats, hd values each): out =
 * softmax(scale * q.k_j) . v_j; sc is scratch for n scores. Depends only on its inputs. */
void dk_attend(const float *q, const float *k, const float *v, size_t ld, int n, int hd, float scale, float *sc,
               float *out);

/* The MoE gate: softmax over n logits, top k (ties by lower index), optionally
 * renormalized; writes k ids and weights (times scale). Exposed for its unit test. */
void dk_moe_route(const float *logits, int n, int k, int norm_topk, float scale,
                  int *ids, float *w);

#endif
