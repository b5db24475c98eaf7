/* test_infer: hand-worked cases for the inference core's pieces: the MoE gate in both
 * norm_topk settings (llama.cpp fixtures only cover one each), f16/bf16 conversion,
 * the matrix product on every weight type, and the parsers' refusals. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dk_infer.h"
#include "dk_test.h"

static void test_moe_route(void)
{
    /* softmax(1, 2, 0, 3): e^3/S = 0.6439143, e^2/S = 0.2368828 (S = e^0+e^1+e^2+e^3). */
    const float logits[4] = { 1, 2, 0, 3 };
    int ids[2];
    float w[2];
    dk_moe_route(logits, 4, 2, 0, 1.0f, ids, w);
    DK_CHECK_INT(ids[0], 3);
    DK_CHECK_INT(ids[1], 1);
    DK_CHECK_NEAR(w[0], 0.6439143, 1e-6);
    DK_CHECK_NEAR(w[1], 0.2368828, 1e-6);
    /* Renormalized: e^3/(e^3+e^2) = sigmoid(1) = 0.7310586. */
    dk_moe_route(logits, 4, 2, 1, 1.0f, ids, w);
    DK_CHECK_NEAR(w[0], 0.7310586, 1e-6);
    DK_CHECK_NEAR(w[1], 0.2689414, 1e-6);
    /* Ties go to the lower id; the scale multiplies. */
    const float tie[3] = { 0, 0, 0 };
    dk_moe_route(tie, 3, 1, 0, 2.0f, ids, w);
    DK_CHECK_INT(ids[0], 0);
    DK_CHECK_NEAR(w[0], 2.0 / 3.0, 1e-6);
}

static void test_half(void)
{
    DK_CHECK(dk_f16_to_f32(0x3c00) == 1.0f);
    DK_CHECK(dk_f16_to_f32(0xc000) == -2.0f);
    DK_CHECK(dk_f16_to_f32(0x7bff) == 65504.0f);
    DK_CHECK(dk_f16_to_f32(0x0001) == 5.9604644775390625e-8f);
    DK_CHECK(dk_bf16_to_f32(0x3f80) == 1.0f);
    DK_CHECK(dk_bf16_to_f32(0xc040) == -3.0f);
}

