/* SPDX-License-Identifier: MIT */
/* feature_announce.c — the built-in `announce`: once the guest runs on the
 * target, QEMU's announce-self there, so switches relearn the guest's MACs
 * at once. The backend runs it (env->announce, libvirt or QMP) and answers
 * with vm_features_announced(). Nothing to undo, nothing to stop. */
#include "feature/feature_builtin.h"

static void announce_run(struct vm_feature_ctx *c)
{
    if (!c->env->announce) {
        vm_feature_settle(c, 0, "this backend cannot announce");
        return;
    }
    c->env->announce(c->fs, c->env->ctx);
}

void vm_features_announced(struct vm_features *fs, bool ok, const char *detail)
{
    vm_feature_settle(vm_features_current(fs), ok ? 1 : 0, detail);
}

const struct vm_feature_ops vm_feature_announce_ops = {.run = announce_run};
