/* dk_safetensors: the safetensors header parser and the Hugging Face folder loader.
 *
 * The parser trusts nothing: the 8-byte header length, the JSON, every dtype, shape
 * and [begin, end) pair are checked against the buffer before a pointer is formed,
 * and tensors may not overlap. The folder loader reads config.json into the
 * hyper-parameters, maps model.safetensors (or every shard named by
 * model.safetensors.index.json, which must then hold every tensor it lists) and
 * renames Hugging Face tensor names to the GGUF-style names the binder uses.
 */
#include "dk_infer.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define ST_MAX_HEADER ((uint64_t)100 << 20)   /* 100 MiB of JSON is far beyond any real header */

static int json_u64(const cJSON *j, uint64_t *out)
{
    if (!cJSON_IsNumber(j))
        return -1;
    double d = j->valuedouble;
    if (!(d >= 0) || d > 9007199254740992.0 || d != floor(d))
        return -1;
    *out = (uint64_t)d;
    return 0;
}

static int cmp_by_offset(const void *a, const void *b)
{
    const dk_raw_tensor *x = a, *y = b;
    return x->data < y->data ? -1 : x->data > y->data ? 1 : 0;
}

static int cmp_by_name(const void *a, const void *b)
{
    const dk_raw_tensor *x = *(const dk_raw_tensor *const *)a, *y = *(const dk_raw_tensor *const *)b;
    return strcmp(x->name, y->name);
}

void dk_st_file_free(dk_st_file *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++)
        free(f->t[i].name);
    free(f->t);
    memset(f, 0, sizeof *f);
}

static int st_dtype(const char *s, dk_dtype *dt)
{
    if (!strcmp(s, "F32")) *dt = DK_DT_F32;
    else if (!strcmp(s, "F16")) *dt = DK_DT_F16;
    else if (!strcmp(s, "BF16")) *dt = DK_DT_BF16;
    else return -1;
    return 0;
}

