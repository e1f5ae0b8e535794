-- Defects a random run over the parsers and serializers found (issue 16),
-- each pinned: what is signed is what is sent, JSON on the wire is UTF-8,
-- cyclic data and NaN give clear errors, transport misuse raises before
-- anything is sent.
local core = require "luapay.core"
local ecommpay = require "luapay.ecommpay"
local http = require "luapay.http"
local sandbox = require "luapay.sandbox"
local trustly = require "luapay.trustly"
local trustly_na = require "luapay.trustly_na"
local trustpay = require "luapay.trustpay"
local util = require "support.util"

local merchant_private = util.fixture("keys/merchant_private.pem")
local merchant_public = util.fixture("keys/merchant_public.pem")

describe("core.json_encode", function()
    it("writes an object key whole, a NUL byte as \\u0000, and sorts whole keys", function()
        assert.equal('{"a":2,"a\\u0000b":1}', core.json_encode({ ["a\0b"] = 1, a = 2 }))
        assert.same({ ["a\0b"] = 1, a = 2 }, core.json_decode(core.json_encode({ ["a\0b"] = 1, a = 2 })))
        assert.equal('"x\\u0000y"', core.json_encode("x\0y"))
    end)

    it("sends a Trustly request whose keys hold NUL bytes exactly as it signs it", function()
        local data = { Attributes = { ["Name\0x"] = "v", Name = "w" }, Username = "u" }
        local sent = assert(core.json_decode(trustly.request("Deposit", "uuid-1", data, merchant_private), { numbers = "lexeme" }))
        assert.same({ ["Name\0x"] = "v", Name = "w" }, sent.params.Data.Attributes)
        assert.is_true(trustly.verify("Deposit", "uuid-1", sent.params.Data, sent.params.Signature, merchant_public))
    end)

    it("refuses invalid UTF-8 in a string or a key, naming the path", function()
        for _, case in ipairs({
            { { customer = { name = "Ann \255" } }, "customer.name" },
            { { list = { "ok", "\192\128" } }, "list[2]" },        -- overlong NUL
            { { s = "\237\160\128" }, "s" },                     -- a surrogate
            { { s = "\244\144\128\128" }, "s" },                 -- past U+10FFFF
            { { s = "\226\130" }, "s" },                         -- cut short
            { { ["k\255"] = 1 }, "k\255" },
        }) do
            local text, err = core.json_encode(case[1])
            assert.is_nil(text)
            assert.equal("json_encode: " .. case[2] .. ": invalid UTF-8 in a string (JSON text must be UTF-8)", err)
        end
        assert.equal('"Zoë 💩"', core.json_encode("Zoë 💩"))
    end)

    -- spec/65's signer-verifier property found it: the digits read as an
    -- integer, while ecommpay (PHP) signs a float as "3.5093342731794E+16".
    it("writes a whole double past 2^53 as a float, so an ecommpay callback verifies", function()
        assert.equal("[9007199254740994.0,-1.152921504606847e+18,1e+300]",
            core.json_encode({ 2 ^ 53 + 2, -(2 ^ 60), 1e300 }))
        local secret = "s3cret"
        local params = { project_id = 1, extra = 35093342731793732 + 0.0 }
        params.signature = ecommpay.signature(params, secret)
        assert.truthy(ecommpay.verify_callback(assert(core.json_encode(params)), secret))
    end)

    it("names a cycle as a cycle", function()
        local t = {}
        t.a = { b = t }
        assert.same({ nil, "json_encode: a.b: a table contains itself (a cycle)" }, { core.json_encode(t) })
        local deep = {}
        local at = deep
        for _ = 1, 80 do at.x = {}; at = at.x end
        local _, err = core.json_encode(deep)
        assert.matches("nested too deeply$", err)
    end)
end)

