/* dk_kernels: matrix products over f32 / f16 / bf16 / Q8_0 weights with f32
 * accumulation, the instruction set chosen once at run time (AVX-512, AVX2+FMA+F16C,
 * or portable C), so the build needs no -march flag. Weights are converted to f32 a
 * slice at a time, in registers or L1; nothing is dequantized ahead of time. Also the
 * vector helpers of the forward pass: attention rows, log-sum-exp, the SwiGLU gate.
 */
#include "dk_infer.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

float dk_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else {                      /* subnormal: normalise */
            int e = -1;
            do { man <<= 1; e++; } while (!(man & 0x400));
            bits = sign | (uint32_t)(127 - 15 - e) << 23 | (man & 0x3ff) << 13;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | man << 13;
    } else {
        bits = sign | (exp + 127 - 15) << 23 | man << 13;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

float dk_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline float dk_wscalar(dk_dtype dt, const uint8_t *row, int64_t k)
{
    uint16_t h;
    float f;
    switch (dt) {
    case DK_DT_F32: memcpy(&f, row + k * 4, 4); return f;
    case DK_DT_F16: memcpy(&h, row + k * 2, 2); return dk_f16_to_f32(h);
    case DK_DT_BF16: memcpy(&h, row + k * 2, 2); return dk_bf16_to_f32(h);
    case DK_DT_Q8_0: {
        const uint8_t *blk = row + (size_t)(k / DK_Q8_0_BLOCK) * DK_Q8_0_BYTES;
        memcpy(&h, blk, 2);
        return dk_f16_to_f32(h) * (float)(int8_t)blk[2 + k % DK_Q8_0_BLOCK];
    }
    }
    return 0;
}

void dk_convert_f32(dk_dtype t, const uint8_t *src, int64_t n, float *dst)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = dk_wscalar(t, src, i);
}

void dk_tensor_row_f32(const dk_tensor *W, int64_t r, float *out)
{
    dk_convert_f32(W->dt, W->data + (size_t)r * W->row_bytes, W->cols, out);
}

/* One instruction set: its tile width in lanes, its tile kernel and its conversion. */
typedef struct dk_isa {
    const char *name;
    int tg;
    void (*kern)(const float *xp, const float *const *b, int kc, float *c, int first, int mr);
    void (*conv)(dk_dtype dt, const uint8_t *row, int64_t k0, int n, float *dst);
    void (*gemv)(const dk_tensor *W, int64_t r0, int nr, const float *X, int n, float *c, float *buf);
    double (*logsumexp)(const float *x, int64_t n);
    void (*swiglu)(float *g, const float *u, size_t n);
    void (*attend)(const float *q, const float *k, const float *v, size_t ld, int n, int hd, float scale, float *sc,
                   float *out);
} dk_isa;

/* Portable path: the same chains of fused multiply-adds as the vector paths. */
#define TG_SCALAR 8
static void kern_scalar(const float *xp, const float *const *b, int kc, float *c, int first, int mr)
{
    for (int r = 0; r < mr; r++)
        for (int l = 0; l < TG_SCALAR; l++) {
            float s = first ? 0.0f : c[r * TG_SCALAR + l];
            for (int k = 0; k < kc; k++)
                s = fmaf(b[r][k], xp[k * TG_SCALAR + l], s);
            c[r * TG_SCALAR + l] = s;
        }
}

static void conv_scalar(dk_dtype dt, const uint8_t *row, int64_t k0, int n, float *dst)
{
    for (int k = 0; k < n; k++)
        dst[k] = dk_wscalar(dt, row, k0 + k);
}

static void gemv_scalar(const dk_tensor *W, int64_t r0, int nr, const float *X, int n, float *c, float *buf)
{
    (void)buf;
    for (int l = 0; l < nr; l++) {
        const uint8_t *row = W->data + (size_t)(r0 + l) * W->row_bytes;
        for (int t = 0; t < n; t++) {
            float s = 0;
            for (int64_t k = 0; k < W->cols; k++)
                s = fmaf(X[(size_t)t * W->cols + k], dk_wscalar(W->dt, row, k), s);
            c[t * TG_SCALAR + l] = s;
        }
    }
}

static double logsumexp_scalar(const float *x, int64_t n)
{
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        if (x[i] > mx)
            mx = x[i];
    if (!isfinite(mx))
        return mx;
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += exp((double)(x[i] - mx));
    return mx + log(s);
}

