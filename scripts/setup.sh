#!/bin/sh
# Installs the Debian packages luapay needs, only those that are missing.
# Idempotent; runs `apt-get update` only when something must be installed.
# LUAPAY_SKIP_SETUP=1 skips it (other distributions: install the equivalents).
set -eu

# lua-check is luacheck (`make lint`), lua-ldoc is ldoc (`make doc`), valgrind
# is callgrind (`make bench BENCH_MODE=icount`).
# chromium (headless) drives the ecommpay Payment Page fake in spec 27.
# Lua 5.1-5.3: `make test` runs every suite under each too (lua-cjson and
# lua-busted come built for all of them).
# libclang-rt-14-dev holds clang's libFuzzer and sanitizer runtimes (`make
# fuzz`); clang only recommends it, and recommends are not installed.
# lua-expat (lxp) reads TrustPay's payment-order XML back in spec 69.
# redis-server and the two Redis clients are for luapay.store's Redis backend
# and the inbox: lua-nginx-redis is lua-resty-redis (`require "nginx.redis"`)
# inside nginx, lua-redis the client for Lua scripts (packaged for 5.1-5.3;
# luapay.store.redis loads the same plain-Lua file on 5.4, with lua-socket).
# lua-argparse parses the luapay command's options (one file for every Lua).
# lua-readline (GNU readline, built for Lua 5.1-5.4; LuaJIT loads the 5.1
# one) gives `luapay repl` line editing, history and completion on a
# terminal; spec 77 drives it through a pseudo-terminal with util-linux's
# `script` (bsdutils, essential: on every Debian system already).
# LuaJIT comes as OpenResty's luajit2: nginx's Lua module (via lua-resty-core)
# depends on libluajit2-5.1-2, which conflicts with Debian's plain luajit.
PACKAGES="lua5.4 liblua5.4-dev luajit2 libluajit2-5.1-dev lua-cjson lua-busted
libcurl4-openssl-dev libssl-dev luarocks pkg-config make gcc clang libclang-rt-14-dev
nginx-core libnginx-mod-http-lua openssl wrk curl procps lua-check lua-ldoc chromium valgrind lua-expat
lua5.3 liblua5.3-dev lua5.2 liblua5.2-dev lua5.1 liblua5.1-0-dev
redis-server lua-redis lua-socket lua-nginx-redis
lua-argparse lua-readline"

[ "${LUAPAY_SKIP_SETUP:-}" = 1 ] && exit 0
if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "setup: not a Debian system; install the equivalents of: $(echo $PACKAGES)" >&2
    exit 0
fi

missing=""
for p in $PACKAGES; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
    case "$status" in ii*) ;; *) missing="$missing $p" ;; esac
done
[ -z "$missing" ] && exit 0

echo "setup: installing$missing" >&2
if [ "$(id -u)" = 0 ]; then
    as_root=""
elif command -v sudo >/dev/null 2>&1; then
    as_root="sudo"
else
    echo "setup: need root to install:$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$as_root apt-get update -qq
# shellcheck disable=SC2086
$as_root apt-get install -y -qq --no-install-recommends $missing >/dev/null
