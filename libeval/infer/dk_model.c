/* dk_model: loading (format detection, mapping), binding raw tensors to the layers
 * with every shape checked against the hyper-parameters, RoPE tables, and the one
 * dispatch point to the backend chosen at load time.
 */
#include "dk_infer.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const arch_names[] = { "qwen2", "qwen3", "llama", "deepseek", "qwen3_moe" };

const char *dk_dtype_name(dk_dtype t)
{
    switch (t) {
    case DK_DT_F32: return "f32";
    case DK_DT_F16: return "f16";
    case DK_DT_BF16: return "bf16";
    case DK_DT_Q8_0: return "q8_0";
    }
    return "?";
}

size_t dk_dtype_row_bytes(dk_dtype t, int64_t n)
{
    if (n < 0 || n > ((int64_t)1 << 40))
        return 0;
    switch (t) {
    case DK_DT_F32: return (size_t)n * 4;
    case DK_DT_F16: case DK_DT_BF16: return (size_t)n * 2;
    case DK_DT_Q8_0: return (size_t)(n / DK_Q8_0_BLOCK) * DK_Q8_0_BYTES;
    }
    return 0;
}

int dk_backend_parse(const char *name, dk_backend *out)
{
    if (!strcmp(name, "auto")) *out = DK_BACKEND_AUTO;
    else if (!strcmp(name, "cpu")) *out = DK_BACKEND_CPU;
    else if (!strcmp(name, "cuda")) *out = DK_BACKEND_CUDA;
    else return DK_EINVAL;
    return 0;
}

const char *dk_backend_name(dk_backend b)
{
    switch (b) {
    case DK_BACKEND_AUTO: return "auto";
    case DK_BACKEND_CPU: return "cpu";
    case DK_BACKEND_CUDA: return "cuda";
    }
    return "?";
}

/* ---- owned storage ---- */

static int grow(void **arr, size_t *cap_unused, size_t n, size_t elem)
{
    (void)cap_unused;
    /* Grows by one element each time: a model holds a handful of files and tensors. */
    void *p = realloc(*arr, (n + 1) * elem);
    if (!p)
        return -1;
    *arr = p;
    return 0;
}

int dk_model_map_file(dk_model *m, const char *path, const uint8_t **data, size_t *len, dk_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return dk_error_set(err, errno == ENOENT ? DK_ENOTFOUND : DK_EIO, path, 0, "cannot open: %s", strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = dk_error_set(err, DK_EIO, path, 0, "not a regular file");
        goto out;
    }
    if (st.st_size == 0) {
        rc = dk_error_set(err, DK_EPARSE, path, 0, "empty file");
        goto out;
    }
    /* Populated up front: every weight is read anyway, and one pass over the page
     * cache costs far less than a fault per page later. */
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (p == MAP_FAILED) {
        rc = dk_error_set(err, DK_EIO, path, 0, "cannot map: %s", strerror(errno));
        goto out;
    }
    if (grow((void **)&m->maps, NULL, m->n_maps, sizeof *m->maps) ||
        grow((void **)&m->map_len, NULL, m->n_maps, sizeof *m->map_len)) {
        munmap(p, (size_t)st.st_size);
        rc = dk_error_set(err, DK_ENOMEM, path, 0, "out of memory");
        goto out;
    }
    m->maps[m->n_maps] = p;
    m->map_len[m->n_maps] = (size_t)st.st_size;
    m->n_maps++;
    *data = p;
    *len = (size_t)st.st_size;
out:
    close(fd);
    return rc;
}

const char *dk_model_keep_name(dk_model *m, const char *name)
{
    char *d = strdup(name);
    if (!d || grow((void **)&m->files, NULL, m->n_files, sizeof *m->files)) {
        free(d);
        return NULL;
    }
    m->files[m->n_files++] = d;
    return d;
}

float *dk_model_alloc_f32(dk_model *m, size_t n)
{
    float *p = calloc(n ? n : 1, sizeof *p);
    if (!p || grow((void **)&m->f32s, NULL, m->n_f32s, sizeof *m->f32s)) {
        free(p);
        return NULL;
    }
    m->f32s[m->n_f32s++] = p;
    return p;
}

