-- A syntax error on line 3.
function broken()
    return 1 + -- @syntax
end
