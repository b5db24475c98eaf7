/* dk_gguf: the GGUF v3 parser and the GGUF model loader.
 *
 * The parser reads a whole file from memory with a bounds-checked cursor: counts are
 * checked against the bytes left before anything is allocated, strings and arrays
 * must fit, nested arrays are refused, tensor offsets must be aligned, inside the
 * file, sized exactly by shape and type, and not overlap. The loader then reads the
 * architecture's metadata into the hyper-parameters (llama.cpp's key names).
 */
#include "dk_infer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GGUF_MAGIC 0x46554747u   /* "GGUF" little-endian */

typedef struct cur {
    const uint8_t *p, *end;
} cur;

static int rd(cur *c, void *dst, size_t n)
{
    if ((size_t)(c->end - c->p) < n)
        return -1;
    memcpy(dst, c->p, n);
    c->p += n;
    return 0;
}

static int rd_u32(cur *c, uint32_t *v) { return rd(c, v, 4); }
static int rd_u64(cur *c, uint64_t *v) { return rd(c, v, 8); }

static int rd_str(cur *c, const char **s, uint64_t *n)
{
    if (rd_u64(c, n) || *n > (uint64_t)(c->end - c->p))
        return -1;
    *s = (const char *)c->p;
    c->p += *n;
    return 0;
}

static size_t type_size(dk_gguf_type t)
{
    switch (t) {
    case DK_GGUF_U8: case DK_GGUF_I8: case DK_GGUF_BOOL: return 1;
    case DK_GGUF_U16: case DK_GGUF_I16: return 2;
    case DK_GGUF_U32: case DK_GGUF_I32: case DK_GGUF_F32: return 4;
    case DK_GGUF_U64: case DK_GGUF_I64: case DK_GGUF_F64: return 8;
    default: return 0;
    }
}

static int rd_scalar(cur *c, dk_gguf_type t, dk_gguf_kv *kv)
{
    uint8_t b[8] = {0};
    size_t n = type_size(t);
    if (!n || rd(c, b, n))
        return -1;
    switch (t) {
    case DK_GGUF_U8: case DK_GGUF_BOOL: kv->v.u = b[0]; kv->v.i = b[0]; kv->v.f = b[0]; break;
    case DK_GGUF_I8: kv->v.i = (int8_t)b[0]; kv->v.f = (double)kv->v.i; break;
    case DK_GGUF_U16: { uint16_t x; memcpy(&x, b, 2); kv->v.u = x; kv->v.f = x; break; }
    case DK_GGUF_I16: { int16_t x; memcpy(&x, b, 2); kv->v.i = x; kv->v.f = x; break; }
    case DK_GGUF_U32: { uint32_t x; memcpy(&x, b, 4); kv->v.u = x; kv->v.f = x; break; }
    case DK_GGUF_I32: { int32_t x; memcpy(&x, b, 4); kv->v.i = x; kv->v.f = x; break; }
    case DK_GGUF_F32: { float x; memcpy(&x, b, 4); kv->v.f = x; break; }
    case DK_GGUF_U64: { uint64_t x; memcpy(&x, b, 8); kv->v.u = x; kv->v.f = (double)x; break; }
    case DK_GGUF_I64: { int64_t x; memcpy(&x, b, 8); kv->v.i = x; kv->v.f = (double)x; break; }
    case DK_GGUF_F64: { double x; memcpy(&x, b, 8); kv->v.f = x; break; }
    default: return -1;
    }
    return 0;
}

void dk_gguf_free(dk_gguf *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->n_kv; i++)
        free(g->kv[i].key);
    for (size_t i = 0; i < g->n_t; i++)
        free(g->t[i].name);
    free(g->kv);
    free(g->t);
    memset(g, 0, sizeof *g);
}

const dk_gguf_kv *dk_gguf_find(const dk_gguf *g, const char *key)
{
    for (size_t i = 0; i < g->n_kv; i++)
        if (!strcmp(g->kv[i].key, key))
            return &g->kv[i];
    return NULL;
}

static char *dup_n(const char *s, uint64_t n)
{
    char *d = malloc((size_t)n + 1);
    if (d) {
        memcpy(d, s, (size_t)n);
        d[n] = 0;
    }
    return d;
}

static int cmp_data(const void *a, const void *b)
{
    const dk_raw_tensor *x = *(const dk_raw_tensor *const *)a, *y = *(const dk_raw_tensor *const *)b;
    return x->data < y->data ? -1 : x->data > y->data ? 1 : 0;
}

