#!/bin/bash
# Issue 15's nginx figure, in instructions: one provider-style call through
# luapay inside nginx (luapay.http over cosockets) against a bare
# ngx.socket.tcp call to the same upstream (/n/hello on the same nginx).
# Whole nginx under callgrind (one process: master_process off), per
# request = (Ir(W + N) - Ir(W)) / N, W warm-up requests on one kept-alive
# client connection in both runs. BENCH_NGINX_N (default 1000) is N,
# BENCH_NGINX_WARM (default 500) W: fewer leave JIT compilation in the count.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${BENCH_NGINX_N:-1000}
W=${BENCH_NGINX_WARM:-500}
nginx=${LUAPAY_NGINX:-/usr/sbin/nginx}
out=build/bench/icount
mkdir -p $out
read -r prefix port < <(LUA_PATH="lua/?.lua;lua/?/init.lua;bench/?.lua;;" LUA_CPATH="build/lua5.4/?.so;;" lua5.4 bench/icount_nginx.lua)
trap 'rm -rf "$prefix"' EXIT
sed -i 's/^daemon on;/daemon off; master_process off;/' "$prefix/conf/nginx.conf"

listening() { ss -Hltn "sport = :$port" | grep -q .; }
ir() { # ir OP COUNT: Ir of nginx serving COUNT requests to /n/OP
    local f=$out/nginx.$$.callgrind
    rm -f "$f"
    env -u LUA_PATH -u LUA_CPATH -u LD_PRELOAD valgrind --tool=callgrind --callgrind-out-file="$f" \
        "$nginx" -p "$prefix" -c conf/nginx.conf -e logs/error.log >$out/nginx-valgrind.log 2>&1 &
    local pid=$! i
    for i in $(seq 600); do listening && break; sleep 0.1; done
    listening || { cat $out/nginx-valgrind.log "$prefix/logs/error.log" >&2; kill "$pid"; exit 1; }
    local urls=() code
    for i in $(seq "$2"); do urls+=(-o /dev/null "http://127.0.0.1:$port/n/$1"); done
    code=$(curl -s -w '%{http_code}\n' "${urls[@]}" | sort -u)
    [ "$code" = 200 ] || { echo "icount_nginx: /n/$1 answered $code" >&2; cat "$prefix/logs/error.log" >&2; kill "$pid"; exit 1; }
    kill -QUIT "$pid"
    wait "$pid" || true
    awk '/^(summary|totals):/ { print $2; exit }' "$f"
}
per_request() { # per_request OP
    local a b
    a=$(ir "$1" "$W")
    b=$(ir "$1" $((W + N)))
    echo $(( (b - a) / N ))
}
luapay=$(per_request luapay)
bare=$(per_request bare)
awk -v a="$luapay" -v b="$bare" -v n="$N" 'BEGIN {
    printf "%-24s %10s %10s %8s  %s\n", "nginx, per request", "luapay", "bare", "ratio", "(whole nginx, callgrind Ir, N = " n ")"
    printf "%-24s %10d %10d %8.2f  %s\n", "one provider call", a, b, a / b, "luapay.http over cosockets / a bare ngx.socket.tcp call, same upstream" }'
