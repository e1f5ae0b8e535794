-- Trustly North America List Payments against the sandbox's fake: every
-- payment of a period streams through a `for` loop by startIndex and
-- count, the seed's filters go out as its query arguments (array ones
-- repeated) and narrow the stream as the data set says, a failed page
-- resumes without loss or duplicates, and bad values never leave.
local core = require "luapay.core"
local util = require "support.util"
local http = require "luapay.http"
local sandbox = require "luapay.sandbox"
local trustly_na = require "luapay.trustly_na"
local dataset = require "luapay.sandbox.dataset"

local ACCESS_ID, ACCESS_KEY = "luapay-access-id", "luapay-access-key" -- the fake's defaults

local function with(base, extra)
    local t = {}
    for k, v in pairs(base) do t[k] = v end
    for k, v in pairs(extra or {}) do t[k] = v end
    return t
end

-- The query string's arguments in the order sent, as {name, value} pairs.
local function arguments(qs)
    local out = {}
    for pair in qs:gmatch("[^&]+") do
        local k, v = pair:match("^([^=]*)=(.*)$")
        local function decode(s) return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)) end
        out[#out + 1] = { decode(k), decode(v) }
    end
    return out
end

describe("Trustly North America payments", function()
    local sb, tna, ds, control_client

    local function control(what, query)
        local res = assert(control_client:request{ url = sb.url .. "/trustly_na/_control/" .. what .. (query and ("?" .. query) or "") })
        assert.equal(200, res.status, res.body)
        return assert(http.decode_json(res.body))
    end

    local function client(extra)
        return trustly_na.new(with({ access_id = ACCESS_ID, access_key = ACCESS_KEY, base_url = sb.url .. "/trustly_na",
            sleep = function() end }, extra))
    end

    -- The data set's payments matching keep, by (createdAt, paymentId).
    local function expected(keep, by, desc)
        by = by or "createdAt"
        local list = {}
        for i = 1, ds.tna_total do
            local c = ds:tna_core(i)
            if not keep or keep(c) then list[#list + 1] = c end
        end
        table.sort(list, function(a, b)
            if a[by] ~= b[by] then
                if desc then return a[by] > b[by] end
                return a[by] < b[by]
            end
            if desc then return a.paymentId > b.paymentId end
            return a.paymentId < b.paymentId
        end)
        return list
    end

    local function ids(list)
        local out = {}
        for i, p in ipairs(list) do out[i] = p.paymentId end
        return out
    end

    -- Streams every page to the end through the pager; fails the test on an error.
    local function stream(c, params)
        local got, err = c:payments(params):collect()
        assert(got, err and tostring(err))
        return got
    end

    setup(function()
        sb = assert(sandbox.start{ routes = { ["/trustly_na/"] = "luapay.sandbox.trustly_na" } })
        control_client = core.http_client{}
        tna = client()
        ds = dataset.new()
    end)

    teardown(function()
        control_client:close()
        util.stop_sandbox(sb)
    end)

    before_each(function() control("reset") end)

    it("streams all 2,500 payments once each, oldest first, 100 per page", function()
        local want = expected()
        assert.equal(2500, #want)
        local got = stream(tna, {})
        assert.same(ids(want), ids(got))
        for k, p in ipairs(got) do
            assert.same(ds:trustly_na(want[k].i), p)
        end
        -- 25 full pages, then an empty one tells the end
        assert.equal(26, control("stats").requests)
    end)

    it("pages of 25 give the same stream and stop at the short last page", function()
        local day = { ["createdAt.start"] = dataset.parse_iso("2024-06-02T00:00:00"),
                      ["createdAt.end"] = dataset.parse_iso("2024-06-02T23:59:59") + 999 }
        local want = expected(function(c) return c.createdAt >= day["createdAt.start"] and c.createdAt <= day["createdAt.end"] end)
        local got = stream(tna, with(day, { count = 25 }))
        assert.same(ids(want), ids(got))
        local pages = math.floor(#want / 25) + 1
        assert.equal(pages, control("stats").requests)
    end)

    it("follows orderBy and sortOrder when given", function()
        local got = stream(tna, { orderBy = "updatedAt", sortOrder = "desc" })
        assert.same(ids(expected(nil, "updatedAt", true)), ids(got))
    end)

    it("sends the seed's query arguments, repeating the array ones", function()
        stream(tna, {
            paymentType = { "Instant", 2 }, ["authorization.status"] = { "Authorized", 3 },
            verification = { status = { 1 } }, createdAt = { start = 1717200000000, ["end"] = 1717804800000 },
            ["amount.min"] = 1000, ["amount.max"] = "2500.50", merchantReference = "TNA-000010", count = 50,
        })
        local sent = arguments(control("stats").last)
        local function values(name)
            local out = {}
            for _, kv in ipairs(sent) do
                if kv[1] == name then out[#out + 1] = kv[2] end
            end
            return out
        end
        assert.same({ "1", "2" }, values("paymentType"))
        assert.same({ "2", "3" }, values("authorization.status"))
        assert.same({ "1" }, values("verification.status"))
        assert.same({ "1717200000000" }, values("createdAt.start"))
        assert.same({ "1717804800000" }, values("createdAt.end"))
        assert.same({ "10.00" }, values("amount.min"))
        assert.same({ "2500.50" }, values("amount.max"))
        assert.same({ "TNA-000010" }, values("merchantReference"))
        assert.same({ "50" }, values("count"))
        assert.same({ "0" }, values("startIndex"))
        assert.same({ "createdAt" }, values("orderBy"))
        assert.same({ "asc" }, values("sortOrder"))
    end)

    describe("filters narrow the stream as the data set says they must", function()
        local start = dataset.parse_iso("2024-06-04T00:00:00")
        local cases = {
            { "paymentType by name and code", { paymentType = { "Deferred", 4 } },
                function(c) return c.paymentType == 2 or c.paymentType == 4 end },
            { "authorization.status", { ["authorization.status"] = { "Completed" } }, function(c) return c.auth == 4 end },
            { "verification.status", { ["verification.status"] = { "ToVerify", "Refused" } },
                function(c) return c.verification == 2 or c.verification == 4 end },
            { "createdAt range", { createdAt = { start = start, ["end"] = start + 6 * 3600000 } },
                function(c) return c.createdAt >= start and c.createdAt <= start + 6 * 3600000 end },
            { "updatedAt range", { ["updatedAt.start"] = start, ["updatedAt.end"] = start + 86400000 },
                function(c) return c.updatedAt >= start and c.updatedAt <= start + 86400000 end },
            { "amount range in minor units", { ["amount.min"] = 100000, ["amount.max"] = 200000 },
                function(c) return c.amount >= 100000 and c.amount <= 200000 end },
            { "refunded at least 0.01", { ["refunded.min"] = "0.01" }, function(c) return c.refunded >= 1 end },
            { "paid up to 50.00", { paid = { max = 5000 } }, function(c) return c.paid <= 5000 end },
            { "merchantReference", { merchantReference = "TNA-001234" }, function(c) return c.merchantReference == "TNA-001234" end },
            { "customer.customerId", { ["customer.customerId"] = "1003000007" }, function(c) return c.customerId == "1003000007" end },
            { "paymentProvider.paymentProviderId", { ["paymentProvider.paymentProviderId"] = "200013" },
                function(c) return c.paymentProviderId == "200013" end },
            { "everything at once", { paymentType = { 1 }, ["authorization.status"] = { 4 }, ["amount.min"] = 50000 },
                function(c) return c.paymentType == 1 and c.auth == 4 and c.amount >= 50000 end },
        }
        for _, case in ipairs(cases) do
            it(case[1], function()
                local want = expected(case[3])
                assert.is_true(#want > 0 and #want < 2500, "the filter narrows: " .. #want)
                assert.same(ids(want), ids(stream(tna, case[2])))
            end)
        end

        it("gives nothing for a reference that does not exist, in one request", function()
            assert.same({}, stream(tna, { merchantReference = "nope" }))
            assert.equal(1, control("stats").requests)
        end)
    end)

    describe("a failure in the middle of the stream", function()
        local function until_error(c, params)
            local got, failure = {}, nil
            for p, err in c:payments(params) do
                if not p then
                    failure = err
                    break
                end
                got[#got + 1] = p
            end
            return got, failure
        end

        it("yields the error with resume = {startIndex}, and resume continues with nothing lost or repeated", function()
            control("fail", "after=11&status=500")
            local got, err = until_error(tna, { count = 100 })
            assert.equal(1100, #got)
            assert.equal("http", err.type)
            assert.equal(500, err.http_status)
            assert.same({ startIndex = 1100 }, err.resume)
            for _, p in ipairs(stream(tna, { count = 100, resume = err.resume })) do got[#got + 1] = p end
            assert.same(ids(expected()), ids(got))
        end)

        it("reports an answer without payments as a provider error", function()
            control("fail", "after=3&status=garbage")
            local got, err = until_error(tna, { count = 50 })
            assert.equal(150, #got)
            assert.equal("provider", err.type)
            assert.same({ startIndex = 150 }, err.resume)
        end)

        it("retries a 503 itself (a read is idempotent)", function()
            control("fail", "after=5&status=503&times=2")
            assert.equal(2500, #stream(tna, {}))
            assert.equal(2, control("stats").failed)
        end)
    end)

    it("reports wrong credentials as HTTP 401 without the key", function()
        local it = client{ access_key = "wrong-key-4567" }:payments{}
        local p, err = it()
        assert.is_nil(p)
        assert.equal(401, err.http_status)
        assert.not_matches("wrong%-key%-4567", tostring(err))
        assert.same({ startIndex = 0 }, err.resume)
    end)

    describe("invalid filters are refused before anything is sent", function()
        local cases = {
            { "an unknown payment type", { paymentType = { "Instant", "Wire", 7 } }, { "paymentType[2] enum", "paymentType[3] enum" } },
            { "an unknown authorization status", { ["authorization.status"] = { 15, "Finished" } },
                { "authorization.status[1] enum", "authorization.status[2] enum" } },
            { "an unknown verification status", { verification = { status = { "Maybe" } } }, { "verification.status[1] enum" } },
            { "an empty list", { paymentType = {} }, { "paymentType items" } },
            { "a float amount", { ["amount.min"] = 10.5 }, { "amount.min type" } },
            { "an amount with one decimal", { ["paid.max"] = "10.5" }, { "paid.max decimals" } },
            { "a negative amount", { ["refunded.min"] = -100 }, { "refunded.min type" } },
            { "min above max", { ["amount.min"] = "20.00", ["amount.max"] = 1000 }, { "amount.min range" } },
            { "a reversed date range", { createdAt = { start = 2000, ["end"] = 1000 } }, { "createdAt.start range" } },
            { "a date as text", { ["updatedAt.end"] = "2024-06-01" }, { "updatedAt.end type" } },
            { "count above 100", { count = 1000 }, { "count range" } },
            { "count 0", { count = 0 }, { "count range" } },
            { "a negative startIndex", { startIndex = -1 }, { "startIndex range" } },
            { "an unknown orderBy", { orderBy = "amount" }, { "orderBy enum" } },
            { "an unknown sortOrder", { sortOrder = "ASC" }, { "sortOrder enum" } },
            { "a paymentId longer than 15", { paymentId = "1234567890123456" }, { "paymentId max_len" } },
            { "an unknown argument", { status = 2 }, { "status unknown" } },
            { "a resume without startIndex", { resume = {} }, { "resume.startIndex required" } },
        }
        for _, case in ipairs(cases) do
            it(case[1], function()
                local it = tna:payments(case[2])
                local p, err = it()
                assert.is_nil(p)
                assert.equal("validation", err.type)
                local found = {}
                for k, f in ipairs(err.fields) do found[k] = f.path .. " " .. f.code end
                assert.same(case[3], found)
                assert.equal(0, control("stats").requests)
            end)
        end

        it("raises on misuse", function()
            assert.has_error(function() tna:payments() end,
                "trustly_na.Client:payments: bad argument #1 'params' (table expected, got nil)")
            assert.has_error(function() trustly_na.new{ access_key = ACCESS_KEY } end, "trustly_na.new: option 'access_id' is required")
            assert.has_error(function() trustly_na.new{ access_id = ACCESS_ID } end, "trustly_na.new: option 'access_key' is required")
            assert.has_error(function() trustly_na.new{ access_id = ACCESS_ID, access_key = ACCESS_KEY, environment = "prod" } end,
                'trustly_na.new: option \'environment\' must be "test" or "live"')
        end)
    end)

    it("picks the documented base URL per environment", function()
        assert.equal("https://sandbox.trustly.one/api/v1", trustly_na.new{ access_id = "a", access_key = "k" }.base_url)
        assert.equal("https://api.trustly.one/api/v1",
            trustly_na.new{ access_id = "a", access_key = "k", environment = "live" }.base_url)
        -- the names before 0.2, deprecated until 0.3
        assert.equal("https://api.trustly.one/api/v1",
            trustly_na.new{ access_id = "a", access_key = "k", environment = "production" }.base_url)
        assert.equal("test", trustly_na.new{ access_id = "a", access_key = "k", environment = "sandbox" }.environment)
        assert.has_error(function()
            trustly_na.new{ access_id = "a", access_key = "k", environment = "production", verify = false }
        end)
    end)

    -- 004 seed, "List Payments", auth.status: "Status of the related bank authorization. See Transaction
    -- Status Values": the filter authorization.status takes that table's values and names.
    it("004 seed, auth.status: authorization.status takes the Transaction Status Values (4 = Completed)", function()
        for code = 0, 14 do
            local q = assert(trustly_na.payments_query{ ["authorization.status"] = { trustly_na.transaction_statuses[code] } })
            assert.equal(tostring(code), q["authorization.status"][1])
        end
        assert.equal("Completed", trustly_na.authorization_statuses[4])
        assert.equal("Expired", trustly_na.authorization_statuses[6])
        local got = stream(tna, { ["authorization.status"] = { "Completed" }, count = 100 })
        assert.is_true(#got > 0)
        for _, p in ipairs(got) do
            assert.equal(4, p.auth.status)
            assert.equal("Completed", p.auth.message)
        end
        local new = stream(tna, { ["authorization.status"] = { "New" } })
        assert.same({}, new) -- 0 is a value the fake takes now (nothing in the data set is New)
    end)

    -- 004 seed, "List Payments": createdAt/updatedAt filters are strings; payments' createdAt is an integer
    -- "UNIX timestamp" (milliseconds in Trustly NA's answers): the digits work as well as the integer.
    it("004 seed, date filters: createdAt.start etc. as the document's string, or an integer", function()
        local start = dataset.parse_iso("2024-06-04T00:00:00")
        local as_text = stream(tna, { ["createdAt.start"] = tostring(start), ["createdAt.end"] = tostring(start + 3600000),
            ["updatedAt.start"] = "0" })
        local as_int = stream(tna, { createdAt = { start = start, ["end"] = start + 3600000 } })
        assert.is_true(#as_int > 0)
        assert.same(ids(as_int), ids(as_text))
        local q = assert(trustly_na.payments_query{ ["createdAt.start"] = "1717459200000" })
        assert.equal("1717459200000", q["createdAt.start"])
    end)

    it("has the seed's tables", function()
        assert.same({ "Instant", "Deferred", "Recurring", "Disbursement", "Verification", "Retrieval" }, trustly_na.payment_types)
        assert.equal("Voided", trustly_na.authorization_statuses[13])
        assert.equal("Refused", trustly_na.verification_statuses[4])
        assert.equal("New", trustly_na.transaction_statuses[0])
        assert.equal("OnHold", trustly_na.transaction_statuses[14])
        assert.equal("TrustlyAB", trustly_na.payment_systems[2])
        assert.equal("MCD", trustly_na.payment_provider_subtypes[2001])
    end)
end)
