-- LuaJIT traces on the nginx request path: after a warm-up, N requests to
-- the sandbox's /b/proxy (one provider-style call through luapay.http and
-- the cosocket transport) with jit.v on; prints the trace aborts it logged
-- in luapay's files ("aborts <count>", the count of recordings a finalizer
-- or hook interrupted, then one line per distinct reason).
--   lua5.4 bench/jit_bench.lua [N]
local core = require "luapay.core"
local sandbox = require "luapay.sandbox"

local N = tonumber(arg[1]) or 2000
local sb = assert(sandbox.start{ routes = { ["/b/"] = "handlers" }, lua_path = "bench/?.lua" })
local client = core.http_client{}
local function get(path)
    local res = assert(client:request{ url = sb.url .. "/b/" .. path, idempotent = true })
    assert(res.status == 200, res.body)
end
for _ = 1, 200 do get("proxy") end -- warm-up: traces recorded, hot loops found
local log = os.tmpname()
get("jitv?file=" .. log)
for _ = 1, N do get("proxy") end
client:close()
assert(sb:stop())

local f = assert(io.open(log))
local text = f:read("*a")
f:close()
if os.getenv("JIT_LOG") then io.stderr:write(text) end
os.remove(log)
-- jit.v names files without their directory: luapay's are known by name,
-- but for names the sandbox's files share (its journal.lua, its fakes),
-- which jit.v cannot tell apart; none of those is on this request path.
local ours = {}
local p = io.popen("find lua/luapay -name '*.lua' -not -path '*/sandbox/*' -printf '%f\\n'")
for name in p:lines() do ours[name] = true end
p:close()
p = io.popen("find lua/luapay/sandbox -name '*.lua' -printf '%f\\n'")
for name in p:lines() do ours[name] = nil end
p:close()
-- "error thrown or hook called during recording" is LuaJIT stopping a
-- recording because a finalizer or hook ran inside it: where a garbage
-- cycle happens to fall, not the code's shape (the same line records at
-- other times). Counted apart; the requests themselves raise no error.
local INTERRUPTED = "error thrown or hook called during recording"
local reasons, aborts, interrupted = {}, 0, 0
for line in text:gmatch("[^\n]+") do
    local file = line:match("^%[TRACE %-%-%- ([^:]+):")
    if file and ours[file] then
        if line:find(INTERRUPTED, 1, true) then
            interrupted = interrupted + 1
        else
            aborts = aborts + 1
            local why = line:gsub("^%[TRACE %-%-%- ", ""):gsub("%]$", "")
            reasons[why] = (reasons[why] or 0) + 1
        end
    end
end
print("aborts " .. aborts)
print("interrupted by a finalizer or hook " .. interrupted)
local list = {}
for why, n in pairs(reasons) do list[#list + 1] = ("%5d  %s"):format(n, why) end
table.sort(list, function(a, b) return a > b end)
for _, l in ipairs(list) do print(l) end
