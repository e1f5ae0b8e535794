--- Generates test TLS material with the openssl command line: a CA, a server
-- certificate it signs for 127.0.0.1 and localhost, and a self-signed one.
local certs = {}

local function sh(cmd)
    -- no sanitizer runtime for the openssl CLI during the ASan run
    local ok = os.execute((cmd:gsub("&& openssl", "&& env -u LD_PRELOAD openssl")) .. " >/dev/null 2>&1")
    assert(ok == true or ok == 0, "failed: " .. cmd)
end

function certs.generate()
    local p = io.popen("mktemp -d /tmp/luapay-certs.XXXXXX")
    local dir = p:read("*l")
    p:close()
    local ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
    sh(("cd %s && openssl req -x509 %s -keyout ca.key -out ca.pem -days 2 -subj '/CN=luapay test CA'"):format(dir, ec))
    sh(("cd %s && openssl req %s -keyout server.key -out server.csr -subj '/CN=127.0.0.1'"):format(dir, ec))
    sh(("cd %s && printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nbasicConstraints=CA:FALSE\\n' > ext.cnf"):format(dir))
    sh(("cd %s && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem"
        .. " -days 2 -extfile ext.cnf"):format(dir))
    return {
        dir = dir, ca = dir .. "/ca.pem", cert = dir .. "/server.pem", key = dir .. "/server.key",
        cleanup = function() os.execute("rm -rf " .. dir) end,
    }
end

return certs