/* One row of 40 weights (k not a multiple of the vector width) against x = 1..40. */
static void test_matmul_types(void)
{
    enum { K = 40, ROWS = 3 };
    float x[2 * K], want[2 * ROWS], y[2 * ROWS];
    float wf[ROWS * K];
    uint16_t wh[ROWS * K], wb[ROWS * K];
    for (int i = 0; i < 2 * K; i++)
        x[i] = (float)(i % K + 1) * (i < K ? 1 : -0.5f);
    for (int r = 0; r < ROWS; r++)
        for (int k = 0; k < K; k++) {
            /* small integers and halves: exact in f16 and bf16 */
            float v = (float)((k * 7 + r * 3) % 9 - 4) * 0.5f;
            wf[r * K + k] = v;
            uint32_t bits;
            memcpy(&bits, &v, 4);
            wb[r * K + k] = (uint16_t)(bits >> 16);
            /* f16 of v: sign, exponent, 10-bit mantissa (v = m * 2^e, |v| <= 2) */
            uint16_t h = 0;
            if (v != 0) {
                float a = v < 0 ? -v : v;
                int e = 0;
                while (a >= 2) { a /= 2; e++; }
                while (a < 1) { a *= 2; e--; }
                h = (uint16_t)((v < 0 ? 0x8000 : 0) | (e + 15) << 10 | (int)((a - 1) * 1024));
            }
            wh[r * K + k] = h;
        }
    for (int i = 0; i < 2; i++)
        for (int r = 0; r < ROWS; r++) {
            double s = 0;
            for (int k = 0; k < K; k++)
                s += (double)x[i * K + k] * wf[r * K + k];
            want[i * ROWS + r] = (float)s;
        }
    dk_mm_ws ws;
    DK_CHECK_INT(dk_mm_ws_init(&ws, 2, 64), 0);
    dk_tensor t = { DK_DT_F32, K, ROWS, (const uint8_t *)wf, K * 4 };
    dk_matmul(x, 2, &t, y, &ws);
    for (int i = 0; i < 2 * ROWS; i++)
        DK_CHECK_NEAR(y[i], want[i], 1e-4);
    t = (dk_tensor){ DK_DT_F16, K, ROWS, (const uint8_t *)wh, K * 2 };
    dk_matmul(x, 2, &t, y, &ws);
    for (int i = 0; i < 2 * ROWS; i++)
        DK_CHECK_NEAR(y[i], want[i], 1e-4);
    t = (dk_tensor){ DK_DT_BF16, K, ROWS, (const uint8_t *)wb, K * 2 };
    dk_matmul(x, 2, &t, y, &ws);
    for (int i = 0; i < 2 * ROWS; i++)
        DK_CHECK_NEAR(y[i], want[i], 1e-4);
    /* Q8_0: one block of 32, scale 0.5 (f16 0x3800), values 1..32: sum 0.5 * 528 = 264
     * against ones; the second block, scale 0.25 (0x3400), all -4: -32. */
    uint8_t q[2 * DK_Q8_0_BYTES];
    q[0] = 0x00; q[1] = 0x38;
    for (int i = 0; i < 32; i++) q[2 + i] = (uint8_t)(int8_t)(i + 1);
    q[34] = 0x00; q[35] = 0x34;
    for (int i = 0; i < 32; i++) q[36 + i] = (uint8_t)(int8_t)-4;
    float ones[64];
    for (int i = 0; i < 64; i++) ones[i] = 1;
    t = (dk_tensor){ DK_DT_Q8_0, 64, 1, q, 2 * DK_Q8_0_BYTES };
    dk_matmul(ones, 1, &t, y, &ws);
    DK_CHECK_NEAR(y[0], 264 - 32, 1e-5);
    dk_mm_ws_free(&ws);
}

