/* SPDX-License-Identifier: MIT */
/* gate.c — see gate.h. The phase sequence follows libvirt's own client
 * (virDomainMigrateVersion3Full in src/libvirt-domain.c). */
#include "migrate/gate.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/fault.h"
#include "util/util.h"

typedef char *(*begin_fn)(virDomainPtr, virTypedParameterPtr, int, char **, int *, unsigned);
typedef int (*prepare_fn)(virConnectPtr, virTypedParameterPtr, int, const char *, int, char **,
                          int *, char **, unsigned);
typedef int (*perform_fn)(virDomainPtr, const char *, virTypedParameterPtr, int, const char *, int,
                          char **, int *, unsigned);
typedef virDomainPtr (*finish_fn)(virConnectPtr, virTypedParameterPtr, int, const char *, int,
                                  char **, int *, unsigned, int);
typedef int (*confirm_fn)(virDomainPtr, virTypedParameterPtr, int, const char *, int, unsigned,
                          int);

static struct {
    pthread_once_t once;
    begin_fn begin;
    prepare_fn prepare;
    perform_fn perform;
    finish_fn finish;
    confirm_fn confirm;
    const char *missing;
} api = {.once = PTHREAD_ONCE_INIT};

static void resolve(void)
{
    /* The process has libvirt loaded already; RTLD_NOLOAD just finds it. */
    void *h = dlopen("libvirt.so.0", RTLD_NOW | RTLD_NOLOAD);
    if (!h)
        h = dlopen("libvirt.so.0", RTLD_NOW);
    if (!h) {
        api.missing = "libvirt.so.0 cannot be opened";
        return;
    }
    static const char *const names[] = {
        "virDomainMigrateBegin3Params",   "virDomainMigratePrepare3Params",
        "virDomainMigratePerform3Params", "virDomainMigrateFinish3Params",
        "virDomainMigrateConfirm3Params",
    };
    void *syms[5];
    for (size_t i = 0; i < VM_ARRAY_LEN(names); i++) {
        syms[i] = dlsym(h, names[i]);
        if (!syms[i]) {
            api.missing = names[i];
            return;
        }
    }
    /* POSIX: object pointers from dlsym convert to function pointers. */
    memcpy(&api.begin, &syms[0], sizeof(void *));
    memcpy(&api.prepare, &syms[1], sizeof(void *));
    memcpy(&api.perform, &syms[2], sizeof(void *));
    memcpy(&api.finish, &syms[3], sizeof(void *));
    memcpy(&api.confirm, &syms[4], sizeof(void *));
}

bool vm_gate_available(const char **why)
{
    pthread_once(&api.once, resolve);
    if (api.missing && why)
        *why = api.missing;
    return !api.missing;
}

struct vm_gate_session *vm_gate_session_new(virDomainPtr dom, virConnectPtr dconn,
                                            virTypedParameterPtr params, int nparams,
                                            unsigned flags)
{
    struct vm_gate_session *s = xcalloc(1, sizeof(*s));
    s->dom = dom;
    s->dconn = dconn;
    s->params = params;
    s->nparams = nparams;
    /* As libvirt's client: the source keeps its job across phases
     * (CHANGE_PROTECTION); the target ignores what only the source does. */
    s->flags = (flags & ~VIR_MIGRATE_PEER2PEER) | VIR_MIGRATE_CHANGE_PROTECTION;
    s->destflags = s->flags & ~(VIR_MIGRATE_ABORT_ON_ERROR | VIR_MIGRATE_AUTO_CONVERGE);
    return s;
}

void vm_gate_session_free(struct vm_gate_session *s)
{
    if (!s)
        return;
    virTypedParamsFree(s->params, s->nparams);
    free(s->cookie);
    free(s->dom_xml);
    free(s->uri_out);
    free(s);
}

/* libvirt's virTypedParamsReplaceString is internal: the same, with the
 * public structure. */
static int params_set_string(struct vm_gate_session *s, const char *name, const char *value)
{
    for (int i = 0; i < s->nparams; i++) {
        if (strcmp(s->params[i].field, name) == 0 && s->params[i].type == VIR_TYPED_PARAM_STRING) {
            free(s->params[i].value.s);
            s->params[i].value.s = xstrdup(value);
            return 0;
        }
    }
    int max = s->nparams;
    return virTypedParamsAddString(&s->params, &s->nparams, &max, name, value);
}

