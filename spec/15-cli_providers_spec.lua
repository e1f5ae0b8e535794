-- The luapay command's provider subcommands against a background sandbox.
local core = require "luapay.core"

local run = require("support.cli").run

-- No config file: credentials come from the environment or --sandbox.
local function luapay(args, input, env)
    return run(args, input, "LUAPAY_CONFIG=/nonexistent " .. (env or ""), "providers")
end

describe("luapay with TrustPay", function()
    setup(function() assert.equal(0, select(3, luapay("sandbox start"))) end)
    teardown(function() luapay("sandbox stop") end)

    local card = '{"Amount":2500,"Currency":"EUR","Reference":"ORD-7","CardHolder":"Jane Doe","BillingStreet":"Main 1",'
        .. '"BillingCity":"Bratislava","BillingPostcode":"81101","BillingCountry":"SK","Email":"jane@example.com"}'

    it("builds a signed card payment URL against the sandbox", function()
        local out, err, code = luapay("url trustpay-card --sandbox", card)
        assert.equal(0, code, err)
        local url = core.json_decode(out).url
        assert.matches("/trustpay/", url)
        assert.matches("Signature=%x+", url)
        assert.matches("Amount=25%.00", url)
    end)

    it("signs a message and explains what it signed", function()
        local out, err, code = luapay("sign trustpay --explain",
            '{"kind":"refund","fields":{"AccountId":"4107111111","Amount":150,"Currency":"EUR","Reference":"R-1"}}',
            "LUAPAY_TRUSTPAY_SECRET=s3cret")
        assert.equal(0, code, err)
        local signed = core.json_decode(out)
        assert.equal(core.hmac("sha256", "s3cret", signed.signed_message, "HEX"), signed.Signature)
        assert.is_nil(out:find("s3cret", 1, true))
    end)

    it("verifies a notification given as its query string or as TrustPay's e-mail JSON, extras under extra", function()
        local trustpay = require "luapay.trustpay"
        local f = { AccountId = "4107111111", Amount = "6.00", Currency = "EUR", Type = "CRDT", ResultCode = "3",
            Reference = "ORD-8", PaymentRequestId = "177561", CardMask = "0162" }
        f.Signature = assert(trustpay.sign("s3cret", "card_notification", f))
        local query = require("luapay.http").encode_query(f)
        local env = "LUAPAY_TRUSTPAY_ACCOUNT_ID=4107111111 LUAPAY_TRUSTPAY_SECRET=s3cret"
        for _, input in ipairs({ query, assert(core.json_encode(f)) }) do
            local out, err, code = luapay("verify trustpay", input, env)
            assert.equal(0, code, err)
            local event = core.json_decode(out)
            assert.same({ "payment", "succeeded", "ORD-8", 600 }, { event.kind, event.status, event.merchant_ref, event.amount })
            assert.same({ "card", "CRDT", "0162" }, { event.extra.method, event.extra.type, event.extra.card.CardMask })
            assert.equal(query, event.raw)
        end
        local _, err, code = luapay("verify trustpay", (query:gsub("Amount=6%.00", "Amount=7.00")), env)
        assert.equal(1, code)
        assert.matches("^luapay: signature error", err)
    end)

    it("calls API Banking and prints the answer", function()
        local out, err, code = luapay("call trustpay accounts --sandbox")
        assert.equal(0, code, err)
        assert.is_table(core.json_decode(out)[1])
    end)

    it("reads the request of a call from standard input when none is given", function()
        local out, err, code = luapay("call trustpay account --sandbox", "4107111111\n")
        assert.equal(0, code, err)
        assert.equal(4107111111, core.json_decode(out).AccountId)
        out, err, code = luapay("call trustpay account --sandbox -", "4107111111")
        assert.equal(0, code, err)
        assert.equal(4107111111, core.json_decode(out).AccountId)
        out, err, code = luapay("call trustpay accounts --sandbox", "{not json")
        assert.equal("", out)
        assert.equal(2, code)
        assert.matches("^luapay: invalid JSON in the request", err)
    end)

    it("answers wrong input with one line and a non-zero exit", function()
        local _, err, code = luapay("url trustpay-card --sandbox", "{not json")
        assert.equal(2, code)
        assert.matches("^luapay: invalid JSON in the payment parameters", err)
        _, err, code = luapay("url trustpay-card --sandbox", '{"Amount":1.5}')
        assert.equal(1, code)
        assert.matches("^luapay: validation error", err)
        _, err, code = luapay("sign trustpay", '{"kind":"refund","fields":{}}')
        assert.equal(3, code)
        assert.matches("missing credentials for trustpay: secret %(LUAPAY_TRUSTPAY_SECRET%)", err)
        _, err, code = luapay("call trustpay nosuch --sandbox")
        assert.equal(2, code)
        assert.matches("unknown TrustPay method 'nosuch'", err)
        for _, e in ipairs({ err }) do assert.equal(1, select(2, e:gsub("\n", ""))) end
    end)
end)

