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
        local event = assert(signing:webhook(body, signed(body)))
        assert.equal("begateway", event.provider)
        assert.equal("payment", event.kind)
        assert.equal("succeeded", event.status)
        assert.equal("BG-000005", event.merchant_ref)
        assert.equal(tx.uid, event.provider_ref)
        assert.equal(tx.amount, event.amount)
        assert.equal(tx.currency, event.currency)
        if math.type then assert.equal("integer", math.type(event.amount)) end
        assert.equal("Acquiring", event.raw.transaction.gateway.type)
    end)

    it("take the shop key as the back office shows it (base64 DER) or as a core.pkey", function()
        local body = notification(ds:begateway(9))
        for _, key in ipairs({ PUBLIC_B64, assert(core.pkey(PUBLIC_PEM)) }) do
            local c = begateway.new{ psp_id = PSP, secret = SECRET, dwh_url = "http://127.0.0.1:1", public_key = key }
            assert.is_table((c:webhook(body, signed(body))))
        end
        local lower_case = { ["content-signature"] = signed(body)["Content-Signature"] }
        assert.is_table((begateway.verify_webhook(body, lower_case, { public_key = PUBLIC_B64 })))
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
                local event, err = signing:webhook(case[2], case[3])
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
            local event = assert(shop:webhook(body, basic(SHOP_ID, SHOP_KEY)))
            assert.equal(ds:bg_core(30).uid, event.provider_ref)
            assert.is_table((shop:webhook(body, { authorization = basic(SHOP_ID, SHOP_KEY).Authorization })))
        end)

        it("refuses other credentials, none, or a signature alone", function()
            for _, h in ipairs({ basic(SHOP_ID, "wrong"), basic("362", SHOP_KEY), basic(PSP, SECRET), {},
                { Authorization = "Bearer " .. SHOP_KEY }, { Authorization = "Basic ***" }, signed(body) }) do
                local event, err = shop:webhook(body, h)
                assert.is_nil(event)
                assert.equal("signature", err.type)
                assert.not_matches(SHOP_KEY, tostring(err))
            end
        end)

        it("uses the PSP credentials when no shop credentials are configured", function()
            local plain = begateway.new{ psp_id = PSP, secret = SECRET, dwh_url = "http://127.0.0.1:1" }
            assert.is_table((plain:webhook(body, basic(PSP, SECRET))))
            assert.is_nil((plain:webhook(body, basic(SHOP_ID, SHOP_KEY))))
        end)
    end)

    it("maps type and status to the common status", function()
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
            local event = assert(signing:webhook(body, signed(body)))
            assert.equal(c[3], event.status, c[1] .. "/" .. c[2])
            assert.equal(c[1], event.kind)
        end
    end)

    it("calls a verified body without a transaction a provider error", function()
        for _, body in ipairs({ "{}", "[1,2]", '{"transaction":{"status":"successful"}}', "not json" }) do
            local event, err = signing:webhook(body, signed(body))
            assert.is_nil(event)
            assert.equal("provider", err.type)
        end
    end)

    it("raises on misuse", function()
        assert.has_error(function() signing:webhook(nil, {}) end,
            "begateway.webhook: bad argument #1 'raw_body' (string expected, got nil)")
        assert.has_error(function() signing:webhook("{}", "Content-Signature: x") end,
            "begateway.webhook: bad argument #2 'headers' (table expected, got string)")
        assert.has_error(function()
            begateway.new{ psp_id = PSP, secret = SECRET, dwh_url = "http://127.0.0.1:1", public_key = "bm90IGEga2V5" }
        end)
        assert.has_error(function() begateway.new{ psp_id = PSP, secret = SECRET, dwh_url = "http://x", shop_id = "1" } end,
            "begateway.new: options 'shop_id' and 'shop_key' go together")
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
