--- Small helpers shared by the specs.
local util = {}

function util.fromhex(h)
    return (h:gsub("%s", ""):gsub("%x%x", function(b) return string.char(tonumber(b, 16)) end))
end

function util.read(path)
    local f = assert(io.open(path, "rb"))
    local s = f:read("*a")
    f:close()
    return s
end

function util.fixture(name)
    return util.read("spec/fixtures/" .. name)
end

function util.json_fixture(name)
    return require("cjson").decode(util.fixture(name))
end

return util