void dk_model_free(dk_model *m)
{
    if (!m)
        return;
    if (m->ops && m->ops->release)
        m->ops->release(m);
    for (size_t i = 0; i < m->n_maps; i++)
        munmap(m->maps[i], m->map_len[i]);
    for (size_t i = 0; i < m->n_f32s; i++)
        free(m->f32s[i]);
    for (size_t i = 0; i < m->n_files; i++)
        free(m->files[i]);
    if (m->layers)
        for (int l = 0; l < m->hp.n_layer; l++) {
            free(m->layers[l].exp_gate);
            free(m->layers[l].exp_up);
            free(m->layers[l].exp_down);
        }
    free(m->layers);
    free(m->maps);
    free(m->map_len);
    free(m->f32s);
    free(m->files);
    free(m->hp.mlp_only);
    free(m->rope_inv_freq);
    free(m);
}

/* ---- binding ---- */

typedef struct binder {
    dk_model      *m;
    dk_raw_tensor *ts;
    size_t         n;
    unsigned char *used;
    const char    *src;   /* the model path, for errors about missing tensors */
    int            hf;    /* a Hugging Face folder: messages use its names and shape order */
    dk_error      *err;
} binder;

/* A tensor's name as the user's file spells it. */
static const char *user_name(const binder *b, const char *name, char *buf, size_t cap)
{
    return b->hf && dk_hf_tensor_name(name, buf, cap) == 0 ? buf : name;
}

/* "[a, b]": n sizes given innermost first, printed in the file's own order (Hugging
 * Face shapes list the outermost size first, GGUF the innermost). */
static void format_shape(const binder *b, const int64_t *ne, int n, char *out, size_t cap)
{
    size_t k = 0;
    out[0] = 0;
    for (int i = 0; i < n && k < cap; i++) {
        int64_t v = b->hf ? ne[n - 1 - i] : ne[i];
        k += (size_t)snprintf(out + k, cap - k, "%s%lld", i ? ", " : "[", (long long)v);
    }
    if (k < cap)
        snprintf(out + k, cap - k, "]");
}

static dk_raw_tensor *find(binder *b, const char *name)
{
    for (size_t i = 0; i < b->n; i++)
        if (!strcmp(b->ts[i].name, name)) {
            b->used[i] = 1;
            return &b->ts[i];
        }
    return NULL;
}

/* want: n_want sizes, innermost first. */
static int shape_err(binder *b, const dk_raw_tensor *t, int n_want, int64_t e0, int64_t e1, int64_t e2)
{
    const int64_t want[3] = { e0, e1, e2 };
    char nm[256], have_s[128], want_s[128];
    format_shape(b, t->ne, t->n_dims > 0 ? t->n_dims : 1, have_s, sizeof have_s);
    format_shape(b, want, n_want, want_s, sizeof want_s);
    return dk_error_set(b->err, DK_ERANGE, t->file, 0, "tensor %s: shape %s%s disagrees with %s, which needs %s",
                        user_name(b, t->name, nm, sizeof nm), have_s, b->hf ? "" : " (innermost first)",
                        b->hf ? "config.json" : "the GGUF metadata", want_s);
}

static int missing(binder *b, const char *name)
{
    char nm[256];
    return dk_error_set(b->err, DK_ENOTFOUND, b->src, 0, "tensor %s is missing", user_name(b, name, nm, sizeof nm));
}

/* A matrix [rows][cols] (ne = {cols, rows}); optional when out may stay empty. */
static int bind_mat(binder *b, const char *name, int64_t cols, int64_t rows, int required, dk_tensor *out)
{
    dk_raw_tensor *t = find(b, name);
    if (!t)
        return required ? missing(b, name) : 0;
    if (t->ne[0] != cols || t->ne[1] != rows || t->ne[2] != 1 || t->ne[3] != 1 || t->n_dims > 2)
        return shape_err(b, t, 2, cols, rows, 1);
    if (t->dt == DK_DT_Q8_0 && cols % DK_Q8_0_BLOCK)
        return dk_error_set(b->err, DK_EPARSE, t->file, 0, "tensor %s: Q8_0 rows are not whole blocks", name);
    out->dt = t->dt;
    out->cols = cols;
    out->rows = rows;
    out->data = t->data;
    out->row_bytes = dk_dtype_row_bytes(t->dt, cols);
    return 0;
}

