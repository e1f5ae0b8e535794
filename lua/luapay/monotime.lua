--- luapay.monotime() -> seconds (a float) on the monotonic clock since an
-- arbitrary point; it never jumps. core.monotime, except under LuaJIT on
-- 64-bit Linux, where the same clock_gettime(CLOCK_MONOTONIC) is called
-- through the FFI: a JIT-compiled trace calls it in place, where a call to
-- a C function of the core ends the trace and starts another after it (the
-- request pipeline reads the clock about eight times a request in nginx).
local core = require "luapay.core"

local ok, ffi = pcall(require, "ffi")
if not (ok and ffi.os == "Linux" and ffi.abi("64bit")) then return core.monotime end
-- declared under names of our own: another module's declaration of
-- clock_gettime or struct timespec cannot clash with these
if not pcall(ffi.typeof, "luapay_timespec") then
    ffi.cdef [[
        typedef struct { long tv_sec; long tv_nsec; } luapay_timespec;
        int luapay_clock_gettime(int clock, luapay_timespec *ts) __asm__("clock_gettime");
    ]]
end
local C, CLOCK_MONOTONIC = ffi.C, 1
local ts = ffi.new("luapay_timespec")
local tonumber = tonumber

return function()
    C.luapay_clock_gettime(CLOCK_MONOTONIC, ts)
    return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end
