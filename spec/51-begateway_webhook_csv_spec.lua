-- beGateway gateway notifications (RSA SHA-256 Content-Signature over the
-- raw body with the shop's public key, otherwise the shop's HTTP Basic
-- credentials) and the reconciliation CSV, read back with an RFC 4180
-- reader written here.
local core = require "luapay.core"
local http = require "luapay.http"
local sandbox = require "luapay.sandbox"
local begateway = require "luapay.begateway"
local dataset = require "luapay.sandbox.dataset"
local util = require "support.util"

local PSP, SECRET = "1", "begateway-dwh-secret"
local SHOP_ID, SHOP_KEY = "361", "b8647b68898b084b836474ed8d61ffe117c9a01168d867f24953b776ddcb134d"

local provider_key = assert(core.pkey(util.fixture("keys/provider_private.pem")))
local PUBLIC_PEM = util.fixture("keys/provider_public.pem")
-- the back office shows the key as bare base64 DER
local PUBLIC_B64 = PUBLIC_PEM:gsub("%-%-%-%-%-[^\n]*%-%-%-%-%-", ""):gsub("%s+", "")

local function notification(tx)
    return assert(core.json_encode{ transaction = tx })
end

local function signed(body, key)
    return { ["Content-Type"] = "application/json", ["Content-Signature"] = core.base64_encode((key or provider_key):sign(body, "sha256")) }
end

local function basic(user, password)
    return { Authorization = "Basic " .. core.base64_encode(user .. ":" .. password) }
end

