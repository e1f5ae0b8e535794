-- Trustly North America signatures: the Lightbox establishData
-- requestSignature (HMAC-SHA1 base64 over the documented field order; the
-- HmacSHA512 variant) and event notifications (Authorization: Basic
-- base64(accessId:signature) over the URL-decoded body).
local core = require "luapay.core"
local trustly_na = require "luapay.trustly_na"

-- Expected values published in TrustlyInc/trustly-nestjs-example,
-- src/RequestSignature/request-signature.utils.spec.ts (accessKey "123456").
local ESTABLISH = {
    accessId = "1234",
    account = {
        accountNumber = "", routingNumber = "", type = 1, country = "", name = "", nameOnAccount = "",
        paymentProviderSubtype = 0, profile = 0, source = 0, token = "",
        verification = { hasEnoughFunds = false, verificationDate = 0, verified = false, type = 0 }, verified = false,
    },
    amount = "1.00", cancelUrl = "", currency = "USD",
    customer = {
        address = { address1 = "123 Main St", city = "San Francisco", country = "US", state = "CA", zip = "94111" },
        dateOfBirth = "1990-01-01", driverLicense = { number = "1010", state = "CA" }, email = "john@ca.us",
        enrollDate = 1234567890, externalId = "1234", name = "John Doe", phone = "123-456-7890", taxId = "123-45-6789",
        createdAt = 0, customerId = "", merchantId = "", updatedAt = 0,
    },
    description = "text", displayAmount = "1.00", localUrl = "mySite", merchantId = "1234", merchantReference = "ref123",
    metadata = { urlScheme = "" }, paymentType = "Recurring",
    recurrence = { automaticCapture = false, frequencyUnit = 1, frequencyUnitType = 3, recurringAmount = "1.00" },
    returnUrl = "", transactionId = "", verification = { verifyCustomer = false, status = "", verified = false },
    env = "", minimumBalance = 0, timeZone = "",
}
local EXPECTED_STRING = "accessId=1234&merchantId=1234&description=text&currency=USD&amount=1.00&displayAmount=1.00"
    .. "&merchantReference=ref123&paymentType=Recurring&recurrence.frequencyUnit=1&recurrence.frequencyUnitType=3"
    .. "&recurrence.recurringAmount=1.00&customer.externalId=1234&customer.name=John Doe&customer.taxId=123-45-6789"
    .. "&customer.driverLicense.number=1010&customer.driverLicense.state=CA&customer.address.address1=123 Main St"
    .. "&customer.address.city=San Francisco&customer.address.state=CA&customer.address.zip=94111"
    .. "&customer.address.country=US&customer.phone=123-456-7890&customer.email=john@ca.us"
    .. "&customer.enrollDate=1234567890&customer.dateOfBirth=1990-01-01&account.type=1"

local function with(base, extra)
    local t = {}
    for k, v in pairs(base) do t[k] = v end
    for k, v in pairs(extra) do t[k] = v end
    return t
end

