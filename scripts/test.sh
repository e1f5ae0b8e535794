#!/bin/bash
# The test command (README: `make test`). Builds the core every way CI checks
# it, runs luacheck (zero warnings) and ldoc (the reference builds without a
# warning), runs every busted suite under Lua 5.4, LuaJIT, Lua 5.3, 5.2 and
# 5.1 (Debian's busted runs under each; 5.1's core does HMAC through EVP
# alone, make HMAC=evp), then the Lua 5.4 suite again with
# the core under AddressSanitizer + UBSan (leak detection on), then every
# libFuzzer target (fuzz/targets/, under ASan + UBSan) for FUZZ_CI_SECONDS
# (20) each, one check per target: a crash, sanitizer report, leak or
# property violation fails it; then the hand harnesses (fuzz/pattern_diff.c,
# fuzz/scratch_frames.c, fuzz/validate_fuzz.lua), one check each. The
# suites and the fuzz targets run two at a time on a machine of two cores or
# more (TEST_LANES=1: one at a time). It ends with one line "N passed, N
# failed" over all runs (luacheck and ldoc count one check each). Exits
# non-zero if any build, check or run fails.
set -u
cd "$(dirname "$0")/.."

passed=0
failed=0
status=0
# What failed, repeated just before the last line: CI keeps only the tail.
recap=$(mktemp)

step() { printf '\n== %s\n' "$*"; }

build() { # make args...; a build failure counts as a failed check
    if ! make -s -j"$LANES" "$@" >/dev/null; then
        echo "BUILD FAILED: make $*" | tee -a "$recap"
        failed=$((failed + 1))
        status=1
        return 1
    fi
}

check() { # NAME COMMAND...: one counted check; the command prints what is wrong
    local name=$1
    shift
    if "$@"; then
        passed=$((passed + 1))
    else
        echo "CHECK FAILED: $name" | tee -a "$recap"
        failed=$((failed + 1))
        status=1
    fi
}

# The suites and the fuzz targets run in LANES lanes at once (default: one
# per core, at most 2), each one's output kept in a file of its own and
# printed whole, in a fixed order, once all are done.
LANES=${TEST_LANES:-$(nproc 2>/dev/null || echo 1)}
[ "$LANES" -gt 2 ] && LANES=2
[ "$LANES" -lt 1 ] && LANES=1
runs=$(mktemp -d)
trap 'rm -f "$recap"; rm -rf "$runs"' EXIT
run_file() { printf '%s/%s' "$runs" "$(printf '%s' "$1" | tr -c 'A-Za-z0-9.' '_')"; }
# The exit code a run wrote to FILE; 1 when it wrote none (it did not end).
rc_of() { local rc; rc=$(cat "$1" 2>/dev/null); echo "${rc:-1}"; }
# busted's last line in LOG: "N successes / N failures / N errors / N pending" (colour codes stripped)
summary_of() { sed 's/\x1b\[[0-9;]*m//g' "$1" | grep -E '^[0-9]+ success' | tail -1; }

# suite_run NAME INTERPRETER BUILD_DIR [env assignments...]: runs one busted
# suite into its files (NAME's .log and .rc) and says when it is done.
suite_run() {
    local name=$1 lua=$2 dir=$3 f start=$SECONDS try
    shift 3
    f=$(run_file "$name")
    for try in 1 2; do
        env "$@" LUAPAY_BUILD="$dir" "$lua" "$(command -v busted)" --output=utfTerminal >"$f.log" 2>&1
        echo $? >"$f.rc"
        # LeakSanitizer's own crash at exit ("Tracer caught signal 11", then
        # "has encountered a fatal error"; google/sanitizers#1353, seen once
        # here with the machine loaded) is no leak report, and it takes the
        # suite's summary with it: such a run says nothing, so it is made again.
        [ $try = 1 ] && [ -z "$(summary_of "$f.log")" ] &&
            grep -q "LeakSanitizer has encountered a fatal error" "$f.log" || break
        mv "$f.log" "$f.crashed.log"
        echo "   suite $name: LeakSanitizer crashed at exit (no leak report, no summary); running it again"
    done
    echo "   suite $name: done in $((SECONDS - start)) s"
}