/* The cookie a phase produced becomes the next phase's input. */
static void take_cookie(struct vm_gate_session *s, char *out, int outlen)
{
    free(s->cookie);
    s->cookie = out;
    s->cookielen = out ? outlen : 0;
}

static void confirm(struct vm_gate_session *s, int cancelled)
{
    api.confirm(s->dom, s->params, s->nparams, s->cookie, s->cookielen, s->flags, cancelled);
}

int vm_gate_to_gate(struct vm_gate_session *s, struct vm_virt_err *err)
{
    if (!vm_gate_available(NULL)) {
        vm_virt_err_set(err, VIR_ERR_NO_SUPPORT, "libvirt lacks %s: no commit gate", api.missing);
        return -1;
    }
    char *out = NULL;
    int outlen = 0;

    s->dom_xml = api.begin(s->dom, s->params, s->nparams, &out, &outlen, s->flags);
    if (!s->dom_xml) {
        vm_virt_err_capture(err);
        return -1;
    }
    take_cookie(s, out, outlen);
    if (params_set_string(s, VIR_MIGRATE_PARAM_DEST_XML, s->dom_xml) < 0)
        goto fail_confirm;

    out = NULL;
    outlen = 0;
    if (api.prepare(s->dconn, s->params, s->nparams, s->cookie, s->cookielen, &out, &outlen,
                    &s->uri_out, s->destflags) < 0)
        goto fail_confirm; /* Begin started a job on the source: end it */
    take_cookie(s, out, outlen);
    if (s->uri_out && params_set_string(s, VIR_MIGRATE_PARAM_URI, s->uri_out) < 0)
        goto fail_finish;

    /* Finish finds the incoming domain by this name, and Finish follows
     * Perform whether it succeeds or not: set before Perform, as libvirt's
     * client does before its Finish. Without it a Finish(cancelled) after
     * a failed Perform fails ("missing domain name") and leaves the
     * target's incoming domain paused there. */
    const char *dname = NULL;
    if (virTypedParamsGetString(s->params, s->nparams, VIR_MIGRATE_PARAM_DEST_NAME, &dname) <= 0 &&
        params_set_string(s, VIR_MIGRATE_PARAM_DEST_NAME, virDomainGetName(s->dom)) < 0)
        goto fail_finish;

    out = NULL;
    outlen = 0;
    if (api.perform(s->dom, NULL, s->params, s->nparams, s->cookie, s->cookielen, &out, &outlen,
                    s->flags) < 0) {
        /* Perform failed: the source already knows; tell the target. */
        vm_virt_err_capture(err);
        take_cookie(s, NULL, 0);
        virDomainPtr d =
            api.finish(s->dconn, s->params, s->nparams, NULL, 0, &out, &outlen, s->destflags, 1);
        free(out);
        if (d)
            virDomainFree(d);
        virResetLastError();
        s->finished = true;
        return -1;
    }
    take_cookie(s, out, outlen);
    s->performed = true;
    return 0;

fail_finish:
    vm_virt_err_capture(err);
    vm_gate_finish(s, false, &(struct vm_virt_err){0});
    return -1;
fail_confirm:
    vm_virt_err_capture(err);
    confirm(s, 1);
    virResetLastError();
    s->finished = true;
    return -1;
}

int vm_gate_finish(struct vm_gate_session *s, bool commit, struct vm_virt_err *err)
{
    char *out = NULL;
    int outlen = 0;
    int rc = 0;
    virDomainPtr d = api.finish(s->dconn, s->params, s->nparams, s->cookie, s->cookielen, &out,
                                &outlen, s->destflags, commit ? 0 : 1);
    if (commit && !d) {
        /* The target could not run the guest: roll back on the source. */
        vm_virt_err_capture(err);
        rc = -1;
    } else if (!commit && d) {
        vm_virt_err_set(err, VIR_ERR_INTERNAL_ERROR,
                        "the target ignored the rollback and runs the guest");
        rc = -1;
    }
    if (d)
        virDomainFree(d);
    take_cookie(s, out, outlen);
    int cancelled = d ? 0 : 1;
    /* Between Finish and Confirm a crash leaves the source paused while
     * the guest runs on the target (the split-brain trap). */
    if (commit)
        vm_fault("before-confirm");
    if (api.confirm(s->dom, s->params, s->nparams, s->cookie, s->cookielen, s->flags, cancelled) <
        0) {
        if (rc == 0)
            vm_virt_err_capture(err);
        rc = -1;
    }
    s->finished = true;
    s->committed = commit && cancelled == 0;
    return rc;
}
