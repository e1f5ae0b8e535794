-- Property and differential tests over random data (issue 16): the JSON
-- reader against lua-cjson on valid documents written many ways, encode ->
-- decode round trips, and signers against their verifiers, where a mutated
-- message may verify only if it signs the same text as the genuine one.
-- Seeded: a failure names its seed. LUAPAY_PROPERTY_RUNS sets the count.
local core = require "luapay.core"
local cjson = require "cjson"
local begateway = require "luapay.begateway"
local ecommpay = require "luapay.ecommpay"
local http = require "luapay.http"
local trustly = require "luapay.trustly"
local trustpay = require "luapay.trustpay"
local util = require "support.util"

local property = require "support.property"
local RUNS, rng, mutate = property.RUNS, property.rng, property.mutate
local null = core.null

local function utf8_char(cp)
    if cp < 0x80 then return string.char(cp) end
    if cp < 0x800 then return string.char(0xC0 + math.floor(cp / 64), 0x80 + cp % 64) end
    if cp < 0x10000 then
        return string.char(0xE0 + math.floor(cp / 4096), 0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
    end
    return string.char(0xF0 + math.floor(cp / 262144), 0x80 + math.floor(cp / 4096) % 64,
        0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
end

-- The code points of valid UTF-8 (LuaJIT has no utf8 library).
local function code_points(s)
    local out, i = {}, 1
    while i <= #s do
        local c = s:byte(i)
        local n = c < 0x80 and 1 or c < 0xE0 and 2 or c < 0xF0 and 3 or 4
        local cp = n == 1 and c or c % (2 ^ (7 - n))
        for j = i + 1, i + n - 1 do cp = cp * 64 + s:byte(j) % 64 end
        out[#out + 1] = cp
        i = i + n
    end
    return out
end

local function random_code_point(R)
    local k = R(1, 10)
    if k <= 5 then return R(0x20, 0x7E) end
    if k == 6 then return ({ 0, 8, 9, 10, 12, 13, 31, 34, 47, 92, 127 })[R(1, 11)] end
    if k == 7 then return R(0x80, 0x7FF) end
    if k == 8 then
        local cp = R(0x800, 0xFFFF)
        return (cp >= 0xD800 and cp <= 0xDFFF) and 0xFFFD or cp
    end
    return R(0x10000, 0x10FFFF)
end

local function random_string(R, max)
    local t = {}
    for i = 1, R(0, max or 12) do t[i] = utf8_char(random_code_point(R)) end
    return table.concat(t)
end

local function random_number(R)
    local k = R(1, 4)
    if k == 1 then return R(-1000, 1000) end
    if k == 2 then return R(-2147483647, 2147483647) * 4194304 + R(0, 4194303) end -- within 2^53
    if k == 3 then return (R() - 0.5) * 10 ^ R(-20, 20) end
    return R(-99999, 99999) / 100
end

local function random_tree(R, depth)
    local k = R(1, depth > 3 and 5 or 7)
    if k == 1 then return random_string(R) end
    if k == 2 then return random_number(R) end
    if k == 3 then return R(0, 1) == 1 end
    if k == 4 then return null end
    if k == 5 then return random_string(R, 3) end
    local t = {}
    if k == 6 then
        for i = 1, R(0, 4) do t[i] = random_tree(R, depth + 1) end
        return setmetatable(t, core.array_mt)
    end
    for _ = 1, R(0, 4) do t[random_string(R, 6)] = random_tree(R, depth + 1) end
    return t
end

-- Same tree, numbers compared by value, metatables ignored.
local function same(a, b)
    if type(a) ~= type(b) then return false end
    if type(a) ~= "table" then return a == b end
    for k, v in pairs(a) do
        if not same(v, b[k]) then return false end
    end
    for k in pairs(b) do
        if a[k] == nil then return false end
    end
    return true
end

-- JSON text of a tree, written one of many valid ways: random white space,
-- characters escaped as \uXXXX (surrogate pairs above U+FFFF) or short
-- escapes, numbers with exponents.
local function write_json(R, v, out)
    local function space()
        if R(1, 4) == 1 then out[#out + 1] = ({ " ", "\n", "\t", "\r\n  " })[R(1, 4)] end
    end
    local function str(s)
        out[#out + 1] = '"'
        for _, cp in ipairs(code_points(s)) do
            local short = ({ [8] = "\\b", [9] = "\\t", [10] = "\\n", [12] = "\\f", [13] = "\\r", [34] = '\\"', [92] = "\\\\" })[cp]
            if short and R(1, 3) > 1 then
                out[#out + 1] = short
            elseif cp < 0x20 or cp == 34 or cp == 92 or R(1, 4) == 1 then
                if cp >= 0x10000 then
                    local c = cp - 0x10000
                    out[#out + 1] = ("\\u%04X\\u%04x"):format(0xD800 + math.floor(c / 1024), 0xDC00 + c % 1024)
                else
                    out[#out + 1] = ("\\u%04x"):format(cp)
                end
            elseif cp == 47 and R(1, 2) == 1 then
                out[#out + 1] = "\\/"
            else
                out[#out + 1] = utf8_char(cp)
            end
        end
        out[#out + 1] = '"'
    end
    space()
    if type(v) == "string" then
        str(v)
    elseif type(v) == "number" then
        local text = assert(core.json_encode(v))
        if R(1, 3) == 1 and text:match("^%-?%d+$") and #text < 15 then text = text .. "0e-1" end
        out[#out + 1] = text
    elseif type(v) == "boolean" then
        out[#out + 1] = tostring(v)
    elseif v == null then
        out[#out + 1] = "null"
    elseif getmetatable(v) == core.array_mt then
        out[#out + 1] = "["
        for i, x in ipairs(v) do
            if i > 1 then out[#out + 1] = "," end
            write_json(R, x, out)
        end
        space()
        out[#out + 1] = "]"
    else
        out[#out + 1] = "{"
        local first = true
        for k, x in pairs(v) do
            if not first then out[#out + 1] = "," end
            first = false
            space()
            str(k)
            space()
            out[#out + 1] = ":"
            write_json(R, x, out)
        end
        space()
        out[#out + 1] = "}"
    end
    space()
    return out
end


-- core.json_decode that must succeed (the value may be false).
local function decode(text, opts)
    local v, err = core.json_decode(text, opts)
    if v == nil then error(tostring(err) .. ": " .. text, 2) end
    return v
end

local function for_seeds(body)
    for seed = 1, RUNS do
        local ok, err = pcall(body, rng(seed * 7919), seed)
        if not ok then error(("seed %d: %s"):format(seed, tostring(err)), 0) end
    end
end

describe("core.json_decode against lua-cjson", function()
    it("reads every valid document, written many ways, as lua-cjson does", function()
        for_seeds(function(R)
            local tree = random_tree(R, 0)
            local text = table.concat(write_json(R, tree, {}))
            local ours = decode(text)
            assert(same(cjson.decode(text), ours), "lua-cjson reads another tree: " .. text)
            assert(same(tree, ours), "not the tree written: " .. text)
        end)
    end)

    it("reads lua-cjson's own output as lua-cjson does", function()
        for_seeds(function(R)
            local tree = random_tree(R, 0)
            local text = cjson.encode(tree)
            assert(same(cjson.decode(text), decode(text)), text)
        end)
    end)
end)

describe("core.json_encode", function()
    it("round-trips through core.json_decode, and its text is a fixed point", function()
        for_seeds(function(R)
            local tree = random_tree(R, 0)
            local text = assert(core.json_encode(tree))
            local back = decode(text)
            assert(same(tree, back), "decode(encode(tree)) differs: " .. text)
            assert.equal(text, core.json_encode(back))
            local lexemes = decode(text, { numbers = "lexeme" })
            assert.equal(text, core.json_encode(lexemes))
        end)
    end)

    it("writes text lua-cjson reads back to the same tree", function()
        for_seeds(function(R)
            local tree = random_tree(R, 0)
            local text = assert(core.json_encode(tree))
            assert(same(tree, cjson.decode(text)), text)
        end)
    end)
end)

describe("signers against their verifiers", function()
    local private = util.fixture("keys/merchant_private.pem")
    local public = util.fixture("keys/merchant_public.pem")
    local key, pub = assert(core.pkey(private)), assert(core.pkey(public))

    local function trustly_data(R)
        local d = {}
        for _ = 1, R(1, 5) do
            local v = random_tree(R, 1)
            if type(v) ~= "boolean" then d[random_string(R, 8)] = v end
        end
        return d
    end

    it("Trustly: a signed request verifies; a mutated one only if it serializes the same", function()
        local runs = math.max(1, math.floor(RUNS / 4))
        for seed = 1, runs do
            local R = rng(seed * 104729)
            local data = trustly_data(R)
            local text = trustly.request("Deposit", "uuid-" .. seed, data, key)
            local doc = assert(core.json_decode(text, { numbers = "lexeme" }))
            assert.is_true(trustly.verify("Deposit", "uuid-" .. seed, doc.params.Data, doc.params.Signature, pub))
            local genuine = trustly.serialize(doc.params.Data)
            for _ = 1, 8 do
                local m = core.json_decode(mutate(R, text), { numbers = "lexeme" })
                local p = type(m) == "table" and m.params
                if type(p) == "table" and type(p.Signature) == "string" then
                    local okd, plain = pcall(trustly.serialize, p.Data)
                    local verified = okd and trustly.verify("Deposit", "uuid-" .. seed, p.Data, p.Signature, pub) == true
                    if verified then
                        assert(plain == genuine, ("seed %d: a mutated message verified"):format(seed))
                    end
                end
            end
        end
    end)

    it("ecommpay: a signed callback verifies; a mutated body only if it signs the same string", function()
        local secret = "f3a9c1d2e4b5a6978877665544332211"
        for_seeds(function(R, seed)
            local params = { project_id = R(1, 99999), payment = { id = random_string(R, 10), status = "success",
                sum = { amount = R(1, 10 ^ 6), currency = "EUR" } }, extra = random_tree(R, 1) }
            params.signature = ecommpay.signature(params, secret)
            local body = assert(core.json_encode(params))
            local genuine_ok, verr = ecommpay.verify_callback(body, secret)
            if not genuine_ok then
                params.signature = nil
                error(("the genuine callback does not verify (%s)\nsigned:   %s\nverified: %s\nbody: %s"):format(
                    tostring(verr), ecommpay.string_to_sign(params), tostring(core.ecommpay_canonical(
                        core.json_decode(body, { numbers = "lexeme" }), { callback = true })), body), 0)
            end
            local canonical = core.ecommpay_canonical(core.json_decode(body, { numbers = "lexeme" }), { callback = true })
            for _ = 1, 4 do
                local m = mutate(R, body)
                if ecommpay.verify_callback(m, secret) then
                    local tree = core.json_decode(m, { numbers = "lexeme" })
                    assert(core.ecommpay_canonical(tree, { callback = true }) == canonical,
                        ("seed %d: a mutated callback verified: %s"):format(seed, m))
                end
            end
        end)
    end)
end)

local function random_bytes(R, max)
    local t = {}
    for i = 1, R(0, max) do
        t[i] = R(1, 3) == 1 and string.char(R(0, 255)) or ("a=&+%/ ,\"\r\n;?#"):sub(R(1, 15), R(1, 15))
    end
    return table.concat(t)
end

describe("TrustPay notifications", function()
    -- The values TrustPay signs, joined: what a mutated notification must
    -- keep to verify (TrustPay's "/"-joined text is its own ambiguity).
    local function signed_text(t)
        local values = trustpay.message("wire_notification", t)
        return values and table.concat(values, "/")
    end

    it("a signed notification verifies; a mutated query only if it signs the same values", function()
        for_seeds(function(R, seed)
            local f = { AccountId = tostring(R(1000000, 9999999)), Amount = ("%d.%02d"):format(R(0, 99999), R(0, 99)),
                Currency = "EUR", Type = R(0, 1) == 1 and "CRDT" or "DBIT", ResultCode = tostring(R(0, 5)),
                CounterAccount = random_string(R, 10):gsub("/", ""), CounterAccountName = random_string(R, 10):gsub("/", ""),
                OrderId = tostring(R(1, 10 ^ 9)), PaymentId = tostring(R(1, 10 ^ 9)),
                Reference = random_string(R, 12):gsub("/", "") }
            f.Signature = assert(trustpay.sign("s3cret", "wire_notification", f))
            local query = http.encode_query(f)
            local genuine = assert(trustpay.parse_query(query))
            assert.is_true(trustpay.verify("s3cret", "wire_notification", genuine, genuine.Signature))
            local text = signed_text(genuine)
            for _ = 1, 4 do
                local m = trustpay.parse_query(mutate(R, query))
                if m and trustpay.verify("s3cret", "wire_notification", m, m.Signature) then
                    assert(signed_text(m) == text, ("seed %d: a mutated notification verified"):format(seed))
                end
            end
        end)
    end)
end)

describe("query strings", function()
    it("http.decode_query and trustpay.parse_query read back what http.encode_query wrote", function()
        for_seeds(function(R)
            local t = {}
            for _ = 1, R(0, 6) do
                local k = random_bytes(R, 6)
                if k ~= "" then t[k] = random_bytes(R, 10) end
            end
            local text = http.encode_query(t)
            assert(same(t, assert(http.decode_query(text))), text)
            assert(same(t, assert(trustpay.parse_query("https://shop.example/return?" .. text .. "#frag"))), text)
        end)
    end)
end)

-- RFC 4180, strictly: quoted fields with doubled quotes, CRLF between rows.
local function read_csv(text)
    local rows, row, i, n = {}, {}, 1, #text
    while i <= n do
        local field
        if text:sub(i, i) == '"' then
            local parts, j = {}, i + 1
            while true do
                local q = assert(text:find('"', j, true), "unterminated quoted field")
                parts[#parts + 1] = text:sub(j, q - 1)
                if text:sub(q + 1, q + 1) == '"' then
                    parts[#parts + 1] = '"'
                    j = q + 2
                else
                    i = q + 1
                    break
                end
            end
            field = table.concat(parts)
        else
            local e = text:find("[,\r]", i) or n + 1
            field = text:sub(i, e - 1)
            assert(not field:find('[\n"]'), "a bare quote or LF in an unquoted field")
            i = e
        end
        row[#row + 1] = field
        local c = text:sub(i, i)
        if c == "," then
            i = i + 1
        else
            assert(text:sub(i, i + 1) == "\r\n", "a row must end in CRLF")
            rows[#rows + 1], row, i = row, {}, i + 2
        end
    end
    return rows
end

describe("begateway.csv_cell", function()
    it("writes fields an RFC 4180 reader reads back exactly (formula guard aside)", function()
        for_seeds(function(R)
            local values, lines = {}, {}
            for r = 1, R(1, 4) do
                local cells = {}
                values[r] = {}
                for c = 1, R(1, 5) do
                    local v = R(1, 4) == 1 and random_number(R) or random_bytes(R, 12)
                    values[r][c] = v
                    cells[c] = begateway.csv_cell(v)
                end
                lines[r] = table.concat(cells, ",") .. "\r\n"
            end
            local rows = read_csv(table.concat(lines))
            assert.equal(#values, #rows)
            for r, row in ipairs(rows) do
                assert.equal(#values[r], #row)
                for c, cell in ipairs(row) do
                    local v = values[r][c]
                    if type(v) == "number" then
                        assert(tonumber(cell) == v, cell)
                    else -- a text a spreadsheet would run as a formula gets a leading '
                        local want = v:find("^[=+%-@\t\r]") and "'" .. v or v
                        assert(cell == want, ("%q ~= %q"):format(cell, want))
                    end
                end
            end
        end)
    end)
end)