static int bind_vec(binder *b, const char *name, int64_t n, int required, const float **out)
{
    dk_raw_tensor *t = find(b, name);
    *out = NULL;
    if (!t)
        return required ? missing(b, name) : 0;
    if (t->ne[0] != n || t->ne[1] != 1 || t->ne[2] != 1 || t->ne[3] != 1)
        return shape_err(b, t, 1, n, 1, 1);
    if (t->dt == DK_DT_Q8_0)
        return dk_error_set(b->err, DK_EUNSUPPORTED, t->file, 0, "tensor %s: Q8_0 is not supported for vectors", name);
    float *f = dk_model_alloc_f32(b->m, (size_t)n);
    if (!f)
        return dk_error_set(b->err, DK_ENOMEM, t->file, 0, "out of memory");
    dk_convert_f32(t->dt, t->data, n, f);
    *out = f;
    return 0;
}

/* Experts: a GGUF merged tensor [n_expert][rows][cols], or per-expert tensors. */
static int bind_experts(binder *b, int l, const char *kind, int64_t cols, int64_t rows, dk_tensor **out)
{
    int ne = b->m->hp.n_expert;
    char name[128];
    dk_tensor *v = calloc((size_t)ne, sizeof *v);
    if (!v)
        return dk_error_set(b->err, DK_ENOMEM, b->src, 0, "out of memory");
    *out = v;
    snprintf(name, sizeof name, "blk.%d.ffn_%s_exps.weight", l, kind);
    dk_raw_tensor *t = find(b, name);
    if (t) {
        if (t->ne[0] != cols || t->ne[1] != rows || t->ne[2] != ne || t->ne[3] != 1)
            return shape_err(b, t, 3, cols, rows, ne);
        size_t rb = dk_dtype_row_bytes(t->dt, cols);
        for (int e = 0; e < ne; e++) {
            v[e].dt = t->dt;
            v[e].cols = cols;
            v[e].rows = rows;
            v[e].row_bytes = rb;
            v[e].data = t->data + (size_t)e * (size_t)rows * rb;
        }
        return 0;
    }
    for (int e = 0; e < ne; e++) {
        snprintf(name, sizeof name, "blk.%d.ffn_%s.%d.weight", l, kind, e);
        int rc = bind_mat(b, name, cols, rows, 1, &v[e]);
        if (rc)
            return rc;
    }
    return 0;
}

static int layer_is_moe(const dk_hparams *hp, int l)
{
    if (hp->n_expert <= 0)
        return 0;
    if (hp->arch == DK_ARCH_DEEPSEEK)
        return l >= hp->n_dense_lead && l % hp->moe_every == 0;
    if (hp->arch == DK_ARCH_QWEN3_MOE)
        return !(hp->mlp_only && hp->mlp_only[l]) && (l + 1) % hp->moe_every == 0;
    return 0;
}

static int check_hparams(const dk_model *m, const char *src, dk_error *err)
{
    const dk_hparams *hp = &m->hp;
    if (hp->n_layer < 1 || hp->n_layer > 1024 || hp->n_head < 1 || hp->n_head_kv < 1 ||
        hp->n_head % hp->n_head_kv || hp->head_dim < 2 || hp->head_dim % 2 || hp->head_dim > 1024 ||
        hp->n_embd < 1 || hp->n_vocab < 1)
        return dk_error_set(err, DK_EPARSE, src, 0,
                            "inconsistent sizes (layers %d, heads %d/%d, head_dim %d, hidden %d, vocab %d)",
                            hp->n_layer, hp->n_head, hp->n_head_kv, hp->head_dim, hp->n_embd, hp->n_vocab);
    if (hp->n_expert > 0 && (hp->n_expert_used < 1 || hp->n_expert_used > hp->n_expert || hp->n_ff_exp < 1 ||
                             hp->n_expert > 4096))
        return dk_error_set(err, DK_EPARSE, src, 0, "inconsistent expert sizes (%d experts, %d used, ffn %d)",
                            hp->n_expert, hp->n_expert_used, hp->n_ff_exp);
    if (!(hp->rms_eps > 0) || !(hp->rope_theta > 0))
        return dk_error_set(err, DK_EPARSE, src, 0, "rms_norm_eps and rope_theta must be positive");
    return 0;
}

