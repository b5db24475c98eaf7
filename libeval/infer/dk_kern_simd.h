/* dk_kern_simd.h: the matrix-product kernel body, included by dk_kernels.c once per
 * instruction set with these macros defined (this is not a public header):
 *   SFX            name suffix (avx512, avx2)
 *   ATTR           the function attribute that enables the instruction set
 *   V, VW          vector type and its width in floats
 *   VZERO, VLOAD(p), VFMA(a,b,c) (= a*b + c), VMUL, VSET1, VHSUM(v)
 *   LW_F16(p), LW_BF16(p), LW_Q8(p)   VW weights as floats (p: uint16 / int8 pointer)
 *   NT_MAX, NR     the register tile: NT_MAX tokens x NR weight rows
 * Invariant: every output is the dot product of one X row and one W row summed in
 * the same order whatever the tile, n or the thread split, so a token's result never
 * depends on the other tokens of the batch (batch invariance).
 */
#define CAT2(a, b) a##_##b
#define CAT(a, b) CAT2(a, b)
#define FN(name) CAT(name, SFX)

static inline ATTR __attribute__((always_inline)) V FN(loadw)(dk_dtype dt, const uint8_t *row, int64_t kk)
{
    switch (dt) {
    case DK_DT_F32: return VLOAD((const float *)row + kk);
    case DK_DT_F16: return LW_F16((const uint16_t *)row + kk);
    case DK_DT_BF16: return LW_BF16((const uint16_t *)row + kk);
    default: {
        const uint8_t *blk = row + (size_t)(kk / DK_Q8_0_BLOCK) * DK_Q8_0_BYTES;
        uint16_t hs;
        memcpy(&hs, blk, 2);
        return VMUL(LW_Q8((const int8_t *)(blk + 2 + kk % DK_Q8_0_BLOCK)), VSET1(dk_f16_to_f32(hs)));
    }
    }
}

/* One tile: nt tokens x nr rows, full k. dt is a constant at each call site so the
 * switch in loadw folds away. */
static inline ATTR __attribute__((always_inline)) void FN(tile)(dk_dtype dt, const float *X, size_t ldx,
    const uint8_t *W, size_t rb, int64_t k, float *Y, size_t ldy, const int nt, const int nr)
{
    V acc[NT_MAX][NR];
    for (int t = 0; t < nt; t++)
        for (int r = 0; r < nr; r++)
            acc[t][r] = VZERO;
    int64_t kv = k / VW * VW;
    for (int64_t kk = 0; kk < kv; kk += VW) {
        V w[NR];
        for (int r = 0; r < nr; r++)
            w[r] = FN(loadw)(dt, W + (size_t)r * rb, kk);
        for (int t = 0; t < nt; t++) {
            V x = VLOAD(X + (size_t)t * ldx + kk);
            for (int r = 0; r < nr; r++)
                acc[t][r] = VFMA(x, w[r], acc[t][r]);
        }
    }
    for (int t = 0; t < nt; t++)
        for (int r = 0; r < nr; r++) {
            float s = VHSUM(acc[t][r]);
            for (int64_t kk = kv; kk < k; kk++)
                s += X[(size_t)t * ldx + kk] * dk_wscalar(dt, W + (size_t)r * rb, kk);
            Y[(size_t)t * ldy + r] = s;
        }
}

#define NTC(k) ((k) < NT_MAX ? (k) : NT_MAX)
#define TILE_CASES(DT, NRV)                                                                 \
    switch (nt) {                                                                           \
    case 1: FN(tile)(DT, X + (size_t)i * ldx, ldx, Wr, rb, k, Y + (size_t)i * ldy + r, ldy, 1, NRV); break; \
    case 2: FN(tile)(DT, X + (size_t)i * ldx, ldx, Wr, rb, k, Y + (size_t)i * ldy + r, ldy, NTC(2), NRV); break; \
    case 3: FN(tile)(DT, X + (size_t)i * ldx, ldx, Wr, rb, k, Y + (size_t)i * ldy + r, ldy, NTC(3), NRV); break; \
    case 4: FN(tile)(DT, X + (size_t)i * ldx, ldx, Wr, rb, k, Y + (size_t)i * ldy + r, ldy, NTC(4), NRV); break; \
    case 5: FN(tile)(DT, X + (size_t)i * ldx, ldx, Wr, rb, k, Y + (size_t)i * ldy + r, ldy, NTC(5), NRV); break; \
    default: FN(tile)(DT, X + (size_t)i * ldx, ldx, Wr, rb, k, Y + (size_t)i * ldy + r, ldy, NT_MAX, NRV); break; \
    }

#define MM_BODY(DT)                                                                         \
    for (int64_t r = r0; r < r1;) {                                                         \
        const uint8_t *Wr = W->data + (size_t)r * rb;                                      \
        int full = r1 - r >= NR;                                                            \
        for (int i = 0; i < n; i += NT_MAX) {                                               \
            int nt = n - i < NT_MAX ? n - i : NT_MAX;                                       \
            if (full) { TILE_CASES(DT, NR) } else { TILE_CASES(DT, 1) }                     \
        }                                                                                   \
        r += full ? NR : 1;                                                                 \
    }

static ATTR void FN(mm_f32)(const float *X, size_t ldx, int n, const dk_tensor *W, int64_t r0, int64_t r1,
                            float *Y, size_t ldy)
{
    size_t rb = W->row_bytes;
    int64_t k = W->cols;
    MM_BODY(DK_DT_F32)
}

static ATTR void FN(mm_f16)(const float *X, size_t ldx, int n, const dk_tensor *W, int64_t r0, int64_t r1,
                            float *Y, size_t ldy)
{
    size_t rb = W->row_bytes;
    int64_t k = W->cols;
    MM_BODY(DK_DT_F16)
}

static ATTR void FN(mm_bf16)(const float *X, size_t ldx, int n, const dk_tensor *W, int64_t r0, int64_t r1,
                             float *Y, size_t ldy)
{
    size_t rb = W->row_bytes;
    int64_t k = W->cols;
    MM_BODY(DK_DT_BF16)
}

static ATTR void FN(mm_q8)(const float *X, size_t ldx, int n, const dk_tensor *W, int64_t r0, int64_t r1,
                           float *Y, size_t ldy)
{
    size_t rb = W->row_bytes;
    int64_t k = W->cols;
    MM_BODY(DK_DT_Q8_0)
}

static void FN(mm)(const float *X, size_t ldx, int n, const dk_tensor *W, int64_t r0, int64_t r1, float *Y, size_t ldy)
{
    switch (W->dt) {
    case DK_DT_F32: FN(mm_f32)(X, ldx, n, W, r0, r1, Y, ldy); break;
    case DK_DT_F16: FN(mm_f16)(X, ldx, n, W, r0, r1, Y, ldy); break;
    case DK_DT_BF16: FN(mm_bf16)(X, ldx, n, W, r0, r1, Y, ldy); break;
    case DK_DT_Q8_0: FN(mm_q8)(X, ldx, n, W, r0, r1, Y, ldy); break;
    }
}

#undef TILE_CASES
#undef NTC
#undef MM_BODY
#undef FN
#undef CAT
#undef CAT2
