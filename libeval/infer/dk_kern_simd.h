/* dk_kern_simd.h: the register-tile kernel and the weight conversion, included by
 * dk_kernels.c once per instruction set with these macros defined (not a public header):
 *   SFX            name suffix (avx512, avx2)
 *   ATTR           the function attribute that enables the instruction set
 *   V, VW          vector type and its width in floats
 *   VZERO, VLOAD(p), VSTORE(p,v), VFMA(a,b,c) (= a*b + c, one rounding), VBCAST(p), VMUL, VSET1
 *   LW_F16(p), LW_BF16(p), LW_Q8(p)   VW weights as floats (p: uint16 / int8 pointer)
 *   NT             vectors of lanes in a tile: a tile is DK_MR broadcast rows x NT*VW lanes
 *   ISA_NAME       the name dk_kernels_isa reports
 *   VADD, VSUB, VMAX, VMIN, VDIV, VROUND(v) (to nearest), VPOW2(v) (2^v for integral v),
 *   VLOADU_TAIL(p, n) / VSTORE_TAIL(p, v, n) (the first n < VW lanes, the rest zero)
 *   VTRANSPOSE(r)  transposes the VW x VW block held in V r[VW]
 * Invariant: every output lane is a chain of fused multiply-adds over k = 0, 1, ...
 * in order, exactly what the portable path computes with fmaf, so the result of one
 * (token, row) pair depends neither on the tile, the batch, the thread split nor the
 * instruction set.
 */
#define CAT2(a, b) a##_##b
#define CAT(a, b) CAT2(a, b)
#define FN(name) CAT(name, SFX)
#define TGW (NT * VW)

