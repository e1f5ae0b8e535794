--- luapay.monotime: the monotonic clock luapay.http's deadlines are read
-- on, in nginx too (it never jumps; ngx.update_time would stop LuaJIT's
-- traces).
local core = require "luapay.core"

local monotime = {}

local has_ffi, ffi = pcall(require, "ffi")
local usable = has_ffi and ffi.os == "Linux" and ffi.abi("64bit")
-- declared under names of our own: another module's declaration of
-- clock_gettime or struct timespec cannot clash with these
if usable and not pcall(ffi.typeof, "luapay_timespec") then
    ffi.cdef [[
        typedef struct { long tv_sec; long tv_nsec; } luapay_timespec;
        int luapay_clock_gettime(int clock, luapay_timespec *ts) __asm__("clock_gettime");
    ]]
end
local C, CLOCK_MONOTONIC = usable and ffi.C, 1
local ts = usable and ffi.new("luapay_timespec")

--- monotime.now() -> seconds (a float) since an arbitrary point:
-- core.monotime, except under LuaJIT on 64-bit Linux, where the same
-- clock_gettime(CLOCK_MONOTONIC) is called through the FFI. A JIT-compiled
-- trace calls that in place, where a call to a C function of the core ends
-- the trace and starts another after it (a request through the cosocket
-- transport reads the clock about eight times).
function monotime.now()
    C.luapay_clock_gettime(CLOCK_MONOTONIC, ts)
    return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end
if not usable then monotime.now = core.monotime end

return monotime