describe("luapay.trustly with cyclic data", function()
    local t = { Attributes = {} }
    t.Attributes.Self = t

    it("serialize, sign and plaintext raise naming the cycle, not a stack overflow", function()
        local ok, err = pcall(trustly.serialize, t)
        assert.is_false(ok)
        assert.matches("trustly.serialize: bad argument #1 'data' (Attributes.Self: a table contains itself (a cycle))",
            err, 1, true)
        ok, err = pcall(trustly.sign, "Deposit", "u", t, merchant_private)
        assert.is_false(ok)
        assert.matches("trustly.sign: bad argument #3 'data' (Attributes.Self: a table contains itself (a cycle))", err, 1, true)
        ok, err = pcall(trustly.plaintext, "Deposit", "u", t)
        assert.is_false(ok)
        assert.matches("trustly.plaintext: bad argument #3 'data' (Attributes.Self: a table contains itself", err, 1, true)
    end)

    it("plain raises naming the cycle", function()
        assert.has_error(function() trustly.plain(t) end,
            "provider.plain: bad argument #1 'v' (a table contains itself (a cycle))")
        -- the same table twice, side by side, is no cycle
        local shared = { "x" }
        assert.same({ a = { "x" }, b = { "x" } }, trustly.plain({ a = shared, b = shared }))
    end)

    it("a client call refuses it without sending", function()
        local sent = 0
        local client = trustly.new{ username = "u", password = "p", private_key = merchant_private,
            trustly_public_key = merchant_public, retries = 0,
            transport = { request = function() sent = sent + 1; return nil, "unreachable" end } }
        local ok, err = pcall(client.call, client, "Deposit", t)
        assert.is_false(ok)
        assert.matches("a cycle", tostring(err), 1, true)
        assert.not_matches("stack overflow", tostring(err), 1, true)
        assert.equal(0, sent)
    end)
end)