int dk_gguf_parse(const uint8_t *buf, size_t len, const char *file, dk_gguf *g, dk_error *err)
{
    memset(g, 0, sizeof *g);
    cur c = { buf, buf + len };
    dk_raw_tensor **sorted = NULL;
    uint32_t magic;
    uint64_t n_t, n_kv;
    int rc = 0;
    if (rd_u32(&c, &magic) || magic != GGUF_MAGIC) {
        rc = dk_error_set(err, DK_EPARSE, file, 0, "not a GGUF file (bad magic)");
        goto out;
    }
    if (rd_u32(&c, &g->version) || g->version != 3) {
        rc = dk_error_set(err, DK_EUNSUPPORTED, file, 0, "unsupported GGUF version %u (only 3)", g->version);
        goto out;
    }
    if (rd_u64(&c, &n_t) || rd_u64(&c, &n_kv)) {
        rc = dk_error_set(err, DK_EPARSE, file, 0, "truncated GGUF header");
        goto out;
    }
    /* A key-value pair takes at least 13 bytes and a tensor info at least 24. */
    if (n_kv > (uint64_t)(c.end - c.p) / 13 || n_t > (uint64_t)(c.end - c.p) / 24) {
        rc = dk_error_set(err, DK_EPARSE, file, 0, "GGUF counts (%llu tensors, %llu keys) exceed the file",
                          (unsigned long long)n_t, (unsigned long long)n_kv);
        goto out;
    }
    g->kv = calloc(n_kv ? n_kv : 1, sizeof *g->kv);
    g->t = calloc(n_t ? n_t : 1, sizeof *g->t);
    if (!g->kv || !g->t) { rc = dk_error_set(err, DK_ENOMEM, file, 0, "out of memory"); goto out; }
    g->alignment = 32;
    for (uint64_t i = 0; i < n_kv; i++) {
        dk_gguf_kv *kv = &g->kv[i];
        const char *ks;
        uint64_t kn;
        uint32_t ty;
        if (rd_str(&c, &ks, &kn) || rd_u32(&c, &ty)) {
            rc = dk_error_set(err, DK_EPARSE, file, 0, "truncated GGUF key-value pair %llu", (unsigned long long)i);
            goto out;
        }
        if (!(kv->key = dup_n(ks, kn))) { rc = dk_error_set(err, DK_ENOMEM, file, 0, "out of memory"); goto out; }
        g->n_kv++;
        kv->type = (dk_gguf_type)ty;
        if (ty == DK_GGUF_STRING) {
            if (rd_str(&c, &kv->str, &kv->str_len)) {
                rc = dk_error_set(err, DK_EPARSE, file, 0, "GGUF key %s: truncated string", kv->key);
                goto out;
            }
        } else if (ty == DK_GGUF_ARRAY) {
            uint32_t at;
            if (rd_u32(&c, &at) || rd_u64(&c, &kv->arr_n)) {
                rc = dk_error_set(err, DK_EPARSE, file, 0, "GGUF key %s: truncated array", kv->key);
                goto out;
            }
            kv->arr_type = (dk_gguf_type)at;
            kv->arr_data = c.p;
            if (at == DK_GGUF_STRING) {
                if (kv->arr_n > (uint64_t)(c.end - c.p) / 8) {
                    rc = dk_error_set(err, DK_EPARSE, file, 0, "GGUF key %s: array longer than the file", kv->key);
                    goto out;
                }
                for (uint64_t k = 0; k < kv->arr_n; k++) {
                    const char *s;
                    uint64_t sn;
                    if (rd_str(&c, &s, &sn)) {
                        rc = dk_error_set(err, DK_EPARSE, file, 0, "GGUF key %s: truncated string array", kv->key);
                        goto out;
                    }
                }
            } else {
                size_t es = type_size((dk_gguf_type)at);
                if (!es) {
                    rc = dk_error_set(err, DK_EPARSE, file, 0, "GGUF key %s: bad array element type %u", kv->key, at);
                    goto out;
                }
                if (kv->arr_n > (uint64_t)(c.end - c.p) / es) {
                    rc = dk_error_set(err, DK_EPARSE, file, 0, "GGUF key %s: array longer than the file", kv->key);
                    goto out;
                }
                c.p += kv->arr_n * es;
            }
        } else if (rd_scalar(&c, kv->type, kv)) {
            rc = dk_error_set(err, DK_EPARSE, file, 0, "GGUF key %s: bad or truncated value (type %u)", kv->key, ty);
            goto out;
        }
        if (!strcmp(kv->key, "general.alignment")) {
            if (kv->type != DK_GGUF_U32 || kv->v.u == 0 || (kv->v.u & (kv->v.u - 1)) || kv->v.u > 65536) {
                rc = dk_error_set(err, DK_EPARSE, file, 0, "GGUF general.alignment must be a power of two u32");
                goto out;
            }
            g->alignment = (size_t)kv->v.u;
        }
    }
    for (uint64_t i = 0; i < n_t; i++) {
        dk_raw_tensor *t = &g->t[i];
        const char *ns;
        uint64_t nn, off;
        uint32_t nd, ty;
        if (rd_str(&c, &ns, &nn) || rd_u32(&c, &nd)) {
            rc = dk_error_set(err, DK_EPARSE, file, 0, "truncated GGUF tensor info %llu", (unsigned long long)i);
            goto out;
        }
        if (!(t->name = dup_n(ns, nn))) { rc = dk_error_set(err, DK_ENOMEM, file, 0, "out of memory"); goto out; }
        g->n_t++;
        t->file = file;
        if (nd < 1 || nd > 4) {
            rc = dk_error_set(err, DK_EPARSE, file, 0, "tensor %s: %u dimensions", t->name, nd);
            goto out;
        }
        t->n_dims = (int)nd;
        uint64_t count = 1;
        for (int d = 0; d < 4; d++)
            t->ne[d] = 1;
        for (uint32_t d = 0; d < nd; d++) {
            uint64_t v;
            if (rd_u64(&c, &v)) {
                rc = dk_error_set(err, DK_EPARSE, file, 0, "tensor %s: truncated shape", t->name);
                goto out;
            }
            if (v > (1ull << 40) || (v && count > (1ull << 50) / v)) {
                rc = dk_error_set(err, DK_ERANGE, file, 0, "tensor %s: shape too large", t->name);
                goto out;
            }
            t->ne[d] = (int64_t)v;
            count *= v;
        }
        if (rd_u32(&c, &ty) || rd_u64(&c, &off)) {
            rc = dk_error_set(err, DK_EPARSE, file, 0, "tensor %s: truncated type or offset", t->name);
            goto out;
        }
        switch (ty) {
        case 0: t->dt = DK_DT_F32; break;
        case 1: t->dt = DK_DT_F16; break;
        case 8: t->dt = DK_DT_Q8_0; break;
        case 30: t->dt = DK_DT_BF16; break;
        default:
            rc = dk_error_set(err, DK_EUNSUPPORTED, file, 0, "tensor %s: unsupported GGML type %u", t->name, ty);
            goto out;
        }
        if (t->dt == DK_DT_Q8_0 && t->ne[0] % DK_Q8_0_BLOCK) {
            rc = dk_error_set(err, DK_EPARSE, file, 0, "tensor %s: Q8_0 rows of %lld values are not whole blocks",
                              t->name, (long long)t->ne[0]);
            goto out;
        }
        t->nbytes = dk_dtype_row_bytes(t->dt, t->ne[0]) * (size_t)(count / (t->ne[0] ? (uint64_t)t->ne[0] : 1));
        if (t->ne[0] == 0)
            t->nbytes = 0;
        if (off % g->alignment) {
            rc = dk_error_set(err, DK_EPARSE, file, 0, "tensor %s: offset %llu is not aligned to %zu",
                              t->name, (unsigned long long)off, g->alignment);
            goto out;
        }
        t->data = (const uint8_t *)(uintptr_t)off;   /* relative until the data start is known */
    }
    size_t pos = (size_t)(c.p - buf);
    size_t ds = (pos + g->alignment - 1) / g->alignment * g->alignment;
    if (ds > len && g->n_t) {
        rc = dk_error_set(err, DK_EPARSE, file, 0, "truncated GGUF file: no tensor data");
        goto out;
    }
    g->data_start = ds;
    size_t avail = len > ds ? len - ds : 0;
    for (size_t i = 0; i < g->n_t; i++) {
        dk_raw_tensor *t = &g->t[i];
        uint64_t off = (uint64_t)(uintptr_t)t->data;
        if (off > avail || t->nbytes > avail - off) {
            rc = dk_error_set(err, DK_ERANGE, file, 0, "tensor %s: data [%llu, +%zu) past the end of the file",
                              t->name, (unsigned long long)off, t->nbytes);
            goto out;
        }
        t->data = buf + ds + off;
    }
    sorted = malloc((g->n_t ? g->n_t : 1) * sizeof *sorted);
    if (!sorted) { rc = dk_error_set(err, DK_ENOMEM, file, 0, "out of memory"); goto out; }
    for (size_t i = 0; i < g->n_t; i++)
        sorted[i] = &g->t[i];
    qsort(sorted, g->n_t, sizeof *sorted, cmp_data);
    for (size_t i = 1; i < g->n_t; i++)
        if (sorted[i]->nbytes && sorted[i - 1]->nbytes && sorted[i]->data < sorted[i - 1]->data + sorted[i - 1]->nbytes) {
            rc = dk_error_set(err, DK_ERANGE, file, 0, "tensor %s overlaps tensor %s", sorted[i]->name, sorted[i - 1]->name);
            goto out;
        }
out:
    free(sorted);
    if (rc)
        dk_gguf_free(g);
    return rc;
}

