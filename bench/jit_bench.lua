-- LuaJIT traces on the nginx request path: after a warm-up, N requests of
-- each kind with jit.v on; prints the trace aborts it logged in luapay's
-- files ("aborts <count>", then the counts of three kinds told apart: the
-- recordings a finalizer or hook interrupted, those returning into the
-- transport's pcall (into_pcall), a short loop's on a provider call
-- (loop_shape); then one line per distinct reason of any of them but the
-- first, with the request it came from; a side trace's too). The requests: /b/proxy (one provider-style call through
-- luapay.http and the cosocket transport) and /b/notify/<provider> (one
-- notification of each provider verified and answered by its client, as a
-- merchant's nginx takes it: bench/notifications.lua), and /b/call/<provider>
-- (calls through the providers' clients to their fakes: Trustly's Balance
-- and Deposit, ecommpay's status and sale, TrustPay's API Banking account
-- list).
--   lua5.4 bench/jit_bench.lua [N]
local core = require "luapay.core"
local sandbox = require "luapay.sandbox"
local notifications = require("notifications").build()

local N = tonumber(arg[1]) or 2000
local client = core.http_client{}

-- The providers' fakes, in a sandbox of their own (their files share the
-- providers' names, which jit.v does not tell apart), and what a client of
-- each needs; ecommpay's status call asks about a payment made here first.
local fakes = assert(sandbox.start{ routes = require("luapay.sandbox.providers").routes() })
local trustly_fake = require("luapay.sandbox.trustly").describe(fakes.url .. "/trustly")
local trustly_opts = { base_url = trustly_fake.base_url }
for k, v in pairs(trustly_fake.credentials) do trustly_opts[k] = v end
local ecommpay_fake, trustpay_fake = require "luapay.sandbox.ecommpay", require "luapay.sandbox.trustpay"
local ecommpay_opts = { project_id = ecommpay_fake.PROJECT_ID, secret = ecommpay_fake.SECRET,
    base_url = fakes.url .. "/ecommpay" }
local function sale_request(payment_id)
    return {
        general = { payment_id = payment_id, merchant_callback_url = fakes.url .. "/_sandbox/none" },
        payment = { amount = 2500, currency = "EUR", description = "Order " .. payment_id },
        customer = { id = "customer-1", ip_address = "198.51.100.7", first_name = "Eva", last_name = "Lind",
            email = "eva@example.se", country = "SE", language = "sv" },
        return_url = { success = "https://shop.example/ok", decline = "https://shop.example/no" },
    }
end
local payment_id = "jit-bench-1"
assert(require("luapay.ecommpay").new(ecommpay_opts):sale("trustly", sale_request(payment_id)))
local trustpay_opts = { account_id = trustpay_fake.DEFAULTS.account_id, secret = trustpay_fake.DEFAULTS.secret,
    base_url = fakes.url .. "/trustpay", banking = { username = trustpay_fake.DEFAULTS.banking.username,
        password = trustpay_fake.DEFAULTS.banking.password, base_url = fakes.url .. "/trustpay" } }
local calls = {
    trustly_balance = { provider = "trustly", client = trustly_opts },
    trustly_deposit = { provider = "trustly", client = trustly_opts, arg = {
        NotificationURL = fakes.url .. "/_sandbox/none", EndUserID = "customer-1",
        Attributes = { Amount = 10300, Currency = "SEK", Firstname = "John", Lastname = "Doe", Email = "j@example.com",
            Country = "SE", Locale = "sv_SE", SuccessURL = "https://shop.example/ok",
            FailURL = "https://shop.example/no" } } },
    ecommpay_status = { provider = "ecommpay", client = ecommpay_opts, arg = payment_id },
    ecommpay_sale = { provider = "ecommpay", client = ecommpay_opts, arg = sale_request("") },
    trustpay_accounts = { provider = "trustpay", client = trustpay_opts },
}

local sb = assert(sandbox.start{ routes = { ["/b/"] = "handlers" }, lua_path = "bench/?.lua",
    config = { notify = notifications, call = calls } })
local function get(path)
    local res = assert(client:request{ url = sb.url .. "/b/" .. path, idempotent = true })
    assert(res.status == 200, res.body)
end

local function sorted_keys(t)
    local keys = {}
    for k in pairs(t) do keys[#keys + 1] = k end
    table.sort(keys)
    return keys
end

local REQUESTS = { { name = "proxy", send = function() get("proxy") end } }
for _, name in ipairs(sorted_keys(notifications)) do
    local n = notifications[name]
    local url = sb.url .. "/b/notify/" .. name .. (n.query and "?" .. n.query or "")
    REQUESTS[#REQUESTS + 1] = { name = "notify/" .. name, send = function()
        local res = assert(client:request{ method = n.method, url = url, body = n.body, headers = n.headers,
            idempotent = true })
        -- 200: verified and recorded (a refused one would be another path)
        assert(res.status == 200, name .. ": HTTP " .. res.status .. " " .. tostring(res.body))
    end }
end

for _, name in ipairs(sorted_keys(calls)) do
    REQUESTS[#REQUESTS + 1] = { name = "call/" .. name, send = function() get("call/" .. name) end }
end

for _, r in ipairs(REQUESTS) do -- warm-up: traces recorded, hot loops found
    for _ = 1, 200 do r.send() end
end
local logs = {}
for i, r in ipairs(REQUESTS) do
    logs[i] = os.tmpname()
    get("jitv?file=" .. logs[i]) -- os.tmpname's: nothing to escape
    for _ = 1, N do r.send() end
end
get("jitv?file=/dev/null")
client:close()
assert(sb:stop())
assert(fakes:stop())

-- jit.v names files without their directory: luapay's are known by name.
-- The sandbox's own files that share a name (journal.lua, providers.lua)
-- run in this nginx and are not counted; its provider fakes, which share
-- the providers' names, run in the other sandbox (routes here: /b/ alone),
-- so a trace in trustly.lua is luapay.trustly's.
local ours = {}
local p = io.popen("find lua/luapay -name '*.lua' -not -path '*/sandbox/*' -printf '%f\\n'")
for name in p:lines() do ours[name] = true end
p:close()
local fake_files = {}
for _, name in ipairs(require("luapay.providers").NAMES) do fake_files[name .. ".lua"] = true end
p = io.popen("find lua/luapay/sandbox -name '*.lua' -printf '%f\\n'")
for name in p:lines() do
    if not fake_files[name] then ours[name] = nil end
end
p:close()
-- "error thrown or hook called during recording" is LuaJIT stopping a
-- recording because a finalizer or hook ran inside it: where a garbage
-- cycle happens to fall, not the code's shape (the same line records at
-- other times). Counted apart; the requests themselves raise no error.
local INTERRUPTED = "error thrown or hook called during recording"
-- A stitched trace (the code after a C function LuaJIT does not compile,
-- such as a cosocket method) that goes on to return out of the cosocket
-- transport returns into the pcall http.lua calls it under (a transport
-- that raises is a network failure of unknown reach, not an error in the
-- merchant's handler): LuaJIT cannot record a return into a pcall frame
-- from there. What it leaves to the interpreter is the few instructions
-- between that C call and the return. Counted apart, as the price of the
-- pcall.
local function into_pcall(line)
    return line:find("^%[TRACE %-%-%- %(%d+/stitch%) cosocket%.lua:%d+ %-%- NYI: return to lower frame") ~= nil
end
-- On a provider call (call/...), a short loop over the request's or the
-- answer's fields (headers, a list in an answer) may abort a recording
-- that enters or leaves it: LuaJIT's choice of where a trace starts and
-- ends, the loop itself compiled in a trace of its own. Counted apart
-- there; anything else aborted (NYI: code left to the interpreter for
-- good) counts everywhere, and a loop's abort too on the proxy and
-- notification paths, which have none.
local function loop_shape(r, line)
    return r.name:find("^call/") ~= nil and (line:find("inner loop in root trace", 1, true) ~= nil
        or line:find("leaving loop in root trace", 1, true) ~= nil)
end
local reasons, aborts, interrupted, stitched, loops = {}, 0, 0, 0, 0
for i, r in ipairs(REQUESTS) do
    local f = assert(io.open(logs[i]))
    local text = f:read("*a")
    f:close()
    os.remove(logs[i])
    if os.getenv("JIT_LOG") then io.stderr:write("== ", r.name, "\n", text) end
    for line in text:gmatch("[^\n]+") do
        -- a side trace's abort names its parent first: "(12/3) file:line"
        local file = line:gsub("^%[TRACE %-%-%- %(%d+/%w+%) ", "[TRACE --- "):match("^%[TRACE %-%-%- ([^:]+):")
        if file and ours[file] then
            if line:find(INTERRUPTED, 1, true) then
                interrupted = interrupted + 1
            else
                if into_pcall(line) then
                    stitched = stitched + 1
                elseif loop_shape(r, line) then
                    loops = loops + 1
                else
                    aborts = aborts + 1
                end
                local why = r.name .. ": " .. line:gsub("^%[TRACE %-%-%- ", ""):gsub("%]$", "")
                reasons[why] = (reasons[why] or 0) + 1
            end
        end
    end
end
print("aborts " .. aborts)
print("interrupted by a finalizer or hook " .. interrupted)
print("stitched after a cosocket call, returning into the transport's pcall " .. stitched)
print("a loop's start or end on a provider call " .. loops)
local list = {}
for why, n in pairs(reasons) do list[#list + 1] = ("%5d  %s"):format(n, why) end
table.sort(list, function(a, b) return a > b end)
for _, l in ipairs(list) do print(l) end