static int bind(dk_model *m, dk_raw_tensor *ts, size_t nts, const char *src, int is_gguf, dk_error *err)
{
    dk_hparams *hp = &m->hp;
    binder b = { m, ts, nts, calloc(nts ? nts : 1, 1), src, !is_gguf, err };
    char nm[128];
    int rc = 0;
    if (!b.used)
        return dk_error_set(err, DK_ENOMEM, src, 0, "out of memory");
    if (is_gguf) {
        dk_raw_tensor *te = find(&b, "token_embd.weight");
        if (!te) { rc = dk_error_set(err, DK_ENOTFOUND, src, 0, "tensor token_embd.weight is missing"); goto out; }
        if (te->n_dims != 2 || te->ne[1] < 1 || te->ne[1] > (1 << 24)) {
            rc = dk_error_set(err, DK_ERANGE, te->file, 0, "tensor token_embd.weight: %lld rows is not a vocabulary",
                              (long long)te->ne[1]);
            goto out;
        }
        hp->n_vocab = (int)te->ne[1];
        snprintf(nm, sizeof nm, "blk.0.attn_q.bias");
        hp->qkv_bias = find(&b, nm) != NULL;
        if (!find(&b, "output.weight"))
            hp->tie_embeddings = 1;
    }
    if ((rc = check_hparams(m, src, err)))
        goto out;
    int64_t d = hp->n_embd, hd = hp->head_dim, qd = (int64_t)hp->n_head * hd, kvd = (int64_t)hp->n_head_kv * hd;
    if ((rc = bind_mat(&b, "token_embd.weight", d, hp->n_vocab, 1, &m->tok_embd)) ||
        (rc = bind_vec(&b, "output_norm.weight", d, 1, &m->output_norm)))
        goto out;
    if (hp->tie_embeddings) {
        m->output = m->tok_embd;
        find(&b, "output.weight");   /* a saved copy of the tied matrix is fine */
    } else if ((rc = bind_mat(&b, "output.weight", d, hp->n_vocab, 1, &m->output))) {
        goto out;
    }
    m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->layers) { rc = dk_error_set(err, DK_ENOMEM, src, 0, "out of memory"); goto out; }
    for (int l = 0; l < hp->n_layer; l++) {
        dk_layer *L = &m->layers[l];
#define N(s) (snprintf(nm, sizeof nm, "blk.%d.%s", l, s), nm)
        if ((rc = bind_vec(&b, N("attn_norm.weight"), d, 1, &L->attn_norm)) ||
            (rc = bind_vec(&b, N("ffn_norm.weight"), d, 1, &L->ffn_norm)) ||
            (rc = bind_mat(&b, N("attn_q.weight"), d, qd, 1, &L->wq)) ||
            (rc = bind_mat(&b, N("attn_k.weight"), d, kvd, 1, &L->wk)) ||
            (rc = bind_mat(&b, N("attn_v.weight"), d, kvd, 1, &L->wv)) ||
            (rc = bind_mat(&b, N("attn_output.weight"), qd, d, 1, &L->wo)))
            goto out;
        if (hp->qkv_bias &&
            ((rc = bind_vec(&b, N("attn_q.bias"), qd, 1, &L->bq)) ||
             (rc = bind_vec(&b, N("attn_k.bias"), kvd, 1, &L->bk)) ||
             (rc = bind_vec(&b, N("attn_v.bias"), kvd, 1, &L->bv))))
            goto out;
        if (hp->qk_norm &&
            ((rc = bind_vec(&b, N("attn_q_norm.weight"), hd, 1, &L->q_norm)) ||
             (rc = bind_vec(&b, N("attn_k_norm.weight"), hd, 1, &L->k_norm))))
            goto out;
        L->is_moe = layer_is_moe(hp, l);
        if (!L->is_moe) {
            if ((rc = bind_mat(&b, N("ffn_gate.weight"), d, hp->n_ff, 1, &L->ffn_gate)) ||
                (rc = bind_mat(&b, N("ffn_up.weight"), d, hp->n_ff, 1, &L->ffn_up)) ||
                (rc = bind_mat(&b, N("ffn_down.weight"), hp->n_ff, d, 1, &L->ffn_down)))
                goto out;
            continue;
        }
        int64_t fe = hp->n_ff_exp;
        if ((rc = bind_mat(&b, N("ffn_gate_inp.weight"), d, hp->n_expert, 1, &L->gate_inp)) ||
            (rc = bind_experts(&b, l, "gate", d, fe, &L->exp_gate)) ||
            (rc = bind_experts(&b, l, "up", d, fe, &L->exp_up)) ||
            (rc = bind_experts(&b, l, "down", fe, d, &L->exp_down)))
            goto out;
        if (hp->arch == DK_ARCH_DEEPSEEK && hp->n_expert_shared > 0) {
            int64_t fs = fe * hp->n_expert_shared;
            L->has_shared = 1;
            if ((rc = bind_mat(&b, N("ffn_gate_shexp.weight"), d, fs, 1, &L->sh_gate)) ||
                (rc = bind_mat(&b, N("ffn_up_shexp.weight"), d, fs, 1, &L->sh_up)) ||
                (rc = bind_mat(&b, N("ffn_down_shexp.weight"), fs, d, 1, &L->sh_down)))
                goto out;
        }
#undef N
    }
    /* The weights' dtype for the info line. */
    dk_dtype dt0 = m->layers[0].wq.dt;
    int mixed = 0;
    for (int l = 0; l < hp->n_layer; l++)
        mixed |= m->layers[l].wq.dt != dt0 || m->layers[l].wo.dt != dt0;
    m->info.dtype = mixed ? "mixed" : dk_dtype_name(dt0);