describe("Trustly NA requestSignature", function()
    it("reproduces Trustly's published example", function()
        assert.equal(EXPECTED_STRING, trustly_na.signature_string(ESTABLISH))
        assert.equal("HrGQpg/NsPXmh+P9u37R121Rot0=", trustly_na.request_signature(ESTABLISH, "123456"))
    end)

    it("leaves out an empty displayAmount, as the second published example", function()
        assert.equal("L/tBy40/WKaWNH0dcdp9j09cMqs=", trustly_na.request_signature(with(ESTABLISH, { displayAmount = "" }), "123456"))
    end)

    it("ignores fields outside the documented list and false booleans", function()
        local extra = with(ESTABLISH, { notIntendedData = "x", recurrence = with(ESTABLISH.recurrence, { automaticCapture = false }) })
        assert.equal("HrGQpg/NsPXmh+P9u37R121Rot0=", trustly_na.request_signature(extra, "123456"))
        local on = with(ESTABLISH, { recurrence = with(ESTABLISH.recurrence, { automaticCapture = true }) })
        assert.matches("recurrence%.recurringAmount=1%.00&recurrence%.automaticCapture=true&", trustly_na.signature_string(on))
    end)

    it("takes flat dotted keys as well as nested tables", function()
        local flat = {
            accessId = "1234", merchantId = "1234", description = "text", currency = "USD", amount = "1.00",
            displayAmount = "1.00", merchantReference = "ref123", paymentType = "Recurring",
            ["recurrence.frequencyUnit"] = 1, ["recurrence.frequencyUnitType"] = 3, ["recurrence.recurringAmount"] = "1.00",
            ["customer.externalId"] = "1234", ["customer.name"] = "John Doe", ["customer.taxId"] = "123-45-6789",
            ["customer.driverLicense.number"] = "1010", ["customer.driverLicense.state"] = "CA",
            ["customer.address.address1"] = "123 Main St", ["customer.address.city"] = "San Francisco",
            ["customer.address.state"] = "CA", ["customer.address.zip"] = "94111", ["customer.address.country"] = "US",
            ["customer.phone"] = "123-456-7890", ["customer.email"] = "john@ca.us", ["customer.enrollDate"] = 1234567890,
            ["customer.dateOfBirth"] = "1990-01-01", ["account.type"] = 1,
        }
        assert.equal(EXPECTED_STRING, trustly_na.signature_string(flat))
        assert.equal("HrGQpg/NsPXmh+P9u37R121Rot0=", trustly_na.request_signature(flat, "123456"))
    end)

    it("keeps values raw, not URL-encoded, in the documented order", function()
        local s = trustly_na.signature_string{ transactionId = "T1", accessId = "A&B", customer = { name = "Zoë O'Neil" },
            amount = "10.00", merchantId = "M" }
        assert.equal("accessId=A&B&merchantId=M&amount=10.00&customer.name=Zoë O'Neil&transactionId=T1", s)
    end)

    it("signs with HMAC-SHA512 behind the HmacSHA512: prefix", function()
        local sig = trustly_na.request_signature(ESTABLISH, "123456", "HmacSHA512")
        assert.equal("HmacSHA512:" .. core.hmac("sha512", "123456", EXPECTED_STRING, "base64"), sig)
        assert.equal(trustly_na.request_signature(ESTABLISH, "123456"), trustly_na.request_signature(ESTABLISH, "123456", "HmacSHA1"))
    end)

    it("raises on misuse", function()
        assert.has_error(function() trustly_na.request_signature(ESTABLISH) end,
            "trustly_na.request_signature: bad argument #2 'access_key' (non-empty string expected, got nil)")
        assert.has_error(function() trustly_na.request_signature(ESTABLISH, "k", "HmacMD5") end,
            "trustly_na.request_signature: bad argument #3 'alg' (HmacSHA1 or HmacSHA512 expected)")
        assert.has_error(function() trustly_na.request_signature("accessId=1", "k") end)
        assert.has_error(function() trustly_na.request_signature({ amount = { 1 } }, "k") end)
    end)
end)