int dk_st_parse(const uint8_t *buf, size_t len, const char *file, dk_st_file *out, dk_error *err)
{
    memset(out, 0, sizeof *out);
    cJSON *root = NULL;
    dk_raw_tensor **byname = NULL;
    int rc = 0;
    if (len < 8) {
        rc = dk_error_set(err, DK_EPARSE, file, 0, "truncated safetensors file (%zu bytes, no header length)", len);
        goto out;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | buf[i];
    if (hlen > ST_MAX_HEADER || hlen > len - 8) {
        rc = dk_error_set(err, DK_EPARSE, file, 0, "safetensors header length %llu exceeds the file (%zu bytes)",
                          (unsigned long long)hlen, len);
        goto out;
    }
    out->data_start = 8 + (size_t)hlen;
    size_t data_len = len - out->data_start;
    root = cJSON_ParseWithLength((const char *)buf + 8, (size_t)hlen);
    if (!root || !cJSON_IsObject(root)) {
        rc = dk_error_set(err, DK_EPARSE, file, 0, "safetensors header is not a JSON object");
        goto out;
    }
    size_t cap = (size_t)cJSON_GetArraySize(root);
    out->t = calloc(cap ? cap : 1, sizeof *out->t);
    if (!out->t) { rc = dk_error_set(err, DK_ENOMEM, file, 0, "out of memory"); goto out; }
    for (cJSON *e = root->child; e; e = e->next) {
        const char *name = e->string ? e->string : "";
        if (!strcmp(name, "__metadata__"))
            continue;
        if (!cJSON_IsObject(e)) {
            rc = dk_error_set(err, DK_EPARSE, file, 0, "tensor %s: entry is not an object", name);
            goto out;
        }
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
        const cJSON *of = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        dk_raw_tensor *t = &out->t[out->n];
        if (!cJSON_IsString(dt) || st_dtype(dt->valuestring, &t->dt) != 0) {
            rc = dk_error_set(err, cJSON_IsString(dt) ? DK_EUNSUPPORTED : DK_EPARSE, file, 0,
                              "tensor %s: unsupported dtype %s", name,
                              cJSON_IsString(dt) ? dt->valuestring : "(missing)");
            goto out;
        }
        if (!cJSON_IsArray(sh) || cJSON_GetArraySize(sh) > 4) {
            rc = dk_error_set(err, DK_EPARSE, file, 0, "tensor %s: shape must be an array of at most 4 sizes", name);
            goto out;
        }
        int nd = cJSON_GetArraySize(sh);
        uint64_t count = 1;
        t->n_dims = nd;
        for (int d = 0; d < 4; d++)
            t->ne[d] = 1;
        int d = 0;
        for (const cJSON *s = sh->child; s; s = s->next, d++) {
            uint64_t v;
            if (json_u64(s, &v) != 0 || v > (1ull << 40)) {
                rc = dk_error_set(err, DK_EPARSE, file, 0, "tensor %s: bad shape entry", name);
                goto out;
            }
            t->ne[nd - 1 - d] = (int64_t)v;   /* innermost first, as GGUF */
            if (v && count > UINT64_MAX / v) {
                rc = dk_error_set(err, DK_ERANGE, file, 0, "tensor %s: shape overflows", name);
                goto out;
            }
            count *= v;
        }
        uint64_t b0, b1;
        if (!cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2 || json_u64(of->child, &b0) != 0 ||
            json_u64(of->child->next, &b1) != 0) {
            rc = dk_error_set(err, DK_EPARSE, file, 0, "tensor %s: data_offsets must be two integers", name);
            goto out;
        }
        uint64_t need = count * (t->dt == DK_DT_F32 ? 4 : 2);
        if (b1 < b0 || b1 > data_len) {
            rc = dk_error_set(err, DK_ERANGE, file, 0, "tensor %s: data_offsets [%llu, %llu) past the end of the data (%zu bytes)",
                              name, (unsigned long long)b0, (unsigned long long)b1, data_len);
            goto out;
        }
        if (b1 - b0 != need) {
            rc = dk_error_set(err, DK_ERANGE, file, 0, "tensor %s: %llu bytes of data for a shape that needs %llu",
                              name, (unsigned long long)(b1 - b0), (unsigned long long)need);
            goto out;
        }
        t->data = buf + out->data_start + b0;
        t->nbytes = (size_t)need;
        t->file = file;
        t->name = strdup(name);
        if (!t->name) { rc = dk_error_set(err, DK_ENOMEM, file, 0, "out of memory"); goto out; }
        out->n++;
    }
    /* Overlap: sorted by start, each must start at or after the previous end. */
    qsort(out->t, out->n, sizeof *out->t, cmp_by_offset);
    for (size_t i = 1; i < out->n; i++) {
        if (out->t[i].data < out->t[i - 1].data + out->t[i - 1].nbytes && out->t[i].nbytes && out->t[i - 1].nbytes) {
            rc = dk_error_set(err, DK_ERANGE, file, 0, "tensor %s overlaps tensor %s", out->t[i].name, out->t[i - 1].name);
            goto out;
        }
    }
    byname = malloc((out->n ? out->n : 1) * sizeof *byname);
    if (!byname) { rc = dk_error_set(err, DK_ENOMEM, file, 0, "out of memory"); goto out; }
    for (size_t i = 0; i < out->n; i++)
        byname[i] = &out->t[i];
    qsort(byname, out->n, sizeof *byname, cmp_by_name);
    for (size_t i = 1; i < out->n; i++)
        if (!strcmp(byname[i]->name, byname[i - 1]->name)) {
            rc = dk_error_set(err, DK_EPARSE, file, 0, "tensor %s appears twice", byname[i]->name);
            goto out;
        }
out:
    free(byname);
    cJSON_Delete(root);
    if (rc)
        dk_st_file_free(out);
    return rc;
}

/* ---- config.json ---- */

static int cfg_int(const cJSON *c, const char *key, int required, int def, int *out,
                   const char *file, dk_error *err)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(c, key);
    if (!j || cJSON_IsNull(j)) {
        if (required)
            return dk_error_set(err, DK_ENOTFOUND, file, 0, "config key %s is missing", key);
        *out = def;
        return 0;
    }
    uint64_t v;
    if (json_u64(j, &v) != 0 || v > INT_MAX)
        return dk_error_set(err, DK_EPARSE, file, 0, "config key %s must be a non-negative integer", key);
    *out = (int)v;
    return 0;
}

