-- Core pieces made faster for issue 15, each checked against what it
-- replaced: provider.plain's and provider.copy's one C pass
-- (core.json_plain, core.copy) against their Lua code over random JSON
-- documents, a key's kept verification context
-- against fresh signatures of both digests, good and altered, interleaved,
-- and the cosocket transport's response head and chunked body in one C
-- pass (core.http_head, core.http_chunked) against its Lua code over random
-- and mutated heads and bodies.
-- Seeded: a failure names its seed. LUAPAY_PROPERTY_RUNS sets the count.
local core = require "luapay.core"
local provider = require "luapay.provider"
local ecommpay = require "luapay.ecommpay"
local property = require "support.property"
local RUNS, rng, pick = property.RUNS, property.rng, property.pick

local read = require("support.util").read
local reference = require "support.http_reference"
local lua_head, lua_chunked = reference.head, reference.chunked

-- A random JSON text: objects, arrays, strings, numbers of every form, null.
local SHAPE = {
    numbers = { "0", "-0", "1", "-7", "1.0", "1.50", "1e2", "1E-2", "2.5e+3", "123456789012345678901234567890",
                "9007199254740993", "0.1", "-12.340", "1e400" },
    strings = { '"a"', '"ü/\\n"', '""', "null", "true", "false" },
    string_max = 50, leaf_depth = 3, array_max = 5, object_odds = 2,
}
local function json(R, depth) return property.json_text(R, SHAPE, depth) end
local same = property.same

local function lua_plain(v, as_text)
    local saved = core.json_plain
    core.json_plain = function() end -- nothing: provider.plain's Lua code
    local ok, copy = pcall(provider.plain, v, as_text)
    core.json_plain = saved
    assert(ok, copy)
    return copy
end

describe("provider.plain in one C pass", function()
    it("is taken for decoded JSON", function()
        local done, copy = core.json_plain(core.json_decode('{"a":[1,2.5,{"b":"x"}]}', { numbers = "lexeme" }))
        assert.is_true(done)
        assert.equal(core.array_mt, getmetatable(copy.a))
        assert.equal(2.5, copy.a[2])
    end)

    it("copies as the Lua code does, numbers as numbers or as text", function()
        for run = 1, RUNS do
            local seed = 3100 + run
            local R = rng(seed)
            local doc = core.json_decode(json(R, 1), { numbers = "lexeme" })
            for _, as_text in ipairs({ false, true }) do
                local fast, slow = provider.plain(doc, as_text), lua_plain(doc, as_text)
                assert.is_true(same(slow, fast), "seed " .. seed)
                if type(doc) == "table" and getmetatable(doc) ~= core.number_mt then assert.are_not.equal(doc, fast) end
            end
        end
    end)

    it("leaves what it does not copy to the Lua code: deep nesting, __pairs", function()
        local deep = {}
        for _ = 1, 150 do deep = { deep } end
        assert.is_nil((core.json_plain(deep)))
        assert.is_true(same(lua_plain(deep), provider.plain(deep)))
        assert.is_nil((core.json_plain({ x = setmetatable({}, { __pairs = function() end }) })))
    end)

    it("raises on a cycle as the Lua code does", function()
        local t = { a = {} }
        t.a.b = t
        local ok1, e1 = pcall(provider.plain, t)
        local ok2, e2 = pcall(lua_plain, t)
        assert.is_false(ok1)
        assert.equal("provider.plain: bad argument #1 'v' (a table contains itself (a cycle))", e1)
        assert.is_false(ok2)
        assert.matches("a table contains itself", e2, 1, true)
    end)
end)

local function lua_copy(v, who)
    local saved = core.copy
    core.copy = function() end -- nothing: provider.copy's Lua walk
    local ok, copy = pcall(provider.copy, v, who)
    core.copy = saved
    if not ok then error(copy, 0) end
    return copy
end

