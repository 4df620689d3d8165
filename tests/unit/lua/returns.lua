-- Values a hook may not hand back to vmmigrate.
function ret_function() return {params = {bandwidth = print}} end
function ret_thread() return {list = {1, coroutine.create(print)}} end
function ret_cycle() local t = {} t.self = t return {params = t} end
function ret_deep() local t = {} for i = 1, 70 do t = {t} end return t end
function ret_nan() return {x = 0/0} end
function ret_inf() return {x = -math.huge} end
function ret_mixed() return {params = {1, 2, x = 3}} end
function ret_sparse() return {[1] = 1, [3] = 3} end
function ret_zero() return {[0] = 1} end
function ret_float_key() return {[1.5] = 1} end
function ret_bool_key() return {[true] = 1} end
function ret_bad_utf8() return {name = "\xff\xfe"} end
function ret_bad_utf8_key() return {["\xff"] = 1} end
function ret_dag() local t = {} for i = 1, 40 do t = {t, t} end return t end
function ret_meta() return {obj = setmetatable({}, {})} end
function ret_proxy() return {lib = string} end
function ret_odd_key() return {a = {["b c"] = {print}}} end
function ret_ok() return {name = "vm1", n = 3, r = 0.5, big = 9007199254740993, list = {1, "two", false}, empty = {}, nested = {a = {b = {c = true}}}} end
