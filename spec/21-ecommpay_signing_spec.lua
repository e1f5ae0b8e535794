-- ecommpay's pure functions: string_to_sign, signature, verify_notification and
-- payment_page_url, on the vectors and on the cases a callback can bring.
local core = require "luapay.core"
local ecommpay = require "luapay.ecommpay"
local util = require "support.util"

local vectors = util.json_fixture("vectors/ecommpay.json")

local function lexemes(json)
    return assert(core.json_decode(json, { numbers = "lexeme" }))
end

-- A raw callback body signed over a string to sign written out by hand
-- (independent of the C code): body_template has SIG where the signature goes.
local function signed(body_template, string_to_sign, secret)
    local sig = core.hmac("sha512", secret, string_to_sign, "base64")
    return (body_template:gsub("SIG", (sig:gsub("/", "\\/"):gsub("%%", "%%%%"))))
end

local function query_of(url)
    local q = {}
    for k, v in url:match("%?(.*)$"):gmatch("([^&=]+)=([^&]*)") do
        q[k] = v:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
    end
    return q
end

describe("ecommpay signing", function()
    it("string_to_sign and signature give every vector", function()
        for _, v in ipairs(vectors.vectors) do
            local params = lexemes(v.params_json)
            assert.equal(v.string_to_sign, ecommpay.string_to_sign(params), v.name)
            assert.equal(v.signature, ecommpay.signature(params, v.secret), v.name)
        end
    end)

    it("core.ecommpay_signature gives every vector in one call, and the canonical string's errors", function()
        for _, v in ipairs(vectors.vectors) do
            local params = lexemes(v.params_json)
            assert.equal(v.signature, core.ecommpay_signature(params, v.secret), v.name)
            -- a callback's signatures, at any depth, are left out with opts.callback
            params.signature, params.general = "x", { signature = "y", n = 1 }
            assert.equal(core.hmac("sha512", v.secret, core.ecommpay_canonical(params, { callback = true }), "base64"),
                core.ecommpay_signature(params, v.secret, { callback = true }), v.name)
        end
        local s, err = core.ecommpay_signature({ a = 0 / 0 }, "k")
        assert.is_nil(s)
        assert.equal("ecommpay_canonical: NaN and infinity cannot be signed (at a)", err)
        assert.has_error(function() core.ecommpay_signature({}, nil) end,
            "ecommpay_signature: bad argument #2 'secret' (string expected, got nil)")
        assert.has_error(function() core.ecommpay_signature("x", "k") end,
            "ecommpay_signature: bad argument #1 'params' (table expected, got string)")
        -- ecommpay.signature's call: false for what it then names itself
        for _, args in ipairs({ { "x", "k" }, { {}, nil }, { {}, "" }, { {}, 5 }, { nil, "k" } }) do
            assert.is_false(core.ecommpay_sign(args[1], args[2]))
        end
    end)

    it("signs the Gate sale vector with its Unicode exactly as the PHP SDK", function()
        local v
        for _, x in ipairs(vectors.vectors) do if x.name == "gate_trustly_sale_request_unicode" then v = x end end
        local params = lexemes(v.params_json)
        assert.equal(v.signature, ecommpay.signature(params, v.secret))
        assert.matches("\240\159", ecommpay.string_to_sign(params)) -- the surrogate pair, as UTF-8
    end)

    it("raises on misuse, naming the argument, without the secret", function()
        assert.has_error(function() ecommpay.signature("x", "k") end,
            "ecommpay.signature: bad argument #1 'params' (table expected, got string)")
        assert.has_error(function() ecommpay.signature({}, nil) end,
            "ecommpay.signature: bad argument #2 'secret' (a non-empty string expected, got nil)")
        assert.has_error(function() ecommpay.signature({}, "") end,
            "ecommpay.signature: bad argument #2 'secret' (a non-empty string expected, got an empty string)")
        local ok, err = pcall(ecommpay.signature, { f = print }, "very-secret-key")
        assert.is_false(ok)
        assert.matches("a value is not a string", err)
        assert.is_nil(err:find("very-secret-key", 1, true))
    end)
end)

