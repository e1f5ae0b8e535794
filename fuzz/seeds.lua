-- Writes the seed corpora fuzz/corpus/<target>/seed-* from the specs'
-- vectors (spec/fixtures/vectors, the same as /work/shared/vectors), the key
-- fixtures and HTTP answers shaped like the transport specs' handlers. Run
-- from the project root after `make`:
--   LUA_PATH="lua/?.lua;;" LUA_CPATH="build/lua5.4/?.so;;" lua5.4 fuzz/seeds.lua
-- Regression inputs (crashes found) are kept beside them as regress-*.
package.path = package.path .. ";spec/?.lua"
local core = require "luapay.core"
local read = require("support.util").read

local function write(target, name, bytes)
    os.execute("mkdir -p fuzz/corpus/" .. target)
    local f = assert(io.open(("fuzz/corpus/%s/seed-%s"):format(target, name), "wb"))
    f:write(bytes)
    f:close()
end

local LEX = { numbers = "lexeme" }
local ecommpay_text = read("spec/fixtures/vectors/ecommpay.json")
local trustly_text = read("spec/fixtures/vectors/trustly.json")
local trustpay_text = read("spec/fixtures/vectors/trustpay.json")
local ecommpay = assert(core.json_decode(ecommpay_text, LEX))
local trustly = assert(core.json_decode(trustly_text, LEX))
local trustpay = assert(core.json_decode(trustpay_text, LEX))

-- JSON texts: each vector and the exact texts they carry (not the whole
-- files: long seeds make libFuzzer's inputs long and slow).
local texts = {}
for i, v in ipairs(ecommpay.vectors) do
    texts["ecommpay-" .. i] = v.params_json or assert(core.json_encode(v.params))
end
for i, v in ipairs(ecommpay.callback_vectors or {}) do
    texts["ecommpay-callback-" .. i] = type(v.body) == "string" and v.body or assert(core.json_encode(v))
end
for i, v in ipairs(trustly.vectors) do texts["trustly-" .. i] = assert(core.json_encode(v.data)) end
for name, e in pairs(trustly.envelopes) do
    texts["trustly-envelope-" .. name] = type(e) == "string" and e or type(e.json) == "string" and e.json
        or assert(core.json_encode(e))
end
for i, v in ipairs(trustpay) do texts["trustpay-" .. i] = assert(core.json_encode(v)) end
texts.edge = '[0,-0,1.0,1e400,-1E-7,9223372036854775807,18446744073709551616,"\\u0000\\ud83d\\udca9",'
    .. '{"":null,"a:b":true,"frame_mode":1,"signature":"x"},[],{}]'
for name, text in pairs(texts) do
    for _, t in ipairs({ "json_decode", "json_encode", "trustly_serialize", "ecommpay_canonical",
        "trustly_notification" }) do
        write(t, name, text)
    end
end
write("json_encode", "latin1", "Zo\235 \255")
write("json_encode", "nul-key", "a\0b")

-- Strings of the vectors, for the validator (fuzz/targets/check.lua: the
-- first byte picks the type, in its TYPES order) and amounts for money.
local CHECK_TYPES = { "string", "enum", "decimal", "currency", "country", "language", "locale", "iban", "bic",
    "email", "url", "date", "datetime", "ip", "ipv4", "ipv6" }
local LOOKS = { decimal = "^%d+%.%d%d$", currency = "^%u%u%u$", country = "^%u%u$", language = "^%l%l$",
    locale = "^%l%l_%u%u$", iban = "^%u%u%d%d%w+$", bic = "^%u%u%u%u%u%u%w%w", email = "@", url = "^https?://",
    date = "^%d%d%d%d%-%d%d%-%d%d$", datetime = "^%d%d%d%d%-%d%d%-%d%dT", ip = "^[%x:.]+$", ipv4 = "^[%d.]+$",
    ipv6 = ":", string = "^%u", enum = "^[CRU]$" }
local strings, seen = {}, {}
local function collect(v)
    if type(v) == "string" and not seen[v] and #v < 200 then
        seen[v] = true
        strings[#strings + 1] = v
    elseif type(v) == "table" and getmetatable(v) ~= core.number_mt then
        for _, x in pairs(v) do collect(x) end
    end
end
collect(ecommpay)
collect(trustly)
collect(trustpay)
table.sort(strings)
for i, name in ipairs(CHECK_TYPES) do
    local n = 0
    for _, v in ipairs(strings) do
        if n < 6 and v:find(LOOKS[name]) then
            n = n + 1
            write("check", name .. "-" .. n, string.char(i - 1) .. v)
        end
    end
end
for i, amount in ipairs({ "0", "100", "10.00", "0.01", "103.50", "1.000", "0.0001", "9007199254740.992" }) do
    write("money", "amount-" .. i, string.char(i - 1) .. amount)
end

-- base64: the vectors' signatures.
for i, v in ipairs(ecommpay.vectors) do write("base64", "ecommpay-" .. i, v.signature) end
for i, v in ipairs(trustly.vectors) do write("base64", "trustly-" .. i, v.signature_base64) end
write("base64", "padding", "QQ==")

-- Keys: each PEM fixture as text (mode byte 0) and its DER inside the
-- label it came with (modes 1..5, fuzz/targets/pkey.lua).
local LABELS = { ["PRIVATE KEY"] = 1, ["RSA PRIVATE KEY"] = 2, ["PUBLIC KEY"] = 3, ["RSA PUBLIC KEY"] = 4,
    ["ENCRYPTED PRIVATE KEY"] = 5 }
for file in io.popen("ls spec/fixtures/keys"):lines() do
    local pem = read("spec/fixtures/keys/" .. file)
    write("pkey", file, "\0" .. pem)
    local label, body = pem:match("%-%-%-%-%-BEGIN ([%u ]+)%-%-%-%-%-\n(.-)%-%-%-%-%-END")
    if label and LABELS[label] and not body:find(":") then
        write("pkey", file .. ".der", string.char(LABELS[label]) .. assert(core.base64_decode((body:gsub("%s", "")))))
    end
end

-- HTTP answers like spec/support/transport_handlers.lua's.
local answers = {
    status = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Test: one\r\nX-Test: two\r\nContent-Length: 10\r\n\r\nstatus 200",
    no_content = "HTTP/1.1 204 No Content\r\nX-Test: one\r\n\r\n",
    continue = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Service Unavailable\r\nRetry-After: 0\r\nContent-Length: 4\r\n\r\nbusy",
    chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n6\r\npart1-\r\n5\r\npart2\r\n0\r\nX-Sum: 1\r\n\r\n",
    close = "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"ok\":true}",
    folded = "HTTP/1.1 200 OK\r\nX-Long: a\r\n b\r\nX-Empty:\r\n  X-Space : v \r\nContent-Length: 0\r\n\r\n",
    short = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort",
}
for name, text in pairs(answers) do
    write("http_response", name, text)
    write("http_head", name, text)
end
-- Chunked bodies as core.http_chunked reads them (fuzz/targets/http_head.lua).
local bodies = {
    two_chunks = "5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n",
    trailers = "a \r\n0123456789\r\n0\r\nX-Sum: 1\r\nY:\r\n\r\nHTTP/1.1 200 OK\r\n",
    upper = "  1F\r\n" .. ("x"):rep(31) .. "\r\n000\r\n\r\n",
    cut = "5\r\nhel",
}
for name, text in pairs(bodies) do write("http_head", name, text) end
