/* test_moe_model: the MoE gate's norm_topk_prob followed faithfully, through the whole
 * model. The llama.cpp comparison can only cover one setting per architecture (llama.cpp
 * never renormalizes deepseek's top-k weights and always renormalizes qwen3moe's), so
 * here a tiny deepseek and a tiny qwen3_moe Hugging Face folder are written in both
 * settings, loaded with dk_model_load, scored, and compared with log-probs worked out
 * below in a few lines of double arithmetic.
 *
 * The model is chosen so that the arithmetic stays small:
 *   - n_embd 4, one layer, one head of 4, vocabulary 4, 4 experts, top 2;
 *   - every norm weight is 1; o_proj (and q, k, v) are zero, so attention adds nothing
 *     and each position depends only on its own token: h = x + moe(rmsnorm(x));
 *   - the router is 2 * identity: the router logits are 2 * rmsnorm(x);
 *   - expert e has gate = up = identity and down = c[e] * identity, so it outputs
 *     c[e] * silu(xn) * xn (elementwise); deepseek's shared expert likewise with
 *     down = s * identity and is added with weight 1;
 *   - the embeddings are tied: logits = E * rmsnorm(h).
 * So moe(xn) = (sum over the top 2 experts of w_e * c[e] + shared) * silu(xn) * xn, where
 * w_e is the softmax over all 4 router logits, divided by the top-2 sum when
 * norm_topk_prob is true. Every weight is exact in f32.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dk_model.h"
#include "dk_test.h"

enum { D = 4, NV = 4, NE = 4, TOPK = 2 };

/* Token embeddings (row = token): each routes to a different pair of experts. */
static const float E[NV][D] = {
    { 1.0f, 0.5f, -0.5f, -1.0f },    /* router picks experts 0, 1 */
    { -0.5f, 1.5f, 1.0f, 0.0f },     /* 1, 2 */
    { 0.25f, -1.0f, 0.5f, 1.5f },    /* 3, 2 */
    { 2.0f, -0.5f, 0.0f, 1.0f },     /* 0, 3 */
};
static const float C[NE] = { 1.0f, -1.5f, 0.5f, 2.0f };   /* expert e's down scale */
static const float SHARED = 0.75f;                        /* deepseek's shared expert */
static const double EPS = 1e-6;                           /* rms_norm_eps */

/* ---- the expected log-probs, by hand ---- */

static void rms_norm(const double *x, double *out)
{
    double ss = 0;
    for (int i = 0; i < D; i++)
        ss += x[i] * x[i];
    double r = sqrt(ss / D + EPS);
    for (int i = 0; i < D; i++)
        out[i] = x[i] / r;
}

/* log p(next | the previous token is tok) */
static double expected_logprob(int tok, int next, int norm_topk, int shared)
{
    double x[D], xn[D], h[D], hn[D], logit[NV];
    for (int i = 0; i < D; i++)
        x[i] = E[tok][i];
    rms_norm(x, xn);
    /* softmax of the router logits 2 * xn */
    double p[NE], sum = 0;
    for (int e = 0; e < NE; e++)
        sum += (p[e] = exp(2 * xn[e]));
    for (int e = 0; e < NE; e++)
        p[e] /= sum;
    /* the two largest (the embeddings above have no ties) */
    int a = 0;
    for (int e = 1; e < NE; e++)
        if (p[e] > p[a])
            a = e;
    int b = a == 0 ? 1 : 0;
    for (int e = 0; e < NE; e++)
        if (e != a && p[e] > p[b])
            b = e;
    double wa = p[a], wb = p[b];
    if (norm_topk) {
        wa /= p[a] + p[b];
        wb /= p[a] + p[b];
    }
    double scale = wa * C[a] + wb * C[b] + (shared ? SHARED : 0);
    for (int i = 0; i < D; i++) {
        double silu = xn[i] / (1 + exp(-xn[i]));
        h[i] = x[i] + scale * silu * xn[i];
    }
    rms_norm(h, hn);
    double mx = -INFINITY, z = 0;
    for (int v = 0; v < NV; v++) {
        logit[v] = 0;
        for (int i = 0; i < D; i++)
            logit[v] += E[v][i] * hn[i];
        mx = fmax(mx, logit[v]);
    }
    for (int v = 0; v < NV; v++)
        z += exp(logit[v] - mx);
    return logit[next] - mx - log(z);
}

/* ---- writing the model folder ---- */