/* ---- the loader ---- */

static int kv_num(const dk_gguf *g, const char *file, const char *arch, const char *key, int required,
                  double def, double *out, dk_error *err)
{
    char full[256];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    const dk_gguf_kv *kv = dk_gguf_find(g, full);
    if (!kv) {
        if (required)
            return dk_error_set(err, DK_ENOTFOUND, file, 0, "GGUF key %s is missing", full);
        *out = def;
        return 0;
    }
    switch (kv->type) {
    case DK_GGUF_U8: case DK_GGUF_U16: case DK_GGUF_U32: case DK_GGUF_U64: case DK_GGUF_BOOL:
        *out = (double)kv->v.u; break;
    case DK_GGUF_I8: case DK_GGUF_I16: case DK_GGUF_I32: case DK_GGUF_I64:
        *out = (double)kv->v.i; break;
    case DK_GGUF_F32: case DK_GGUF_F64:
        *out = kv->v.f; break;
    default:
        return dk_error_set(err, DK_EPARSE, file, 0, "GGUF key %s must be a number", full);
    }
    if (!isfinite(*out))
        return dk_error_set(err, DK_EPARSE, file, 0, "GGUF key %s is not finite", full);
    return 0;
}

static int kv_int(const dk_gguf *g, const char *file, const char *arch, const char *key, int required,
                  int def, int *out, dk_error *err)
{
    double d;
    int rc = kv_num(g, file, arch, key, required, def, &d, err);
    if (rc)
        return rc;
    if (d < 0 || d > 1 << 30 || d != floor(d))
        return dk_error_set(err, DK_EPARSE, file, 0, "GGUF key %s.%s must be a small non-negative integer", arch, key);
    *out = (int)d;
    return 0;
}