static int cfg_num(const cJSON *c, const char *key, double def, double *out, const char *file, dk_error *err)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(c, key);
    if (!j || cJSON_IsNull(j)) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble))
        return dk_error_set(err, DK_EPARSE, file, 0, "config key %s must be a number", key);
    *out = j->valuedouble;
    return 0;
}

static int cfg_bool(const cJSON *c, const char *key, int def, int *out, const char *file, dk_error *err)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(c, key);
    if (!j || cJSON_IsNull(j)) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsBool(j))
        return dk_error_set(err, DK_EPARSE, file, 0, "config key %s must be true or false", key);
    *out = cJSON_IsTrue(j);
    return 0;
}

static int parse_rope_scaling(const cJSON *c, dk_hparams *hp, const char *file, dk_error *err)
{
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(c, "rope_scaling");
    hp->rope_scaling = DK_ROPE_NONE;
    hp->rope_factor = 1;
    if (!rs || cJSON_IsNull(rs))
        return 0;
    if (!cJSON_IsObject(rs))
        return dk_error_set(err, DK_EPARSE, file, 0, "config key rope_scaling must be an object or null");
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
    if (!ty)
        ty = cJSON_GetObjectItemCaseSensitive(rs, "type");
    const char *name = cJSON_IsString(ty) ? ty->valuestring : "";
    int rc;
    if (!strcmp(name, "default"))
        return 0;
    if ((rc = cfg_num(rs, "factor", 1, &hp->rope_factor, file, err)))
        return rc;
    if (!(hp->rope_factor > 0))
        return dk_error_set(err, DK_EPARSE, file, 0, "config key rope_scaling.factor must be positive");
    if (!strcmp(name, "linear")) {
        hp->rope_scaling = DK_ROPE_LINEAR;
        return 0;
    }
    if (!strcmp(name, "yarn")) {
        hp->rope_scaling = DK_ROPE_YARN;
        double omp;
        if ((rc = cfg_num(rs, "original_max_position_embeddings", 0, &omp, file, err)) ||
            (rc = cfg_num(rs, "beta_fast", 32, &hp->yarn_beta_fast, file, err)) ||
            (rc = cfg_num(rs, "beta_slow", 1, &hp->yarn_beta_slow, file, err)) ||
            (rc = cfg_num(rs, "attention_factor", 0, &hp->yarn_attn_factor, file, err)))
            return rc;
        if (!(omp > 0)) {
            double mpe;
            if ((rc = cfg_num(c, "max_position_embeddings", 0, &mpe, file, err)))
                return rc;
            omp = mpe / hp->rope_factor;
        }
        if (!(omp > 0))
            return dk_error_set(err, DK_EPARSE, file, 0, "config key rope_scaling.original_max_position_embeddings is missing");
        hp->rope_orig_ctx = omp;
        return 0;
    }
    return dk_error_set(err, DK_EUNSUPPORTED, file, 0, "unsupported rope_scaling type '%s'", name);
}