static void swiglu_scalar(float *g, const float *u, size_t n)
{
    for (size_t i = 0; i < n; i++)
        g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static void attend_scalar(const float *q, const float *k, const float *v, size_t ld, int n, int hd, float scale,
                          float *sc, float *out)
{
    float mx = -INFINITY;
    for (int j = 0; j < n; j++) {
        float d = 0;
        for (int i = 0; i < hd; i++)
            d += q[i] * k[(size_t)j * ld + i];
        sc[j] = d * scale;
        mx = sc[j] > mx ? sc[j] : mx;
    }
    double sum = 0;
    for (int j = 0; j < n; j++) {
        sc[j] = expf(sc[j] - mx);
        sum += sc[j];
    }
    float inv = (float)(1.0 / sum);
    for (int i = 0; i < hd; i++) {
        float a = 0;
        for (int j = 0; j < n; j++)
            a += sc[j] * v[(size_t)j * ld + i];
        out[i] = a * inv;
    }
}

static const dk_isa isa_scalar = { "scalar", TG_SCALAR, kern_scalar, conv_scalar, gemv_scalar, logsumexp_scalar,
                                   swiglu_scalar, attend_scalar };

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

/* ---- AVX-512: 6 rows x 64 lanes, 24 accumulators of 32 registers ---- */
__attribute__((target("avx512f"), always_inline)) static inline void transpose16(__m512 r[16])
{
    __m512 t[16], u[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
#pragma GCC unroll 16
    for (int i = 0; i < 16; i += 4) {
        u[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xee);
        u[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xee);
    }
#pragma GCC unroll 16
    for (int h = 0; h < 16; h += 8)
#pragma GCC unroll 16
        for (int i = 0; i < 4; i++) {
            t[h + i] = _mm512_shuffle_f32x4(u[h + i], u[h + i + 4], 0x88);
            t[h + i + 4] = _mm512_shuffle_f32x4(u[h + i], u[h + i + 4], 0xdd);
        }
#pragma GCC unroll 16
    for (int i = 0; i < 8; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
    }
}
#define SFX avx512
#define ISA_NAME "avx512"
#define ATTR __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))
#define V __m512
#define VW 16
#define VZERO _mm512_setzero_ps()
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, v) _mm512_storeu_ps(p, v)
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VMUL(a, b) _mm512_mul_ps(a, b)
#define VSET1(x) _mm512_set1_ps(x)
#define VBCAST(p) _mm512_set1_ps(*(p))
#define LW_F16(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(p)))
#define LW_BF16(p) _mm512_castsi512_ps(_mm512_slli_epi32( \
        _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)(p))), 16))
#define LW_Q8(p) _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(p))))
#define VADD(a, b) _mm512_add_ps(a, b)
#define VSUB(a, b) _mm512_sub_ps(a, b)
#define VMAX(a, b) _mm512_max_ps(a, b)
#define VMIN(a, b) _mm512_min_ps(a, b)
#define VDIV(a, b) _mm512_div_ps(a, b)
#define VROUND(v) _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define VPOW2(v) _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(v), \
        _mm512_set1_epi32(127)), 23))
#define VLOADU_TAIL(p, n) _mm512_maskz_loadu_ps((__mmask16)((1u << (n)) - 1), p)
#define VSTORE_TAIL(p, v, n) _mm512_mask_storeu_ps(p, (__mmask16)((1u << (n)) - 1), v)
#define VTRANSPOSE(r) transpose16(r)
#define NT 4
#include "dk_kern_simd.h"
#undef SFX
#undef ISA_NAME
#undef ATTR
#undef V
#undef VW
#undef VZERO
#undef VLOAD
#undef VSTORE
#undef VFMA
#undef VMUL
#undef VSET1
#undef VBCAST
#undef LW_F16
#undef LW_BF16
#undef LW_Q8
#undef NT
#undef VADD
#undef VSUB
#undef VMAX
#undef VMIN
#undef VDIV
#undef VROUND
#undef VPOW2
#undef VLOADU_TAIL
#undef VSTORE_TAIL
#undef VTRANSPOSE

/* ---- AVX2 + FMA + F16C: 6 rows x 16 lanes, 12 accumulators of 16 registers ---- */
__attribute__((target("avx2"), always_inline)) static inline void transpose8(__m256 r[8])
{
    __m256 t[8], u[8];
#pragma GCC unroll 16
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
#pragma GCC unroll 16
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
    }
#pragma GCC unroll 16
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
        r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
    }
}

__attribute__((target("avx2"))) static inline __m256i tail_mask256(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
#define SFX avx2
#define ISA_NAME "avx2"
#define ATTR __attribute__((target("avx2,fma,f16c")))
#define V __m256
#define VW 8
#define VZERO _mm256_setzero_ps()
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, v) _mm256_storeu_ps(p, v)
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VMUL(a, b) _mm256_mul_ps(a, b)
#define VSET1(x) _mm256_set1_ps(x)
#define VBCAST(p) _mm256_broadcast_ss(p)
#define LW_F16(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(p)))
#define LW_BF16(p) _mm256_castsi256_ps(_mm256_slli_epi32( \
        _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)(p))), 16))