-- Every table under v, by identity: a copy shares none with its source.
local function tables_of(v, out)
    out = out or {}
    if type(v) == "table" and getmetatable(v) ~= core.number_mt and not out[v] then
        out[v] = true
        for _, x in pairs(v) do tables_of(x, out) end
    end
    return out
end

describe("provider.copy in one C pass (core.copy)", function()
    it("copies as the Lua walk does: fresh tables, number objects kept, arrays marked, other metatables dropped", function()
        for run = 1, RUNS do
            local seed = 3500 + run
            local R = rng(seed)
            local doc = core.json_decode(json(R, 1), { numbers = "lexeme" })
            local container = type(doc) == "table" and getmetatable(doc) ~= core.number_mt
            if container then doc.marked = setmetatable({ x = 1 }, { __index = {} }) end
            local done, fast = core.copy(doc)
            assert.is_true(done, "seed " .. seed)
            assert.is_true(same(lua_copy(doc), fast), "seed " .. seed)
            local shared = tables_of(doc)
            for t in pairs(tables_of(fast)) do assert.is_nil(shared[t], "seed " .. seed) end
            if container then assert.is_nil(getmetatable(fast.marked)) end
        end
        local n = setmetatable({ "1.10" }, core.number_mt)
        assert.equal(n, select(2, core.copy(n)))
        assert.equal("x", select(2, core.copy("x")))
    end)

    it("leaves to the Lua walk what it raises on or cannot read: past 32 levels, a cycle, __pairs", function()
        local deep = {}
        for _ = 1, 31 do deep = { deep } end -- 32 levels: copied
        assert.is_true((core.copy(deep)))
        assert.is_true(same(lua_copy(deep), provider.copy(deep)))
        deep = { deep }
        assert.is_nil((core.copy(deep)))
        assert.has_error(function() provider.copy(deep, "who") end, "who: request nested too deeply (a cycle?)")
        local cycle = { a = {} }
        cycle.a.b = cycle
        assert.is_nil((core.copy(cycle)))
        assert.is_nil((core.copy({ x = setmetatable({}, { __pairs = function() end }) })))
        -- a metatable with __metatable shows Lua's getmetatable another one
        -- (found by a review helper): the Lua walk reads it as Lua does
        for _, shown in ipairs({ core.array_mt, core.number_mt }) do
            local v = { x = setmetatable({ "1.10" }, { __metatable = shown }) }
            assert.is_nil((core.copy(v)))
            assert.is_nil((core.json_plain(v)))
            assert.is_true(same(lua_copy(v), provider.copy(v)))
            assert.is_true(same(lua_plain(v), provider.plain(v)))
        end
    end)
end)

describe("Trustly's check of a request's Data in one C pass (core.trustly_sendable)", function()
    local trustly = require "luapay.trustly"
    -- Whether trustly.prepare's Lua walk finds a value Trustly cannot take.
    local function lua_refuses(data)
        local saved = core.trustly_sendable
        core.trustly_sendable = function() return false end -- the Lua walk, always
        local _, err = trustly.prepare("Anything", data, "u", "p")
        core.trustly_sendable = saved
        for _, f in ipairs(err and err.fields or {}) do
            if f.code == "type" then return true end
        end
        return false
    end
    local n = setmetatable({ "1.10" }, core.number_mt)
    local holes = { 1, 2 }
    holes[4] = 4
    local values = { "x", 1, 2.5, core.null, n, {}, setmetatable({}, core.array_mt), { 1, 2, { a = n } }, { a = { b = {} } },
        true, false, print, coroutine.create(function() end), io.stdout, { 1, x = 2 }, holes, { [2] = "b" }, { [1.5] = 1 },
        { a = { b = { c = true } } }, { { { print } } } }
    it("takes the Data the Lua walk takes, and leaves it what the walk refuses", function()
        for i, v in ipairs(values) do
            local data = { X = v }
            assert.equal(not lua_refuses(data), core.trustly_sendable(data), "value " .. i)
        end
    end)
end)

