/* dk_kernels: matrix products over f32 / f16 / bf16 / Q8_0 weights with f32
 * accumulation, the instruction set chosen once at run time (AVX-512, AVX2+FMA+F16C,
 * or portable C), so the build needs no -march flag. Weights are converted to f32 in
 * registers; nothing is dequantized ahead of time.
 */
#include "dk_infer.h"

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

/* Portable path: the same summation order as a 1-wide vector. */
static void mm_scalar(const float *X, size_t ldx, int n, const dk_tensor *W, int64_t r0, int64_t r1, float *Y,
                      size_t ldy)
{
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = W->data + (size_t)r * W->row_bytes;
        for (int i = 0; i < n; i++) {
            const float *x = X + (size_t)i * ldx;
            float s = 0;
            for (int64_t k = 0; k < W->cols; k++)
                s += x[k] * dk_wscalar(W->dt, row, k);
            Y[(size_t)i * ldy + r] = s;
        }
    }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

/* ---- AVX-512 ---- */
#define SFX avx512
#define ATTR __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))
#define V __m512
#define VW 16
#define VZERO _mm512_setzero_ps()
#define VLOAD(p) _mm512_loadu_ps(p)
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VMUL(a, b) _mm512_mul_ps(a, b)
#define VSET1(x) _mm512_set1_ps(x)
#define VHSUM(v) _mm512_reduce_add_ps(v)
#define LW_F16(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(p)))
#define LW_BF16(p) _mm512_castsi512_ps(_mm512_slli_epi32( \
        _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)(p))), 16))
#define LW_Q8(p) _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(p))))
#define NT_MAX 6
#define NR 4
#include "dk_kern_simd.h"
#undef SFX
#undef ATTR
#undef V
#undef VW
#undef VZERO
#undef VLOAD
#undef VFMA
#undef VMUL
#undef VSET1
#undef VHSUM
#undef LW_F16
#undef LW_BF16
#undef LW_Q8
#undef NT_MAX
#undef NR

/* ---- AVX2 + FMA + F16C ---- */
__attribute__((target("avx2,fma"))) static inline float hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#define SFX avx2
#define ATTR __attribute__((target("avx2,fma,f16c")))
#define V __m256
#define VW 8
#define VZERO _mm256_setzero_ps()
#define VLOAD(p) _mm256_loadu_ps(p)
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VMUL(a, b) _mm256_mul_ps(a, b)
#define VSET1(x) _mm256_set1_ps(x)
#define VHSUM(v) hsum256(v)
#define LW_F16(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(p)))
#define LW_BF16(p) _mm256_castsi256_ps(_mm256_slli_epi32( \
        _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)(p))), 16))
#define LW_Q8(p) _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(p))))
#define NT_MAX 3
#define NR 3
#include "dk_kern_simd.h"
#define DK_HAVE_X86 1
#endif

typedef void (*mm_fn)(const float *, size_t, int, const dk_tensor *, int64_t, int64_t, float *, size_t);

static mm_fn chosen;
static const char *chosen_name;

static void choose(void)
{
    if (chosen)
        return;
    const char *force = getenv("DK_SIMD");
    mm_fn f = mm_scalar;
    const char *name = "scalar";
#ifdef DK_HAVE_X86
    __builtin_cpu_init();
    int force_scalar = force && !strcmp(force, "scalar");
    int force_avx2 = force && !strcmp(force, "avx2");
    if (!force_scalar && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        f = mm_avx2;
        name = "avx2";
    }
    if (!force_scalar && !force_avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")) {
        f = mm_avx512;
        name = "avx512";
    }
#else
    (void)force;
#endif
    chosen_name = name;
    chosen = f;
}

const char *dk_kernels_isa(void)
{
    choose();
    return chosen_name;
}

void dk_matmul_rows(const float *X, size_t ldx, int n, const dk_tensor *W, int64_t r0, int64_t r1, float *Y,
                    size_t ldy)
{
    choose();
    chosen(X, ldx, n, W, r0, r1, Y, ldy);
}

/* Tokens in blocks (their activations stay in cache while a thread's rows stream
 * past), rows of W split between threads in contiguous ranges of whole tiles. */
#define TOK_BLOCK 64
#define ROW_CHUNK 16

void dk_matmul(const float *X, int n, const dk_tensor *W, float *Y)
{
    choose();
    int64_t rows = W->rows, k = W->cols;
    int64_t n_chunks = (rows + ROW_CHUNK - 1) / ROW_CHUNK;
    for (int i0 = 0; i0 < n; i0 += TOK_BLOCK) {
        int nb = n - i0 < TOK_BLOCK ? n - i0 : TOK_BLOCK;
        const float *Xb = X + (size_t)i0 * (size_t)k;
        float *Yb = Y + (size_t)i0 * (size_t)rows;
        if (n_chunks * nb * k < 32768) {
            chosen(Xb, (size_t)k, nb, W, 0, rows, Yb, (size_t)rows);
            continue;
        }
#pragma omp parallel for schedule(static)
        for (int64_t c = 0; c < n_chunks; c++) {
            int64_t r0 = c * ROW_CHUNK, r1 = r0 + ROW_CHUNK < rows ? r0 + ROW_CHUNK : rows;
            chosen(Xb, (size_t)k, nb, W, r0, r1, Yb, (size_t)rows);
        }
    }
}

double dk_logsumexp(const float *x, int64_t n)
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
