/* SPDX-License-Identifier: MIT */
/* feature_builtin.c — the table of built-in features (feature_builtin.h).
 * A new built-in: its file (feature_NAME.c, defining vm_feature_NAME_ops)
 * and one line here. Names are reserved: a policy cannot define a feature
 * by one of them. */
#include "feature/feature_builtin.h"

#include <stdlib.h>
#include <string.h>

#include "util/util.h"

#define ONLY(s) VM_FEATURE_STEP(VM_FEATURE_##s)
#define NOTHING 0u

/* X(name, steps it acts in, what a crash leaves owed), sorted by name. */
#define VM_FEATURE_TABLE(X)                                                                        \
    /* QEMU's announce-self on the target: announcing late helps no one */                         \
    X(announce, ONLY(AFTER), NOTHING)                                                              \
    /* SPICE clients follow the guest to the target: they reconnect by themselves */               \
    X(spice, ONLY(PROBE) | ONLY(GATE), NOTHING)                                                    \
    /* 802.1Qbg VSI association: deinit deassociates on the target, after on the source */         \
    X(vdp, VM_FEATURE_ALL_STEPS, ONLY(DEINIT) | ONLY(AFTER))

#define DECLARE(name, steps, owed) extern const struct vm_feature_ops vm_feature_##name##_ops;
VM_FEATURE_TABLE(DECLARE)
#define ROW(name, steps, owed) {#name, steps, owed, &vm_feature_##name##_ops},
static const struct vm_feature_builtin table[] = {VM_FEATURE_TABLE(ROW)};

const struct vm_feature_builtin *vm_feature_builtin_at(int i)
{
    return i >= 0 && (size_t)i < VM_ARRAY_LEN(table) ? &table[i] : NULL;
}

const struct vm_feature_builtin *vm_feature_builtin_find(const char *name)
{
    for (size_t i = 0; name && i < VM_ARRAY_LEN(table); i++)
        if (strcmp(table[i].name, name) == 0)
            return &table[i];
    return NULL;
}

bool vm_feature_builtin(const char *name)
{
    return vm_feature_builtin_find(name) != NULL;
}

const char *vm_feature_builtin_name(int i)
{
    const struct vm_feature_builtin *b = vm_feature_builtin_at(i);
    return b ? b->name : NULL;
}

char *vm_feature_builtin_names(void)
{
    char *s = xstrdup("");
    for (size_t i = 0; i < VM_ARRAY_LEN(table); i++) {
        char *t = xasprintf("%s%s%s", s, i ? ", " : "", table[i].name);
        free(s);
        s = t;
    }
    return s;
}