out:
    free(b.used);
    return rc;
}

/* Inverse frequencies of RoPE for the config's scaling (the Hugging Face formulas). */
static int rope_setup(dk_model *m, dk_error *err)
{
    const dk_hparams *hp = &m->hp;
    int half = hp->head_dim / 2;
    m->rope_inv_freq = malloc((size_t)half * sizeof *m->rope_inv_freq);
    if (!m->rope_inv_freq)
        return dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
    m->rope_mscale = 1;
    double dim = hp->head_dim;
    double lo = 0, hi = 0;
    if (hp->rope_scaling == DK_ROPE_YARN) {
        double pi2 = 2 * M_PI;
        lo = floor(dim * log(hp->rope_orig_ctx / (hp->yarn_beta_fast * pi2)) / (2 * log(hp->rope_theta)));
        hi = ceil(dim * log(hp->rope_orig_ctx / (hp->yarn_beta_slow * pi2)) / (2 * log(hp->rope_theta)));
        if (lo < 0) lo = 0;
        if (hi > dim - 1) hi = dim - 1;
        if (lo == hi) hi += 0.001;
        double af = hp->yarn_attn_factor;
        m->rope_mscale = (float)(af > 0 ? af : (hp->rope_factor <= 1 ? 1.0 : 0.1 * log(hp->rope_factor) + 1.0));
    }
    for (int i = 0; i < half; i++) {
        double inv = 1.0 / pow(hp->rope_theta, (2.0 * i) / dim);
        if (hp->rope_scaling == DK_ROPE_LINEAR) {
            inv /= hp->rope_factor;
        } else if (hp->rope_scaling == DK_ROPE_YARN) {
            double ramp = (i - lo) / (hi - lo);
            ramp = ramp < 0 ? 0 : ramp > 1 ? 1 : ramp;
            double extra = 1 - ramp;    /* share of the unscaled frequency */
            inv = inv / hp->rope_factor * (1 - extra) + inv * extra;
        }
        m->rope_inv_freq[i] = (float)inv;
    }
    return 0;
}