describe("luapay export and webhooks (beGateway, Trustly NA)", function()
    setup(function() assert.equal(0, select(3, luapay("sandbox start"))) end)
    teardown(function() luapay("sandbox stop") end)

    it("streams a beGateway day as JSON lines, every one a transaction of that day", function()
        local out, err, code = luapay("export begateway --from 2024-06-03 --to 2024-06-03 --sandbox")
        assert.equal(0, code, err)
        local n = 0
        for line in out:gmatch("[^\n]+") do
            local tx = assert(core.json_decode(line))
            assert.equal("2024-06-03", tx.created_at:sub(1, 10))
            n = n + 1
        end
        assert.is_true(n > 100)
    end)

    it("writes a Trustly NA period to CSV with a progress line on stderr", function()
        local csv = os.tmpname()
        local out, err, code = luapay("export trustly-na --from 2024-06-01 --to 2024-06-20 --sandbox --csv " .. csv)
        assert.equal(0, code, err)
        local written = core.json_decode(out).written
        local f = io.open(csv, "rb")
        local text = f:read("*a")
        f:close()
        os.remove(csv)
        assert.equal(written + 1, select(2, text:gsub("\r\n", "")))
        assert.matches("^paymentId,merchantReference,", text)
        assert.matches("luapay: 1000 transactions so far", err)
    end)

    it("exports amounts in one unit for both providers: integers in minor units", function()
        for _, provider in ipairs({ "begateway", "trustly-na" }) do
            local out, err, code = luapay("export " .. provider .. " --from 2024-06-03 --to 2024-06-03 --sandbox")
            assert.equal(0, code, err)
            local n = 0
            for line in out:gmatch("[^\n]+") do
                local tx = assert(core.json_decode(line))
                assert.equal("number", type(tx.amount), provider .. ": " .. line)
                assert.equal(math.floor(tx.amount), tx.amount, provider)
                if tx.paid ~= nil then assert.equal("number", type(tx.paid), provider) end
                n = n + 1
            end
            assert.is_true(n > 10, provider)
        end
        local csv = os.tmpname()
        finally(function() os.remove(csv) end)
        local _, err, code = luapay("export trustly-na --from 2024-06-03 --to 2024-06-03 --sandbox --csv " .. csv)
        assert.equal(0, code, err)
        local second = select(2, require("support.util").read(csv):match("^([^\n]*)\n([^\n]*)"))
        assert.matches("^[^,]*,[^,]*,[^,]*,%d+,%d+,USD,", second)
    end)

    it("refuses a bad period with a usage error", function()
        local _, err, code = luapay("export begateway --from yesterday --to 2024-06-03 --sandbox")
        assert.equal(2, code)
        assert.equal("luapay: --from must be YYYY-MM-DD or YYYY-MM-DDThh:mm:ss\n", err)
    end)

    it("verifies a signed beGateway webhook and rejects a tampered one", function()
        local util = require "support.util"
        local key = assert(core.pkey(util.fixture("keys/provider_private.pem")))
        local body = core.json_encode{ transaction = { uid = "u-1", status = "successful", type = "payment",
            amount = 1000, currency = "EUR", tracking_id = "ORD-1" } }
        local sig = core.base64_encode(key:sign(body, "sha256"))
        local env = "LUAPAY_BEGATEWAY_PSP_ID=1 LUAPAY_BEGATEWAY_SECRET=x LUAPAY_BEGATEWAY_DWH_URL=http://127.0.0.1:1"
            .. " LUAPAY_BEGATEWAY_PUBLIC_KEY=spec/fixtures/keys/provider_public.pem"
        local out, err, code = luapay("verify begateway --signature " .. sig, body, env)
        assert.equal(0, code, err)
        local event = core.json_decode(out)
        assert.equal("succeeded", event.status)
        assert.equal("ORD-1", event.merchant_ref)
        err, code = select(2, luapay("verify begateway --signature " .. sig, body:gsub("1000", "9000"), env))
        assert.equal(1, code)
        assert.matches("^luapay: signature error", err)
    end)

    it("takes the sandbox's test webhooks with --sandbox; a live configuration refuses a test transaction", function()
        local util = require "support.util"
        local key = assert(core.pkey(util.fixture("keys/provider_private.pem")))
        local body = core.json_encode{ transaction = { uid = "u-2", status = "successful", type = "payment",
            amount = 1000, currency = "EUR", tracking_id = "ORD-2", test = true } }
        local sig = core.base64_encode(key:sign(body, "sha256"))
        local out, err, code = luapay("verify begateway --sandbox --signature " .. sig, body)
        assert.equal(0, code, err)
        local event = core.json_decode(out)
        assert.is_true(event.extra.test)
        assert.equal("ORD-2", event.merchant_ref)
        local env = "LUAPAY_BEGATEWAY_PSP_ID=1 LUAPAY_BEGATEWAY_SECRET=x LUAPAY_BEGATEWAY_DWH_URL=http://127.0.0.1:1"
            .. " LUAPAY_BEGATEWAY_PUBLIC_KEY=spec/fixtures/keys/provider_public.pem"
        out, err, code = luapay("verify begateway --signature " .. sig, body, env)
        assert.equal(1, code)
        assert.equal("", out)
        assert.matches("test transaction", err)
    end)
end)

