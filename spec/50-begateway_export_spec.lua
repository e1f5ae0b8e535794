-- beGateway DWH export against the sandbox's fake: a merchant pulls every
-- transaction of a period through a `for` loop, page by page, narrows it
-- with the seed's filters, and picks up where a failure stopped it. The
-- expected transactions come from the same generated data set the fake
-- serves (luapay.sandbox.dataset), computed here independently of paging.
local core = require "luapay.core"
local util = require "support.util"
local http = require "luapay.http"
local sandbox = require "luapay.sandbox"
local begateway = require "luapay.begateway"
local dataset = require "luapay.sandbox.dataset"

local PSP, SECRET = "1", "begateway-dwh-secret" -- the fake's defaults
local WEEK = { date_from = "2024-06-01T00:00:00", date_to = "2024-06-08T00:00:00" }
local ALL_GROUPS = dataset.BG_GROUPS

local function with(base, extra)
    local t = {}
    for k, v in pairs(base) do t[k] = v end
    for k, v in pairs(extra or {}) do t[k] = v end
    return t
end

local function set_of(list)
    local s = {}
    for _, v in ipairs(list) do s[v] = true end
    return s
end

describe("beGateway DWH export", function()
    local sb, dwh, ds, control_client

    local function control(what, query)
        local res = assert(control_client:request{ url = sb.url .. "/begateway/_control/" .. what .. (query and ("?" .. query) or "") })
        assert.equal(200, res.status, res.body)
        return assert(http.decode_json(res.body))
    end

    local function client(extra)
        return begateway.new(with({ psp_id = PSP, secret = SECRET, dwh_url = sb.url .. "/begateway", sleep = function() end }, extra))
    end

    -- The data set's records matching `keep`, ordered as the export must
    -- give them: by (date of date_type, uid), live ones unless test.
    local function expected(keep, date_type, desc)
        date_type = date_type or "created_at"
        local list = {}
        for i = 1, ds.bg_total do
            local c = ds:bg_core(i)
            if c[date_type] and (keep or function(x) return not x.test end)(c) then list[#list + 1] = c end
        end
        table.sort(list, function(a, b)
            if a[date_type] ~= b[date_type] then return a[date_type] < b[date_type] end
            return a.uid < b.uid
        end)
        if desc then
            for i = 1, math.floor(#list / 2) do list[i], list[#list + 1 - i] = list[#list + 1 - i], list[i] end
        end
        return list
    end

    local function uids(list)
        local out = {}
        for i, x in ipairs(list) do out[i] = x.uid end
        return out
    end

    -- Streams an export to the end through the pager; fails the test on an error.
    local function stream(c, params)
        local got, err = c:export(params):collect()
        assert(got, err and tostring(err))
        return got
    end

    setup(function()
        sb = assert(sandbox.start{ routes = { ["/begateway/"] = "luapay.sandbox.begateway" } })
        control_client = core.http_client{}
        dwh = client()
        ds = dataset.new()
    end)

    teardown(function()
        control_client:close()
        util.stop_sandbox(sb)
    end)

    before_each(function() control("reset") end)

    it("streams a whole week, all 2,500 transactions once each, in (created_at, uid) order, 100 per page", function()
        local want = expected()
        assert.equal(2500, #want)
        local got = stream(dwh, with(WEEK, { limit = 100 }))
        assert.equal(2500, #got)
        assert.same(uids(want), uids(got))
        for k, tx in ipairs(got) do
            assert.same(ds:begateway(want[k].i, { main = true }), tx)
        end
        assert.equal(25, control("stats").requests)
    end)

    it("gives every attribute group the seed lists, in pages of 1000", function()
        local want = expected()
        local got = stream(dwh, with(WEEK, { limit = 1000, response_parameters = ALL_GROUPS }))
        assert.equal(#want, #got)
        local with_commission = 0
        for k, tx in ipairs(got) do
            assert.same(ds:begateway(want[k].i, set_of(ALL_GROUPS)), tx)
            if tx.commission then with_commission = with_commission + 1 end
        end
        assert.equal(3, control("stats").requests)
        -- commission only for final, non-test transactions of the seed's types
        assert.is_true(with_commission > 1000 and with_commission < #got)
        for _, tx in ipairs(got) do
            if tx.commission then
                assert.is_true(tx.status == "successful" or tx.status == "failed")
                assert.not_equal("tokenization", tx.type)
            end
        end
    end)

    it("answers only the groups asked for", function()
        local got = stream(dwh, with(WEEK, { limit = 5, date_to = "2024-06-01T00:10:00", response_parameters = "gateway,customer" }))
        assert.is_true(#got > 0)
        for _, tx in ipairs(got) do
            assert.is_nil(tx.uid)
            assert.is_table(tx.gateway)
            assert.is_table(tx.customer)
            assert.is_nil(tx.shop)
        end
    end)

    -- A client whose every request and answer is recorded.
    local function spy_client(calls)
        return begateway.new{ psp_id = PSP, secret = SECRET, dwh_url = sb.url .. "/begateway",
            transport = {
                inner = core.http_client{},
                request = function(self, req)
                    local res, err = self.inner:request(req)
                    calls[#calls + 1] = { sent = http.decode_json(req.body), got = res and http.decode_json(res.body) }
                    return res, err
                end,
            } }
    end

    -- 003 seed, "Export transactions", filter.date_from: "Must equal next_date value from the response to
    -- the previous request"; the same in both orders. Descending, the later requests no longer carry the
    -- period's start: the client keeps only what is in the period and stops.
    for _, order in ipairs({ "asc", "desc" }) do
        it("003 seed, date_from = next_date: pages " .. order .. " moving date_from and uid_from, date_to kept", function()
            local period = { date_from = "2024-06-03T00:00:00", date_to = "2024-06-05T12:00:00" }
            local lo, hi = dataset.parse_iso(period.date_from), dataset.parse_iso(period.date_to) + 999
            local want = expected(function(x) return not x.test and x.created_at >= lo and x.created_at <= hi end,
                "created_at", order == "desc")
            local calls = {}
            local got = stream(spy_client(calls), with(period, { limit = 150, sort_order = order }))
            assert.same(uids(want), uids(got))
            assert.is_true(#calls >= 3)
            assert.equal(period.date_from, calls[1].sent.filter.date_from)
            assert.is_nil(calls[1].sent.filter.uid_from)
            for k = 2, #calls do
                local page = calls[k - 1].got.data.pagination
                assert.is_true(page.has_next_page)
                assert.equal(page.next_date, calls[k].sent.filter.date_from)
                assert.equal(page.next_uid, calls[k].sent.filter.uid_from)
                assert.equal(period.date_to, calls[k].sent.filter.date_to)
                assert.equal(order, calls[k].sent.options.sort_order)
            end
        end)
    end

    it("003 seed, request example: options.sort_direction = \"desc\" and filter.test = \"false\" are accepted", function()
        local calls = {}
        local got = stream(spy_client(calls), with(WEEK, { response_parameters = "main,gateway",
            filter = { type = "payment", test = "false", currency = "EUR" }, sort_direction = "desc", limit = 300 }))
        local want = expected(function(x) return not x.test and x.type == "payment" and x.currency == "EUR" end,
            "created_at", true)
        assert.same(uids(want), uids(got))
        assert.equal("desc", calls[1].sent.options.sort_direction)
        assert.equal(false, calls[1].sent.filter.test)
        local only_test = stream(dwh, with(WEEK, { filter = { test = "true" } }))
        assert.same(uids(expected(function(x) return x.test end)), uids(only_test))
        local _, err = begateway.export_request(with(WEEK, { sort_order = "asc", sort_direction = "desc" }))
        assert.equal("sort_direction", err.fields[1].path)
    end)

    it("003 seed, response example: decodes pages exactly, amount 3000 is an integer on every VM", function()
        local got = stream(dwh, with(WEEK, { limit = 1000 }))
        for _, tx in ipairs(got) do
            if math.type then assert.equal("integer", math.type(tx.amount)) end
            assert.is_string(core.to_decimal(tx.amount, tx.currency))
        end
    end)

    it("the fake pages a descending request with uid_from down from date_from (003 seed, date_from)", function()
        local c = core.http_client{}
        local function page(filter)
            local res = assert(c:request{ method = "POST", url = sb.url .. "/begateway" .. begateway.EXPORT_PATH,
                headers = { Authorization = http.basic_auth(PSP, SECRET), ["Content-Type"] = "application/json" },
                body = assert(http.encode_json{ filter = filter, options = { sort_direction = "desc", limit = 5 } }) })
            assert.equal(200, res.status, res.body)
            return assert(core.json_decode(res.body)).data
        end
        local first = page({ date_from = WEEK.date_from, date_to = WEEK.date_to })
        local second = page({ date_from = first.pagination.next_date, uid_from = first.pagination.next_uid,
            date_to = WEEK.date_to })
        local want = expected(nil, "created_at", true)
        assert.equal(want[6].uid, second.transactions[1].uid)
        assert.equal(want[10].uid, second.transactions[5].uid)
        c:close()
    end)

    it("keeps transactions that share a created_at apart by uid, across page boundaries", function()
        -- the transactions of a second that holds a tie, one per page
        local tie
        for i = 2, ds.bg_live do
            if ds:bg_core(i).created_at == ds:bg_core(i - 1).created_at then tie = i break end
        end
        assert.is_not_nil(tie, "the data set has ties")
        local at = ds:bg_core(tie).created_at
        local second = dataset.iso(at, true)
        local want = expected(function(x) return not x.test and math.floor(x.created_at / 1000) == math.floor(at / 1000) end)
        assert.is_true(#want >= 2)
        local got = stream(dwh, { date_from = second, date_to = second, limit = 1 })
        assert.same(uids(want), uids(got))
        assert.equal(#want, control("stats").requests)
    end)

    it("orders and selects by paid_at or updated_at when date_type says so", function()
        for _, dt in ipairs({ "paid_at", "updated_at" }) do
            local day = { date_from = "2024-06-03T00:00:00", date_to = "2024-06-03T23:59:59" }
            local lo = assert(dataset.parse_iso(day.date_from))
            local want = expected(function(x)
                return not x.test and x[dt] >= lo and x[dt] < lo + 86400000
            end, dt)
            assert.is_true(#want > 100)
            local got = stream(dwh, with(day, { date_type = dt, limit = 250 }))
            assert.same(uids(want), uids(got))
        end
    end)

    it("exports one day: date_to without a fraction takes its whole last second", function()
        local lo = assert(dataset.parse_iso("2024-06-05T00:00:00"))
        local want = expected(function(x) return not x.test and x.created_at >= lo and x.created_at < lo + 86400000 end)
        local got = stream(dwh, { date_from = "2024-06-05T00:00:00", date_to = "2024-06-05T23:59:59", limit = 1000 })
        assert.same(uids(want), uids(got))
        assert.is_true(#got > 300 and #got < 420)
    end)

    describe("filters narrow the stream as the data set says they must", function()
        local cases = {
            { "type payment,refund", { type = { "payment", "refund" } },
                function(x) return x.type == "payment" or x.type == "refund" end },
            { "type as a comma-joined string", { type = "chargeback" }, function(x) return x.type == "chargeback" end },
            { "currency EUR,JPY", { currency = "EUR,JPY" }, function(x) return x.currency == "EUR" or x.currency == "JPY" end },
            { "merchant_id 1283", { merchant_id = { 1283 } }, function(x) return x.merchant_id == 1283 end },
            { "shop_id 1871,1872", { shop_id = "1871,1872" }, function(x) return x.shop_id == 1871 or x.shop_id == 1872 end },
            { "gateway_id 4146", { gateway_id = { "4146" } }, function(x) return x.gateway_id == 4146 end },
            { "method_type credit_card", { method_type = "credit_card" }, function(x) return x.method_type == "credit_card" end },
            { "test transactions only", { test = true }, function(x) return x.test end, true },
            { "everything at once", { type = "payment", currency = { "EUR" }, shop_id = 1871, method_type = "alternative" },
                function(x)
                    return x.type == "payment" and x.currency == "EUR" and x.shop_id == 1871 and x.method_type == "alternative"
                end },
        }
        for _, case in ipairs(cases) do
            it(case[1], function()
                local keep = case[3]
                local test_only = case[4] == true
                local want = expected(function(x) return x.test == test_only and keep(x) end)
                assert.is_true(#want > 0 and #want < 2500, "the filter narrows: " .. #want)
                local got = stream(dwh, with(WEEK, { filter = case[2], limit = 1000, response_parameters = { "main", "gateway" } }))
                assert.same(uids(want), uids(got))
            end)
        end

        it("sends the filters as the seed's comma-joined strings", function()
            stream(dwh, with(WEEK, {
                filter = { type = { "payment", "refund" }, currency = { "EUR", "USD" }, merchant_id = { 1245 }, test = false },
                limit = 1000, response_parameters = { "main", "gateway" }, date_type = "created_at" }))
            local sent = assert(http.decode_json(control("stats").last))
            assert.equal("main,gateway", sent.response_parameters)
            assert.equal("payment,refund", sent.filter.type)
            assert.equal("EUR,USD", sent.filter.currency)
            assert.equal("1245", sent.filter.merchant_id)
            assert.equal(false, sent.filter.test)
            assert.equal("created_at", sent.filter.date_type)
            assert.equal(1000, sent.options.limit)
            assert.equal(WEEK.date_to, sent.filter.date_to)
        end)

        it("moves date_from and uid_from to the last answer's next_date and next_uid", function()
            local calls = {}
            local spy = begateway.new{ psp_id = PSP, secret = SECRET, dwh_url = sb.url .. "/begateway",
                transport = {
                    inner = core.http_client{},
                    request = function(self, req)
                        local res, err = self.inner:request(req)
                        calls[#calls + 1] = { sent = http.decode_json(req.body), got = res and http.decode_json(res.body) }
                        return res, err
                    end,
                } }
            local first = stream(spy, with(WEEK, { limit = 1000 }))
            assert.equal(2500, #first)
            assert.equal(3, #calls)
            assert.is_nil(calls[1].sent.filter.uid_from)
            assert.equal(WEEK.date_from, calls[1].sent.filter.date_from)
            for k = 2, 3 do
                local page = calls[k - 1].got.data.pagination
                assert.is_true(page.has_next_page)
                assert.equal(page.next_date, calls[k].sent.filter.date_from)
                assert.equal(page.next_uid, calls[k].sent.filter.uid_from)
            end
            assert.is_false(calls[3].got.data.pagination.has_next_page)
        end)
    end)

    describe("a failure in the middle of the period", function()
        local function until_error(c, params)
            local got, failure = {}, nil
            for tx, err in c:export(params) do
                if not tx then
                    failure = err
                    break
                end
                got[#got + 1] = tx
            end
            return got, failure
        end

        local function resumes(status, check)
            control("fail", "after=7&status=" .. status .. "&times=1")
            local params = with(WEEK, { limit = 100, response_parameters = { "main" } })
            local got, err = until_error(dwh, params)
            assert.is_not_nil(err, "the failure reaches the loop")
            assert.equal(700, #got)
            check(err)
            assert.is_table(err.resume)
            assert.equal(8, err.page)
            local rest = stream(dwh, with(params, { resume = err.resume }))
            for _, tx in ipairs(rest) do got[#got + 1] = tx end
            assert.same(uids(expected()), uids(got))
        end

        it("yields an HTTP 500 as an error with the cursor, and resume continues with nothing lost or repeated", function()
            resumes("500", function(err)
                assert.equal("http", err.type)
                assert.equal(500, err.http_status)
            end)
        end)

        it("treats a page that is not JSON as a provider error, resumable the same way", function()
            resumes("garbage", function(err)
                assert.equal("provider", err.type)
                assert.matches("unexpected export page", err.message)
            end)
        end)

        it("resends a dropped page itself (a read is idempotent) and gives up only after its retries", function()
            control("fail", "after=3&status=drop&times=1")
            local got = stream(dwh, with(WEEK, { limit = 500 }))
            assert.same(uids(expected()), uids(got))
            assert.equal(1, control("stats").failed)

            -- (libcurl itself tries a dropped keep-alive connection once more
            -- on a fresh one, so plan enough drops for every attempt)
            control("reset")
            control("fail", "after=2&status=drop&times=100")
            local part, err = until_error(dwh, with(WEEK, { limit = 500 }))
            assert.equal(1000, #part)
            assert.equal("network", err.type)
            assert.equal(3, err.attempts)
            control("reset")
            local rest = stream(dwh, with(WEEK, { limit = 500, resume = err.resume }))
            for _, tx in ipairs(rest) do part[#part + 1] = tx end
            assert.same(uids(expected()), uids(part))
        end)

        it("returns nil, err when called directly, ends after the error, and keeps it as it.err", function()
            control("fail", "after=1&status=503&times=5")
            local it = client{ retries = 0 }:export(with(WEEK, { limit = 1000 }))
            local n = 0
            while true do
                local tx, err = it()
                if tx == nil then
                    assert.is_not_nil(err)
                    assert.equal(503, err.http_status)
                    assert.equal(err, it.err)
                    break
                end
                n = n + 1
            end
            assert.equal(1000, n)
            assert.is_nil(it())
            assert.is_nil((it()))
        end)

        it("shows a mid-way error in a loop over a stored iterator too, and keeps a first-page error as it.err", function()
            control("fail", "after=1&status=500")
            local it = dwh:export(with(WEEK, { limit = 1000 }))
            local n, seen = 0, nil
            for tx, err in it do
                if not tx then
                    assert.is_false(tx)
                    seen = err
                    break
                end
                n = n + 1
            end
            assert.equal(1000, n)
            assert.equal(500, seen.http_status)

            control("fail", "after=0&status=500")
            local first = dwh:export(with(WEEK, { limit = 1000 }))
            for _ in first do n = n + 1 end
            assert.equal(1000, n)
            assert.equal(500, first.err.http_status)
            assert.same({}, first.err.resume)
        end)

        it("starts over from the period's start when the first page fails", function()
            control("fail", "after=0&status=500&times=1")
            local got, err = until_error(dwh, with(WEEK, { limit = 1000 }))
            assert.equal(0, #got)
            assert.same({}, err.resume)
            assert.equal(2500, #stream(dwh, with(WEEK, { limit = 1000, resume = err.resume })))
        end)
    end)

    it("reports wrong credentials as HTTP 401 without showing the secret", function()
        local wrong = client{ secret = "not-the-secret-123" }
        local it = wrong:export(WEEK)
        local tx, err = it()
        assert.is_nil(tx)
        assert.equal("http", err.type)
        assert.equal(401, err.http_status)
        assert.not_matches("not%-the%-secret%-123", tostring(err))
        assert.not_matches(SECRET, tostring(err))
    end)

    describe("invalid requests are refused before anything is sent", function()
        local cases = {
            { "no date_from", { date_to = WEEK.date_to }, { "date_from required" } },
            { "a date with a space", with(WEEK, { date_from = "2024-06-01 00:00:00" }), { "date_from pattern" } },
            { "a date with a zone", with(WEEK, { date_to = "2024-06-08T00:00:00Z" }), { "date_to pattern" } },
            { "a day that does not exist", with(WEEK, { date_from = "2024-02-30T00:00:00" }), { "date_from format" } },
            { "more than 90 days", { date_from = "2024-01-01T00:00:00", date_to = "2024-04-01T00:00:01" }, { "date_from range" } },
            { "date_from after date_to", { date_from = "2024-06-08T00:00:00", date_to = "2024-06-01T00:00:00" }, { "date_from range" } },
            { "limit 0", with(WEEK, { limit = 0 }), { "limit range" } },
            { "limit 1001", with(WEEK, { limit = 1001 }), { "limit range" } },
            { "a fractional limit", with(WEEK, { limit = 10.5 }), { "limit type" } },
            { "an unknown type", with(WEEK, { filter = { type = "payment,purchase" } }), { "filter.type[2] enum" } },
            { "a currency that is not ISO 4217", with(WEEK, { filter = { currency = { "EUR", "XYZ", "usd" } } }),
                { "filter.currency[2] format", "filter.currency[3] format" } },
            { "an id list with a word", with(WEEK, { filter = { merchant_id = "12,abc", shop_id = { 0 } } }),
                { "filter.merchant_id[2] type", "filter.shop_id[1] range" } },
            { "an empty id list", with(WEEK, { filter = { gateway_id = {} } }), { "filter.gateway_id items" } },
            { "an unknown method_type", with(WEEK, { filter = { method_type = "card" } }), { "filter.method_type enum" } },
            { "test as another word", with(WEEK, { filter = { test = "no" } }), { "filter.test type" } },
            { "an unknown sort_direction", with(WEEK, { sort_direction = "down" }), { "sort_direction enum" } },
            { "an unknown sort order", with(WEEK, { sort_order = "up" }), { "sort_order enum" } },
            { "an unknown date_type", with(WEEK, { date_type = "settled_at" }), { "date_type enum" } },
            { "an unknown response group", with(WEEK, { response_parameters = { "main", "everything" } }),
              { "response_parameters[2] enum" } },
            { "unknown fields", with(WEEK, { filter = { status = "successful" }, page = 2 }), { "filter.status unknown", "page unknown" } },
            { "a resume cursor without a date", with(WEEK, { resume = { uid = "x" } }), { "resume.date required" } },
            { "everything wrong at once", { date_from = "yesterday", limit = "100", filter = { type = "sale" } },
                { "date_from pattern", "date_to required", "filter.type[1] enum", "limit type" } },
        }
        for _, case in ipairs(cases) do
            it(case[1], function()
                local it = dwh:export(case[2])
                local tx, err = it()
                assert.is_nil(tx)
                assert.equal("validation", err.type)
                local found = {}
                for k, f in ipairs(err.fields) do found[k] = f.path .. " " .. f.code end
                assert.same(case[3], found)
                assert.is_nil(it())
                assert.equal(0, control("stats").requests)
            end)
        end

        it("shows the error inside a for loop as tx == false", function()
            local seen
            for tx, err in dwh:export(with(WEEK, { limit = 0 })) do
                assert.is_false(tx)
                seen = err
            end
            assert.equal("validation", seen.type)
            assert.equal(0, control("stats").requests)
        end)

        it("raises on misuse: no table, or a client without credentials", function()
            assert.has_error(function() dwh:export("2024-06-01") end,
                "begateway.Client:export: bad argument #1 'params' (table expected, got string)")
            assert.has_error(function() begateway.new{ secret = SECRET, dwh_url = sb.url } end,
                "begateway.new: option 'psp_id' is required")
            assert.has_error(function() begateway.new{ psp_id = PSP, dwh_url = sb.url } end, "begateway.new: option 'secret' is required")
            assert.has_error(function() begateway.new{ psp_id = PSP, secret = SECRET } end, "begateway.new: option 'dwh_url' is required")
            assert.has_error(function() begateway.new{ psp_id = PSP, secret = SECRET, dwh_url = "dwh.example.com" } end,
                "begateway.new: option 'dwh_url' must be an http(s) URL")
            assert.has_error(function() begateway.new{ psp_id = "a:b", secret = SECRET, dwh_url = sb.url } end)
        end)
    end)

    it("collects a short period into a list", function()
        local list = assert(dwh:export{ date_from = "2024-06-02T10:00:00", date_to = "2024-06-02T11:00:00", limit = 3 }:collect())
        local lo = dataset.parse_iso("2024-06-02T10:00:00")
        local want = expected(function(x) return not x.test and x.created_at >= lo and x.created_at < lo + 3600000 + 1000 end)
        assert.same(uids(want), uids(list))
    end)

    it("yields the transactions themselves; begateway.event reads one as an event whose raw is its JSON", function()
        local provider = require "luapay.provider"
        local list = assert(dwh:export(with(WEEK, { filter = { type = "credit" } })):collect())
        assert.is_true(#list > 0)
        for _, tx in ipairs(list) do
            assert.is_nil(getmetatable(tx)) -- a list item for the CSV, not an event
            local event = assert(begateway.event(tx))
            assert.equal(provider.event_mt, getmetatable(event))
            assert.same({ "payout", "credit", tx.status, tx.uid }, { event.kind, event.extra.type, event.extra.status, event.provider_ref })
            assert.equal(tx, event.extra.transaction)
            assert.same(tx, http.decode_json(event.raw))
            local text = '{"uid":"u-9","type":"payment","status":"pending"}'
            assert.equal(text, assert(begateway.event(http.decode_json(text), text)).raw)
        end
        assert.has_error(function() begateway.event(list[1], {}) end,
            "begateway.event: bad argument #2 'raw' (string or nil expected, got table)")
    end)
end)
