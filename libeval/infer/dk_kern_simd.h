/* dk_kern_simd.h: the register-tile kernel and the weight conversion, included by
 * dk_kernels.c once per instruction set with these macros defined (not a public header):
 *   SFX            name suffix (avx512, avx2)
 *   ATTR           the function attribute that enables the instruction set
 *   V, VW          vector type and its width in floats
 *   VZERO, VLOAD(p), VSTORE(p,v), VFMA(a,b,c) (= a*b + c, one rounding), VBCAST(p), VMUL, VSET1
 *   LW_F16(p), LW_BF16(p), LW_Q8(p)   VW weights as floats (p: uint16 / int8 pointer)
 *   NT             vectors of lanes in a tile: a tile is DK_MR broadcast rows x NT*VW lanes
 *   ISA_NAME       the name dk_kernels_isa reports
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

static const dk_isa FN(isa) = { ISA_NAME, TGW, FN(kern), FN(conv) };

#undef TGW
#undef FN
#undef CAT
#undef CAT2