describe("a key's kept verification context", function()
    local priv = assert(core.pkey(read("spec/fixtures/keys/merchant_private.pem")))
    local pub = assert(core.pkey(read("spec/fixtures/keys/merchant_public.pem")))

    it("verifies good signatures and refuses altered ones, both digests interleaved", function()
        for run = 1, math.max(10, math.floor(RUNS / 10)) do
            local seed = 4100 + run
            local R = rng(seed)
            local msg = ("m"):rep(R(0, 300)) .. tostring(run)
            local alg = pick(R, { "sha1", "sha256" })
            local other = alg == "sha1" and "sha256" or "sha1"
            local sig = priv:sign(msg, alg)
            assert.is_true(pub:verify(msg, sig, alg), "seed " .. seed)
            assert.is_true(priv:verify(msg, sig, alg), "seed " .. seed)
            assert.is_false(pub:verify(msg, sig, other), "seed " .. seed)
            assert.is_false(pub:verify(msg .. "x", sig, alg), "seed " .. seed)
            assert.is_false(pub:verify(msg, property.mutate(R, sig), alg), "seed " .. seed)
            assert.is_false(pub:verify(msg, "", alg), "seed " .. seed)
            assert.is_true(pub:verify(msg, sig, alg), "seed " .. seed) -- a refusal leaves the context usable
        end
    end)

    it("is released with the key", function()
        local k = assert(core.pkey(read("spec/fixtures/keys/merchant_public.pem")))
        assert.is_true(k:verify("x", priv:sign("x", "sha1"), "sha1"))
        k:close()
        k:close()
        assert.has_error(function() k:verify("x", "y", "sha1") end, "luapay.pkey: key is closed")
    end)
end)

local STATUS_LINES = { "HTTP/1.1 200 OK", "HTTP/1.0 200 OK", "HTTP/1.1 204", "HTTP/1.1 100 Continue",
    "HTTP/2.0 503 Busy", "HTTP/1.1 5001 OK", "HTTP/1.1 20 OK", "HTTP/1.1 200\tOK", "HTTP/11 200 OK",
    "http/1.1 200 OK", "HTTP/1.1  200 OK", "HTTP/1.1 200", "HTTP/1.0 404 ", " HTTP/1.1 200 OK", "" }
local NAMES = { "Content-Type", "content-length", "X-A", "x-a", "Set-Cookie", "X Y", " X", "X\0Y", "", "é",
    "!#$%&'*+-.^_`|~", ("Long-Name-"):rep(20), ("N"):rep(128), ("n"):rep(129), "Transfer-Encoding", "Connection" }
local VALUES = { "", "1", " text/plain ", "\tv\t", "a: b", "x\0y", "  ", "gzip, chunked", "close",
    ("v"):rep(300), "é\127", "a  b" }
local SEPARATORS = { "\r\n", "\r\n", "\r\n", "\n", "\r", "\r\r\n", "\n\r\n" }