typedef struct tensor {
    char         name[96];
    int          rows, cols;  /* cols 0: a vector of rows values */
    const float *data;
} tensor;

static const float IDENT[D * D] = { 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1 };
static const float ZERO[D * D] = { 0 };
static const float ONES[D] = { 1, 1, 1, 1 };
static const float ROUTER[NE * D] = { 2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2 };
static float down[NE + 1][D * D];   /* c[e] * identity; [NE] is the shared expert's */

static int add(tensor *t, int n, const char *name, int rows, int cols, const float *data)
{
    snprintf(t[n].name, sizeof t[n].name, "%s", name);
    t[n].rows = rows;
    t[n].cols = cols;
    t[n].data = data;
    return n + 1;
}

static int write_safetensors(const char *path, const tensor *t, int n)
{
    char hdr[8192];
    size_t k = 0, off = 0;
    k += (size_t)snprintf(hdr + k, sizeof hdr - k, "{");
    for (int i = 0; i < n; i++) {
        size_t bytes = (size_t)t[i].rows * (size_t)(t[i].cols ? t[i].cols : 1) * 4;
        char shape[32];
        if (t[i].cols)
            snprintf(shape, sizeof shape, "[%d,%d]", t[i].rows, t[i].cols);
        else
            snprintf(shape, sizeof shape, "[%d]", t[i].rows);
        k += (size_t)snprintf(hdr + k, sizeof hdr - k, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":%s,\"data_offsets\":[%zu,%zu]}",
                              i ? "," : "", t[i].name, shape, off, off + bytes);
        off += bytes;
    }
    k += (size_t)snprintf(hdr + k, sizeof hdr - k, "}");
    if (k >= sizeof hdr)
        return -1;
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    uint8_t len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (uint8_t)((uint64_t)k >> (8 * i));
    fwrite(len, 1, 8, f);
    fwrite(hdr, 1, k, f);
    for (int i = 0; i < n; i++)
        fwrite(t[i].data, 4, (size_t)t[i].rows * (size_t)(t[i].cols ? t[i].cols : 1), f);
    return fclose(f) == 0 ? 0 : -1;
}

/* Writes dir/config.json and dir/model.safetensors for a one-layer MoE model. */
static int write_model(const char *dir, int deepseek, int norm_topk)
{
    char path[512], nm[96];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "{\"model_type\": \"%s\", \"vocab_size\": %d, \"hidden_size\": %d, \"num_hidden_layers\": 1,\n"
               " \"num_attention_heads\": 1, \"num_key_value_heads\": 1, \"head_dim\": %d,\n"
               " \"intermediate_size\": 8, \"hidden_act\": \"silu\", \"rms_norm_eps\": 1e-6, \"rope_theta\": 10000,\n"
               " \"tie_word_embeddings\": true, \"num_experts_per_tok\": %d, \"moe_intermediate_size\": %d,\n"
               " \"norm_topk_prob\": %s, ",
            deepseek ? "deepseek" : "qwen3_moe", NV, D, D, TOPK, D, norm_topk ? "true" : "false");
    if (deepseek)
        fprintf(f, "\"n_routed_experts\": %d, \"n_shared_experts\": 1, \"first_k_dense_replace\": 0,\n"
                   " \"moe_layer_freq\": 1, \"scoring_func\": \"softmax\"}\n", NE);
    else
        fprintf(f, "\"num_experts\": %d, \"decoder_sparse_step\": 1, \"mlp_only_layers\": []}\n", NE);
    if (fclose(f) != 0)
        return -1;

    tensor t[40];
    int n = 0;
    n = add(t, n, "model.embed_tokens.weight", NV, D, &E[0][0]);
    n = add(t, n, "model.norm.weight", D, 0, ONES);
    n = add(t, n, "model.layers.0.input_layernorm.weight", D, 0, ONES);
    n = add(t, n, "model.layers.0.post_attention_layernorm.weight", D, 0, ONES);
    n = add(t, n, "model.layers.0.self_attn.q_proj.weight", D, D, ZERO);
    n = add(t, n, "model.layers.0.self_attn.k_proj.weight", D, D, ZERO);
    n = add(t, n, "model.layers.0.self_attn.v_proj.weight", D, D, ZERO);
    n = add(t, n, "model.layers.0.self_attn.o_proj.weight", D, D, ZERO);
    if (!deepseek) {
        n = add(t, n, "model.layers.0.self_attn.q_norm.weight", D, 0, ONES);
        n = add(t, n, "model.layers.0.self_attn.k_norm.weight", D, 0, ONES);
    }
    n = add(t, n, "model.layers.0.mlp.gate.weight", NE, D, ROUTER);
    for (int e = 0; e < NE; e++) {
        snprintf(nm, sizeof nm, "model.layers.0.mlp.experts.%d.gate_proj.weight", e);
        n = add(t, n, nm, D, D, IDENT);
        snprintf(nm, sizeof nm, "model.layers.0.mlp.experts.%d.up_proj.weight", e);
        n = add(t, n, nm, D, D, IDENT);
        snprintf(nm, sizeof nm, "model.layers.0.mlp.experts.%d.down_proj.weight", e);
        n = add(t, n, nm, D, D, down[e]);
    }
    if (deepseek) {
        n = add(t, n, "model.layers.0.mlp.shared_experts.gate_proj.weight", D, D, IDENT);
        n = add(t, n, "model.layers.0.mlp.shared_experts.up_proj.weight", D, D, IDENT);
        n = add(t, n, "model.layers.0.mlp.shared_experts.down_proj.weight", D, D, down[NE]);
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    return write_safetensors(path, t, n);
}