# suite_report NAME: prints a suite's output and counts its results.
suite_report() {
    local name=$1 file log rc
    file=$(run_file "$name")
    log=$file.log
    rc=$(rc_of "$file.rc")
    step "$name"
    [ -f "$file.crashed.log" ] && echo "(its first run ended in LeakSanitizer's own crash at exit: $(grep -a -m1 'Tracer caught' "$file.crashed.log"); this is the second)"
    cat "$log"
    local summary s f e
    summary=$(summary_of "$log")
    # busted names each failure on two lines: "Failure → file @ line", its title
    sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -A1 -E '^(Failure|Error) → ' | grep -v '^--$' |
        sed "s/^/[$name] /" >> "$recap"
    s=$(echo "$summary" | sed -nE 's/^([0-9]+) success.*/\1/p')
    f=$(echo "$summary" | sed -nE 's/.* ([0-9]+) failures? .*/\1/p')
    e=$(echo "$summary" | sed -nE 's/.* ([0-9]+) errors? .*/\1/p')
    if [ -z "$s" ]; then
        echo "SUITE DID NOT REPORT: $name (exit $rc)" | tee -a "$recap"
        failed=$((failed + 1))
        status=1
        return
    fi
    passed=$((passed + s))
    failed=$((failed + f + e))
    if [ "$rc" -ne 0 ]; then
        status=1
        # Failures are already counted; a clean count with a non-zero exit is a
        # sanitizer or leak report after the specs: count it as one failure.
        if [ $((f + e)) -eq 0 ]; then
            echo "SUITE EXITED $rc after passing specs (sanitizer or leak report above): $name" | tee -a "$recap"
            failed=$((failed + 1))
        fi
    fi
}

OLDER_LUAS="lua5.3 lua5.2 lua5.1"
# Lua 5.1's core takes HMAC through EVP contexts alone (make HMAC=evp), the
# path a FIPS configuration or an OpenSSL without deprecated APIs gets. It is
# built into build/lua5.1, where `lua5.1 bin/luapay` in a checkout finds it:
# the suite's subprocesses (the command, the REPL) run the suite's core.

step "build (gcc and clang, -Wall -Wextra -Werror; Lua 5.4, LuaJIT, 5.3, 5.2, 5.1, ASan+UBSan)"
build LUA=lua5.4
build LUA=luajit
for lua in lua5.3 lua5.2; do build LUA=$lua; done
build LUA=lua5.1 HMAC=evp BUILD_TAG=lua5.1
build LUA=lua5.4 SANITIZE=1
if command -v clang >/dev/null; then
    build LUA=lua5.4 CC=clang BUILD_TAG=clang-lua5.4
    build LUA=luajit CC=clang BUILD_TAG=clang-luajit
    build LUA=lua5.1 CC=clang BUILD_TAG=clang-lua5.1
else
    echo "clang missing (scripts/setup.sh installs it)" | tee -a "$recap"
    failed=$((failed + 1))
    status=1
fi

# What makes the Lua 5.1 suite the EVP path's: its core imports no raw digest.
check "build/lua5.1 takes HMAC through EVP alone" \
    sh -c '! nm -D --undefined-only build/lua5.1/luapay/core.so | grep -q "SHA512_Init\|SHA256_Init"'

step "luacheck (.luacheckrc; zero warnings)"
check "luacheck" make -s --no-print-directory lint
step "ldoc (config.ld; the API reference builds without a warning)"
check "ldoc" make -s --no-print-directory doc

