/* SPDX-License-Identifier: MIT */
/* cmd_version.c — `vmmigrate version`. */
#include <stdio.h>

#include <jansson.h>
#include <libvirt/libvirt.h>
#include <lua.h>
#include <uv.h>

#include "cli/cli.h"
#include "util/exitcode.h"
#include "report/report.h"
#include "util/util.h"

static int cmd_version_exec(const struct vm_cli_args *args)
{
    if (vm_cli_npos(args) > 0) {
        vm_error("version: unexpected argument '%s'", vm_cli_pos(args, 0));
        return VM_EXIT_USAGE;
    }
    unsigned long lv = 0;
    virGetVersion(&lv, NULL, NULL);
    printf("vmmigrate %s (report schema %d)\n", VMM_VERSION, VM_REPORT_SCHEMA_VERSION);
    printf("libvirt %lu.%lu.%lu, libuv %s, jansson %s, %s\n", lv / 1000000, lv / 1000 % 1000,
           lv % 1000, uv_version_string(), JANSSON_VERSION, LUA_RELEASE);
    return VM_EXIT_OK;
}

const struct vm_cli_command vm_cmd_version_entry = {
    .name = "version",
    .usage = "",
    .summary = "print the version of vmmigrate and of the libraries it runs on",
    .doc = "Print vmmigrate's version, the version of its report schema, and the versions of "
           "libvirt, libuv, jansson and Lua it runs with.",
    .exec = cmd_version_exec,
};
