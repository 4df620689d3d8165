-- requires itself
return require("loop_self")