describe("ecommpay.verify_notification", function()
    local function verify(raw_body, secret)
        return ecommpay.verify_notification(raw_body, nil, { secret = secret })
    end

    it("accepts the valid callback vectors and rejects the tampered one", function()
        for _, v in ipairs(vectors.callback_vectors) do
            local event, err = verify(v.raw_body, v.secret)
            if v.expected_valid then
                assert.is_table(event, v.name)
                assert.equal("ecommpay", event.provider)
            else
                assert.is_nil(event, v.name)
                assert.equal("signature", err.type)
                assert.equal("callback signature does not match", err.message)
                assert.is_nil(tostring(err):find(v.secret, 1, true))
            end
        end
    end)

    it("maps the vectors onto the common event: raw the body string, ecommpay's words under extra", function()
        local cv = {}
        for _, v in ipairs(vectors.callback_vectors) do cv[v.name] = v end
        local v = cv.callback_root_signature_trustly_sale_success
        local sale = verify(v.raw_body, v.secret)
        assert.same({ "payment", "succeeded", "TRUSTLY-0001", "41000000123", 10000, "SEK" },
            { sale.kind, sale.status, sale.merchant_ref, sale.provider_ref, sale.amount, sale.currency })
        assert.equal(v.raw_body, sale.raw)
        assert.same({ "sale", "success", 12345 },
            { sale.extra.operation_type, sale.extra.payment_status, sale.extra.project_id })
        assert.equal("K\195\182p #42 \226\128\147 caf\195\169", sale.extra.body.payment.description)
        assert.is_nil(rawget(sale, "project_id")) -- extras only under extra
        assert.equal(12345, sale.project_id) -- read through until 0.3 (deprecated)

        v = cv.callback_general_signature_trustly_sale_decline
        local decline = verify(v.raw_body, v.secret)
        assert.same({ "payment", "failed", "TRUSTLY-0002", 2500, "EUR", "20000", 12345 },
            { decline.kind, decline.status, decline.merchant_ref, decline.amount, decline.currency, decline.extra.code,
              decline.extra.project_id })
        assert.equal("3028", decline.extra.errors[1].code)
        assert.is_nil(decline.extra.redirect) -- redirect_data with an empty url is no redirect

        v = cv.callback_root_signature_refund_success
        local refund = verify(v.raw_body, v.secret)
        assert.same({ "refund", "refunded", 10000, 0 },
            { refund.kind, refund.status, refund.amount, refund.extra.payment_amount })
    end)

    it("gives every vector's event in the contract's shape and vocabulary", function()
        local provider = require "luapay.provider"
        local kinds, statuses = {}, {}
        for _, k in ipairs(provider.KINDS) do kinds[k] = true end
        for _, s in ipairs(provider.STATUSES) do statuses[s] = true end
        local common = { provider = true, kind = true, status = true, merchant_ref = true, provider_ref = true,
            amount = true, currency = true, raw = true, extra = true }
        for _, v in ipairs(vectors.callback_vectors) do
            local event = verify(v.raw_body, v.secret)
            if event then
                assert.is_true(kinds[event.kind], v.name)
                assert.is_true(statuses[event.status], v.name)
                assert.equal(v.raw_body, event.raw, v.name)
                assert.is_table(event.extra.body, v.name)
                for k in pairs(event) do assert.is_true(common[k], v.name .. ": " .. k) end
            end
        end
    end)

    it("verifies on the exact text: integers to 2^63-1 and beyond, 1.0, escapes and surrogate pairs", function()
        local secret = "cb-secret"
        local raw = signed('{"general":{"project_id":7,"payment_id":"p\\/1","signature":"SIG"},'
            .. '"operation":{"id":9223372036854775807,"big":123456789012345678901234,"one":1.0,"e":1e2,'
            .. '"half":0.5,"neg":-0},"s":"\\u00f6\\ud83d\\ude00\\/\\"\\\\","empty":{},"list":[],"n":null}',
            'general:payment_id:p/1;general:project_id:7;n:;operation:big:123456789012345678901234;'
            .. 'operation:e:100;operation:half:0.5;operation:id:9223372036854775807;operation:neg:0;'
            .. 'operation:one:1;s:\195\182\240\159\152\128/"\\', secret)
        local event, err = verify(raw, secret)
        assert.is_nil(err)
        assert.equal("9223372036854775807", event.provider_ref)
        assert.equal("p/1", event.merchant_ref)
        -- one digit changed far beyond 2^53: a double could not tell
        local tampered = raw:gsub("9223372036854775807", "9223372036854775806")
        assert.is_nil(verify(tampered, secret))
    end)

    it("takes the root signature before general.signature and drops nested signature keys", function()
        local secret = "s"
        local raw = signed('{"signature":"SIG","general":{"signature":"ignored","payment_id":"x"},'
            .. '"payment":{"signature":"also ignored","id":"x"}}', "general:payment_id:x;payment:id:x", secret)
        assert(verify(raw, secret))
        local swapped = raw:gsub('"ignored"', '"changed"')
        assert(verify(swapped, secret)) -- not part of the signed string
    end)

    it("rejects what is not a signed JSON object with a signature error", function()
        local cases = {
            { "", "callback has no body" },
            { "not json", "callback body is not JSON" },
            { "[1,2]", "callback body is not a JSON object" },
            { '"text"', "callback body is not a JSON object" },
            { '{"payment":{"id":"x"}}', "callback carries no signature" },
            { '{"signature":17,"general":{}}', "callback signature is not a string" },
            { '{"general":{"signature":""}}', "callback carries no signature" },
            { '{"signature":"abc","f":1e400}', "callback signature does not match" },
            { '{"signature":"abc","s":"\\ud800"}', "callback body is not JSON" },
        }
        for _, c in ipairs(cases) do
            local event, err = verify(c[1], "the-secret")
            assert.is_nil(event, c[1])
            assert.equal("signature", err.type, c[1])
            assert.equal(c[2], err.message:sub(1, #c[2]), c[1])
            assert.is_nil(tostring(err):find("the-secret", 1, true))
        end
        local event, err = verify(nil, "the-secret")
        assert.is_nil(event)
        assert.equal("signature", err.type)
    end)

    it("raises when given a decoded table instead of the raw body, or no secret", function()
        assert.has_error(function() ecommpay.verify_notification({}, nil, { secret = "s" }) end,
            "ecommpay.verify_notification: bad argument #1 'raw_body' (the raw body string expected (verify before decoding), got table)")
        assert.has_error(function() ecommpay.verify_notification("{}", "headers", { secret = "s" }) end,
            "ecommpay.verify_notification: bad argument #2 'headers' (a table or nil expected, got string)")
        assert.has_error(function() ecommpay.verify_notification("{}", {}, "s") end,
            "ecommpay.verify_notification: bad argument #3 'keys' ({secret = ...} expected, got string)")
        assert.has_error(function() ecommpay.verify_notification("{}", {}, { secret = "" }) end,
            "ecommpay.verify_notification: bad argument #3 'keys' (keys.secret: a non-empty string expected, got an empty string)")
    end)

    it("keeps the deprecated verify_callback(raw_body, secret) working until 0.3", function()
        local v = vectors.callback_vectors[1]
        for _, x in ipairs(vectors.callback_vectors) do
            if x.expected_valid then v = x break end
        end
        local event = assert(ecommpay.verify_callback(v.raw_body, v.secret))
        assert.same(verify(v.raw_body, v.secret), event)
        local _, err = ecommpay.verify_callback(v.raw_body:gsub('"', " ", 1), v.secret)
        assert.equal("signature", err.type)
        assert.has_error(function() ecommpay.verify_callback({}, "s") end,
            "ecommpay.verify_callback: bad argument #1 'raw_body' (the raw body string expected (verify before decoding), got table)")
        assert.has_error(function() ecommpay.verify_callback("{}") end,
            "ecommpay.verify_callback: bad argument #2 'secret' (a non-empty string expected, got nil)")
    end)

    it("maps every payment status and operation type of ecommpay onto the common event", function()
        local function ev(payment_status, op_type, op_status, payment_type)
            return ecommpay.event { payment = { status = payment_status, type = payment_type or "purchase" },
                                    operation = { type = op_type, status = op_status or "success" } }
        end
        local statuses = {
            success = "succeeded", decline = "failed", processing = "pending",
            ["awaiting 3ds result"] = "pending", ["awaiting redirect result"] = "pending",
            ["awaiting customer"] = "pending", ["awaiting clarification"] = "pending",
            ["awaiting capture"] = "authorized", refunded = "refunded", ["partially refunded"] = "partially_refunded",
            reversed = "reversed", ["partially reversed"] = "partially_reversed", cancelled = "canceled", canceled = "canceled",
            error = "failed", ["internal error"] = "failed", ["external error"] = "failed", expired = "failed",
        }
        for ecp, common in pairs(statuses) do
            assert.equal(common, ev(ecp, "sale", "processing").status, ecp)
        end
        assert.equal("pending", ev("something new", "sale", "processing").status)
        for op, kind in pairs { sale = "payment", refund = "refund", payout = "payout", recurring = "payment",
                                ["account verification"] = "account", reversal = "reversal", auth = "authorization",
                                capture = "capture", cancel = "void", chargeback = "chargeback",
                                ["something new"] = "other" } do
            local e = ev("success", op)
            assert.equal(kind, e.kind, op)
            assert.equal(op, e.extra.operation_type) -- ecommpay's own word stays
        end
        local reversed_payout = ev("reversed", "reversal", "success", "payout")
        assert.same({ "reversal", "reversed", "reversal", "payout" }, { reversed_payout.kind, reversed_payout.status,
            reversed_payout.extra.operation_type, reversed_payout.extra.payment_type })
        -- without an operation, the payment's type
        assert.equal("payment", ecommpay.event({ payment = { type = "purchase", status = "success" } }).kind)
        assert.equal("payout", ecommpay.event({ payment = { type = "payout", status = "success" } }).kind)
        -- a body given without its text is encoded again: raw is always a string
        assert.equal('{"payment":{"status":"success","type":"payout"}}',
            ecommpay.event({ payment = { type = "payout", status = "success" } }).raw)
        -- a declined refund leaves the payment as it was: the operation failed
        local declined_refund = ev("success", "refund", "decline")
        assert.same({ "refund", "failed" }, { declined_refund.kind, declined_refund.status })
    end)
end)

describe("ecommpay.payment_page_url", function()
    it("builds the vectors' URLs exactly as the PHP SDK does", function()
        for _, v in ipairs(vectors.payment_page_url_vectors) do
            local params = v.params_json and lexemes(v.params_json) or v.params
            assert.equal(v.url, ecommpay.payment_page_url(params, v.secret), v.name)
        end
    end)

    it("signs the decoded values: booleans as 1/0, objects as JSON; frame_mode is sent but not signed", function()
        local url = ecommpay.payment_page_url({
            project_id = 200, payment_id = "pp 1", payment_amount = 1000, payment_currency = "EUR",
            customer_id = "c1", force_payment_method = "online-banking-trustly", redirect = false,
            frame_mode = "popup", identify_doc_number = "AB 123",
            payment_extra_param = { beneficiary = { party_type = "PERSON", first_name = "Åsa", last_name = "Berg", country = "SE" } },
        }, "page-secret", "https://pp.example/")
        assert.matches("^https://pp%.example/payment%?project_id=200&payment_id=pp%+1&payment_amount=1000&", url)
        local q = query_of(url)
        assert.equal("0", q.redirect)
        assert.equal("popup", q.frame_mode)
        assert.equal('{"beneficiary":{"country":"SE","first_name":"\195\133sa","last_name":"Berg","party_type":"PERSON"}}',
            q.payment_extra_param)
        local sig = q.signature
        q.signature = nil
        assert.equal(sig, ecommpay.signature(q, "page-secret"))
        assert.is_nil(ecommpay.string_to_sign(q):find("frame_mode", 1, true))
    end)

    it("refuses floats and values that have no form", function()
        assert.has_error(function() ecommpay.payment_page_url({ payment_amount = 10.5 }, "s") end,
            "ecommpay.payment_page_url: bad argument #1 'params' (payment_amount is a float: send amounts as integers in minor units)")
        assert.has_error(function() ecommpay.payment_page_url({ x = print }, "s") end)
        assert.has_error(function() ecommpay.payment_page_url({}, "s", 42) end,
            "ecommpay.payment_page_url: bad argument #3 'base_url' (string expected, got number)")
    end)
end)
