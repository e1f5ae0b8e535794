#!/bin/bash
# scripts/fuzz.sh SECONDS TARGET... : runs each libFuzzer target (make
# fuzz-build builds build/fuzz/bin/<target>) for SECONDS of CPU, one after
# the other, from the seed corpus fuzz/corpus/<target>/ (every file there is
# replayed first: the regression inputs of earlier crashes too). New inputs
# go to build/fuzz/work/<target>/, a crashing input to build/fuzz/crashes/.
# Prints one line per target and exits non-zero on any crash, sanitizer
# report, leak, timeout or property violation (a fuzz/targets/*.lua check).
set -u
cd "$(dirname "$0")/.."
seconds=$1
shift
status=0
mkdir -p build/fuzz/crashes build/fuzz/logs
for t in "$@"; do
    bin=build/fuzz/bin/$t
    work=build/fuzz/work/$t
    log=build/fuzz/logs/$t.log
    mkdir -p "$work" "fuzz/corpus/$t"
    # -max_total_time is wall time; bash's time gives the CPU time spent
    cpu=$( { TIMEFORMAT='%U %S'; time {
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ASAN_OPTIONS=detect_leaks=1:strict_string_checks=1 \
            "$bin" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 \
            -artifact_prefix="build/fuzz/crashes/$t-" "$work" "fuzz/corpus/$t" >"$log" 2>&1
        echo $? >"$log.rc"
    }; } 2>&1 )
    rc=$(cat "$log.rc")
    took=$(echo "$cpu" | awk '{ printf "%.0f", $1 + $2 }')
    runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log" | tail -1)
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)
    if [ "$rc" -eq 0 ]; then
        echo "fuzz $t: ok, ${runs:-?} inputs in ${took} s of CPU (${cov:-no coverage line})"
    else
        status=1
        echo "fuzz $t: FAILED (exit $rc after ${took} s of CPU); input kept as: $(grep -oE 'build/fuzz/crashes/[^ ]+' "$log" | tail -1)"
        grep -E 'ERROR|SUMMARY|fuzz target|runtime error|==[0-9]+==' "$log" | head -20
        echo "(full log: $log)"
    fi
done
exit $status
