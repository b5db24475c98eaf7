#!/usr/bin/env bash
# make bench: every tests/bench/bench_*.sh in turn. Benchmarks print our figure, the
# peer's from the same run and the ratio; they never fail on speed (the machine is
# shared and noisy), only when a command itself fails.
set -u
cd "$(dirname "$0")/../.."
export B=${B:-build}
export BIN=$PWD/$B/bin
export DK_SHARED_DATA=${DK_SHARED_DATA:-$(cd .. && pwd)/shared/data}
export BENCH_TMP=${BENCH_TMP:-$PWD/build/bench}
mkdir -p "$BENCH_TMP"
rc=0
for b in tests/bench/bench_*.sh; do
    [ -f "$b" ] || continue
    echo "== $(basename "$b" .sh)"
    bash "$b" || { echo "bench: $(basename "$b") failed"; rc=1; }
done
exit $rc
