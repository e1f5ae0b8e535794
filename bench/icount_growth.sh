#!/bin/bash
# Linear growth, printed by `make bench BENCH_MODE=icount` after the table
# (issue 15): instructions per operation at 4 body sizes from 1 KB to 1 MB
# (bench/icount_growth.lua says what grows), under Lua 5.4 and LuaJIT, and
# the cost per added byte between successive sizes. Linear: the last step's
# cost per byte is about the first one's; n^2 would multiply it by ~60.
# Printed, not asserted.
#   GROWTH_OPS   operations (default: the TrustPay and Trustly ones)
set -euo pipefail
cd "$(dirname "$0")/.."
out=build/bench/icount
mkdir -p $out
SIZES="1024 16384 262144 1048576"
ops=${GROWTH_OPS:-ecommpay_sign ecommpay_verify ecommpay_page_url trustpay_card_url trustpay_notification trustly_notification trustly_sign}

ir() {
    local f=$out/growth.$$.out
    env -u LD_PRELOAD valgrind --tool=callgrind --callgrind-out-file=$f "$@" >/dev/null 2>$out/valgrind.log ||
        { cat $out/valgrind.log >&2; exit 1; }
    awk '/^(summary|totals):/ { print $2; exit }' $f
    rm -f $f
}
per_op() { # per_op VM OP SIZE
    local cmd=luajit n zero many
    [ "$1" = lua5.4 ] && cmd=lua5.4
    # about 4 MB of body per measured run, at least 2 operations; RSA signing
    # (6M instructions) a tenth of that at the small sizes
    n=$(( 4194304 / $3 )); [ $n -gt 200 ] && n=200; [ $n -lt 2 ] && n=2
    case $2 in trustly_*) n=$(( n / 10 > 2 ? n / 10 : 2 )) ;; esac
    export LUA_PATH="lua/?.lua;lua/?/init.lua;bench/?.lua;;" LUA_CPATH="build/$1/?.so;;"
    # the ecommpay bodies are grown by bench/icount.lua (OP@BYTES), beside its fixtures
    local run=(bench/icount_growth.lua "$2" "$3")
    case $2 in ecommpay_*) run=(bench/icount.lua "$2@$3") ;; esac
    zero=$(ir $cmd "${run[@]}" 0)
    many=$(ir $cmd "${run[@]}" "$n")
    echo $(( (many - zero) / n ))
}

echo
echo "growth with body size (instructions per operation; per byte: the added cost per added byte from the size before)"
printf "%-24s %-7s %12s %12s %12s %12s   %s\n" operation VM "1 KB" "16 KB" "256 KB" "1 MB" "per byte: 16K 256K 1M, last/first"
for op in $ops; do
    for vm in lua5.4 luajit; do
        counts=()
        for size in $SIZES; do counts+=("$(per_op $vm $op $size)"); done
        awk -v op="$op" -v vm="$vm" -v c="${counts[*]}" -v s="$SIZES" 'BEGIN {
            split(c, n, " "); split(s, b, " ")
            line = sprintf("%-24s %-7s %12d %12d %12d %12d  ", op, vm, n[1], n[2], n[3], n[4])
            for (i = 2; i <= 4; i++) { slope[i] = (n[i] - n[i - 1]) / (b[i] - b[i - 1]); line = line sprintf(" %6.1f", slope[i]) }
            printf "%s  %5.2f %s\n", line, slope[4] / slope[2], (slope[4] / slope[2] <= 1.5 ? "linear" : "GROWS FASTER THAN LINEAR")
        }'
    done
done
