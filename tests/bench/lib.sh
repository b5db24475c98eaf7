# Shared by the benchmarks: timing helpers. Times are user+system CPU seconds of the
# command (from /usr/bin/time), medians over BENCH_RUNS runs: on a shared machine CPU
# time is far steadier than wall time. Wall time is shown too, for -j runs, where
# CPU time does not show the speed-up.
BENCH_RUNS=${BENCH_RUNS:-3}

# median of the numbers on stdin
median() { sort -g | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

# cpu_time CMD...: median CPU seconds; wall_time: median wall seconds (of the same runs)
run_timed() {
    : >"$BENCH_TMP/cpu" ; : >"$BENCH_TMP/wall"
    for _ in $(seq "$BENCH_RUNS"); do
        /usr/bin/time -f "%U %S %e %M" -o "$BENCH_TMP/t" "$@" >/dev/null 2>"$BENCH_TMP/err" || {
            cat "$BENCH_TMP/err" >&2; return 1; }
        awk '{print $1 + $2}' "$BENCH_TMP/t" >>"$BENCH_TMP/cpu"
        awk '{print $3}' "$BENCH_TMP/t" >>"$BENCH_TMP/wall"
        awk '{print $4}' "$BENCH_TMP/t" >"$BENCH_TMP/rss"
    done
    CPU=$(median <"$BENCH_TMP/cpu"); WALL=$(median <"$BENCH_TMP/wall"); RSS_KB=$(cat "$BENCH_TMP/rss")
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
mbps()  { awk -v bytes="$1" -v s="$2" 'BEGIN { printf "%.1f", (s > 0 ? bytes / s / 1e6 : 0) }'; }
