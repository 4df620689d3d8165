/* cmd_abort.c — `vmmigrate abort`: ask the runs working on source hosts to
 * stop (SIGTERM to the PID in each held lock). Owns nothing past the call. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include <fcntl.h>
#include <dirent.h>

#include "cli/cli.h"
#include "cli/cli_options.h"
#include "run/lock.h"
#include "util/exitcode.h"
#include "util/util.h"

enum {
    OPT_LOCK_DIR = 1,
};

static const struct vm_cli_option abort_options[] = {
    VM_CLI_OPTION_LOCK_DIR(OPT_LOCK_DIR, "where the run locks live (" VM_LOCK_DEFAULT_DIR ")",
                           "The directory of the run locks (see run --lock-dir)."),
    {0},
};

/* SIGTERM every run that holds a lock in DIR. */
static int cmd_abort_exec(const struct vm_cli_args *args)
{
    const char *dir = vm_cli_str(args, OPT_LOCK_DIR);
    if (!dir)
        dir = VM_LOCK_DEFAULT_DIR;
    if (vm_cli_npos(args) > 0) {
        vm_error("abort: unexpected argument '%s'", vm_cli_pos(args, 0));
        return VM_EXIT_USAGE;
    }
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT) {
            printf("abort: no run is going on\n");
            return VM_EXIT_NOTHING;
        }
        vm_error("abort: cannot read '%s': %s", dir, strerror(errno));
        return VM_EXIT_USAGE;
    }
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".lock") != 0)
            continue;
        char *path = xasprintf("%s/%s", dir, e->d_name);
        pid_t pid = vm_lock_holder(path); /* 0: not held */
        free(path);
        if (pid > 1 && kill(pid, SIGTERM) == 0) {
            printf("abort: asked run %d to stop (nothing new starts; what runs is aborted, or "
                   "finishes with --on-abort finish)\n",
                   (int)pid);
            n++;
        }
    }
    closedir(d);
    if (!n)
        printf("abort: no run is going on\n");
    return n ? VM_EXIT_OK : VM_EXIT_NOTHING;
}

const struct vm_cli_command vm_cmd_abort_entry = {
    .name = "abort",
    .usage = "[--lock-dir DIR]",
    .summary = "stop the runs that are going on (SIGTERM)",
    .doc = "Send SIGTERM to every vmmigrate run that holds a source host's lock: it starts no "
           "new migration, aborts the running ones (or rolls them back at the commit gate) or, "
           "if the run was told --on-abort finish (or its policy's settings say so), lets "
           "them finish; it reports and exits with status 5. Exit status 8 if no run was going "
           "on.",
    .options = abort_options,
    .exec = cmd_abort_exec,
};