local function random_head(R)
    local parts = { pick(R, STATUS_LINES) }
    for _ = 1, R(0, 8) do
        parts[#parts + 1] = pick(R, SEPARATORS)
        parts[#parts + 1] = pick(R, NAMES) .. pick(R, { ":", ": ", ":\t", " :", "" }) .. pick(R, VALUES)
    end
    parts[#parts + 1] = "\r\n\r\n"
    local head = table.concat(parts)
    for _ = 1, R(0, 2) do head = property.mutate(R, head) end
    return head
end

describe("a response head read in one C pass (core.http_head)", function()
    it("reads status, headers and HTTP/1.0 as the transport's Lua code did", function()
        local st, h, old = core.http_head("HTTP/1.0 200 OK\r\nA: 1\r\na:  2 \r\nB:\r\n\r\n")
        assert.equal(200, st)
        assert.is_true(old)
        assert.is_true(same({ a = { "1", "2" }, b = "" }, h))
        for run = 1, RUNS * 5 do
            local seed = 5100 + run
            local head = random_head(rng(seed))
            local s1, h1, o1 = lua_head(head)
            local s2, h2, o2 = core.http_head(head)
            assert.is_true(same(s1, s2) and same(h1, h2) and o1 == o2, "seed " .. seed)
        end
    end)

    it("takes a header name of each byte as the Lua pattern does (token characters only)", function()
        for b = 0, 255 do
            local head = "HTTP/1.1 200 OK\r\nA" .. string.char(b) .. "z: v\r\n\r\n"
            local _, h1 = lua_head(head)
            local _, h2 = core.http_head(head)
            assert.is_true(same(h1, h2), "byte " .. b)
        end
    end)

    it("refuses a status line that is not HTTP/d.d and three digits", function()
        for _, line in ipairs({ "HTTP/1.1 5001 OK", "HTTP/1.1 20", "HTTP/1.1 200\tOK", "HTTP/1.1\n200 OK", "" }) do
            assert.is_nil((core.http_head(line .. "\r\n\r\n")), line)
            assert.is_nil((lua_head(line .. "\r\n\r\n")), line)
        end
    end)
end)

local function random_chunked(R)
    local parts = { ("x"):rep(R(0, 3)) } -- bytes before the body
    for _ = 1, R(0, 4) do
        local data = {}
        for i = 1, R(1, 20) do data[i] = pick(R, { "a", "\r", "\n", "\r\n", "0", " ", "\0" }) end
        data = table.concat(data)
        local size = ("%x"):format(#data)
        if R(1, 2) == 1 then size = size:upper() end
        parts[#parts + 1] = pick(R, { "", "", " ", "\t", "0", "00" }) .. size .. pick(R, { "", "", " ", ";a=b", " ; x", "z" })
            .. "\r\n" .. data .. "\r\n"
    end
    parts[#parts + 1] = pick(R, { "0", "0", "000", " 0", "0;x" }) .. "\r\n"
    for _ = 1, R(0, 2) do parts[#parts + 1] = pick(R, { "X-T: 1", "Y:", ("t"):rep(30) }) .. "\r\n" end
    parts[#parts + 1] = "\r\n" .. pick(R, { "", "", "HTTP/1.1 200 OK\r\n" }) -- the next answer, pipelined
    local text = table.concat(parts)
    for _ = 1, R(0, 1) do text = property.mutate(R, text) end
    if R(1, 4) == 1 then text = text:sub(1, R(0, #text)) end -- not all read yet
    return text, #parts[1] + 1
end

describe("a chunked body read whole in one C pass (core.http_chunked)", function()
    it("gives what the transport's Lua reader gives, or leaves the body to it", function()
        assert.is_true(same({ "hello world", 29 }, { core.http_chunked("5\r\nhello\r\n6;x\r\n world\r\n0\r\n\r\n", 1, 100, 100) }))
        local taken = 0
        for run = 1, RUNS * 5 do
            local seed = 6100 + run
            local R = rng(seed)
            local text, pos = random_chunked(R)
            local cap, trailer_cap = pick(R, { 1000, 10, 30 }), pick(R, { 1000, 2, 20 })
            local b1, p1 = lua_chunked(text, pos, cap, trailer_cap)
            local b2, p2 = core.http_chunked(text, pos, cap, trailer_cap)
            if b2 then taken = taken + 1 end
            assert.is_true(b2 == nil or (b1 == b2 and p1 == p2), "seed " .. seed)
            assert.is_true(b1 == nil or b2 ~= nil, "seed " .. seed) -- sizes here have at most 12 digits
        end
        assert.is_true(taken > RUNS)
    end)

    it("leaves sizes of more than 12 hex digits, and bodies not read whole, to the Lua reader", function()
        assert.is_nil(core.http_chunked("0000000000005\r\nhello\r\n0\r\n\r\n", 1, 100, 100))
        assert.is_nil(core.http_chunked("5\r\nhello\r\n0\r\n", 1, 100, 100))
        assert.is_nil(core.http_chunked("5\r\nhel", 1, 100, 100))
        assert.is_nil(core.http_chunked("", 1, 100, 100))
    end)
end)

describe("luapay.monotime.now (the FFI under LuaJIT)", function()
    it("reads core.monotime's clock", function()
        local now = require("luapay.monotime").now
        for _ = 1, 100 do
            local a = now()
            local c = core.monotime()
            local b = now()
            assert.is_true(a <= c and c <= b)
        end
        if not jit then assert.equal(core.monotime, now) end
    end)
end)

describe("a request's header lines written in one C pass (core.http_header_lines)", function()
    -- What the cosocket transport's Lua loop wrote before (pairs order):
    -- Host, Content-Length and Connection left out in any case, a list
    -- value a line per item, a User-Agent noticed.
    local SPECIAL = { [4] = true, [10] = true, [14] = true }
    local function lua_lines(headers)
        local out, has_ua = {}, false
        for name, value in pairs(headers or {}) do
            local lname = SPECIAL[#name] and name:lower()
            if lname == "user-agent" then has_ua = true end
            if lname ~= "host" and lname ~= "content-length" and lname ~= "connection" then
                for _, v in ipairs(type(value) == "table" and value or { value }) do
                    out[#out + 1] = name .. ": " .. v .. "\r\n"
                end
            end
        end
        return table.concat(out), has_ua
    end
    local HEADER_NAMES = { "Host", "HOST", "host", "Content-Length", "content-length", "Connection", "CONNECTION",
        "User-Agent", "user-agent", "Accept", "Authorization", "X-Request-Id", "Hosts", "Content-Type", "X" }

    it("writes what the transport's Lua loop wrote, for random headers", function()
        math.randomseed(82)
        for _ = 1, 2000 do
            local headers = {}
            for _ = 1, math.random(0, 6) do
                local value = math.random(4) == 1 and { "a" .. math.random(9), "b" .. math.random(99) }
                    or (math.random(5) == 1 and math.random(1000) or ("v" .. math.random(1e6)))
                headers[HEADER_NAMES[math.random(#HEADER_NAMES)]] = value
            end
            local want, want_ua = lua_lines(headers)
            local got, got_ua = core.http_header_lines(headers)
            assert.equal(want, got)
            assert.equal(want_ua, got_ua)
        end
        assert.same({ "", false }, { core.http_header_lines(nil) })
    end)
end)

-- The JSON reader pushes strings of 1 to 16 bytes from a table of the
-- context's (json_decode.c, push_string), a slot known by the string's
-- length and two words over its bytes: strings of few letters, many alike
-- but for one byte anywhere, must come back as written, keys and values,
-- plain and with escapes, across calls (the table outlives each).
describe("short strings from the JSON reader's table", function()
    local function word(R)
        local n, b = R(0, 19), {}
        for i = 1, n do b[i] = R(1, 8) == 1 and "\\u00e9" or property.pick(R, { "a", "b", "\\\"" }) end
        return table.concat(b)
    end
    local function text(w) return (w:gsub("\\u00e9", "\195\169"):gsub('\\"', '"')) end

    it("gives each string as written, in keys and values, call after call", function()
        for run = 1, RUNS do
            local seed = 8200 + run
            local R = rng(seed)
            local parts, want, list, wlist = {}, {}, {}, {}
            for i = 1, R(1, 40) do
                local k, v = word(R), word(R)
                parts[#parts + 1] = '"' .. k .. '":"' .. v .. '"'
                want[text(k)] = text(v)
                list[i] = '"' .. k .. '"'
                wlist[i] = text(k)
            end
            local doc = assert(core.json_decode("[{" .. table.concat(parts, ",") .. "},[" .. table.concat(list, ",") .. "]]"))
            assert.is_true(same(want, doc[1]), "seed " .. seed)
            for i = 1, #wlist do assert.equal(wlist[i], doc[2][i], "seed " .. seed) end
        end
    end)
end)

-- The context's scratch buffers (csrc/buf.c) against a finalizer that calls
-- luapay while a call holds them: the collector runs __gc inside any of the
-- call's allocations. Inputs past 64 KB make each inner call free its buffer.
describe("the core's scratch buffers, with finalizers that call luapay meanwhile", function()
    local function on_collect(fn) -- a __gc under every VM (LuaJIT: userdata only)
        if newproxy then
            local u = newproxy(true)
            getmetatable(u).__gc = fn
            return u
        end
        return setmetatable({}, { __gc = fn })
    end

    local big = {}
    for i = 1, 3000 do big["k" .. i] = ("v"):rep(40) end
    local parts = {}
    for i = 1, 3000 do parts[i] = ('"m%d":"value %d"'):format(i, i) end
    local raw = "{" .. table.concat(parts, ",") .. "}"

    -- Keeps a finalizer pending that calls inner, then arms the next one; the
    -- collector made eager, so that finalizers run inside outer's calls
    -- whatever the suite allocated before.
    local function while_collecting(inner, outer)
        local pause = collectgarbage("setpause", 100)
        local armed = true
        local function arm()
            on_collect(function()
                if armed then
                    inner()
                    arm()
                end
            end)
        end
        arm()
        local ok, err = pcall(function()
            for _ = 1, 20 do outer() end
        end)
        armed = false
        collectgarbage("setpause", pause)
        collectgarbage()
        assert(ok, err)
    end

    it("gives the same signatures and texts as without them, and no memory error", function()
        local sig = core.ecommpay_signature(core.json_decode(raw, { numbers = "lexeme" }), "s", { callback = true })
        local big_sig = core.ecommpay_signature(big, "x")
        local big_json = core.json_encode(big)
        local serialized = core.trustly_serialize(big)
        local inners = {
            function() core.ecommpay_signature(big, "x") end,
            function() core.json_encode(big) end,
            function() core.trustly_serialize(big) end,
            function() core.ecommpay_callback(raw, "s") end,
        }
        for _, inner in ipairs(inners) do
            while_collecting(inner, function()
                assert.equal(sig, select(2, core.ecommpay_callback(raw, "s")))
                assert.equal(big_sig, core.ecommpay_signature(big, "x"))
                assert.equal(big_json, core.json_encode(big))
                assert.equal(serialized, core.trustly_serialize(big))
            end)
        end
    end)

    it("are never held through a raise on a body nested past the Lua stack, which is read whole", function()
        -- 127 objects of 32 members, the nested one last: past the 8000
        -- slots a C function may use under LuaJIT and Lua 5.1 (the reader
        -- raised there, holding its buffers for good: each later call then
        -- took, and on a raise leaked, buffers of its own)
        local function nested(depth)
            local members = {}
            for i = 1, 31 do members[i] = ('"k%d":%d'):format(i, i) end
            members[32] = '"n":' .. (depth == 0 and "{}" or nested(depth - 1))
            return "{" .. table.concat(members, ",") .. "}"
        end
        local body = nested(127)
        for _ = 1, 3 do
            local ok, doc, err = pcall(core.json_decode, body)
            assert.is_true(ok, doc)
            -- read whole under every VM: deep down a level's pairs go into
            -- its table before the stack runs short
            assert.is_table(doc, err)
            for level = 0, 127 do
                assert.equal(31, doc.k31, "level " .. level)
                doc = doc.n
            end
            assert.same({}, doc)
            local event, verr = ecommpay.verify_notification(body, nil, { secret = "s" })
            assert.is_nil(event)
            assert.equal("signature", verr.type)
            assert.matches("carries no signature", verr.message, 1, true)
        end
    end)

    it("give the same texts after a call that raised while it held them", function()
        local big_json = core.json_encode(big)
        for _ = 1, 3 do
            assert.has_error(function() core.trustly_serialize({ f = print }) end)
            assert.equal(big_json, core.json_encode(big))
            assert.equal(core.trustly_serialize(big), core.trustly_serialize(big))
        end
    end)
end)
