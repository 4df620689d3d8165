-- A sibling module: loaded text-only into the policy's sandbox.
local M = {}
function M.double(x) return 2 * x end
return M