/* A small deterministic generator: the tests need no more than varied values. */
static uint32_t rng_state = 12345;
static float rnd(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)((rng_state >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static uint16_t f32_to_f16_trunc(float v)
{
    /* |v| < 2 and not tiny here: exponent rebias and a truncated mantissa */
    uint32_t b;
    memcpy(&b, &v, 4);
    uint32_t e = (b >> 23) & 0xff;
    if (e < 103)
        return (uint16_t)(b >> 16 & 0x8000);
    return (uint16_t)((b >> 16 & 0x8000) | (e - 112) << 10 | (b >> 13 & 0x3ff));
}

/* Every output must be exactly the chain s = fmaf(x[k], w[k], s) over k in order, for
 * any n (the few-token and many-token paths), rows and k that fill no tile or chunk
 * evenly, and every weight type: the property batch invariance rests on. */
static void test_matmul_exact(void)
{
    enum { ROWS = 70, K = 320, NMAX = 130 };
    static float x[NMAX * K], wf[ROWS * K], y[NMAX * ROWS], wdeq[ROWS * K];
    static uint16_t wh[ROWS * K], wb[ROWS * K];
    static uint8_t wq[ROWS * (K / 32) * DK_Q8_0_BYTES];
    for (int i = 0; i < NMAX * K; i++)
        x[i] = rnd();
    for (int i = 0; i < ROWS * K; i++) {
        wf[i] = rnd();
        wh[i] = f32_to_f16_trunc(wf[i]);
        uint32_t b;
        memcpy(&b, &wf[i], 4);
        wb[i] = (uint16_t)(b >> 16);
    }
    for (int r = 0; r < ROWS; r++)
        for (int blk = 0; blk < K / 32; blk++) {
            uint8_t *p = wq + ((size_t)r * (K / 32) + blk) * DK_Q8_0_BYTES;
            p[0] = 0x00; p[1] = 0x20 + (uint8_t)(blk % 4);   /* scales 2^-7 .. about 2^-6 */
            for (int i = 0; i < 32; i++)
                p[2 + i] = (uint8_t)(int8_t)(int)(wf[r * K + blk * 32 + i] * 127);
        }
    const int ns[] = { 1, 2, 5, 6, 7, 64, 65, 130 };
    dk_mm_ws ws;
    DK_CHECK_INT(dk_mm_ws_init(&ws, NMAX, K), 0);
    for (int dt = 0; dt < 4; dt++) {
        dk_tensor t = { (dk_dtype)dt, K, ROWS, NULL, 0 };
        switch (dt) {
        case DK_DT_F32: t.data = (const uint8_t *)wf; t.row_bytes = K * 4; break;
        case DK_DT_F16: t.data = (const uint8_t *)wh; t.row_bytes = K * 2; break;
        case DK_DT_BF16: t.data = (const uint8_t *)wb; t.row_bytes = K * 2; break;
        default: t.data = wq; t.row_bytes = (K / 32) * DK_Q8_0_BYTES; break;
        }
        for (int r = 0; r < ROWS; r++)
            dk_tensor_row_f32(&t, r, wdeq + (size_t)r * K);
        for (size_t c = 0; c < sizeof ns / sizeof ns[0]; c++) {
            int n = ns[c], bad = 0;
            dk_matmul(x, n, &t, y, &ws);
            for (int i = 0; i < n; i++)
                for (int r = 0; r < ROWS; r++) {
                    float s = 0;
                    for (int k = 0; k < K; k++)
                        s = fmaf(x[i * K + k], wdeq[r * K + k], s);
                    bad += memcmp(&s, &y[i * ROWS + r], 4) != 0;
                }
            if (bad)
                fprintf(stderr, "matmul %s n=%d: %d outputs differ from the fma chain\n", dk_dtype_name(t.dt), n, bad);
            DK_CHECK_INT(bad, 0);
        }
    }
    dk_mm_ws_free(&ws);
    dk_mm_ws_free(NULL);
}

/* Attention, log-sum-exp and the SwiGLU gate against double-precision arithmetic. */
static void test_vector_ops(void)
{
    enum { N = 37, HD = 72, LD = 80, V = 10007 };
    static float q[HD], k[N * LD], v[N * LD], sc[N], out[HD], big[V], g[V], u[V];
    for (int i = 0; i < HD; i++)
        q[i] = rnd();
    for (int i = 0; i < N * LD; i++) {
        k[i] = rnd();
        v[i] = rnd();
    }
    for (int n = 1; n <= N; n += 12) {
        double p[N], mx = -1e300, sum = 0;
        for (int j = 0; j < n; j++) {
            double d = 0;
            for (int i = 0; i < HD; i++)
                d += (double)q[i] * k[j * LD + i];
            p[j] = d * 0.125;
            mx = p[j] > mx ? p[j] : mx;
        }
        for (int j = 0; j < n; j++)
            sum += p[j] = exp(p[j] - mx);
        dk_attend(q, k, v, LD, n, HD, 0.125f, sc, out);
        double md = 0;
        for (int i = 0; i < HD; i++) {
            double o = 0;
            for (int j = 0; j < n; j++)
                o += p[j] / sum * v[j * LD + i];
            md = fmax(md, fabs(o - out[i]));
        }
        DK_CHECK_NEAR(md, 0, 1e-6);
    }
    double s = 0;
    for (int i = 0; i < V; i++) {
        big[i] = rnd() * 30;
        s += exp((double)big[i] - 30);
    }
    DK_CHECK_NEAR(dk_logsumexp(big, V), 30 + log(s), 1e-6);
    double md = 0;
    for (int i = 0; i < V; i++) {
        g[i] = rnd() * 20;
        u[i] = rnd();
    }
    memcpy(big, g, sizeof g);
    dk_swiglu(g, u, V);
    for (int i = 0; i < V; i++)
        md = fmax(md, fabs(g[i] - (double)big[i] / (1 + exp(-(double)big[i])) * u[i]));
    DK_CHECK_NEAR(md, 0, 1e-5);
}

static void test_logsumexp(void)
{
    const float x[3] = { 1000, 1000, 1000 };   /* overflows without the max shift */
    DK_CHECK_NEAR(dk_logsumexp(x, 3), 1000 + 1.0986122886681098, 1e-9);
}

static uint8_t *st_file(const char *header, size_t data_len, size_t *len)
{
    size_t h = strlen(header);
    *len = 8 + h + data_len;
    uint8_t *b = calloc(1, *len);
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)((uint64_t)h >> (8 * i));
    memcpy(b + 8, header, h);
    return b;
}

static void test_safetensors_errors(void)
{
    dk_st_file f;
    dk_error e;
    size_t n;
    uint8_t *b = st_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", 16, &n);
    DK_CHECK_INT(dk_st_parse(b, n, "x", &f, &e), 0);
    DK_CHECK_INT(f.n, 1);
    DK_CHECK_INT(f.t[0].ne[0], 2);
    dk_st_file_free(&f);
    DK_CHECK_INT(dk_st_parse(b, n - 1, "x", &f, &e), DK_ERANGE);      /* truncated data */
    DK_CHECK(strstr(e.msg, "tensor a") != NULL);
    free(b);
    b = st_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, &n);
    DK_CHECK_INT(dk_st_parse(b, n, "x", &f, &e), DK_ERANGE);          /* overlap */
    DK_CHECK(strstr(e.msg, "overlaps") != NULL);
    free(b);
    b = st_file("{\"a\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, &n);
    DK_CHECK_INT(dk_st_parse(b, n, "x", &f, &e), DK_EUNSUPPORTED);    /* dtype */
    free(b);
    b = st_file("{\"a\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,4]}}", 4, &n);
    DK_CHECK_INT(dk_st_parse(b, n, "x", &f, &e), DK_ERANGE);          /* shape vs size */
    free(b);
    const uint8_t tiny[4] = { 1, 2, 3, 4 };
    DK_CHECK_INT(dk_st_parse(tiny, 4, "x", &f, &e), DK_EPARSE);
}

static void test_gguf_errors(void)
{
    dk_gguf g;
    dk_error e;
    uint8_t b[64] = { 'G', 'G', 'U', 'F', 3, 0, 0, 0 };
    DK_CHECK_INT(dk_gguf_parse(b, 24, "x", &g, &e), 0);                 /* empty but valid */
    dk_gguf_free(&g);
    DK_CHECK_INT(dk_gguf_parse(b, 20, "x", &g, &e), DK_EPARSE);         /* truncated header */
    b[16] = 200;                                                         /* 200 keys in 40 bytes */
    DK_CHECK_INT(dk_gguf_parse(b, 64, "x", &g, &e), DK_EPARSE);
    b[0] = 'X';
    DK_CHECK_INT(dk_gguf_parse(b, 64, "x", &g, &e), DK_EPARSE);
    b[0] = 'G';
    b[4] = 2;
    DK_CHECK_INT(dk_gguf_parse(b, 64, "x", &g, &e), DK_EUNSUPPORTED);
}

int main(void)
{
    DK_RUN(test_moe_route);
    DK_RUN(test_half);
    DK_RUN(test_matmul_types);
    DK_RUN(test_matmul_exact);
    DK_RUN(test_vector_ops);
    DK_RUN(test_logsumexp);
    DK_RUN(test_safetensors_errors);
    DK_RUN(test_gguf_errors);
    DK_TEST_MAIN_END("test_infer");
}