static int parse_config(const char *text, size_t len, const char *file, dk_hparams *hp, dk_error *err)
{
    int rc = 0;
    cJSON *c = cJSON_ParseWithLength(text, len);
    if (!c || !cJSON_IsObject(c)) {
        rc = dk_error_set(err, DK_EPARSE, file, 0, c ? "not a JSON object" : "not valid JSON");
        goto out;
    }
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(c, "model_type");
    if (!cJSON_IsString(mt)) {
        rc = dk_error_set(err, DK_ENOTFOUND, file, 0, "config key model_type is missing");
        goto out;
    }
    const char *arch = mt->valuestring;
    if (!strcmp(arch, "qwen2")) hp->arch = DK_ARCH_QWEN2;
    else if (!strcmp(arch, "qwen3")) hp->arch = DK_ARCH_QWEN3;
    else if (!strcmp(arch, "llama")) hp->arch = DK_ARCH_LLAMA;
    else if (!strcmp(arch, "deepseek")) hp->arch = DK_ARCH_DEEPSEEK;
    else if (!strcmp(arch, "qwen3_moe")) hp->arch = DK_ARCH_QWEN3_MOE;
    else {
        rc = dk_error_set(err, DK_EUNSUPPORTED, file, 0, "unsupported architecture '%s'", arch);
        goto out;
    }
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(c, "hidden_act");
    if (act && (!cJSON_IsString(act) || strcmp(act->valuestring, "silu"))) {
        rc = dk_error_set(err, DK_EUNSUPPORTED, file, 0, "unsupported hidden_act (only silu)");
        goto out;
    }
    if ((rc = cfg_int(c, "vocab_size", 1, 0, &hp->n_vocab, file, err)) ||
        (rc = cfg_int(c, "hidden_size", 1, 0, &hp->n_embd, file, err)) ||
        (rc = cfg_int(c, "num_hidden_layers", 1, 0, &hp->n_layer, file, err)) ||
        (rc = cfg_int(c, "num_attention_heads", 1, 0, &hp->n_head, file, err)) ||
        (rc = cfg_int(c, "num_key_value_heads", 0, hp->n_head, &hp->n_head_kv, file, err)) ||
        (rc = cfg_int(c, "intermediate_size", 1, 0, &hp->n_ff, file, err)))
        goto out;
    if (hp->n_head <= 0 || hp->n_embd <= 0) {
        rc = dk_error_set(err, DK_EPARSE, file, 0, "config: hidden_size and num_attention_heads must be positive");
        goto out;
    }
    if ((rc = cfg_int(c, "head_dim", 0, hp->n_embd / hp->n_head, &hp->head_dim, file, err)))
        goto out;
    double eps, theta;
    if ((rc = cfg_num(c, "rms_norm_eps", 1e-6, &eps, file, err)) ||
        (rc = cfg_num(c, "rope_theta", 10000, &theta, file, err)) ||
        (rc = cfg_bool(c, "tie_word_embeddings", 0, &hp->tie_embeddings, file, err)) ||
        (rc = parse_rope_scaling(c, hp, file, err)))
        goto out;
    hp->rms_eps = (float)eps;
    hp->rope_theta = theta;
    hp->qkv_bias = hp->arch == DK_ARCH_QWEN2;
    if (hp->arch == DK_ARCH_LLAMA || hp->arch == DK_ARCH_DEEPSEEK)
        if ((rc = cfg_bool(c, "attention_bias", 0, &hp->qkv_bias, file, err)))
            goto out;
    hp->qk_norm = hp->arch == DK_ARCH_QWEN3 || hp->arch == DK_ARCH_QWEN3_MOE;
    int sw = 0;
    if ((rc = cfg_bool(c, "use_sliding_window", 0, &sw, file, err)))
        goto out;
    if (sw) {
        rc = dk_error_set(err, DK_EUNSUPPORTED, file, 0, "unsupported use_sliding_window true");
        goto out;
    }
    hp->routed_scale = 1;
    hp->moe_every = 1;
    if (hp->arch == DK_ARCH_DEEPSEEK) {
        if ((rc = cfg_int(c, "n_routed_experts", 0, 0, &hp->n_expert, file, err)) ||
            (rc = cfg_int(c, "num_experts_per_tok", 0, 0, &hp->n_expert_used, file, err)) ||
            (rc = cfg_int(c, "n_shared_experts", 0, 0, &hp->n_expert_shared, file, err)) ||
            (rc = cfg_int(c, "moe_intermediate_size", 0, 0, &hp->n_ff_exp, file, err)) ||
            (rc = cfg_int(c, "first_k_dense_replace", 0, 0, &hp->n_dense_lead, file, err)) ||
            (rc = cfg_int(c, "moe_layer_freq", 0, 1, &hp->moe_every, file, err)) ||
            (rc = cfg_bool(c, "norm_topk_prob", 0, &hp->norm_topk, file, err)))
            goto out;
        const cJSON *sf = cJSON_GetObjectItemCaseSensitive(c, "scoring_func");
        if (sf && (!cJSON_IsString(sf) || strcmp(sf->valuestring, "softmax"))) {
            rc = dk_error_set(err, DK_EUNSUPPORTED, file, 0, "unsupported scoring_func (only softmax)");
            goto out;
        }
    } else if (hp->arch == DK_ARCH_QWEN3_MOE) {
        if ((rc = cfg_int(c, "num_experts", 1, 0, &hp->n_expert, file, err)) ||
            (rc = cfg_int(c, "num_experts_per_tok", 1, 0, &hp->n_expert_used, file, err)) ||
            (rc = cfg_int(c, "moe_intermediate_size", 1, 0, &hp->n_ff_exp, file, err)) ||
            (rc = cfg_int(c, "decoder_sparse_step", 0, 1, &hp->moe_every, file, err)) ||
            (rc = cfg_bool(c, "norm_topk_prob", 0, &hp->norm_topk, file, err)))
            goto out;
        const cJSON *mo = cJSON_GetObjectItemCaseSensitive(c, "mlp_only_layers");
        if (cJSON_IsArray(mo) && cJSON_GetArraySize(mo) > 0 && hp->n_layer > 0) {
            hp->mlp_only = calloc((size_t)hp->n_layer, 1);
            if (!hp->mlp_only) { rc = dk_error_set(err, DK_ENOMEM, file, 0, "out of memory"); goto out; }
            for (const cJSON *x = mo->child; x; x = x->next) {
                uint64_t v;
                if (json_u64(x, &v) != 0 || v >= (uint64_t)hp->n_layer) {
                    rc = dk_error_set(err, DK_EPARSE, file, 0, "config key mlp_only_layers holds a bad layer index");
                    goto out;
                }
                hp->mlp_only[v] = 1;
            }
        }
    }
    if (hp->moe_every < 1) {
        rc = dk_error_set(err, DK_EPARSE, file, 0, "config: the MoE layer step must be at least 1");
        goto out;
    }
out:
    cJSON_Delete(c);
    return rc;
}

