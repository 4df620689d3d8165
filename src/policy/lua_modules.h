/* SPDX-License-Identifier: MIT */
/* lua_modules.h — the Lua modules shipped inside the binary (the .lua files of lua/,
 * embedded at build time by cmake/embed.cmake). Static data, owned by no one. */
#ifndef VMM_LUA_MODULES_H
#define VMM_LUA_MODULES_H

struct vm_lua_source {
    const char *name; /* "vmm" for lua/vmm.lua; NULL ends the table */
    const char *text;
};

extern const struct vm_lua_source vm_lua_sources[];

#endif