int dk_load_gguf_file(dk_model *m, const char *path, dk_raw_tensor **ts, size_t *nts, dk_error *err)
{
    const uint8_t *data;
    size_t len;
    dk_gguf g;
    *ts = NULL;
    *nts = 0;
    int rc = dk_model_map_file(m, path, &data, &len, err);
    if (rc)
        return rc;
    const char *file = dk_model_keep_name(m, path);
    if (!file)
        return dk_error_set(err, DK_ENOMEM, path, 0, "out of memory");
    if ((rc = dk_gguf_parse(data, len, file, &g, err)))
        return rc;
    dk_hparams *hp = &m->hp;
    const dk_gguf_kv *ak = dk_gguf_find(&g, "general.architecture");
    char arch[64] = "";
    if (!ak || ak->type != DK_GGUF_STRING) {
        rc = dk_error_set(err, DK_ENOTFOUND, file, 0, "GGUF key general.architecture is missing");
        goto out;
    }
    snprintf(arch, sizeof arch, "%.*s", (int)(ak->str_len < 63 ? ak->str_len : 63), ak->str);
    if (!strcmp(arch, "qwen2")) hp->arch = DK_ARCH_QWEN2;
    else if (!strcmp(arch, "qwen3")) hp->arch = DK_ARCH_QWEN3;
    else if (!strcmp(arch, "llama")) hp->arch = DK_ARCH_LLAMA;
    else if (!strcmp(arch, "deepseek")) hp->arch = DK_ARCH_DEEPSEEK;
    else if (!strcmp(arch, "qwen3moe")) hp->arch = DK_ARCH_QWEN3_MOE;
    else {
        rc = dk_error_set(err, DK_EUNSUPPORTED, file, 0, "unsupported architecture '%s'", arch);
        goto out;
    }
    double eps, theta;
    if ((rc = kv_int(&g, file, arch, "embedding_length", 1, 0, &hp->n_embd, err)) ||
        (rc = kv_int(&g, file, arch, "block_count", 1, 0, &hp->n_layer, err)) ||
        (rc = kv_int(&g, file, arch, "attention.head_count", 1, 0, &hp->n_head, err)) ||
        (rc = kv_int(&g, file, arch, "attention.head_count_kv", 0, hp->n_head, &hp->n_head_kv, err)) ||
        (rc = kv_int(&g, file, arch, "feed_forward_length", hp->arch != DK_ARCH_QWEN3_MOE, 0, &hp->n_ff, err)) ||
        (rc = kv_num(&g, file, arch, "attention.layer_norm_rms_epsilon", 1, 0, &eps, err)) ||
        (rc = kv_num(&g, file, arch, "rope.freq_base", 0, 10000, &theta, err)))
        goto out;
    if (hp->n_head <= 0 || hp->n_embd <= 0) {
        rc = dk_error_set(err, DK_EPARSE, file, 0, "GGUF: embedding_length and head_count must be positive");
        goto out;
    }
    if ((rc = kv_int(&g, file, arch, "attention.key_length", 0, hp->n_embd / hp->n_head, &hp->head_dim, err)))
        goto out;
    int vlen;
    if ((rc = kv_int(&g, file, arch, "attention.value_length", 0, hp->head_dim, &vlen, err)))
        goto out;
    if (vlen != hp->head_dim) {
        rc = dk_error_set(err, DK_EUNSUPPORTED, file, 0, "GGUF: value_length %d differs from key_length %d", vlen, hp->head_dim);
        goto out;
    }
    hp->rms_eps = (float)eps;
    hp->rope_theta = theta;
    hp->rope_factor = 1;
    char full[128];
    snprintf(full, sizeof full, "%s.rope.scaling.type", arch);
    const dk_gguf_kv *st = dk_gguf_find(&g, full);
    if (st && st->type == DK_GGUF_STRING && !(st->str_len == 4 && !memcmp(st->str, "none", 4))) {
        double f;
        if ((rc = kv_num(&g, file, arch, "rope.scaling.factor", 1, 1, &f, err)))
            goto out;
        hp->rope_factor = f;
        if (st->str_len == 6 && !memcmp(st->str, "linear", 6)) {
            hp->rope_scaling = DK_ROPE_LINEAR;
        } else if (st->str_len == 4 && !memcmp(st->str, "yarn", 4)) {
            hp->rope_scaling = DK_ROPE_YARN;
            if ((rc = kv_num(&g, file, arch, "rope.scaling.original_context_length", 1, 0, &hp->rope_orig_ctx, err)))
                goto out;
            hp->yarn_beta_fast = 32;
            hp->yarn_beta_slow = 1;
        } else {
            rc = dk_error_set(err, DK_EUNSUPPORTED, file, 0, "unsupported rope scaling type '%.*s'",
                              (int)(st->str_len < 32 ? st->str_len : 32), st->str);
            goto out;
        }
        if (!(hp->rope_factor > 0)) {
            rc = dk_error_set(err, DK_EPARSE, file, 0, "GGUF: rope scaling factor must be positive");
            goto out;
        }
    }
    /* llama.cpp's converter permutes q/k rows for llama-style rope (adjacent pairs). */
    hp->rope_interleaved = hp->arch == DK_ARCH_LLAMA || hp->arch == DK_ARCH_DEEPSEEK;
    hp->qk_norm = hp->arch == DK_ARCH_QWEN3 || hp->arch == DK_ARCH_QWEN3_MOE;
    hp->qkv_bias = -1;   /* the binder decides from the tensors present */
    hp->routed_scale = 1;
    hp->moe_every = 1;
    if (hp->arch == DK_ARCH_DEEPSEEK || hp->arch == DK_ARCH_QWEN3_MOE) {
        double norm;
        if ((rc = kv_int(&g, file, arch, "expert_count", 1, 0, &hp->n_expert, err)) ||
            (rc = kv_int(&g, file, arch, "expert_used_count", 1, 0, &hp->n_expert_used, err)) ||
            (rc = kv_int(&g, file, arch, "expert_feed_forward_length", 1, 0, &hp->n_ff_exp, err)) ||
            (rc = kv_num(&g, file, arch, "expert_weights_norm", 0, hp->arch == DK_ARCH_QWEN3_MOE, &norm, err)))
            goto out;
        hp->norm_topk = norm != 0;
        if (hp->arch == DK_ARCH_DEEPSEEK &&
            ((rc = kv_int(&g, file, arch, "leading_dense_block_count", 1, 0, &hp->n_dense_lead, err)) ||
             (rc = kv_int(&g, file, arch, "expert_shared_count", 1, 0, &hp->n_expert_shared, err))))
            goto out;
    }
    /* The vocabulary size comes from the embedding matrix (checked by the binder). */
    hp->n_vocab = -1;
    *ts = g.t;
    *nts = g.n_t;
    g.t = NULL;
    g.n_t = 0;
out:
    dk_gguf_free(&g);
    return rc;
}