#define LW_Q8(p) _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(p))))
#define VADD(a, b) _mm256_add_ps(a, b)
#define VSUB(a, b) _mm256_sub_ps(a, b)
#define VMAX(a, b) _mm256_max_ps(a, b)
#define VMIN(a, b) _mm256_min_ps(a, b)
#define VDIV(a, b) _mm256_div_ps(a, b)
#define VROUND(v) _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define VPOW2(v) _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(v), \
        _mm256_set1_epi32(127)), 23))
#define VLOADU_TAIL(p, n) _mm256_maskload_ps(p, tail_mask256(n))
#define VSTORE_TAIL(p, v, n) _mm256_maskstore_ps(p, tail_mask256(n), v)
#define VTRANSPOSE(r) transpose8(r)
#define NT 2
#include "dk_kern_simd.h"
#define DK_HAVE_X86 1
#endif

static const dk_isa *chosen;

static void choose(void)
{
    if (chosen)
        return;
    const char *force = getenv("DK_SIMD");
    const dk_isa *f = &isa_scalar;
#ifdef DK_HAVE_X86
    __builtin_cpu_init();
    int force_scalar = force && !strcmp(force, "scalar");
    int force_avx2 = force && !strcmp(force, "avx2");
    if (!force_scalar && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        f = &isa_avx2;
    if (!force_scalar && !force_avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        f = &isa_avx512;
#else
    (void)force;
#endif
    chosen = f;
}

const char *dk_kernels_isa(void)
{
    choose();
    return chosen->name;
}

/* The product is tiled BLIS-style with k in chunks of KC. Many tokens (n >= DK_MR):
 * the tokens are packed transposed into panels of tg lanes (xp[group][k][lane]), and
 * a thread takes RB rows of W at a time, converts a KC-chunk of them to f32 once and
 * sweeps it over every panel. Few tokens (decoding): the roles swap, the lanes are tg
 * rows of W (converted and transposed in registers by the gemv kernel) and the tokens
 * are broadcast, so both compute the same chains of multiply-adds. */
#define KC 256
#define RB (4 * DK_MR)
#define ALIGN16(x) (((x) + 15) & ~(size_t)15)

static size_t per_thread_floats(int tg, int n_max, int64_t k_max)
{
    size_t ng = ((size_t)n_max + (size_t)tg - 1) / (size_t)tg;
    size_t big = ALIGN16((size_t)RB * KC) + ALIGN16(ng * RB * (size_t)tg);
    /* a tile of results, and up to 2 x 16 converted rows of stride k_max + 16 */
    size_t small = ALIGN16((size_t)DK_MR * tg) + 32 * ((size_t)k_max + 16);
    return big > small ? big : small;
}

int dk_threads_max(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

int dk_thread_num(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

int dk_mm_ws_init(dk_mm_ws *ws, int n_max, int64_t k_max)
{
    choose();
    memset(ws, 0, sizeof *ws);
    int tg = chosen->tg;
    size_t ng = ((size_t)n_max + (size_t)tg - 1) / (size_t)tg;
    ws->n_max = n_max;
    ws->k_max = k_max;
    ws->n_thr = dk_threads_max();
    ws->xp_floats = ALIGN16(ng * (size_t)tg * (size_t)k_max);
    ws->thr_floats = per_thread_floats(tg, n_max, k_max);
    size_t bytes = (ws->xp_floats + ws->thr_floats * (size_t)ws->n_thr) * 4;
    ws->p = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    return ws->p ? 0 : DK_ENOMEM;
}

void dk_mm_ws_free(dk_mm_ws *ws)
{
    if (!ws)
        return;
    free(ws->p);
    memset(ws, 0, sizeof *ws);
}

/* Below this many multiply-adds a product runs on one thread. */
#define PAR_MIN 200000.0

static void mm_many(const float *X, int n, const dk_tensor *W, float *Y, const dk_mm_ws *ws)
{
    const dk_isa *isa = chosen;
    int tg = isa->tg, ng = (n + tg - 1) / tg;
    int64_t K = W->cols, N = W->rows, nb = (N + RB - 1) / RB;
    float *xp = ws->p;
    for (int g = 0; g < ng; g++)
        for (int l = 0; l < tg; l++) {
            int t = g * tg + l;
            float *dst = xp + (size_t)g * K * tg + l;
            if (t < n) {
                const float *x = X + (size_t)t * K;
                for (int64_t k = 0; k < K; k++)
                    dst[k * tg] = x[k];
            } else {
                for (int64_t k = 0; k < K; k++)
                    dst[k * tg] = 0;
            }
        }
#pragma omp parallel for schedule(static) if (nb > 1 && (double)n * N * K >= PAR_MIN)
    for (int64_t blk = 0; blk < nb; blk++) {
        float *wbuf = ws->p + ws->xp_floats + (size_t)dk_thread_num() * ws->thr_floats;
        float *cbuf = wbuf + ALIGN16((size_t)RB * KC);
        int64_t r0 = blk * RB;
        int nr = N - r0 < RB ? (int)(N - r0) : RB;
        const float *rows[RB];
        for (int64_t k0 = 0; k0 < K; k0 += KC) {
            int kc = K - k0 < KC ? (int)(K - k0) : KC;
            for (int i = 0; i < nr; i++) {
                const uint8_t *src = W->data + (size_t)(r0 + i) * W->row_bytes;
                if (W->dt == DK_DT_F32) {
                    rows[i] = (const float *)src + k0;
                } else {
                    isa->conv(W->dt, src, k0, kc, wbuf + (size_t)i * KC);
                    rows[i] = wbuf + (size_t)i * KC;
                }
            }
            for (int g = 0; g < ng; g++)
                for (int i = 0; i < nr; i += DK_MR)
                    isa->kern(xp + ((size_t)g * K + k0) * tg, rows + i, kc, cbuf + ((size_t)g * RB + i) * tg, k0 == 0,
                              nr - i < DK_MR ? nr - i : DK_MR);
        }
        for (int t = 0; t < n; t++) {
            const float *c = cbuf + (size_t)(t / tg) * RB * tg + t % tg;
            float *y = Y + (size_t)t * N + r0;
            for (int i = 0; i < nr; i++)
                y[i] = c[(size_t)i * tg];
        }
    }
}

static void mm_few(const float *X, int n, const dk_tensor *W, float *Y, const dk_mm_ws *ws)
{
    const dk_isa *isa = chosen;
    int tg = isa->tg;
    int64_t N = W->rows, ng = (N + tg - 1) / tg;
#pragma omp parallel for schedule(static) if (ng > 1 && (double)n * N * W->cols >= PAR_MIN)
    for (int64_t g = 0; g < ng; g++) {
        float *c = ws->p + ws->xp_floats + (size_t)dk_thread_num() * ws->thr_floats;
        int64_t r0 = g * tg;
        int nr = N - r0 < tg ? (int)(N - r0) : tg;
        isa->gemv(W, r0, nr, X, n, c, c + ALIGN16((size_t)DK_MR * tg));
        for (int t = 0; t < n; t++)
            memcpy(Y + (size_t)t * N + r0, c + (size_t)t * tg, (size_t)nr * 4);
    }
}

void dk_matmul(const float *X, int n, const dk_tensor *W, float *Y, const dk_mm_ws *ws)
{
    choose();
    assert(ws->p && n <= ws->n_max && W->cols <= ws->k_max && dk_threads_max() <= ws->n_thr);
    if (n <= 0)
        return;
    if (n < DK_MR)
        mm_few(X, n, W, Y, ws);
    else
        mm_many(X, n, W, Y, ws);
}

double dk_logsumexp(const float *x, int64_t n)
{
    choose();
    return chosen->logsumexp(x, n);
}

void dk_swiglu(float *g, const float *u, size_t n)
{
    choose();
    chosen->swiglu(g, u, n);
}

void dk_attend(const float *q, const float *k, const float *v, size_t ld, int n, int hd, float scale, float *sc,
               float *out)
{
    choose();
    chosen->attend(q, k, v, ld, n, hd, scale, sc, out);
}

void dk_moe_route(const float *logits, int n, int k, int norm_topk, float scale, int *ids, float *w)
{
    float mx = -INFINITY;
    for (int e = 0; e < n; e++)
        if (logits[e] > mx)
            mx = logits[e];
    double sum = 0;
    for (int e = 0; e < n; e++)
        sum += exp((double)(logits[e] - mx));
    /* Top k by selection, ties to the lower expert id. */
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int e = 0; e < n; e++) {
            int taken = 0;
            for (int q = 0; q < j; q++)
                taken |= ids[q] == e;
            if (!taken && (best < 0 || logits[e] > logits[best]))
                best = e;
        }
        ids[j] = best;
        w[j] = (float)(exp((double)(logits[best] - mx)) / sum);
    }
    if (norm_topk) {
        double t = 0;
        for (int j = 0; j < k; j++)
            t += w[j];
        for (int j = 0; j < k; j++)
            w[j] = (float)(w[j] / t);
    }
    for (int j = 0; j < k; j++)
        w[j] *= scale;
}