describe("luapay with ecommpay", function()
    setup(function() assert.equal(0, select(3, luapay("sandbox start"))) end)
    teardown(function() luapay("sandbox stop") end)
    local creds = "LUAPAY_ECOMMPAY_PROJECT_ID=1625 LUAPAY_ECOMMPAY_SECRET=luapay-ecommpay-sandbox-secret"

    it("signs a request and explains the canonical string", function()
        local out, err, code = luapay("sign ecommpay --explain",
            '{"general":{"project_id":1625,"payment_id":"p-1"},"payment":{"amount":1000,"currency":"EUR"}}', creds)
        assert.equal(0, code, err)
        local signed = core.json_decode(out)
        assert.equal("general:payment_id:p-1;general:project_id:1625;payment:amount:1000;payment:currency:EUR", signed.string_to_sign)
        assert.equal(core.hmac("sha512", "luapay-ecommpay-sandbox-secret", signed.string_to_sign, "base64"), signed.signature)
    end)

    it("verifies a saved callback and refuses a tampered copy", function()
        local ecommpay = require "luapay.ecommpay"
        local body = { payment = { id = "p-1", status = "success", amount = 1000, currency = "EUR" },
            operation = { type = "sale", status = "success", sum_initial = { amount = 1000, currency = "EUR" } }, project_id = 1625 }
        body.signature = ecommpay.signature(body, "luapay-ecommpay-sandbox-secret")
        local raw = core.json_encode(body)
        local out, err, code = luapay("verify ecommpay", raw, creds)
        assert.equal(0, code, err)
        assert.equal("succeeded", core.json_decode(out).status)
        err, code = select(2, luapay("verify ecommpay", (raw:gsub("1000", "9000")), creds))
        assert.equal(1, code)
        assert.matches("^luapay: signature error", err)
    end)

    it("makes a sale against the sandbox, which a duplicate payment_id then fails", function()
        local req = '{"general":{"payment_id":"cli-' .. core.hex_encode(core.random_bytes(4)) .. '"},'
            .. '"payment":{"amount":2500,"currency":"EUR"},'
            .. '"customer":{"id":"c-42","ip_address":"198.51.100.7","first_name":"Asa","last_name":"L",'
            .. '"email":"asa@example.se","country":"SE","language":"sv"},'
            .. '"return_url":{"success":"https://shop.example/ok","decline":"https://shop.example/no"}}'
        local out, err, code = luapay("call ecommpay sale --sandbox '" .. req .. "'")
        assert.equal(0, code, err)
        assert.equal("success", core.json_decode(out).status)
        err, code = select(2, luapay("call ecommpay sale --sandbox '" .. req .. "'"))
        assert.equal(1, code)
        assert.matches("^luapay: ", err)
    end)

    it("names the operations it knows when given another", function()
        local _, err, code = luapay("call ecommpay nosuch --sandbox '{}'")
        assert.equal(2, code)
        assert.matches("^luapay: unknown ecommpay operation 'nosuch' %(account_verification, payout, recurring, refund, ", err)
    end)

    it("builds a Payment Page URL", function()
        local out, err, code = luapay("url ecommpay-page",
            '{"payment_id":"p-9","payment_amount":1000,"payment_currency":"EUR","customer_id":"c-1"}', creds)
        assert.equal(0, code, err)
        assert.matches("^https://paymentpage%.ecommpay%.com/payment%?project_id=1625&payment_id=p%-9", core.json_decode(out).url)
    end)
end)

