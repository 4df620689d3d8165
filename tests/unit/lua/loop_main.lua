-- An infinite loop in the main chunk: the load budget stops it.
local n = 0
while true do n = n + 1 end -- @load
