-- The luapay command's provider subcommands against a background sandbox.
local core = require "luapay.core"

local STATE = "/tmp/luapay-cli-providers-spec.json"

local function luapay(args, input, env)
    local out, err, inp = os.tmpname(), os.tmpname(), os.tmpname()
    local f = io.open(inp, "wb")
    f:write(input or "")
    f:close()
    local ok, _, code = os.execute(("env -u LD_PRELOAD LUAPAY_CONFIG=/nonexistent LUAPAY_SANDBOX_STATE=%s %s bin/luapay %s < %s > %s 2> %s")
        :format(STATE, env or "", args, inp, out, err))
    if type(ok) == "number" then code = ok / 256 end
    local function slurp(p)
        local h = io.open(p, "rb")
        local s = h:read("*a")
        h:close()
        os.remove(p)
        return s
    end
    os.remove(inp)
    return slurp(out), slurp(err), code
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
        local out, err, code = luapay("sign trustpay --explain", '{"kind":"refund","fields":{"AccountId":"4107111111","Amount":150,"Currency":"EUR","Reference":"R-1"}}',
            "LUAPAY_TRUSTPAY_SECRET=s3cret")
        assert.equal(0, code, err)
        local signed = core.json_decode(out)
        assert.equal(core.hmac("sha256", "s3cret", signed.signed_message, "HEX"), signed.Signature)
        assert.is_nil(out:find("s3cret", 1, true))
    end)

    it("calls API Banking and prints the answer", function()
        local out, err, code = luapay("call trustpay accounts --sandbox")
        assert.equal(0, code, err)
        assert.is_table(core.json_decode(out)[1])
    end)

    it("answers wrong input with one line and a non-zero exit", function()
        local _, err, code = luapay("url trustpay-card --sandbox", "{not json")
        assert.equal(2, code)
        assert.matches("^luapay: invalid JSON in the payment parameters", err)
        _, err, code = luapay("url trustpay-card --sandbox", '{"Amount":1.5}')
        assert.equal(1, code)
        assert.matches("^luapay: luapay validation error", err)
        _, err, code = luapay("sign trustpay", '{"kind":"refund","fields":{}}')
        assert.equal(3, code)
        assert.matches("missing credentials for trustpay: secret %(LUAPAY_TRUSTPAY_SECRET%)", err)
        _, err, code = luapay("call trustpay nosuch --sandbox")
        assert.equal(2, code)
        assert.matches("unknown TrustPay method 'nosuch'", err)
        for _, e in ipairs({ err }) do assert.equal(1, select(2, e:gsub("\n", ""))) end
    end)
end)