describe("luapay with Trustly", function()
    setup(function() assert.equal(0, select(3, luapay("sandbox start"))) end)
    teardown(function() luapay("sandbox stop") end)

    it("calls Balance on the sandbox through a signed, verified exchange", function()
        local out, err, code = luapay("call trustly Balance --sandbox")
        assert.equal(0, code, err)
        local rows = core.json_decode(out)
        assert.is_string(rows[1].currency)
        assert.matches("^%d+%.%d%d$", rows[1].balance)
    end)

    it("signs a request with the merchant key and never prints the password", function()
        local out, err, code = luapay("sign trustly --sandbox --explain",
            '{"method":"Balance","data":{"Username":"u","Password":"pw-123"},"uuid":"258a2184-2842-4b85-85ca-293525152425"}')
        assert.equal(0, code, err)
        local signed = core.json_decode(out)
        assert.equal("Balance258a2184-2842-4b85-85ca-293525152425Password[REDACTED]Usernameu", signed.plaintext)
        local pub = assert(core.pkey(require("support.util").fixture("keys/merchant_public.pem")))
        assert.is_true(pub:verify("Balance258a2184-2842-4b85-85ca-293525152425Passwordpw-123Usernameu",
            core.base64_decode(signed.request.params.Signature), "sha1"))
        assert.is_nil(out:find("pw-123", 1, true))
    end)

    it("reads the Data of a call from standard input when none is given", function()
        local _, err, code = luapay("call trustly Deposit --sandbox", '{"EndUserID":"e1"}')
        assert.equal(1, code)
        assert.matches("invalid Deposit request: Attributes, NotificationURL ", err)
        _, err, code = luapay("call trustly Balance --sandbox -", "{not json")
        assert.equal(2, code)
        assert.matches("^luapay: invalid JSON in the request data", err)
    end)

    it("refuses an invalid request before sending, with exit 1", function()
        local _, err, code = luapay("call trustly Deposit --sandbox '{\"EndUserID\":\"e1\"}'")
        assert.equal(1, code)
        assert.matches("^luapay: validation error: invalid Deposit request", err)
    end)
end)
