--- luapay.sandbox.dataset: the generated data set behind the reporting
-- fakes (beGateway's DWH export, Trustly North America's List Payments).
--
-- Every record is a pure function of (seed, index): the fakes index it once
-- per worker, and a spec computes the same records to know what a stream or
-- a filter must give. Nothing here uses math.random, whose sequence differs
-- between Lua 5.4 and LuaJIT: a Park-Miller generator keyed per record and
-- per field family gives the same numbers in both (every product stays below
-- 2^53, exact in LuaJIT's doubles).
--
--   local dataset = require "luapay.sandbox.dataset"
--   local ds = dataset.new{ scale = 1 }         -- 2,500 live transactions per provider
--   ds.bg_total, ds:bg_core(i), ds:begateway(i [, groups])
--   ds.tna_total, ds:trustly_na(i)
--
-- Times are integers in milliseconds since the Unix epoch. The period starts
-- 2024-06-01T00:00:00Z; record i of a provider lies in slot i of 241.92 s
-- (7 days per 2,500 records), so `scale = 10` gives ten times the records
-- over ten times the period at the same density. About one record in ten
-- shares its created_at with the one before it, so cursors must order ties
-- by uid.
local core = require "luapay.core"

local dataset = {}

dataset.SEED = 20240601
dataset.COUNT = 2500
dataset.TEST_PER_COUNT = 50            -- beGateway test-mode transactions per 2,500 live ones
dataset.SLOT_MS = 241920               -- 7 days / 2,500
dataset.START_MS = 1717200000000       -- 2024-06-01T00:00:00Z

local M = 2147483647
local floor = math.floor

local function idiv(a, b) return floor(a / b) end

-- A generator for one family of fields of one record.
local function stream(seed, i, salt)
    local x = (seed + i * 2654435761 + salt * 97531) % M
    if x == 0 then x = 1 end
    local function nxt()
        x = (x * 48271) % M
        return x
    end
    nxt()
    nxt()
    return nxt
end

local function int(r, a, b) return a + r() % (b - a + 1) end

local function pick(r, list) return list[1 + r() % #list] end

-- weighted: { {value, weight}, ... } with weights summing to 100
local function weighted(r, list)
    local n = r() % 100
    for _, e in ipairs(list) do
        if n < e[2] then return e[1] end
        n = n - e[2]
    end
    return list[#list][1]
end

local function hex(r, digits)
    local parts = {}
    while digits > 0 do
        local n = math.min(4, digits)
        parts[#parts + 1] = ("%0" .. n .. "x"):format(r() % (16 ^ n))
        digits = digits - n
    end
    return table.concat(parts)
end

local function uuid(r)
    return ("%s-%s-4%s-%x%s-%s"):format(hex(r, 8), hex(r, 4), hex(r, 3), 8 + r() % 4, hex(r, 3), hex(r, 12))
end

---------------------------------------------------------------------------
-- Time: civil dates <-> days since the epoch (H. Hinnant's algorithms)
---------------------------------------------------------------------------

local function days_from_civil(y, m, d)
    if m <= 2 then y = y - 1 end
    local era = idiv(y, 400)
    local yoe = y - era * 400
    local mp = (m + 9) % 12
    local doy = idiv(153 * mp + 2, 5) + d - 1
    local doe = yoe * 365 + idiv(yoe, 4) - idiv(yoe, 100) + doy
    return era * 146097 + doe - 719468
end
dataset.days_from_civil = days_from_civil

local function civil_from_days(z)
    z = z + 719468
    local era = idiv(z, 146097)
    local doe = z - era * 146097
    local yoe = idiv(doe - idiv(doe, 1460) + idiv(doe, 36524) - idiv(doe, 146096), 365)
    local y = yoe + era * 400
    local doy = doe - (365 * yoe + idiv(yoe, 4) - idiv(yoe, 100))
    local mp = idiv(5 * doy + 2, 153)
    local d = doy - idiv(153 * mp + 2, 5) + 1
    local m = mp < 10 and mp + 3 or mp - 9
    if m <= 2 then y = y + 1 end
    return y, m, d
end

--- dataset.iso(ms [, plain]) -> "2024-06-28T14:21:12.792000Z" (the DWH's
-- format), or "2024-06-28T14:21:12" with plain.
function dataset.iso(ms, plain)
    local s = idiv(ms, 1000)
    local frac = ms - s * 1000
    local days = idiv(s, 86400)
    local rem = s - days * 86400
    local y, m, d = civil_from_days(days)
    local hh, mm, ss = idiv(rem, 3600), idiv(rem % 3600, 60), rem % 60
    if plain then return ("%04d-%02d-%02dT%02d:%02d:%02d"):format(y, m, d, hh, mm, ss) end
    return ("%04d-%02d-%02dT%02d:%02d:%02d.%03d000Z"):format(y, m, d, hh, mm, ss, frac)
end

--- dataset.parse_iso(s) -> ms, whole_second | nil. Accepts
-- YYYY-MM-DDThh:mm:ss with an optional fraction (sub-millisecond digits
-- dropped) and an optional Z; whole_second is true without a fraction.
function dataset.parse_iso(s)
    if type(s) ~= "string" then return nil end
    local y, mo, d, h, mi, se, rest = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)T(%d%d):(%d%d):(%d%d)(.*)$")
    if not y then return nil end
    local frac = rest:match("^%.(%d+)Z?$")
    if not frac and rest ~= "" and rest ~= "Z" then return nil end
    local ms = 0
    if frac then ms = tonumber((frac .. "000"):sub(1, 3)) end
    y, mo, d, h, mi, se = tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(se)
    if mo < 1 or mo > 12 or d < 1 or d > 31 or h > 23 or mi > 59 or se > 59 then return nil end
    local days = days_from_civil(y, mo, d)
    local cy, cm = civil_from_days(days)
    if cy ~= y or cm ~= mo then return nil end -- 2024-02-30
    return ((days * 86400 + h * 3600 + mi * 60 + se) * 1000 + ms), frac == nil
end

---------------------------------------------------------------------------
-- The data set
---------------------------------------------------------------------------

local DS = {}
DS.__index = DS

--- dataset.new{seed, count, scale} -> ds: count (2,500) live records per
-- provider, times scale (1), over scale times the period.
function dataset.new(opts)
    opts = opts or {}
    local rep = opts.scale or 1
    local count = opts.count or dataset.COUNT
    local self = setmetatable({
        seed = opts.seed or dataset.SEED,
        scale = rep,
        bg_live = count * rep,
        bg_test = idiv(count * dataset.TEST_PER_COUNT, dataset.COUNT) * rep,
        tna_total = count * rep,
        start_ms = dataset.START_MS,
    }, DS)
    self.bg_total = self.bg_live + self.bg_test
    self.end_ms = self.start_ms + count * rep * dataset.SLOT_MS
    return self
end

-- One data set per scale and nginx worker, for the fakes.
local shared = {}
function dataset.shared(scale)
    scale = scale or 1
    shared[scale] = shared[scale] or dataset.new{ scale = scale }
    return shared[scale]
end

-- The records' cores of each provider: how many, and the method giving one.
local CORES = { begateway = { "bg_total", "bg_core" }, trustly_na = { "tna_total", "tna_core" } }

--- ds:sorted(provider, key, id) -> the cores of provider ("begateway",
-- "trustly_na") that have key, sorted by key then id. Each core and each
-- order is built once per data set (a fake's list pages through them).
function DS:sorted(provider, key, id)
    self.sorted_cache = self.sorted_cache or {}
    local name = provider .. "\0" .. key .. "\0" .. id
    local list = self.sorted_cache[name]
    if list then return list end
    self.cores_cache = self.cores_cache or {}
    local cores = self.cores_cache[provider]
    if not cores then
        local total, make = CORES[provider][1], CORES[provider][2]
        cores = {}
        for i = 1, self[total] do cores[i] = self[make](self, i) end
        self.cores_cache[provider] = cores
    end
    list = {}
    for _, c in ipairs(cores) do
        if c[key] ~= nil then list[#list + 1] = c end
    end
    table.sort(list, function(a, b)
        if a[key] ~= b[key] then return a[key] < b[key] end
        return a[id] < b[id]
    end)
    self.sorted_cache[name] = list
    return list
end

-- Creation time of live record i (1-based) in its slot; ties copy the
-- record before.
local function slot_time(self, salt, i, slot_ms)
    while true do
        local r = stream(self.seed, i, salt)
        local tie = i > 1 and r() % 10 == 0
        if not tie then return self.start_ms + (i - 1) * slot_ms + r() % slot_ms end
        i = i - 1
    end
end

---------------------------------------------------------------------------
-- beGateway
---------------------------------------------------------------------------

local BG_TYPES = {
    { "payment", 58 }, { "authorization", 8 }, { "capture", 6 }, { "refund", 10 }, { "payout", 6 },
    { "void", 3 }, { "credit", 3 }, { "chargeback", 2 }, { "tokenization", 4 },
}
local BG_STATUSES = { { "successful", 72 }, { "failed", 14 }, { "pending", 7 }, { "incomplete", 4 }, { "error", 3 } }
local BG_CURRENCIES = { { "EUR", 50 }, { "USD", 25 }, { "GBP", 10 }, { "PLN", 10 }, { "JPY", 5 } }
local BG_SHOPS = { -- merchant_id, shop_id
    { 1245, 1871 }, { 1245, 1871 }, { 1245, 1872 }, { 1283, 1932 },
}
local BG_GATEWAYS = {
    { id = 4146, type = "SWPAlternative", vendor = "beyag", agent_id = nil, method = "alternative" },
    { id = 5102, type = "BankTransfer", vendor = "beyag", agent_id = 1058, method = "alternative" },
    { id = 3011, type = "Acquiring", vendor = "gateway", agent_id = 1058, method = "credit_card" },
    { id = 3012, type = "Acquiring3DS", vendor = "gateway", agent_id = nil, method = "credit_card" },
}
dataset.BG_GATEWAYS = BG_GATEWAYS
local MESSAGES = {
    successful = "Successfully processed", failed = "Payment was declined",
    pending = "Transaction was initialized.", incomplete = "Transaction is incomplete",
    error = "Processing error",
}
local CODES = { successful = "S.0000", failed = "F.0101", pending = nil, incomplete = "I.0001", error = "E.0200" }
local FIRST = { "Maren", "John", "Ada", "Liam", "Olga", "Ruta", "Jonas", "Eva", "Mikko", "Sara" }
local LAST = { "Lehner", "Doe", "Kowalska", "Berg", "Petrauskas", "Novak", "Smith", "Virtanen" }
local CITIES = { { "Vilnius", "LT" }, { "Riga", "LV" }, { "Warsaw", "PL" }, { "Berlin", "DE" }, { "Austin", "US" } }
local BRANDS = { { "visa", "4" }, { "master", "5" } }

--- The fields the fake filters and sorts on, cheap to compute for every
-- record: {i, uid, test, created_at, updated_at, paid_at|nil, type, status,
-- currency, amount, merchant_id, shop_id, gateway_id, method_type}.
function DS:bg_core(i)
    local test = i > self.bg_live
    local created
    if test then
        local j = i - self.bg_live
        local slot = idiv((self.end_ms - self.start_ms), self.bg_test)
        local r = stream(self.seed, i, 11)
        created = self.start_ms + (j - 1) * slot + r() % slot
    else
        created = slot_time(self, 10, i, dataset.SLOT_MS)
    end
    local r = stream(self.seed, i, 1)
    local ttype = weighted(r, BG_TYPES)
    local status = weighted(r, BG_STATUSES)
    local currency = weighted(r, BG_CURRENCIES)
    local amount = currency == "JPY" and int(r, 1, 500) * 100 or int(r, 100, 250000)
    local shop = pick(r, BG_SHOPS)
    local gw = pick(r, BG_GATEWAYS)
    local updated = created + int(r, 1000, 7200000)
    local paid = nil
    if status == "successful" and ttype ~= "tokenization" then paid = created + int(r, 500, 600000) end
    return {
        i = i, uid = uuid(stream(self.seed, i, 2)), test = test,
        created_at = created, updated_at = updated, paid_at = paid,
        type = ttype, status = status, currency = currency, amount = amount,
        merchant_id = shop[1], shop_id = shop[2], gateway_id = gw.id, method_type = gw.method,
        tracking_id = ("BG-%06d"):format(i),
    }
end

local function gateway_of(id)
    for _, g in ipairs(BG_GATEWAYS) do
        if g.id == id then return g end
    end
end

local NULL = core.null -- equals cjson.null

local function n(v)
    if v == nil then return NULL end
    return v
end

local function iso_or_null(ms)
    if ms == nil then return NULL end
    return dataset.iso(ms)
end

local PARENT_TYPES = { capture = true, void = true, refund = true, chargeback = true }
local COMMISSION_TYPES = {
    authorization = true, capture = true, void = true, payment = true, payout = true,
    refund = true, chargeback = true, p2p = true,
}

local GROUPS = {}

GROUPS.shop = function(_, c)
    return {
        business_category_id = "5", business_category_key = "it", city = NULL,
        company_name = "Demo Company", contact_email = "demo_company@example.com",
        contact_phone = "1234567890", country = NULL, created_at = "2024-01-05T10:54:08.201000Z",
        enabled = true, id = c.shop_id, legal_address = NULL, mailing_address = NULL,
        merchant_id = c.merchant_id, name = "Shop " .. c.shop_id, postal_code = NULL, psp_id = 1,
        updated_at = "2024-05-26T10:46:16.933000Z", url = "https://shop" .. c.shop_id .. ".example.com",
    }
end

GROUPS.merchant = function(_, c)
    return {
        bank_id = 1854, city = "Vilnius", company_name = "Merchant " .. c.merchant_id, country = "LT",
        created_at = "2023-11-30T12:35:39.928000Z", email = "merchant" .. c.merchant_id .. "@example.com",
        enabled = true, id = c.merchant_id, legal_address = NULL, name = "Merchant " .. c.merchant_id,
        postal_code = NULL, psp_id = 1, updated_at = "2024-02-12T07:19:41.112000Z",
    }
end

GROUPS.gateway = function(_, c)
    local g = gateway_of(c.gateway_id)
    return { agent_id = n(g.agent_id), connection_type = NULL, id = g.id, note = NULL, type = g.type, vendor = g.vendor }
end

GROUPS.provider_raw = function(self, c)
    local r = stream(self.seed, c.i, 3)
    return {
        amount = c.amount, auth_code = ("%06d"):format(r() % 1000000), bank_code = c.status == "successful" and "00" or "05",
        currency = c.currency, dynamic_billing_descriptor = "LUAPAY DEMO", message = MESSAGES[c.status],
        ref_id = tostring(r() % 10000000), rrn = tostring(r() % 1000000000), status = c.status,
    }
end

GROUPS.links = function(_, c)
    return {
        notification_url = NULL,
        receipt_url = "https://backoffice.example.com/customer/transactions/" .. c.uid,
        redirect_url = "https://gateway.example.com/process/" .. c.uid,
        return_url = NULL,
    }
end

GROUPS.three_d_secure_verification = function(self, c)
    if c.method_type ~= "credit_card" then return NULL end
    local ok = c.status == "successful"
    return {
        acs_url = NULL, cavv = ok and "AJkBCHWHCAAAACcQkzEgdThBmSg=" or NULL, cavv_algorithm = NULL, creq = NULL,
        eci = ok and "05" or "07", fail_reason = NULL, md = NULL,
        message = ok and "Authentication Successful" or "Authentication Failed", method_process_url = NULL,
        pa_req = NULL, pa_res_url = "https://gateway.example.com/process/" .. c.uid, pa_status = ok and "Y" or "N",
        status = ok and "successful" or "failed", ve_status = "Y", xid = uuid(stream(self.seed, c.i, 4)),
    }
end

local function card(self, c, salt)
    local r = stream(self.seed, c.i, salt)
    local brand = pick(r, BRANDS)
    local bin = brand[2] .. ("%05d"):format(r() % 100000)
    return {
        bin = bin, bin_8 = bin .. ("%02d"):format(r() % 100), brand = brand[1],
        exp_month = int(r, 1, 12), exp_year = int(r, 2025, 2030), first_1 = brand[2],
        holder = pick(r, FIRST):upper() .. " " .. pick(r, LAST):upper(), issuer_bank = NULL,
        issuer_country = "LT", last_4 = ("%04d"):format(r() % 10000), product = NULL,
        stamp = hex(r, 64), sub_brand = NULL, token = NULL, token_provider = NULL,
    }
end

GROUPS.method = function(self, c)
    if c.method_type == "credit_card" then return { credit_card = card(self, c, 5), type = "credit_card" } end
    local r = stream(self.seed, c.i, 5)
    return {
        type = "alternative", alternative_account = "LT" .. ("%018d"):format(r() % 1000000000),
        alternative_type = gateway_of(c.gateway_id).type, alternative_payment_info = NULL,
    }
end

local function person(self, i, salt)
    local r = stream(self.seed, i, salt)
    local first, last = pick(r, FIRST), pick(r, LAST)
    local city = pick(r, CITIES)
    return {
        address = int(r, 1, 999) .. " Main Street", birth_date = NULL, city = city[1], country = city[2],
        device_id = NULL, email = first:lower() .. "." .. last:lower() .. "@example.com",
        first_name = first, full_name = first .. " " .. last, gender = NULL, id = uuid(r),
        ip = ("%d.%d.%d.%d"):format(int(r, 11, 223), r() % 256, r() % 256, int(r, 1, 254)),
        last_name = last, middle_name = "", phone = NULL, state = NULL, taxpayer_id = NULL,
        zip = ("%05d"):format(r() % 100000),
    }
end

GROUPS.customer = function(self, c) return person(self, c.i, 6) end

GROUPS.recipient = function(self, c)
    if c.type ~= "credit" and c.type ~= "payout" then return NULL end
    return { customer = person(self, c.i, 7), method = { credit_card = card(self, c, 8), type = "credit_card" } }
end

GROUPS.be_protected_verification = function() return NULL end

GROUPS.smart_routing_verification = function(_, c)
    return {
        status = "successful",
        data = {
            status = "passed", object = tostring(c.gateway_id), object_name = "gw_" .. c.gateway_id,
            object_defined_via = "allowed objects", force_3ds = false,
            object_flows = setmetatable({}, core.array_mt),
            wb_lists = { psp_black_list = "not_matched", psp_white_list = "not_matched" },
        },
    }
end

GROUPS.avs_cvc_verification = function(_, c)
    if c.method_type ~= "credit_card" then return NULL end
    return { avs_verification = { result_code = "1" }, cvc_verification = { result_code = "1" } }
end

GROUPS.provider_response = function() return NULL end

GROUPS.additional_data = function(_, c)
    return { contract = setmetatable({ "recurring" }, core.array_mt), order_ref = c.tracking_id }
end

GROUPS.commission = function(self, c)
    if c.test or not COMMISSION_TYPES[c.type] or (c.status ~= "successful" and c.status ~= "failed") then return nil end
    local r = stream(self.seed, c.i, 9)
    local psp_fee = int(r, 0, 30)
    local rate_bp = int(r, 0, 300) -- basis points
    local rate_amount = idiv(c.amount * rate_bp, 10000)
    local bank = int(r, 0, 20)
    local psp = psp_fee + rate_amount
    local total = psp + bank
    local pay = c.status == "successful" and c.amount - total or -total
    return {
        bank_commission = bank, currency = c.currency, pay_to_merchant = pay, psp_commission = psp,
        rates = {
            bank_fee = bank, bank_max_commission = 0, bank_min_commission = 0, bank_rate = "0.00",
            id = uuid(r), psp_fee = psp_fee, psp_max_commission = 0, psp_min_commission = 0,
            psp_rate = ("%d.%02d"):format(idiv(rate_bp, 100), rate_bp % 100),
            rolling_reserve_days = 0, rolling_reserve_rate = "0.00",
        },
        rolling_reserve_amount = NULL, transaction_commission = total, transaction_fee = psp_fee + bank,
        transaction_rate = ("%d.%02d"):format(idiv(rate_bp, 100), rate_bp % 100),
        transaction_rate_amount = rate_amount,
    }
end

GROUPS.adjustments = function(_, c)
    return { adjustment_amount = 0, initial_amount = c.amount, surcharge_info = NULL }
end

-- The response groups beGateway documents (the client's own list).
dataset.BG_GROUPS = require("luapay.begateway").RESPONSE_GROUPS

--- ds:begateway(i [, groups [, core]]) -> the transaction as the DWH export
-- answers it, with the attribute groups asked for (a set {main = true,
-- gateway = true, ...}; default: main only). commission is absent when the
-- seed's conditions for it are not met.
function DS:begateway(i, groups, c)
    c = c or self:bg_core(i)
    groups = groups or { main = true }
    local tx = {}
    if groups.main then
        local parent = nil
        if PARENT_TYPES[c.type] and i > 1 then parent = uuid(stream(self.seed, i - 1, 2)) end
        local closed = (c.status == "successful" or c.status == "failed") and c.updated_at or nil
        tx.amount = c.amount
        tx.closed_at = iso_or_null(closed)
        tx.code = n(CODES[c.status])
        tx.converted_amount = NULL
        tx.converted_currency = NULL
        tx.created_at = dataset.iso(c.created_at)
        tx.currency = c.currency
        tx.description = "Order " .. c.tracking_id
        tx.expired_at = dataset.iso(c.created_at + 86400000)
        tx.fraud = NULL
        tx.friendly_message = MESSAGES[c.status]
        tx.language = "en"
        tx.manually_corrected_at = NULL
        tx.merchant_id = c.merchant_id
        tx.message = MESSAGES[c.status]
        tx.paid_at = iso_or_null(c.paid_at)
        tx.parent_uid = n(parent)
        tx.product_id = NULL
        tx.psp_settled_at = c.paid_at and iso_or_null(c.paid_at + 86400000) or NULL
        tx.reason = c.status == "failed" and "Insufficient funds" or NULL
        tx.recurring_type = NULL
        tx.settled_at = c.paid_at and iso_or_null(c.paid_at + 43200000) or NULL
        tx.shop_id = c.shop_id
        tx.status = c.status
        tx.subscription_id = NULL
        tx.test = c.test
        tx.tracking_id = c.tracking_id
        tx.type = c.type
        tx.uid = c.uid
        tx.updated_at = dataset.iso(c.updated_at)
    end
    for name, build in pairs(GROUPS) do
        if groups[name] then
            local v = build(self, c)
            if v ~= nil then tx[name] = v end
        end
    end
    return tx
end

---------------------------------------------------------------------------
-- Trustly North America
---------------------------------------------------------------------------

local TNA_TYPES = { { 1, 40 }, { 2, 25 }, { 3, 10 }, { 4, 15 }, { 5, 7 }, { 6, 3 } }
-- auth.status: Transaction Status Values (4 Completed, 2 Authorized, 1 Pending, 6 Expired, 5 Failed, 7 Canceled, 13 Voided)
local TNA_AUTH = { { 4, 55 }, { 2, 15 }, { 1, 8 }, { 6, 6 }, { 5, 8 }, { 7, 5 }, { 13, 3 } }
local TNA_TX_MESSAGES = {
    [0] = "New", "Pending", "Authorized", "Processed", "Completed", "Failed", "Expired", "Canceled",
    "Denied", "Disputed", "Reversed", "PartiallyRefunded", "Refunded", "Voided", "OnHold",
}
local TNA_VERIFICATION = { { 1, 70 }, { 3, 15 }, { 2, 10 }, { 4, 5 } }
local BANKS = { { "200005", "Demo Bank" }, { "200013", "First Lua Bank" }, { "200021", "Moonstone Credit Union" } }

local function cents(v) return ("%d.%02d"):format(idiv(v, 100), v % 100) end
dataset.cents = cents

--- The fields the Trustly NA fake filters and sorts on, plus what the
-- payment is built from.
function DS:tna_core(i)
    local created = slot_time(self, 20, i, dataset.SLOT_MS)
    local r = stream(self.seed, i, 21)
    local ptype = weighted(r, TNA_TYPES)
    local auth = weighted(r, TNA_AUTH)
    local verification = weighted(r, TNA_VERIFICATION)
    local amount = (ptype == 5 or ptype == 6) and 0 or int(r, 99, 500000)
    local paid, refunded, reversed = 0, 0, 0
    if auth == 4 then -- Completed
        paid = amount
        local x = r() % 20
        if x == 0 then refunded = amount elseif x == 1 then refunded = idiv(amount, 2) elseif x == 2 then reversed = amount end
    end
    return {
        i = i, paymentId = ("%d"):format(1002000000 + i), createdAt = created,
        updatedAt = created + int(r, 1000, 86400000), paymentType = ptype, auth = auth,
        verification = verification, amount = amount, paid = paid, refunded = refunded, reversed = reversed,
        merchantReference = ("TNA-%06d"):format(i), customerId = ("%d"):format(1003000000 + r() % 500),
        paymentProviderId = pick(r, BANKS)[1], fingerprint = hex(r, 24),
    }
end

--- ds:trustly_na(i [, core]) -> the payment as List Payments answers it.
function DS:trustly_na(i, c)
    c = c or self:tna_core(i)
    local r = stream(self.seed, i, 22)
    local bank
    for _, b in ipairs(BANKS) do
        if b[1] == c.paymentProviderId then bank = b end
    end
    local who = person(self, i, 23)
    local pending = c.auth == 2 and c.amount or 0
    local tx_status = c.auth
    if c.refunded > 0 then tx_status = c.refunded == c.amount and 12 or 11 end
    if c.reversed > 0 then tx_status = 10 end
    return {
        paymentId = c.paymentId,
        paymentType = c.paymentType,
        merchant = { merchantId = "1002463580", name = "Luapay Demo Store" },
        merchantReference = c.merchantReference,
        merchantId = "1002463580",
        fingerprint = c.fingerprint,
        verification = { status = c.verification, mode = 3, verifyCustomer = false },
        account = {
            providerId = bank[1], name = "Checking", type = 1, profile = 1, verified = true,
            accountNumber = ("%d"):format(r() % 1000000000), accountNumberLastFour = ("%04d"):format(r() % 10000),
            routingNumber = "124003116", token = hex(r, 20), source = 1, country = "US",
        },
        description = "Order " .. c.merchantReference,
        returnUrl = "https://merchant.example.com/return",
        cancelUrl = "https://merchant.example.com/cancel",
        currency = "USD",
        amount = cents(c.amount),
        paymentProvider = { paymentProviderId = bank[1], type = 1, name = bank[2], subType = "1000", country = "US" },
        allowedPaymentProviderType = setmetatable({ 1 }, core.array_mt),
        auth = { token = hex(r, 16), status = c.auth, message = TNA_TX_MESSAGES[c.auth] },
        authorization = hex(r, 16),
        authorizationStatus = tx_status,
        authorizationStatusMessage = TNA_TX_MESSAGES[tx_status],
        pending = cents(pending),
        paid = cents(c.paid),
        refunded = cents(c.refunded),
        reversed = cents(c.reversed),
        balance = cents(c.paid - c.refunded - c.reversed),
        createdAt = c.createdAt,
        updatedAt = c.updatedAt,
        recordVersion = 1 + r() % 5,
        paymentFlow = 1,
        customer = {
            customerId = c.customerId, externalId = "cust-" .. c.customerId, name = who.full_name,
            email = who.email, phone = "+1512555" .. ("%04d"):format(r() % 10000),
            address = { address1 = who.address, city = "Austin", state = "TX", zip = who.zip, country = "US" },
        },
        system = 1,
        country = "US",
        paymentProviderSubtype = "1000",
    }
end

--- The shop's orders for one day of this data set, for the reconciliation
-- examples: in a real shop a database query. Derived from the successful
-- beGateway payments and captures and the finished Trustly NA payments of
-- [day_start, day_end] (Unix ms), with planted differences for the
-- reconciliation to find: two payments the shop never recorded, one order
-- stored with a wrong amount, two orders nobody paid.
function dataset.shop_orders(day_start, day_end)
    local ds = dataset.new()
    local orders = {}
    for i = 1, ds.bg_live do
        local c = ds:bg_core(i)
        if c.created_at >= day_start and c.created_at <= day_end and c.status == "successful"
            and (c.type == "payment" or c.type == "capture") then
            orders[#orders + 1] = { ref = c.tracking_id, amount = c.amount, currency = c.currency }
        end
    end
    for i = 1, ds.tna_total do
        local c = ds:tna_core(i)
        if c.createdAt >= day_start and c.createdAt <= day_end and c.auth == 4 then
            orders[#orders + 1] = { ref = c.merchantReference, amount = c.paid, currency = "USD" }
        end
    end
    table.remove(orders, 7)
    table.remove(orders, #orders - 3)
    orders[12].amount = orders[12].amount + 1
    orders[#orders + 1] = { ref = "BG-900001", amount = 4999, currency = "EUR" }
    orders[#orders + 1] = { ref = "TNA-900002", amount = 12000, currency = "USD" }
    return orders
end

return dataset
