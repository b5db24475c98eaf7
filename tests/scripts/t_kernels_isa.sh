#!/usr/bin/env bash
# The inference kernels' unit tests once more on each lower instruction set (DK_SIMD
# forces it): every path must give the same fma chains bit for bit, which
# test_matmul_exact checks against plain fmaf loops.
set -u
fail=0
for isa in avx2 scalar; do
    DK_SIMD=$isa "$B/tests/test_infer" > /dev/null || { echo "test_infer fails with DK_SIMD=$isa"; fail=1; }
done
exit $fail