/* Scores the sequence 0 1 2 3 0 (every token once as the context) into lp[4]. */
static int score(const char *dir, float lp[NV])
{
    dk_model *m = NULL;
    dk_error err = { 0 };
    dk_model_opts mo = { DK_BACKEND_CPU, 1 };
    int rc = dk_model_load(&m, dir, &mo, &err);
    if (rc) {
        fprintf(stderr, "load %s: %s\n", dir, err.msg);
        return rc;
    }
    const int32_t tok[NV + 1] = { 0, 1, 2, 3, 0 };
    const size_t start[2] = { 0, NV + 1 };
    float out[NV + 1];
    dk_score_batch b = { tok, start, 1 };
    dk_score_out so = { out, NULL, NULL, NULL };
    rc = dk_model_score(m, &b, NULL, &so, &err);
    if (rc)
        fprintf(stderr, "score %s: %s\n", dir, err.msg);
    for (int j = 0; j < NV; j++)
        lp[j] = out[j + 1];
    dk_model_free(m);
    return rc;
}

static void check_arch(int deepseek)
{
    char dir[] = "/tmp/dk_moe_model_XXXXXX";
    DK_CHECK(mkdtemp(dir) != NULL);
    float lp[2][NV];
    for (int norm = 0; norm < 2; norm++) {
        DK_CHECK_INT(write_model(dir, deepseek, norm), 0);
        DK_CHECK_INT(score(dir, lp[norm]), 0);
        for (int j = 0; j < NV; j++)
            DK_CHECK_NEAR(lp[norm][j], expected_logprob(j, (j + 1) % NV, norm, deepseek), 1e-5);
    }
    /* The setting matters here: renormalizing scales each token's expert mix. */
    double most = 0;
    for (int j = 0; j < NV; j++)
        most = fmax(most, fabs((double)lp[1][j] - lp[0][j]));
    DK_CHECK(most > 1e-2);
    char path[512];
    snprintf(path, sizeof path, "%s/config.json", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    unlink(path);
    rmdir(dir);
}

static void test_deepseek(void) { check_arch(1); }
static void test_qwen3_moe(void) { check_arch(0); }

/* The routing the comments above promise, so a typo in E cannot hide a case. */
static void test_routing_is_as_described(void)
{
    static const int want[NV][2] = { { 0, 1 }, { 1, 2 }, { 3, 2 }, { 0, 3 } };
    for (int t = 0; t < NV; t++) {
        double x[D], xn[D];
        for (int i = 0; i < D; i++)
            x[i] = E[t][i];
        rms_norm(x, xn);
        int a = want[t][0], b = want[t][1];
        for (int e = 0; e < NE; e++) {
            DK_CHECK(e == a || xn[a] > xn[e]);
            DK_CHECK(e == a || e == b || xn[b] > xn[e]);
        }
    }
}

int main(void)
{
    for (int e = 0; e <= NE; e++)
        for (int i = 0; i < D; i++)
            down[e][i * D + i] = e < NE ? C[e] : SHARED;
    DK_RUN(test_routing_is_as_described);
    DK_RUN(test_deepseek);
    DK_RUN(test_qwen3_moe);
    DK_TEST_MAIN_END("test_moe_model");
}