describe("Trustly NA notifications", function()
    local ACCESS_ID, ACCESS_KEY = "M8RaHgEjBE54zuFYMRQq", "test-access-key-0001"
    -- the body of Trustly's "validate the notification signature" page
    local BODY = "merchantId=1002463580&merchantReference=cb180040-7210-4ab9-97b7-415824754802&paymentType=2"
        .. "&transactionType=3&eventId=1002593570&eventType=Authorize&objectId=1002593555&objectType=Transaction"
        .. "&message=&timeZone=Etc%2FUTC&createdAt=1556234040954&accessId=M8RaHgEjBE54zuFYMRQq"
        .. "&paymentProviderTransaction.status=AC100&paymentProviderTransaction.statusMessage=AC100&status=2"
        .. "&statusMessage=Authorized"
    local tna = trustly_na.new{ access_id = ACCESS_ID, access_key = ACCESS_KEY }

    local function url_decode(s)
        return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
    end

    -- What Trustly sends: Basic base64(accessId:base64 HMAC of the decoded body).
    local function authorization(body, key, alg, id)
        local md = alg == "HmacSHA512" and "sha512" or "sha1"
        local sig = core.hmac(md, key or ACCESS_KEY, url_decode(body), "base64")
        if alg then sig = alg .. ":" .. sig end
        return "Basic " .. core.base64_encode((id or ACCESS_ID) .. ":" .. sig)
    end

    it("decodes the documented header to accessId:signature", function()
        assert.equal("M8RaHgEjBE54zuFYMRQq:EYN3GXasrVU1vQ1uyYz22NNQdy4=",
            core.base64_decode("TThSYUhnRWpCRTU0enVGWU1SUXE6RVlOM0dYYXNyVlUxdlExdXlZejIyTk5RZHk0PQ=="))
    end)

    it("verify the documented notification and give the common event", function()
        local event = assert(tna:notification(BODY, authorization(BODY)))
        assert.equal("trustly_na", event.provider)
        assert.equal("capture", event.kind)
        assert.equal("authorized", event.status)
        assert.equal("cb180040-7210-4ab9-97b7-415824754802", event.merchant_ref)
        assert.equal("1002593555", event.provider_ref)
        assert.is_nil(event.amount)
        assert.equal(BODY, event.raw) -- the body as received
        assert.same({ "Capture", "Authorize", "Authorized" },
            { event.extra.transactionType, event.extra.eventType, event.extra.transactionStatus })
        assert.equal("Authorize", event.extra.fields.eventType)
        assert.equal("Etc/UTC", event.extra.fields.timeZone)
        assert.equal("AC100", event.extra.fields["paymentProviderTransaction.status"])
        for k in pairs(event) do
            assert.is_truthy(({ provider = 1, kind = 1, status = 1, merchant_ref = 1, provider_ref = 1, amount = 1,
                currency = 1, raw = 1, extra = 1 })[k], k)
        end
    end)

    it("verify with the pure function: headers in any case, keys under the constructor's names", function()
        local keys = { access_id = ACCESS_ID, access_key = ACCESS_KEY }
        for _, name in ipairs { "Authorization", "authorization", "AUTHORIZATION" } do
            local event = assert(trustly_na.verify_notification(BODY, { [name] = authorization(BODY),
                ["Content-Type"] = "application/x-www-form-urlencoded" }, keys))
            assert.same({ "capture", "authorized", BODY }, { event.kind, event.status, event.raw })
        end
        local event, err = trustly_na.verify_notification(BODY:gsub("status=2", "status=4"),
            { Authorization = authorization(BODY) }, keys)
        assert.is_nil(event)
        assert.equal("signature", err.type)
        err = select(2, trustly_na.verify_notification(BODY,
            { Authorization = { authorization(BODY), authorization(BODY) } }, keys))
        assert.equal("more than one Authorization header", err.message:match(": (.*)$"))
        -- the 0.1 form, (raw_body, authorization, access_id, access_key): deprecated, until 0.3
        event = assert(trustly_na.verify_notification(BODY, authorization(BODY), ACCESS_ID, ACCESS_KEY))
        assert.equal(BODY, event.raw)
        assert.equal("signature", select(2, trustly_na.verify_notification(BODY, authorization(BODY), ACCESS_ID, "other")).type)
    end)

    it("map every transactionType onto the common kinds and keep Trustly's word", function()
        local provider = require "luapay.provider"
        local kinds = {}
        for _, k in ipairs(provider.KINDS) do kinds[k] = true end
        local expect = { [0] = "payment", "authorization", "payment", "capture", "refund", "reversal", "payout",
            "reversal", "payment", [10] = "authorization" }
        for code, name in pairs(trustly_na.transaction_types) do
            local body = ("transactionType=%d&status=4&objectId=1&merchantReference=r"):format(code)
            local event = assert(tna:notification(body, authorization(body)))
            assert.equal(expect[code], event.kind, name)
            assert.is_true(kinds[event.kind], name)
            assert.equal(name, event.extra.transactionType)
        end
        -- without a transactionType, eventType's word; a word luapay does not know is "other"
        local body = "eventType=Refund&status=4&objectId=1"
        assert.equal("refund", assert(tna:notification(body, authorization(body))).kind)
        body = "transactionType=42&status=4&objectId=1"
        assert.equal("other", assert(tna:notification(body, authorization(body))).kind)
    end)

    it("answer: 200 once recorded, an error status (sent again) when not, 400 without an event", function()
        local event = assert(tna:notification(BODY, authorization(BODY)))
        local text = { ["Content-Type"] = "text/plain" }
        assert.same({ status = 200, headers = text, body = "OK" }, tna:notification_response(event, true))
        assert.same({ status = 500, headers = text, body = "ERROR" },
            tna:notification_response(event, false))
        local none, err = tna:notification(BODY, authorization(BODY, "another-key"))
        for _, received in ipairs { true, false } do
            assert.same({ status = 400, headers = text, body = "ERROR" },
                tna:notification_response(none, received))
            for _, not_an_event in ipairs { err, { status = "succeeded" } } do
                assert.equal(400, tna:notification_response(not_an_event, received).status)
            end
        end
    end)

    it("accept a headers table and the HmacSHA512 variant", function()
        assert.is_table((tna:notification(BODY, { authorization = authorization(BODY) })))
        assert.is_table((tna:notification(BODY, authorization(BODY, nil, "HmacSHA512"))))
        assert.is_table((trustly_na.verify_notification(BODY, authorization(BODY), ACCESS_ID, ACCESS_KEY)))
    end)

    it("accept '+' whether the sender read it as a space or as a plus", function()
        local body = "merchantReference=order+1&status=4&transactionType=2&objectId=9&amount=12.34&currency=USD"
        local as_space = core.hmac("sha1", ACCESS_KEY,
            "merchantReference=order 1&status=4&transactionType=2&objectId=9&amount=12.34&currency=USD", "base64")
        local event = assert(tna:notification(body, "Basic " .. core.base64_encode(ACCESS_ID .. ":" .. as_space)))
        assert.equal("order 1", event.merchant_ref)
        assert.is_table((tna:notification(body, authorization(body))))
        assert.equal(1234, event.amount)
        assert.equal("USD", event.currency)
        assert.equal("succeeded", event.status)
        assert.equal("payment", event.kind)
    end)

    describe("refuse, as signature errors that show no key", function()
        local cases = {
            { "a changed status", BODY:gsub("status=2&statusMessage", "status=4&statusMessage"), authorization(BODY) },
            { "a changed reference", BODY:gsub("cb180040", "cb180041"), authorization(BODY) },
            { "another access key", BODY, authorization(BODY, "another-key") },
            { "another accessId", BODY, authorization(BODY, nil, nil, "someone-else") },
            { "no header", BODY, nil },
            { "a Bearer header", BODY, "Bearer x" },
            { "a header without a colon", BODY, "Basic " .. core.base64_encode("justanid") },
            { "a header that is not base64", BODY, "Basic !!!" },
            { "an unknown algorithm", BODY, "Basic " .. core.base64_encode(ACCESS_ID .. ":HmacSHA256:abc") },
            { "a SHA-1 signature labelled SHA-512", BODY,
                "Basic " .. core.base64_encode(ACCESS_ID .. ":HmacSHA512:" .. core.hmac("sha1", ACCESS_KEY, url_decode(BODY), "base64")) },
        }
        for _, case in ipairs(cases) do
            it(case[1], function()
                local event, err = tna:notification(case[2], case[3])
                assert.is_nil(event)
                assert.equal("signature", err.type)
                assert.not_matches(ACCESS_KEY, tostring(err))
            end)
        end
    end)

    it("maps transaction status and type to the common status", function()
        local cases = {
            { 2, 1, "pending" }, { 2, 2, "authorized" }, { 2, 3, "pending" }, { 2, 4, "succeeded" }, { 2, 5, "failed" },
            { 2, 6, "failed" }, { 2, 7, "canceled" }, { 2, 8, "failed" }, { 2, 10, "reversed" },
            { 2, 11, "partially_refunded" }, { 2, 12, "refunded" }, { 2, 13, "canceled" }, { 2, 14, "pending" },
            { 4, 4, "refunded" }, { 5, 4, "reversed" }, { 1, 2, "authorized" }, { 6, 4, "succeeded" },
        }
        for _, c in ipairs(cases) do
            local body = ("transactionType=%d&status=%d&objectId=1&merchantReference=r"):format(c[1], c[2])
            local event = assert(tna:notification(body, authorization(body)))
            assert.equal(c[3], event.status, ("type %d status %d"):format(c[1], c[2]))
        end
    end)

    -- The signature covers the URL-decoded body, which cannot tell a field
    -- separator from an "&" or "=" sent encoded: the fields must be the
    -- signed text's, and a body that reads otherwise is refused.
    describe("read the fields from the very text that verified", function()
        -- a genuine refund notification, signed as Trustly signs it
        local REFUND = "merchantId=1002463580&merchantReference=order-7&paymentType=1&eventType=Refund"
            .. "&transactionType=4&objectId=1002593600&objectType=Transaction&status=4&statusMessage=Completed"
            .. "&amount=25.00&currency=USD&createdAt=1556234040954"
        local function refused(body, auth)
            local event, err = tna:notification(body, auth)
            assert.is_nil(event, body)
            assert.equal("signature", err.type)
            assert.not_matches(ACCESS_KEY, tostring(err))
            return err
        end

        it("a genuine refund is a refund", function()
            local event = assert(tna:notification(REFUND, authorization(REFUND)))
            assert.same({ "refund", "refunded", 2500, "order-7" }, { event.kind, event.status, event.amount, event.merchant_ref })
        end)

        it("refuse a refund rewritten with %26/%3D into a successful payment", function()
            local forged = REFUND:gsub("order%-7&paymentType=1&eventType=Refund&transactionType=4",
                "order-7%%26paymentType%%3D1%%26eventType%%3DRefund%%26transactionType%%3D4")
            assert.not_equal(REFUND, forged)
            assert.equal(url_decode(REFUND), url_decode(forged)) -- the signature still verifies
            local err = refused(forged, authorization(REFUND))
            assert.matches("encoded '&' or '='", err.message)
        end)

        it("refuse a failed payment rewritten into a succeeded one", function()
            -- genuine: the message text holds "&status=4", sent encoded
            local genuine = "merchantReference=order-8&transactionType=2&objectId=1002593601&status=5"
                .. "&statusMessage=Failed&message=retry%26status%3D4&amount=10.00&currency=USD"
            local forged = genuine:gsub("%%26", "&"):gsub("%%3D", "=")
            assert.equal(url_decode(genuine), url_decode(forged))
            local err = refused(forged, authorization(genuine))
            assert.matches("'status' appears twice", err.message)
            -- the genuine body is refused too: its signed text reads two statuses
            refused(genuine, authorization(genuine))
        end)

        it("refuse every %26/%3D rewrite of a genuine notification that changes its fields", function()
            local auth = authorization(REFUND)
            local genuine = assert(tna:notification(REFUND, auth))
            local n = 0
            for i = 1, #REFUND do
                local c = REFUND:sub(i, i)
                if c == "&" or c == "=" then
                    local forged = REFUND:sub(1, i - 1) .. (c == "&" and "%26" or "%3D") .. REFUND:sub(i + 1)
                    local event = tna:notification(forged, auth)
                    if event then -- only a rewrite that leaves every field as signed may pass
                        assert.same(genuine.extra.fields, event.extra.fields, forged)
                    end
                    n = n + 1
                end
            end
            assert.equal(select(2, REFUND:gsub("[&=]", "")), n)
        end)

        it("refuse a key repeated with another value, even when each is signed", function()
            local body = "transactionType=2&status=5&objectId=9&status=4"
            local err = refused(body, authorization(body))
            assert.matches("'status' appears twice", err.message)
            body = "transactionType=2&status=4&objectId=9&status=4" -- the same value twice means one thing
            assert.equal("succeeded", assert(tna:notification(body, authorization(body))).status)
        end)

        it("offer no other reader of the raw body (parse_form read it last-value-wins, unverified)", function()
            assert.is_nil(trustly_na.parse_form)
        end)

        it("still decode what is encoded inside values that hold no separator", function()
            local body = "merchantReference=order%2F9%20a&transactionType=2&status=4&objectId=9&timeZone=Etc%2FUTC"
            local event = assert(tna:notification(body, authorization(body)))
            assert.equal("order/9 a", event.merchant_ref)
            assert.equal("Etc/UTC", event.extra.fields.timeZone)
        end)
    end)

    it("report a refund as refunded only once Completed: Processed is pending, Failed failed", function()
        for status, want in pairs({ [1] = "pending", [3] = "pending", [4] = "refunded", [5] = "failed", [8] = "failed" }) do
            local body = ("transactionType=4&status=%d&objectId=1&merchantReference=r&amount=5.00&currency=USD"):format(status)
            local event = assert(tna:notification(body, authorization(body)))
            assert.same({ "refund", want }, { event.kind, event.status }, "status " .. status)
        end
    end)

    it("raises on misuse, naming the function and the argument", function()
        assert.has_error(function() tna:notification(nil, "Basic x") end,
            "trustly_na.verify_notification: bad argument #1 'raw_body' (string expected, got nil)")
        assert.has_error(function() trustly_na.verify_notification(BODY, 42, { access_id = "a", access_key = "k" }) end,
            "trustly_na.verify_notification: bad argument #2 'headers' (a table, the Authorization value or nil expected, got number)")
        assert.has_error(function() trustly_na.verify_notification(BODY, {}, nil) end,
            "trustly_na.verify_notification: bad argument #3 'keys' ({access_id = ..., access_key = ...} expected, got nil)")
        assert.has_error(function() trustly_na.verify_notification(BODY, {}, { access_id = "a" }) end,
            "trustly_na.verify_notification: bad argument #3 'keys' (keys.access_id and keys.access_key: strings expected)")
        assert.has_error(function() trustly_na.verify_notification(BODY, "Basic x", "id") end,
            "trustly_na.verify_notification: bad argument #3 'keys' (keys.access_id and keys.access_key: strings expected)")
    end)
end)