int dk_model_load(dk_model **out, const char *path, const dk_model_opts *opts, dk_error *err)
{
    *out = NULL;
    dk_model_opts def = { DK_BACKEND_AUTO, 0 };
    if (!opts)
        opts = &def;
    dk_raw_tensor *ts = NULL;
    size_t nts = 0;
    int rc;
    dk_model *m = calloc(1, sizeof *m);
    if (!m)
        return dk_error_set(err, DK_ENOMEM, path, 0, "out of memory");
    if (opts->backend == DK_BACKEND_CUDA) {
        rc = dk_error_set(err, DK_EUNSUPPORTED, path, 0, "cuda backend not built");
        goto out;
    }
    m->ops = &dk_cpu_backend;
    m->n_threads = opts->n_threads;
    struct stat st;
    if (stat(path, &st) != 0) {
        rc = dk_error_set(err, errno == ENOENT ? DK_ENOTFOUND : DK_EIO, path, 0, "cannot open: %s", strerror(errno));
        goto out;
    }
    int is_gguf = !S_ISDIR(st.st_mode);
    rc = is_gguf ? dk_load_gguf_file(m, path, &ts, &nts, err) : dk_load_hf_folder(m, path, &ts, &nts, err);
    if (rc)
        goto out;
    if ((rc = bind(m, ts, nts, path, is_gguf, err)) || (rc = rope_setup(m, err)))
        goto out;
    const dk_hparams *hp = &m->hp;
    dk_model_info *in = &m->info;
    in->arch = arch_names[hp->arch];
    in->format = is_gguf ? "gguf" : "safetensors";
    in->backend = m->ops->name;
    in->n_vocab = hp->n_vocab;
    in->n_embd = hp->n_embd;
    in->n_layer = hp->n_layer;
    in->n_head = hp->n_head;
    in->n_head_kv = hp->n_head_kv;
    in->head_dim = hp->head_dim;
    in->n_ff = hp->n_ff;
    in->n_expert = hp->n_expert;
    in->n_expert_used = hp->n_expert_used;
    in->n_expert_shared = hp->n_expert_shared;
    in->n_ff_expert = hp->n_ff_exp;
    in->n_dense_lead = hp->n_dense_lead;
    for (size_t i = 0; i < nts; i++)
        in->weight_bytes += ts[i].nbytes;
    if ((rc = m->ops->init(m, err)))
        goto out;
out:
    for (size_t i = 0; i < nts; i++)
        free(ts[i].name);
    free(ts);
    if (rc) {
        dk_model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

const dk_model_info *dk_model_get_info(const dk_model *m)
{
    return &m->info;
}

static int check_tokens(const dk_model *m, const int32_t *t, size_t n, dk_error *err)
{
    for (size_t i = 0; i < n; i++)
        if (t[i] < 0 || t[i] >= m->hp.n_vocab)
            return dk_error_set(err, DK_ERANGE, NULL, 0, "token id %d at position %zu is outside the vocabulary (%d)",
                                t[i], i, m->hp.n_vocab);
    return 0;
}

int dk_model_score(dk_model *m, const dk_score_batch *b, const dk_score_opts *opts, dk_score_out *out,
                   dk_error *err)
{
    dk_score_opts def = { 0, DK_POOL_NONE };
    if (!opts)
        opts = &def;
    if (b->n_seq < 0 || opts->top_k < 0 || opts->top_k > 64 || (b->n_seq > 0 && b->seq_start[0] != 0))
        return dk_error_set(err, DK_EINVAL, NULL, 0, "bad score batch or options");
    for (int s = 0; s < b->n_seq; s++)
        if (b->seq_start[s + 1] < b->seq_start[s])
            return dk_error_set(err, DK_EINVAL, NULL, 0, "sequence offsets must not decrease");
    size_t n = b->n_seq ? b->seq_start[b->n_seq] : 0;
    int rc = check_tokens(m, b->tokens, n, err);
    if (rc)
        return rc;
    return m->ops->score(m, b, opts, out, err);
}

int dk_model_generate(dk_model *m, const int32_t *prompt, size_t n_prompt, const dk_gen_opts *opts,
                      int32_t *new_ids, dk_gen_result *res, dk_error *err)
{
    memset(res, 0, sizeof *res);
    if (n_prompt < 1 || opts->max_new < 1 || opts->n_stop < 0)
        return dk_error_set(err, DK_EINVAL, NULL, 0, "generate needs a prompt and max_new >= 1");
    int rc = check_tokens(m, prompt, n_prompt, err);
    if (rc)
        return rc;
    return m->ops->generate(m, prompt, n_prompt, opts, new_ids, res, err);
}
