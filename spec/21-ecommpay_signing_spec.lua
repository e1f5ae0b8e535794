-- ecommpay's pure functions: string_to_sign, signature, verify_callback and
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

    it("signs the Gate sale vector with its Unicode exactly as the PHP SDK", function()
        local v
        for _, x in ipairs(vectors.vectors) do if x.name == "gate_trustly_sale_request_unicode" then v = x end end
        local params = lexemes(v.params_json)
        assert.equal(v.signature, ecommpay.signature(params, v.secret))
        assert.matches("\xF0\x9F", ecommpay.string_to_sign(params)) -- the surrogate pair, as UTF-8
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

describe("ecommpay.verify_callback", function()
    it("accepts the valid callback vectors and rejects the tampered one", function()
        for _, v in ipairs(vectors.callback_vectors) do
            local event, err = ecommpay.verify_callback(v.raw_body, v.secret)
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

    it("maps the vectors onto the common event", function()
        local cv = {}
        for _, v in ipairs(vectors.callback_vectors) do cv[v.name] = v end
        local sale = ecommpay.verify_callback(cv.callback_root_signature_trustly_sale_success.raw_body,
            cv.callback_root_signature_trustly_sale_success.secret)
        assert.same({ "sale", "succeeded", "TRUSTLY-0001", "41000000123", 10000, "SEK" },
            { sale.kind, sale.status, sale.merchant_ref, sale.provider_ref, sale.amount, sale.currency })
        assert.equal(12345, sale.project_id)
        assert.equal("K\xC3\xB6p #42 \xE2\x80\x93 caf\xC3\xA9", sale.raw.payment.description)

        local v = cv.callback_general_signature_trustly_sale_decline
        local decline = ecommpay.verify_callback(v.raw_body, v.secret)
        assert.same({ "sale", "failed", "TRUSTLY-0002", 2500, "EUR", "20000", 12345 },
            { decline.kind, decline.status, decline.merchant_ref, decline.amount, decline.currency, decline.code,
              decline.project_id })
        assert.equal("3028", decline.errors[1].code)
        assert.is_nil(decline.redirect) -- redirect_data with an empty url is no redirect

        v = cv.callback_root_signature_refund_success
        local refund = ecommpay.verify_callback(v.raw_body, v.secret)
        assert.same({ "refund", "refunded", 10000, 0 }, { refund.kind, refund.status, refund.amount, refund.payment_amount })
    end)

    it("verifies on the exact text: integers to 2^63-1 and beyond, 1.0, escapes and surrogate pairs", function()
        local secret = "cb-secret"
        local raw = signed('{"general":{"project_id":7,"payment_id":"p\\/1","signature":"SIG"},'
            .. '"operation":{"id":9223372036854775807,"big":123456789012345678901234,"one":1.0,"e":1e2,'
            .. '"half":0.5,"neg":-0},"s":"\\u00f6\\ud83d\\ude00\\/\\"\\\\","empty":{},"list":[],"n":null}',
            'general:payment_id:p/1;general:project_id:7;n:;operation:big:123456789012345678901234;'
            .. 'operation:e:100;operation:half:0.5;operation:id:9223372036854775807;operation:neg:0;'
            .. 'operation:one:1;s:\xC3\xB6\xF0\x9F\x98\x80/"\\', secret)
        local event, err = ecommpay.verify_callback(raw, secret)
        assert.is_nil(err)
        assert.equal("9223372036854775807", event.provider_ref)
        assert.equal("p/1", event.merchant_ref)
        -- one digit changed far beyond 2^53: a double could not tell
        local tampered = raw:gsub("9223372036854775807", "9223372036854775806")
        assert.is_nil(ecommpay.verify_callback(tampered, secret))
    end)

    it("takes the root signature before general.signature and drops nested signature keys", function()
        local secret = "s"
        local raw = signed('{"signature":"SIG","general":{"signature":"ignored","payment_id":"x"},'
            .. '"payment":{"signature":"also ignored","id":"x"}}', "general:payment_id:x;payment:id:x", secret)
        assert(ecommpay.verify_callback(raw, secret))
        local swapped = raw:gsub('"ignored"', '"changed"')
        assert(ecommpay.verify_callback(swapped, secret)) -- not part of the signed string
    end)

    it("rejects what is not a signed JSON object with a signature error", function()
        local cases = {
            { "", "callback has no body" },
            { "not json", "callback body is not JSON" },
            { "[1,2]", "callback body is not a JSON object" },
            { '"text"', "callback body is not a JSON object" },
            { '{"payment":{"id":"x"}}', "callback carries no signature" },
            { '{"signature":17,"general":{}}', "callback carries no signature" },
            { '{"general":{"signature":""}}', "callback carries no signature" },
            { '{"signature":"abc","f":1e400}', "callback signature does not match" },
            { '{"signature":"abc","s":"\\ud800"}', "callback body is not JSON" },
        }
        for _, c in ipairs(cases) do
            local event, err = ecommpay.verify_callback(c[1], "the-secret")
            assert.is_nil(event, c[1])
            assert.equal("signature", err.type, c[1])
            assert.equal(c[2], err.message:sub(1, #c[2]), c[1])
            assert.is_nil(tostring(err):find("the-secret", 1, true))
        end
        local event, err = ecommpay.verify_callback(nil, "the-secret")
        assert.is_nil(event)
        assert.equal("signature", err.type)
    end)

    it("raises when given a decoded table instead of the raw body, or no secret", function()
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
            reversed = "reversed", ["partially reversed"] = "reversed", cancelled = "canceled", canceled = "canceled",
            error = "failed", ["internal error"] = "failed", ["external error"] = "failed", expired = "failed",
        }
        for ecp, common in pairs(statuses) do
            assert.equal(common, ev(ecp, "sale", "processing").status, ecp)
        end
        assert.equal("pending", ev("something new", "sale", "processing").status)
        for op, kind in pairs { sale = "sale", refund = "refund", payout = "payout", recurring = "recurring",
                                ["account verification"] = "account_verification", reversal = "reversal" } do
            assert.equal(kind, ev("success", op).kind)
        end
        assert.equal("payout_reversal", ev("reversed", "reversal", "success", "payout").kind)
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
        assert.equal('{"beneficiary":{"country":"SE","first_name":"\xC3\x85sa","last_name":"Berg","party_type":"PERSON"}}',
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