/* c[r][0..TGW) (+)= sum over k of b[r][k] * xp[k][lane]; mr is a constant at each call. */
static inline ATTR __attribute__((always_inline)) void FN(tile)(const float *xp, const float *const *b, int kc,
                                                                 float *c, int first, const int mr)
{
    V acc[DK_MR][NT];
#pragma GCC unroll 8
    for (int r = 0; r < mr; r++)
#pragma GCC unroll 8
        for (int v = 0; v < NT; v++)
            acc[r][v] = first ? VZERO : VLOAD(c + r * TGW + v * VW);
    for (int k = 0; k < kc; k++) {
        V x[NT];
#pragma GCC unroll 8
        for (int v = 0; v < NT; v++)
            x[v] = VLOAD(xp + (size_t)k * TGW + v * VW);
#pragma GCC unroll 8
        for (int r = 0; r < mr; r++) {
            V w = VBCAST(b[r] + k);
#pragma GCC unroll 8
            for (int v = 0; v < NT; v++)
                acc[r][v] = VFMA(w, x[v], acc[r][v]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < mr; r++)
#pragma GCC unroll 8
        for (int v = 0; v < NT; v++)
            VSTORE(c + r * TGW + v * VW, acc[r][v]);
}

static ATTR void FN(kern)(const float *xp, const float *const *b, int kc, float *c, int first, int mr)
{
    switch (mr) {
    case 1: FN(tile)(xp, b, kc, c, first, 1); break;
    case 2: FN(tile)(xp, b, kc, c, first, 2); break;
    case 3: FN(tile)(xp, b, kc, c, first, 3); break;
    case 4: FN(tile)(xp, b, kc, c, first, 4); break;
    case 5: FN(tile)(xp, b, kc, c, first, 5); break;
    default: FN(tile)(xp, b, kc, c, first, DK_MR); break;
    }
}

/* dst[0..n) = row[k0..k0+n) as f32; k0 and n are multiples of 32 for Q8_0 (rows are
 * whole blocks), and the conversions are exact, so this equals dk_wscalar. */
static ATTR void FN(conv)(dk_dtype dt, const uint8_t *row, int64_t k0, int n, float *dst)
{
    int k = 0;
    switch (dt) {
    case DK_DT_F32:
        memcpy(dst, (const float *)row + k0, (size_t)n * 4);
        return;
    case DK_DT_F16:
        for (; k + VW <= n; k += VW)
            VSTORE(dst + k, LW_F16((const uint16_t *)row + k0 + k));
        break;
    case DK_DT_BF16:
        for (; k + VW <= n; k += VW)
            VSTORE(dst + k, LW_BF16((const uint16_t *)row + k0 + k));
        break;
    case DK_DT_Q8_0:
        for (; k + DK_Q8_0_BLOCK <= n; k += DK_Q8_0_BLOCK) {
            const uint8_t *blk = row + (size_t)((k0 + k) / DK_Q8_0_BLOCK) * DK_Q8_0_BYTES;
            uint16_t hs;
            memcpy(&hs, blk, 2);
            V d = VSET1(dk_f16_to_f32(hs));
            for (int j = 0; j < DK_Q8_0_BLOCK; j += VW)
                VSTORE(dst + k + j, VMUL(LW_Q8((const int8_t *)(blk + 2 + j)), d));
        }
        break;
    }
    for (; k < n; k++)
        dst[k] = dk_wscalar(dt, row, k0 + k);
}

/* e^x to about 2 ulp: x = n ln2 + r with |r| <= ln2/2, e^r by its degree-6 Taylor
 * polynomial (truncation < 1.2e-7 relative), times 2^n. Inputs are clamped to where
 * the result is a normal float. */
static inline ATTR __attribute__((always_inline)) V FN(vexp)(V x)
{
    x = VMIN(VMAX(x, VSET1(-87.0f)), VSET1(88.0f));
    V n = VROUND(VMUL(x, VSET1(1.44269504088896341f)));
    V r = VSUB(VSUB(x, VMUL(n, VSET1(0.693359375f))), VMUL(n, VSET1(-2.12194440e-4f)));
    V p = VSET1(1.0f / 720);
    p = VFMA(p, r, VSET1(1.0f / 120));
    p = VFMA(p, r, VSET1(1.0f / 24));
    p = VFMA(p, r, VSET1(1.0f / 6));
    p = VFMA(p, r, VSET1(0.5f));
    p = VFMA(p, r, VSET1(1.0f));
    p = VFMA(p, r, VSET1(1.0f));
    return VMUL(p, VPOW2(n));
}

/* log sum exp(x) with the max taken first; lanes summed in f32, then in double. */
static ATTR double FN(logsumexp)(const float *x, int64_t n)
{
    V mv = VSET1(-INFINITY);
    int64_t i = 0;
    for (; i + VW <= n; i += VW)
        mv = VMAX(mv, VLOAD(x + i));
    float lanes[VW];
    VSTORE(lanes, mv);
    float mx = -INFINITY;
    for (int l = 0; l < VW; l++)
        mx = lanes[l] > mx ? lanes[l] : mx;
    for (int64_t j = i; j < n; j++)
        mx = x[j] > mx ? x[j] : mx;
    if (!isfinite(mx))
        return mx;
    V m = VSET1(mx), sv = VZERO;
    for (i = 0; i + VW <= n; i += VW)
        sv = VADD(sv, FN(vexp)(VSUB(VLOAD(x + i), m)));
    VSTORE(lanes, sv);
    double s = 0;
    for (int l = 0; l < VW; l++)
        s += lanes[l];
    for (; i < n; i++)
        s += exp((double)(x[i] - mx));
    return mx + log(s);
}

/* g[i] = silu(g[i]) * u[i] = g / (1 + e^-g) * u. */
static ATTR void FN(swiglu)(float *g, const float *u, size_t n)
{
    size_t i = 0;
    for (; i + VW <= n; i += VW) {
        V x = VLOAD(g + i);
        V sg = VDIV(x, VADD(VSET1(1.0f), FN(vexp)(VSUB(VZERO, x))));
        VSTORE(g + i, VMUL(sg, VLOAD(u + i)));
    }
    for (; i < n; i++)
        g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static inline ATTR __attribute__((always_inline)) float FN(dot)(const float *a, const float *b, int n)
{
    V acc = VZERO;
    int i = 0;
    for (; i + VW <= n; i += VW)
        acc = VFMA(VLOAD(a + i), VLOAD(b + i), acc);
    if (i < n)
        acc = VFMA(VLOADU_TAIL(a + i, n - i), VLOADU_TAIL(b + i, n - i), acc);
    float lanes[VW], s = 0;
    VSTORE(lanes, acc);
    for (int l = 0; l < VW; l++)
        s += lanes[l];
    return s;
}

/* One query against keys/values rows 0..n-1 (row stride ld floats, hd values each):
 * out = softmax(scale * q.k_j) . v_j; sc holds n scores. */
static ATTR void FN(attend)(const float *q, const float *k, const float *v, size_t ld, int n, int hd, float scale,
                            float *sc, float *out)
{
    float mx = -INFINITY;
    for (int j = 0; j < n; j++) {
        float d = FN(dot)(q, k + (size_t)j * ld, hd) * scale;
        sc[j] = d;
        mx = d > mx ? d : mx;
    }
    V m = VSET1(mx), sv = VZERO;
    int j = 0;
    for (; j + VW <= n; j += VW) {
        V e = FN(vexp)(VSUB(VLOAD(sc + j), m));
        VSTORE(sc + j, e);
        sv = VADD(sv, e);
    }
    if (j < n) {
        V e = FN(vexp)(VSUB(VLOADU_TAIL(sc + j, n - j), m));
        VSTORE_TAIL(sc + j, e, n - j);
        sv = VADD(sv, VLOADU_TAIL(sc + j, n - j));
    }
    float lanes[VW];
    VSTORE(lanes, sv);
    double sum = 0;
    for (int l = 0; l < VW; l++)
        sum += lanes[l];
    V inv = VSET1((float)(1.0 / sum));
    for (int i = 0; i < hd; i += VW) {
        int w = hd - i < VW ? hd - i : VW;
        V acc = VZERO;
        if (w == VW) {
            for (int jj = 0; jj < n; jj++)
                acc = VFMA(VSET1(sc[jj]), VLOAD(v + (size_t)jj * ld + i), acc);
            VSTORE(out + i, VMUL(acc, inv));
        } else {
            for (int jj = 0; jj < n; jj++)
                acc = VFMA(VSET1(sc[jj]), VLOADU_TAIL(v + (size_t)jj * ld + i, w), acc);
            VSTORE_TAIL(out + i, VMUL(acc, inv), w);
        }
    }
}

/* Few tokens (decoding): rows r0..r0+nr of W (nr <= TGW) against n tokens. VW whole
 * rows are converted into buf (stride ld >= K: the rows are one contiguous stretch of
 * the file, read in order, which is what decoding's speed depends on), then VW x VW
 * blocks are transposed in registers so the lanes are rows, and each k is one
 * broadcast multiply-add, in k order, as in the tile kernel.
 * c[t][l] gets token t, row r0 + l. */
static inline ATTR __attribute__((always_inline)) void FN(gemv_n)(dk_dtype dt, const uint8_t *w, size_t rb,
    int64_t K, int nr, const float *X, float *c, float *buf, size_t ld, const int n)
{
    int64_t kv = K / VW * VW;
    for (int base = 0; base < nr; base += 2 * VW) {
        int nb = nr - base < 2 * VW ? nr - base : 2 * VW;
        V acc[DK_MR - 1][2];
#pragma GCC unroll 8
        for (int t = 0; t < n; t++)
            acc[t][0] = acc[t][1] = VZERO;
        for (int i = 0; i < nb; i++)
            FN(conv)(dt, w + (size_t)(base + i) * rb, 0, (int)kv, buf + i * ld);
        for (int i = nb; i < 2 * VW; i++)
            memset(buf + i * ld, 0, (size_t)kv * 4);
        for (int64_t k = 0; k < kv; k += VW) {
            /* two row blocks, two independent chains to hide the FMA latency */
#pragma GCC unroll 2
            for (int h = 0; h < 2; h++) {
                V r[VW];
#pragma GCC unroll 16
                for (int i = 0; i < VW; i++)
                    r[i] = VLOAD(buf + (h * VW + i) * ld + k);
                VTRANSPOSE(r);
#pragma GCC unroll 16
                for (int j = 0; j < VW; j++)
#pragma GCC unroll 8
                    for (int t = 0; t < n; t++)
                        acc[t][h] = VFMA(VSET1(X[(size_t)t * K + k + j]), r[j], acc[t][h]);
            }
        }
#pragma GCC unroll 8
        for (int t = 0; t < n; t++) {
            VSTORE(c + t * TGW + base, acc[t][0]);
            VSTORE(c + t * TGW + base + VW, acc[t][1]);
        }
    }
    for (int64_t k = kv; k < K; k++)
        for (int l = 0; l < nr; l++) {
            float wv = dk_wscalar(dt, w + (size_t)l * rb, k);
            for (int t = 0; t < n; t++)
                c[t * TGW + l] = fmaf(X[(size_t)t * K + k], wv, c[t * TGW + l]);
        }
}

static ATTR void FN(gemv)(const dk_tensor *W, int64_t r0, int nr, const float *X, int n, float *c, float *buf)
{
    size_t ld = (size_t)W->cols + 16;
    const uint8_t *w = W->data + (size_t)r0 * W->row_bytes;
    size_t rb = W->row_bytes;
    int64_t K = W->cols;
    switch (n) {
    case 1: FN(gemv_n)(W->dt, w, rb, K, nr, X, c, buf, ld, 1); break;
    case 2: FN(gemv_n)(W->dt, w, rb, K, nr, X, c, buf, ld, 2); break;
    case 3: FN(gemv_n)(W->dt, w, rb, K, nr, X, c, buf, ld, 3); break;
    case 4: FN(gemv_n)(W->dt, w, rb, K, nr, X, c, buf, ld, 4); break;
    default: FN(gemv_n)(W->dt, w, rb, K, nr, X, c, buf, ld, DK_MR - 1); break;
    }
}

static const dk_isa FN(isa) = { ISA_NAME, TGW, FN(kern), FN(conv), FN(gemv), FN(logsumexp), FN(swiglu),
                                FN(attend) };

#undef TGW
#undef FN
#undef CAT
#undef CAT2