describe("trustly_na.request_signature", function()
    it("gives a validation error naming a NaN or infinite field instead of signing it", function()
        for _, case in ipairs({
            { { accessId = "1", amount = 0 / 0 }, "amount" },
            { { accessId = "1", amount = 1 / 0 }, "amount" },
            { { accessId = "1", recurrence = { recurringAmount = -1 / 0 } }, "recurrence.recurringAmount" },
            { { accessId = "1", ["customer.balance"] = 0 / 0 }, "customer.balance" },
        }) do
            local sig, err = trustly_na.request_signature(case[1], "123456")
            assert.is_nil(sig)
            assert.equal("validation", err.type)
            assert.equal(case[2], err.fields[1].path)
            assert.equal(1, #err.fields)
            local text, err2 = trustly_na.signature_string(case[1])
            assert.is_nil(text)
            assert.equal(case[2], err2.fields[1].path)
        end
        assert.is_string(trustly_na.request_signature({ accessId = "1", amount = 1.5 }, "123456"))
    end)
end)

describe("core.pkey", function()
    -- fuzz/corpus/pkey/regress-damaged-private-key: merchant_private.pem with
    -- one base64 character changed; it decoded, and signed what no key verifies.
    it("refuses a damaged private key whose parts do not match", function()
        local text = util.read("fuzz/corpus/pkey/regress-damaged-private-key"):sub(2)
        assert.not_equal(util.fixture("keys/merchant_private.pem"), text)
        local key, err = core.pkey(text)
        assert.is_nil(key)
        assert.equal("pkey: the RSA private key is damaged: it cannot verify its own signature", err)
        assert.truthy(core.pkey(util.fixture("keys/merchant_private.pem")))
        assert.truthy(core.pkey(util.fixture("keys/merchant_public.pem")))
    end)
end)

describe("transport misuse and bodies that cannot be sent, against a real server", function()
    local sb

    setup(function()
        sb = assert(sandbox.start{ routes = { ["/t/"] = "support.transport_handlers", ["/raw/"] = "support.raw_answer" },
            lua_path = "spec/?.lua" })
    end)

    teardown(function() util.stop_sandbox(sb) end)

    local function arrivals(key)
        return tonumber(assert(http.new{}:request{ url = sb.url .. "/t/count?key=" .. key }).body)
    end

    it("core.http_client raises on CR, LF or NUL in user_agent, proxy or ca_file", function()
        for _, field in ipairs({ "user_agent", "proxy", "ca_file" }) do
            for _, bad in ipairs({ "x\r\nX-Injected: 1", "x\ny", "x\0y" }) do
                local ok, err = pcall(core.http_client, { [field] = bad })
                assert.is_false(ok)
                assert.matches("http_client: bad argument #1 '" .. field .. "' (must not contain CR, LF or NUL)", err, 1, true)
            end
        end
    end)

    it("raises on an empty or non-list header value table, before anything is sent", function()
        local key = core.hex_encode(core.random_bytes(8))
        local c = core.http_client{}
        for _, value in ipairs({ {}, { a = "b" }, { "a", x = "b" } }) do
            local ok, err = pcall(c.request, c, { url = sb.url .. "/t/drop?key=" .. key, headers = { ["X-A"] = value } })
            assert.is_false(ok)
            assert.matches("header 'X-A': a string or a non-empty list of strings expected", err, 1, true)
        end
        c:close()
        assert.equal(0, arrivals(key))
    end)

    it("a lower-case or non-token method, CR/LF in a header, raise through the pipeline, never a network error", function()
        local key = core.hex_encode(core.random_bytes(8))
        local client = http.new{ retries = 0 }
        for _, req in ipairs({
            { method = "post" }, { method = "GET /x HTTP/1.1" }, { method = "" },
            { headers = { ["X-A\r\nB"] = "1" } }, { headers = { ["X-A"] = "1\r\nX-B: 2" } },
        }) do
            req.url = sb.url .. "/t/drop?key=" .. key
            local ok, res, err = pcall(client.request, client, req)
            assert.is_false(ok, err and err.type)
            assert.matches("luapay.http: request: bad argument #1 '%a+'", res)
        end
        assert.equal(0, arrivals(key))
    end)

    local function raw(answer)
        return sb.url .. "/raw/?b64=" .. http.escape(core.base64_encode(answer))
    end

    -- libcurl 7.88 (Debian 12) kept a pointer into the last transfer's
    -- headers in a reused handle: this pair of answers made it read freed
    -- memory (curl#11101; ASan reports it in the ASan run of this spec).
    it("reads a malformed answer after a good one on the same client without touching freed memory", function()
        local c = core.http_client{ timeout_ms = 5000 }
        local good = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Test: two\r\nContent-Length: 2\r\n\r\nok"
        local folded = "HTTP/enntto-Type: textsetloEmpty:\r\n  X-Space : v \r\nContent-Length: 0\r\n\r\n"
        for _ = 1, 2 do
            local res = assert(c:request{ url = raw(good), method = "POST", body = "b" })
            assert.equal(200, res.status)
            assert.equal("ok", res.body)
            local bad, err = c:request{ url = raw(folded), method = "POST", body = "b" }
            assert.is_nil(bad)
            assert.equal("network", err.type)
        end
        c:close()
    end)

    it("keeps only header lines whose name is a token", function()
        local c = core.http_client{}
        local res = assert(c:request{ url = raw("HTTP/1.1 200 OK\r\nX Y: 1\r\nX-Ok: 2\r\n Z: 3\r\n"
            .. "Content-Length: 0\r\n\r\n") })
        c:close()
        assert.same({ ["x-ok"] = "2", ["content-length"] = "0" }, res.headers)
    end)

    it("a JSON body with invalid UTF-8 is a validation error naming the field, and is not sent", function()
        local key = core.hex_encode(core.random_bytes(8))
        local res, err = http.new{ retries = 0 }:request{ url = sb.url .. "/t/drop?key=" .. key,
            json = { customer = { name = "Ann \255" } } }
        assert.is_nil(res)
        assert.equal("validation", err.type)
        assert.matches("customer.name: invalid UTF-8", err.message, 1, true)
        assert.equal(0, arrivals(key))
    end)
end)

describe("trustpay payment orders (found by spec 69's XML read-back)", function()
    local function order(extra)
        local o = {
            Amount = 12345, Currency = "EUR", MessageId = "MSG-1", DebtorAccount = "4107111111",
            DebtorName = "Shop s.r.o.", CityCode = "Bratislava", CreditorName = "Creditor",
            CreditorAccount = "SK3399520000002107425307", CreditorBankBic = "TPAYSKBX", CreditorBankName = "TrustPay",
            CreditorBankAddress = "Za kasarnou 1", CreditorBankCity = "Bratislava", CreditorBankCountry = "SK",
            RequestedExecutionDate = os.date("!%Y-%m-%d", os.time() + 86400),
        }
        for k, v in pairs(extra or {}) do o[k] = v end
        return o
    end

    it("writes a CR as &#13;, which an XML parser does not read as LF", function()
        local xml = assert(trustpay.order_xml(order{ Description = "line 1\r\nline 2\rend" }))
        assert.truthy(xml:find("<Ustrd>line 1&#13;\nline 2&#13;end</Ustrd>", 1, true))
        assert.equal("a&#13;&amp;", trustpay.xml_escape("a\r&"))
    end)

    it("gives a validation error for an amount beyond Numeric(13,2) or two decimals, instead of raising", function()
        for _, case in ipairs({ { 10000000000000, "EUR" }, { 1001, "KWD" } }) do
            local ok, xml, err = pcall(trustpay.order_xml, order{ Amount = case[1], Currency = case[2],
                CreditorAccount = "123", CreditorAddress = "A", CreditorCity = "B", CreditorCountry = "US" })
            assert.is_true(ok, xml)
            assert.is_nil(xml)
            assert.equal("validation", err.type)
            assert.equal("Amount", err.fields[1].path)
            local mass = order{ Amount = case[1], Currency = case[2] }
            mass.CityCode = nil
            local ok2, xml2, err2 = pcall(trustpay.orders_xml, { mass })
            assert.is_true(ok2, xml2)
            assert.equal("[1].Amount", err2.fields[1].path)
        end
        assert.truthy(trustpay.order_xml(order{ Amount = 9999999999999 }))
    end)
end)