/* ---- Hugging Face names <-> the binder's GGUF-style names ---- */

static const struct { const char *hf, *gg; } fixed_names[] = {
    { "model.embed_tokens.weight", "token_embd.weight" },
    { "model.norm.weight", "output_norm.weight" },
    { "lm_head.weight", "output.weight" },
};
static const struct { const char *hf, *gg; } layer_names[] = {
    { "input_layernorm.weight", "attn_norm.weight" },
    { "post_attention_layernorm.weight", "ffn_norm.weight" },
    { "self_attn.q_proj.weight", "attn_q.weight" },
    { "self_attn.k_proj.weight", "attn_k.weight" },
    { "self_attn.v_proj.weight", "attn_v.weight" },
    { "self_attn.o_proj.weight", "attn_output.weight" },
    { "self_attn.q_proj.bias", "attn_q.bias" },
    { "self_attn.k_proj.bias", "attn_k.bias" },
    { "self_attn.v_proj.bias", "attn_v.bias" },
    { "self_attn.q_norm.weight", "attn_q_norm.weight" },
    { "self_attn.k_norm.weight", "attn_k_norm.weight" },
    { "mlp.gate_proj.weight", "ffn_gate.weight" },
    { "mlp.up_proj.weight", "ffn_up.weight" },
    { "mlp.down_proj.weight", "ffn_down.weight" },
    { "mlp.gate.weight", "ffn_gate_inp.weight" },
    { "mlp.shared_experts.gate_proj.weight", "ffn_gate_shexp.weight" },
    { "mlp.shared_experts.up_proj.weight", "ffn_up_shexp.weight" },
    { "mlp.shared_experts.down_proj.weight", "ffn_down_shexp.weight" },
};
#define N_OF(a) (sizeof a / sizeof a[0])

