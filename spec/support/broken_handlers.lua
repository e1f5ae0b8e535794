--- A handler that fails, to show the sandbox's error log reaching a spec.
local H = {}

function H.handle(path)
    if path == "raise" then error("handler failed on purpose") end
    ngx.print("fine")
end

return H