asan_rt=$(cc -print-file-name=libasan.so)
ASAN_SUITE="Lua 5.4, core under AddressSanitizer + UBSan"
suite_asan() {
    suite_run "$ASAN_SUITE" lua5.4 build/lua5.4-asan LD_PRELOAD="$asan_rt" \
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
}
SUITES=("Lua 5.4" "LuaJIT" "Lua 5.3" "Lua 5.2" "Lua 5.1" "$ASAN_SUITE")
step "the ${#SUITES[@]} busted suites, $LANES at a time; each one's output follows, in order, when all are done"
if [ "$LANES" -ge 2 ]; then
    # two lanes of about ten minutes each (the ASan suite is the longest)
    { suite_run "Lua 5.4" lua5.4 build/lua5.4; suite_run "Lua 5.3" lua5.3 build/lua5.3
      suite_run "Lua 5.1" lua5.1 build/lua5.1; } &
    { suite_run "LuaJIT" luajit build/luajit; suite_run "Lua 5.2" lua5.2 build/lua5.2; suite_asan; } &
    wait
else
    suite_run "Lua 5.4" lua5.4 build/lua5.4
    suite_run "LuaJIT" luajit build/luajit
    for lua in $OLDER_LUAS; do suite_run "Lua ${lua#lua}" "$lua" "build/$lua"; done
    suite_asan
fi
for name in "${SUITES[@]}"; do suite_report "$name"; done

step "fuzz (libFuzzer + ASan + UBSan, ${FUZZ_CI_SECONDS:-20} s per target, $LANES at a time; make fuzz runs longer)"
if build fuzz-build; then
    targets=()
    for target in fuzz/targets/*.lua; do targets+=("$(basename "$target" .lua)"); done
    fuzz_lane() { # fuzz_lane LANE: every LANES-th target from LANE on
        local i f
        for (( i = $1; i < ${#targets[@]}; i += LANES )); do
            f=$(run_file "fuzz ${targets[i]}")
            scripts/fuzz.sh "${FUZZ_CI_SECONDS:-20}" "${targets[i]}" >"$f.log" 2>&1
            echo $? >"$f.rc"
        done
    }
    for (( lane = 0; lane < LANES; lane++ )); do fuzz_lane $lane & done
    wait
    for target in "${targets[@]}"; do
        f=$(run_file "fuzz $target")
        cat "$f.log"
        check "fuzz $target" test "$(rc_of "$f.rc")" -eq 0
    done
fi

# The hand harnesses, a few seconds each: the pattern fast path against
# regexec (exits non-zero on a disagreement), the scratch slots against the
# C stack, and the validator's random run with its oracles (core under
# ASan + UBSan, and LuaJIT).
step "hand harnesses (fuzz/pattern_diff.c, fuzz/scratch_frames.c, fuzz/validate_fuzz.lua)"
mkdir -p build/fuzz
if cc -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -D_GNU_SOURCE -Icsrc \
    $(pkg-config --cflags lua5.4) fuzz/pattern_diff.c csrc/pattern.c -o build/fuzz/pattern_diff; then
    check "pattern_diff" build/fuzz/pattern_diff 300000
else
    echo "BUILD FAILED: fuzz/pattern_diff.c" | tee -a "$recap"
    failed=$((failed + 1))
    status=1
fi
if cc -O2 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -D_GNU_SOURCE -Icsrc \
    $(pkg-config --cflags lua5.4) fuzz/scratch_frames.c csrc/buf.c $(pkg-config --libs lua5.4) -o build/fuzz/scratch_frames; then
    check "scratch_frames" build/fuzz/scratch_frames
else
    echo "BUILD FAILED: fuzz/scratch_frames.c" | tee -a "$recap"
    failed=$((failed + 1))
    status=1
fi
check "validate_fuzz (ASan + UBSan)" env LD_PRELOAD="$asan_rt" ASAN_OPTIONS=detect_leaks=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 LUAPAY_BUILD=build/lua5.4-asan SEED=1 ITERS=20000 \
    lua5.4 fuzz/validate_fuzz.lua
check "validate_fuzz (LuaJIT)" env LUAPAY_BUILD=build/luajit SEED=2 ITERS=20000 luajit fuzz/validate_fuzz.lua

if [ -s "$recap" ]; then
    step "what failed (each is shown in full above)"
    cat "$recap"
fi
echo
echo "$passed passed, $failed failed"
exit $status