static int rename_hf(const char *hf, char *out, size_t cap)
{
    for (size_t i = 0; i < N_OF(fixed_names); i++)
        if (!strcmp(hf, fixed_names[i].hf)) {
            snprintf(out, cap, "%s", fixed_names[i].gg);
            return 0;
        }
    unsigned li, ei;
    int n = 0;
    if (sscanf(hf, "model.layers.%u.%n", &li, &n) != 1 || n == 0)
        return -1;
    const char *rest = hf + n;
    for (size_t i = 0; i < N_OF(layer_names); i++)
        if (!strcmp(rest, layer_names[i].hf)) {
            snprintf(out, cap, "blk.%u.%s", li, layer_names[i].gg);
            return 0;
        }
    int m = 0;
    char proj[8];
    if (sscanf(rest, "mlp.experts.%u.%4[a-z]_proj.weight%n", &ei, proj, &m) == 2 && rest[m] == 0 &&
        (!strcmp(proj, "gate") || !strcmp(proj, "up") || !strcmp(proj, "down"))) {
        snprintf(out, cap, "blk.%u.ffn_%s.%u.weight", li, proj, ei);
        return 0;
    }
    return -1;
}

int dk_hf_tensor_name(const char *gg, char *out, size_t cap)
{
    for (size_t i = 0; i < N_OF(fixed_names); i++)
        if (!strcmp(gg, fixed_names[i].gg)) {
            snprintf(out, cap, "%s", fixed_names[i].hf);
            return 0;
        }
    unsigned li, ei;
    int n = 0;
    if (sscanf(gg, "blk.%u.%n", &li, &n) != 1 || n == 0)
        return -1;
    const char *rest = gg + n;
    for (size_t i = 0; i < N_OF(layer_names); i++)
        if (!strcmp(rest, layer_names[i].gg)) {
            snprintf(out, cap, "model.layers.%u.%s", li, layer_names[i].hf);
            return 0;
        }
    int m = 0;
    char proj[8];
    if (sscanf(rest, "ffn_%4[a-z].%u.weight%n", proj, &ei, &m) == 2 && rest[m] == 0) {
        snprintf(out, cap, "model.layers.%u.mlp.experts.%u.%s_proj.weight", li, ei, proj);
        return 0;
    }
    return -1;
}

