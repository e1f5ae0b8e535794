-- Nightly reconciliation: export one day from beGateway (DWH export) and
-- Trustly North America (List Payments), match every settled payment
-- against the shop's orders, and print what does not match. Runs against
-- the sandbox's fakes, which it starts and stops itself:
--
--   LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build/lua5.4/?.so;;" lua5.4 examples/reconcile.lua [YYYY-MM-DD]
--
-- Both providers stream page by page: the day is never held in memory,
-- only the shop's orders are. A failure mid-way would be resumed from the
-- error's cursor (err.resume) instead of starting the day again.
local luapay = require "luapay"
local sandbox = require "luapay.sandbox"
local dataset = require "luapay.sandbox.dataset"
local core = luapay.core

local DAY = arg and arg[1] or "2024-06-03"
assert(DAY:match("^%d%d%d%d%-%d%d%-%d%d$"), "usage: reconcile.lua [YYYY-MM-DD]")

local sb = assert(sandbox.start{ routes = {
    ["/begateway/"] = "luapay.sandbox.begateway",
    ["/trustly_na/"] = "luapay.sandbox.trustly_na",
} })

local bg = luapay.begateway.new{ psp_id = "1", secret = "begateway-dwh-secret", dwh_url = sb.url .. "/begateway" }
local tna = luapay.trustly_na.new{ access_id = "luapay-access-id", access_key = "luapay-access-key", base_url = sb.url .. "/trustly_na" }

local day_start = assert(dataset.parse_iso(DAY .. "T00:00:00"))
local day_end = day_start + 86400000 - 1

local money = luapay.money.format

---------------------------------------------------------------------------
-- The shop's orders for the day. In a real shop this is a database query;
-- here they come from the sandbox's data set, with a few planted
-- differences for the reconciliation to find.
---------------------------------------------------------------------------
local orders = dataset.shop_orders(day_start, day_end)
local by_ref = {}
for _, o in ipairs(orders) do by_ref[o.ref] = o end

local unmatched = {}
local function report(kind, ref, detail)
    unmatched[#unmatched + 1] = ("  %-22s %-11s %s"):format(kind, ref, detail)
end

-- JSON numbers decode as floats under Lua 5.4: compare amounts as integers.
local function integer(v)
    if math.tointeger then return math.tointeger(v) end
    return v
end

local function match(provider, ref, amount, currency)
    local order = by_ref[ref]
    if not order then
        report("payment without order", ref, provider .. " " .. money(amount, currency))
    elseif order.amount ~= amount or order.currency ~= currency then
        report("amount differs", ref,
            ("order %s, %s paid %s"):format(money(order.amount, order.currency), provider, money(amount, currency)))
        order.matched = true
    else
        order.matched = true
    end
end

local function fail(provider, err)
    io.stderr:write(provider, " export stopped: ", tostring(err), "\n")
    sb:stop()
    os.exit(1)
end

-- beGateway: the day's payments and captures, 1000 per page.
local bg_seen, bg_paid = 0, 0
for tx, err in bg:export{
    date_from = DAY .. "T00:00:00", date_to = DAY .. "T23:59:59",
    filter = { type = { "payment", "capture" } },
    response_parameters = { "main" }, limit = 1000,
} do
    if not tx then fail("beGateway", err) end
    bg_seen = bg_seen + 1
    if tx.status == "successful" then
        bg_paid = bg_paid + 1
        match("beGateway", tx.tracking_id, integer(tx.amount), tx.currency)
    end
end

-- Trustly NA: the day's payments whose bank authorization finished.
local tna_seen = 0
for p, err in tna:payments{
    createdAt = { start = day_start, ["end"] = day_end },
    ["authorization.status"] = { "Completed" },
} do
    if not p then fail("Trustly NA", err) end
    tna_seen = tna_seen + 1
    match("Trustly NA", p.merchantReference, core.to_minor(p.paid, p.currency), p.currency)
end

for _, o in ipairs(orders) do
    if not o.matched then report("order without payment", o.ref, money(o.amount, o.currency)) end
end

print(("reconciliation for %s"):format(DAY))
print(("  beGateway   %4d payments and captures streamed, %d successful"):format(bg_seen, bg_paid))
print(("  Trustly NA  %4d finished payments streamed"):format(tna_seen))
print(("  orders      %4d, unmatched %d"):format(#orders, #unmatched))
if #unmatched > 0 then
    print()
    print("UNMATCHED")
    for _, line in ipairs(unmatched) do print(line) end
end
assert(sb:stop())