--- RFC 4180: fields separated by commas, records by CRLF; a quoted field
-- may hold commas, CR, LF and doubled quotes.
local function read_csv(text)
    local rows, row, field = {}, {}, {}
    local i, n = 1, #text
    local quoted = false
    while i <= n do
        local c = text:sub(i, i)
        if quoted then
            if c == '"' then
                if text:sub(i + 1, i + 1) == '"' then
                    field[#field + 1] = '"'
                    i = i + 1
                else
                    quoted = false
                end
            else
                field[#field + 1] = c
            end
        elseif c == '"' then
            assert(#field == 0, "a quote inside an unquoted field at byte " .. i)
            quoted = true
        elseif c == "," then
            row[#row + 1] = table.concat(field)
            field = {}
        elseif c == "\r" then
            assert(text:sub(i + 1, i + 1) == "\n", "a bare CR at byte " .. i)
            row[#row + 1] = table.concat(field)
            rows[#rows + 1] = row
            row, field = {}, {}
            i = i + 1
        else
            assert(c ~= "\n", "a bare LF at byte " .. i)
            field[#field + 1] = c
        end
        i = i + 1
    end
    assert(not quoted, "an unterminated quoted field")
    assert(#row == 0 and #field == 0, "the last record has no CRLF")
    return rows
end

describe("beGateway notifications", function()
    local ds = dataset.new()
    local signing = begateway.new{ psp_id = PSP, secret = SECRET, dwh_url = "http://127.0.0.1:1", public_key = PUBLIC_PEM }

    it("verify a Content-Signature over the raw body and give the common event", function()
        local tx = ds:begateway(5, { main = true, gateway = true })
        local body = notification(tx)
        local event = assert(signing:notification(body, signed(body)))
        assert.equal("begateway", event.provider)
        assert.equal("payment", event.kind)
        assert.equal("succeeded", event.status)
        assert.equal("BG-000005", event.merchant_ref)
        assert.equal(tx.uid, event.provider_ref)
        assert.equal(tx.amount, event.amount)
        assert.equal(tx.currency, event.currency)
        if math.type then assert.equal("integer", math.type(event.amount)) end
        assert.equal(body, event.raw)
        assert.equal("Acquiring", event.extra.transaction.gateway.type)
        assert.equal(event.extra.transaction, event.extra.body.transaction)
    end)

    it("take the shop key as the back office shows it (base64 DER) or as a core.pkey", function()
        local body = notification(ds:begateway(9))
        for _, key in ipairs({ PUBLIC_B64, assert(core.pkey(PUBLIC_PEM)) }) do
            local c = begateway.new{ psp_id = PSP, secret = SECRET, dwh_url = "http://127.0.0.1:1", public_key = key }
            assert.is_table((c:notification(body, signed(body))))
        end
        local lower_case = { ["content-signature"] = signed(body)["Content-Signature"] }
        assert.is_table((begateway.verify_notification(body, lower_case, { public_key = PUBLIC_B64 })))
    end)

    describe("refuse, as signature errors that show no secret", function()
        local body = notification(ds:begateway(12))
        local headers = signed(body)
        local status = ds:bg_core(12).status
        local other = status == "failed" and "successful" or "failed"
        local cases = {
            { "a changed amount", body:gsub('"amount":(%d+)', function(a) return '"amount":' .. (a + 1) end), headers },
            { "a changed status", (body:gsub('"status":"' .. status .. '"', '"status":"' .. other .. '"')), headers },
            { "one byte appended", body .. " ", headers },
            { "a signature by another key", body, signed(body, assert(core.pkey(util.fixture("keys/merchant_private.pem")))) },
            { "a signature that is not base64", body, { ["Content-Signature"] = "not base64!" } },
            { "no signature", body, { ["Content-Type"] = "application/json" } },
            { "only Basic credentials when a key is set", body, basic(PSP, SECRET) },
            { "two signatures", body, { ["Content-Signature"] = { headers["Content-Signature"], headers["Content-Signature"] } } },
        }
        for _, case in ipairs(cases) do
            it(case[1], function()
                assert.not_equal(nil, case[2])
                local event, err = signing:notification(case[2], case[3])
                assert.is_nil(event)
                assert.equal("signature", err.type)
                assert.not_matches("BEGIN", tostring(err))
                assert.not_matches(SECRET, tostring(err))
            end)
        end
    end)

    describe("without a public key, check the shop's HTTP Basic credentials", function()
        local shop = begateway.new{ psp_id = PSP, secret = SECRET, dwh_url = "http://127.0.0.1:1", shop_id = SHOP_ID, shop_key = SHOP_KEY }
        local body = notification(ds:begateway(30))

        it("accepts the shop's id and key", function()
            local event = assert(shop:notification(body, basic(SHOP_ID, SHOP_KEY)))
            assert.equal(ds:bg_core(30).uid, event.provider_ref)
            assert.is_table((shop:notification(body, { authorization = basic(SHOP_ID, SHOP_KEY).Authorization })))
        end)

        it("refuses other credentials, none, or a signature alone", function()
            for _, h in ipairs({ basic(SHOP_ID, "wrong"), basic("362", SHOP_KEY), basic(PSP, SECRET), {},
                { Authorization = "Bearer " .. SHOP_KEY }, { Authorization = "Basic ***" }, signed(body) }) do
                local event, err = shop:notification(body, h)
                assert.is_nil(event)
                assert.equal("signature", err.type)
                assert.not_matches(SHOP_KEY, tostring(err))
            end
        end)

        it("uses the PSP credentials when no shop credentials are configured", function()
            local plain = begateway.new{ psp_id = PSP, secret = SECRET, dwh_url = "http://127.0.0.1:1" }
            assert.is_table((plain:notification(body, basic(PSP, SECRET))))
            assert.is_nil((plain:notification(body, basic(SHOP_ID, SHOP_KEY))))
        end)
    end)

    it("maps type and status to the common kind and status, beGateway's words under extra", function()
        local cases = {
            { "payment", "successful", "succeeded" }, { "authorization", "successful", "authorized" },
            { "capture", "successful", "succeeded" }, { "refund", "successful", "refunded" },
            { "void", "successful", "canceled" }, { "chargeback", "successful", "reversed" },
            { "payout", "successful", "succeeded" }, { "payment", "failed", "failed" },
            { "payment", "error", "failed" }, { "payment", "pending", "pending" },
            { "payment", "incomplete", "pending" }, { "payment", "expired", "canceled" },
        }
        for _, c in ipairs(cases) do
            local body = notification{ uid = "u-1", type = c[1], status = c[2], amount = 100, currency = "EUR", tracking_id = "o-1" }
            local event = assert(signing:notification(body, signed(body)))
            assert.equal(c[3], event.status, c[1] .. "/" .. c[2])
            assert.equal(c[1], event.kind)
            assert.same({ c[1], c[2] }, { event.extra.type, event.extra.status })
        end
    end)

    it("calls a verified body without a transaction a provider error", function()
        for _, body in ipairs({ "{}", "[1,2]", '{"transaction":{"status":"successful"}}', "not json" }) do
            local event, err = signing:notification(body, signed(body))
            assert.is_nil(event)
            assert.equal("provider", err.type)
        end
    end)

    it("raises on misuse", function()
        assert.has_error(function() signing:notification(nil, {}) end,
            "begateway.Client:notification: bad argument #1 'raw_body' (string expected, got nil)")
        assert.has_error(function() signing:notification("{}", "Content-Signature: x") end,
            "begateway.Client:notification: bad argument #2 'headers' (table expected, got string)")
        assert.has_error(function()
            begateway.new{ psp_id = PSP, secret = SECRET, dwh_url = "http://127.0.0.1:1", public_key = "bm90IGEga2V5" }
        end)
        assert.has_error(function() begateway.new{ psp_id = PSP, secret = SECRET, dwh_url = "http://x", shop_id = "1" } end,
            "begateway.new: options 'shop_id' and 'shop_key' go together")
    end)
end)

describe("begateway.verify_notification (the pure verifier) and the answer", function()
    local provider = require "luapay.provider"
    local tx = { uid = "8c3a9d1e-1111-4a7b-9c2d-5e6f7a8b9c0d", type = "payment", status = "successful", amount = 1999,
        currency = "EUR", tracking_id = "order-51", test = false, gateway = { type = "Acquiring" } }
    local body = notification(tx)

    local function in_vocabulary(event)
        local kinds, statuses = {}, {}
        for _, k in ipairs(provider.KINDS) do kinds[k] = true end
        for _, s in ipairs(provider.STATUSES) do statuses[s] = true end
        assert.is_true(kinds[event.kind], tostring(event.kind))
        assert.is_true(statuses[event.status], tostring(event.status))
    end

    it("verifies with the keys alone (public key, shop or PSP credentials) and gives the one event shape", function()
        for _, case in ipairs({
            { signed(body), { public_key = PUBLIC_PEM } },
            { signed(body), { public_key = PUBLIC_B64 } },
            { basic(SHOP_ID, SHOP_KEY), { shop_id = SHOP_ID, shop_key = SHOP_KEY } },
            { basic(SHOP_ID, SHOP_KEY), { shop_id = tonumber(SHOP_ID), shop_key = SHOP_KEY } },
            { basic(PSP, SECRET), { psp_id = PSP, secret = SECRET } },
        }) do
            local event = assert(begateway.verify_notification(body, case[1], case[2]))
            assert.equal(provider.event_mt, getmetatable(event))
            in_vocabulary(event)
            assert.same({ "begateway", "payment", "succeeded", "order-51", tx.uid, 1999, "EUR" }, { event.provider,
                event.kind, event.status, event.merchant_ref, event.provider_ref, event.amount, event.currency })
            assert.equal(body, event.raw) -- the very string received
            for k in pairs(event) do
                assert.is_truthy(("provider kind status merchant_ref provider_ref amount currency raw extra"):find(k, 1, true), k)
            end
            assert.same({ false, "payment", "successful", "Acquiring" },
                { event.extra.test, event.extra.type, event.extra.status, event.extra.transaction.gateway.type })
            assert.same(core.json_decode(body), core.json_decode(assert(core.json_encode(event.extra.body))))
        end
    end)

    it("maps every type beGateway documents onto the common kinds, keeping its word", function()
        local want = { payment = "payment", authorization = "authorization", capture = "capture", void = "void",
            refund = "refund", payout = "payout", credit = "payout", chargeback = "chargeback", tokenization = "account" }
        for _, t in ipairs(begateway.TYPES) do
            local b = notification{ uid = "u-1", type = t, status = "successful", amount = 100, currency = "EUR" }
            local event = assert(begateway.verify_notification(b, signed(b), { public_key = PUBLIC_PEM }))
            in_vocabulary(event)
            assert.equal(want[t], event.kind, t)
            assert.equal(t, event.extra.type)
        end
    end)

    it("calls a tampered notification a signature error", function()
        local tampered = body:gsub("1999", "9999")
        local event, err = begateway.verify_notification(tampered, signed(body), { public_key = PUBLIC_PEM })
        assert.is_nil(event)
        assert.equal("signature", err.type)
        event, err = begateway.verify_notification(body, basic(SHOP_ID, "wrong"), { shop_id = SHOP_ID, shop_key = SHOP_KEY })
        assert.is_nil(event)
        assert.equal("signature", err.type)
        assert.not_matches(SHOP_KEY, tostring(err))
    end)

    it("raises on misuse, naming the function", function()
        local cases = {
            { function() begateway.verify_notification(nil, {}, { public_key = PUBLIC_PEM }) end,
              "#1 'raw_body' (string expected, got nil)" },
            { function() begateway.verify_notification(body, nil, { public_key = PUBLIC_PEM }) end,
              "#2 'headers' (table expected, got nil)" },
            { function() begateway.verify_notification(body, {}) end, "#3 'keys' (table expected, got nil)" },
            { function() begateway.verify_notification(body, {}, {}) end,
              "#3 'keys' (public_key, or shop_id and shop_key, or psp_id and secret expected)" },
            { function() begateway.verify_notification(body, {}, { shop_id = SHOP_ID }) end,
              "#3 'keys' (shop_id and shop_key must both be non-empty strings)" },
        }
        for _, c in ipairs(cases) do assert.has_error(c[1], "begateway.verify_notification: bad argument " .. c[2]) end
    end)

    it("keeps the deprecated names working until 0.3: verify_webhook, client:webhook, extras at the top level", function()
        local event = assert(begateway.verify_webhook(body, signed(body), { public_key = PUBLIC_PEM }))
        assert.same(assert(begateway.verify_notification(body, signed(body), { public_key = PUBLIC_PEM })), event)
        local c = begateway.new{ psp_id = PSP, secret = SECRET, dwh_url = "http://127.0.0.1:1", public_key = PUBLIC_PEM }
        assert.same(event, assert(c:webhook(body, signed(body))))
        assert.is_false(event.test) -- read from event.extra.test
        local test_body = notification{ uid = "u-2", type = "payment", status = "successful", amount = 1, currency = "EUR", test = true }
        local none, err = c:webhook(test_body, signed(test_body))
        assert.is_nil(none)
        assert.equal("test_transaction", err.code)
    end)

    it("answers 200 OK when the event is recorded, 500 for beGateway to send it again when not, 400 without an event", function()
        local c = begateway.new{ psp_id = PSP, secret = SECRET, dwh_url = "http://127.0.0.1:1", public_key = PUBLIC_PEM }
        local event = assert(c:notification(body, signed(body)))
        local ok = { status = 200, headers = { ["Content-Type"] = "text/plain" }, body = "OK" }
        local again = { status = 500, headers = { ["Content-Type"] = "text/plain" }, body = "ERROR" }
        assert.same(ok, c:notification_response(event, true))
        assert.same(again, c:notification_response(event, false))
        local refused = { status = 400, headers = { ["Content-Type"] = "text/plain" }, body = "ERROR" }
        assert.same(refused, c:notification_response(nil, true))
        assert.same(refused, c:notification_response(nil))
        assert.has_error(function() c:notification_response(event, 1) end,
            "begateway.Client:notification_response: bad argument #2 'received' (boolean expected, got number)")
        assert.has_error(function() c:notification_response(true, true) end,
            "begateway.Client:notification_response: bad argument #1 'event' (table or nil expected, got boolean)")
    end)

    describe("over loopback: the fake posts a notification to a shop that answers with notification_response", function()
        local sb, fetch
        local ds = dataset.new()

        setup(function()
            sb = assert(sandbox.start{ routes = { ["/begateway/"] = "luapay.sandbox.begateway",
                ["/shop/"] = "support.begateway_merchant" }, lua_path = "spec/?.lua" })
            fetch = http.new{ retries = 0 }
        end)
        teardown(function() util.stop_sandbox(sb) end)

        -- The fake's report of the shop's answer, and what the shop recorded.
        local function deliver(box)
            local i
            for n = 1, ds.bg_live do
                local c = ds:bg_core(n)
                if c.type == "payment" and c.status == "successful" then i = n break end
            end
            local res = assert(fetch:request{ method = "POST", url = sb.url .. "/begateway/notify",
                json = { url = sb.url .. "/shop/" .. box, i = i } })
            assert.equal(200, res.status, res.body)
            return res.json, assert(fetch:request{ url = sb.url .. "/shop/" .. box }).json
        end

        it("gets 200 OK from a shop that recorded the event; raw is the body as posted", function()
            local answer, shop = deliver("ok-1")
            assert.same({ http_status = 200, body = "OK" }, answer)
            assert.same({ raw_exact = true, kind = "payment", status = "succeeded", type = "payment", answered = 200 }, shop)
        end)

        it("gets 500 from a shop that could not record it, 400 from one that cannot verify it", function()
            local answer, shop = deliver("busy-1")
            assert.same({ http_status = 500, body = "ERROR" }, answer)
            assert.equal("payment", shop.kind)
            answer, shop = deliver("forged-1")
            assert.same({ http_status = 400, body = "ERROR" }, answer)
            assert.is_false(shop.kind)
        end)
    end)
end)

describe("beGateway reconciliation CSV", function()
    local sb, dwh
    local ds = dataset.new()
    local FIELDS = {
        "uid", "tracking_id", "type", "status", "amount", "currency", "created_at", "paid_at", "test",
        "gateway.type", "gateway.agent_id", "commission.pay_to_merchant", "commission.rates.psp_rate",
        "customer.full_name", "method.credit_card.last_4", "additional_data",
    }
    local GROUPS = { "main", "gateway", "commission", "customer", "method", "additional_data" }

    setup(function()
        sb = assert(sandbox.start{ routes = { ["/begateway/"] = "luapay.sandbox.begateway" } })
        dwh = begateway.new{ psp_id = PSP, secret = SECRET, dwh_url = sb.url .. "/begateway", sleep = function() end }
    end)

    teardown(function()
        util.stop_sandbox(sb)
    end)

    -- What a cell must read as, computed from the generated record.
    local function text(v)
        if v == nil or v == http.null then return "" end
        if type(v) == "number" then return ("%.0f"):format(v) end
        if type(v) == "table" then return assert(core.json_encode(v)) end
        return tostring(v)
    end

    it("writes the whole week and reads back field for field, nested paths included", function()
        local path = os.tmpname()
        local rows = assert(begateway.csv(dwh:export{ date_from = "2024-06-01T00:00:00", date_to = "2024-06-08T00:00:00",
            limit = 1000, response_parameters = GROUPS }, FIELDS, path))
        assert.equal(2500, rows)
        local data = util.read(path)
        os.remove(path)
        local records = read_csv(data)
        assert.equal(2501, #records)
        assert.same(FIELDS, records[1])
        local order = {}
        for i = 1, ds.bg_live do order[i] = ds:bg_core(i) end
        table.sort(order, function(a, b)
            if a.created_at ~= b.created_at then return a.created_at < b.created_at end
            return a.uid < b.uid
        end)
        local set = {}
        for _, g in ipairs(GROUPS) do set[g] = true end
        local quoted = 0
        for k = 2, #records do
            local tx = ds:begateway(order[k - 1].i, set)
            local want = {}
            for f, name in ipairs(FIELDS) do want[f] = text(begateway.field(tx, name)) end
            assert.same(want, records[k])
            if records[k][16] ~= "" then quoted = quoted + 1 end
        end
        assert.equal(2500, quoted) -- additional_data is JSON: commas and quotes, quoted every time
        assert.matches('^uid,tracking_id,type,status,amount', data)
        assert.not_matches("%d%.0,", data) -- integers stay integers under Lua 5.4 too
    end)

    it("quotes commas, quotes, CR and LF as RFC 4180 says and reads them back", function()
        local values = {
            { id = 1, note = 'plain', amount = 3000 },
            { id = 2, note = 'a, comma', amount = 1.5 },
            { id = 3, note = 'say "hi"', amount = -7 },
            { id = 4, note = "two\r\nlines", amount = 0 },
            { id = 5, note = "bare\nLF and bare\rCR", amount = 2 ^ 53 },
            { id = 6, note = "ünïcødé ✓", nested = { deep = { value = "x,y" } } },
            { id = 7, note = "", nested = { deep = { value = http.null } } },
            { id = 8, flag = false, list = { "a", "b" } },
        }
        local k = 0
        local function source()
            k = k + 1
            return values[k]
        end
        local out = {}
        local sink = { write = function(_, s) out[#out + 1] = s return true end }
        local fields = { "id", "note", "amount", "nested.deep.value", "flag", "list.2", "missing.path" }
        assert.equal(#values, begateway.csv(source, fields, sink))
        local records = read_csv(table.concat(out))
        assert.same(fields, records[1])
        assert.same({ "2", "a, comma", "1.5", "", "", "", "" }, records[3])
        assert.same({ "3", 'say "hi"', "-7", "", "", "", "" }, records[4])
        assert.same({ "4", "two\r\nlines", "0", "", "", "", "" }, records[5])
        assert.same({ "5", "bare\nLF and bare\rCR", "9007199254740992", "", "", "", "" }, records[6])
        assert.same({ "6", "ünïcødé ✓", "", "x,y", "", "", "" }, records[7])
        assert.same({ "7", "", "", "", "", "", "" }, records[8])
        assert.same({ "8", "", "", "", "false", "b", "" }, records[9])
        assert.matches('\r\n3,"say ""hi""",%-7,', table.concat(out))
    end)

    -- OWASP "CSV Injection": a cell a spreadsheet would run as a formula is prefixed with '.
    it("guards text starting with =, +, -, @, tab or CR against formula injection; numbers stay numbers", function()
        local values = {
            { note = "=HYPERLINK(\"http://evil.example\",\"x\")" }, { note = "+1+2" }, { note = "-2+3" },
            { note = "@SUM(A1:A2)" }, { note = "\t=1" }, { note = "\r=1" }, { note = "a=1" }, { note = -7 },
            { note = "=1,2" },
        }
        local k = 0
        local out = {}
        local sink = { write = function(_, s) out[#out + 1] = s return true end }
        assert.equal(#values, begateway.csv(function() k = k + 1 return values[k] end, { "note" }, sink))
        local records = read_csv(table.concat(out))
        local got = {}
        for i = 2, #records do got[i - 1] = records[i][1] end
        assert.same({ "'=HYPERLINK(\"http://evil.example\",\"x\")", "'+1+2", "'-2+3", "'@SUM(A1:A2)", "'\t=1",
            "'\r=1", "a=1", "-7", "'=1,2" }, got)
        assert.equal("'=1", begateway.csv_cell("=1"))
        assert.equal("-7", begateway.csv_cell(-7))
    end)

    it("stops at an export error, returning it with the rows written and the cursor", function()
        local res = assert(core.http_client{}:request{ url = sb.url .. "/begateway/_control/fail?after=2&status=500" })
        assert.equal(200, res.status)
        local f = assert(io.tmpfile())
        local rows, err = begateway.csv(dwh:export{ date_from = "2024-06-01T00:00:00", date_to = "2024-06-08T00:00:00", limit = 400 },
            { "uid", "amount" }, f)
        assert.is_nil(rows)
        assert.equal(500, err.http_status)
        assert.equal(800, err.rows)
        assert.is_string(err.resume.uid)
        f:seek("set")
        assert.equal(801, #read_csv(f:read("*a")))
        f:close()
        core.http_client{}:request{ url = sb.url .. "/begateway/_control/reset" }
    end)

    it("raises on misuse", function()
        assert.has_error(function() begateway.csv({}, { "uid" }, io.stdout) end)
        assert.has_error(function() begateway.csv(function() end, {}, io.stdout) end)
        assert.has_error(function() begateway.csv(function() end, { "uid" }, 42) end)
    end)
end)