static int read_small_file(const char *path, char **text, size_t *len, dk_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return dk_error_set(err, errno == ENOENT ? DK_ENOTFOUND : DK_EIO, path, 0, "cannot open: %s", strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (n + 65536 > cap) {
            if (cap > (64u << 20)) { rc = dk_error_set(err, DK_ELIMIT, path, 0, "file larger than 64 MiB"); goto out; }
            cap = cap ? cap * 2 : 65536 * 2;
            char *nb = realloc(buf, cap + 1);
            if (!nb) { rc = dk_error_set(err, DK_ENOMEM, path, 0, "out of memory"); goto out; }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    if (ferror(f)) { rc = dk_error_set(err, DK_EIO, path, 0, "read error"); goto out; }
    buf[n] = 0;
    *text = buf;
    *len = n;
    buf = NULL;
out:
    free(buf);
    fclose(f);
    return rc;
}

static int add_file_tensors(dk_model *m, const char *path, dk_raw_tensor **ts, size_t *nts, size_t *cap,
                            dk_error *err)
{
    const uint8_t *data;
    size_t len;
    int rc = dk_model_map_file(m, path, &data, &len, err);
    if (rc)
        return rc;
    const char *kept = dk_model_keep_name(m, path);
    if (!kept)
        return dk_error_set(err, DK_ENOMEM, path, 0, "out of memory");
    dk_st_file sf;
    if ((rc = dk_st_parse(data, len, kept, &sf, err)))
        return rc;
    for (size_t i = 0; i < sf.n; i++) {
        char nm[256];
        if (rename_hf(sf.t[i].name, nm, sizeof nm) != 0)
            continue;   /* tensors these architectures do not use (e.g. rotary caches) */
        if (*nts == *cap) {
            size_t nc = *cap ? *cap * 2 : 256;
            dk_raw_tensor *nt = realloc(*ts, nc * sizeof *nt);
            if (!nt) { rc = dk_error_set(err, DK_ENOMEM, kept, 0, "out of memory"); break; }
            *ts = nt;
            *cap = nc;
        }
        dk_raw_tensor t = sf.t[i];
        t.name = strdup(nm);
        if (!t.name) { rc = dk_error_set(err, DK_ENOMEM, kept, 0, "out of memory"); break; }
        (*ts)[(*nts)++] = t;
    }
    dk_st_file_free(&sf);
    return rc;
}

int dk_load_hf_folder(dk_model *m, const char *dir, dk_raw_tensor **ts, size_t *nts, dk_error *err)
{
    char path[4096];
    char *text = NULL;
    size_t len, cap = 0;
    cJSON *idx = NULL;
    char **shards = NULL;
    size_t n_shards = 0;
    int rc;
    *ts = NULL;
    *nts = 0;
    snprintf(path, sizeof path, "%s/config.json", dir);
    if ((rc = read_small_file(path, &text, &len, err)))
        goto out;
    if ((rc = parse_config(text, len, path, &m->hp, err)))
        goto out;
    free(text);
    text = NULL;

    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    struct stat st;
    if (stat(path, &st) == 0) {
        rc = add_file_tensors(m, path, ts, nts, &cap, err);
        goto out;
    }
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    if ((rc = read_small_file(path, &text, &len, err))) {
        if (rc == DK_ENOTFOUND)
            rc = dk_error_set(err, DK_ENOTFOUND, dir, 0, "neither model.safetensors nor model.safetensors.index.json");
        goto out;
    }
    idx = cJSON_ParseWithLength(text, len);
    const cJSON *wm = idx ? cJSON_GetObjectItemCaseSensitive(idx, "weight_map") : NULL;
    if (!cJSON_IsObject(wm)) {
        rc = dk_error_set(err, DK_EPARSE, path, 0, "weight_map object is missing");
        goto out;
    }
    /* Each shard once, in order of first mention. */
    size_t wm_n = (size_t)cJSON_GetArraySize(wm);
    shards = calloc(wm_n ? wm_n : 1, sizeof *shards);
    if (!shards) { rc = dk_error_set(err, DK_ENOMEM, path, 0, "out of memory"); goto out; }
    for (const cJSON *e = wm->child; e; e = e->next) {
        if (!cJSON_IsString(e) || strchr(e->valuestring, '/') || !strcmp(e->valuestring, "..")) {
            rc = dk_error_set(err, DK_EPARSE, path, 0, "weight_map entry %s is not a shard file name",
                              e->string ? e->string : "");
            goto out;
        }
        size_t k;
        for (k = 0; k < n_shards; k++)
            if (!strcmp(shards[k], e->valuestring))
                break;
        if (k == n_shards)
            shards[n_shards++] = e->valuestring;
    }
    for (size_t k = 0; k < n_shards; k++) {
        char sp[4096];
        snprintf(sp, sizeof sp, "%s/%s", dir, shards[k]);
        if ((rc = add_file_tensors(m, sp, ts, nts, &cap, err)))
            goto out;
    }
    /* Every tensor the index names must be in its shard. */
    for (const cJSON *e = wm->child; e; e = e->next) {
        char nm[256];
        if (rename_hf(e->string, nm, sizeof nm) != 0)
            continue;
        size_t k;
        for (k = 0; k < *nts; k++)
            if (!strcmp((*ts)[k].name, nm))
                break;
        if (k == *nts) {
            rc = dk_error_set(err, DK_ENOTFOUND, path, 0, "tensor %s is listed in the index but missing from %s",
                              e->string, e->valuestring);
            goto out;
        }
    }
out:
    free(shards);
    cJSON_Delete(idx);
    free(text);
    return rc;
}
