/* SPDX-License-Identifier: MIT */
/* virt_checks.c — see virt_checks.h. */
#include "backend/libvirt/virt_checks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libvirt/libvirt-qemu.h>

#include "util/util.h"

/* The <cpu>...</cpu> element of a domain XML, or NULL (none, or nothing to
 * compare: host-passthrough / host-model without a model). */
static char *cpu_xml(const char *xml)
{
    const char *a = strstr(xml, "<cpu");
    while (a && a[4] != ' ' && a[4] != '>' && a[4] != '/')
        a = strstr(a + 4, "<cpu");
    if (!a)
        return NULL;
    const char *gt = strchr(a, '>');
    if (!gt || gt[-1] == '/')
        return NULL; /* <cpu .../>: no model */
    const char *end = strstr(gt, "</cpu>");
    if (!end)
        return NULL;
    char *s = xstrndup(a, (size_t)(end + 6 - a));
    if (!strstr(s, "<model") || strstr(s, "host-passthrough")) {
        free(s);
        return NULL;
    }
    return s;
}

enum vm_virt_check vm_virt_check_domain(virConnectPtr src, virConnectPtr dst, const char *uuid,
                                        const char *arch, const char *type, virDomainPtr *dom,
                                        struct vm_virt_err *err)
{
    *dom = virDomainLookupByUUIDString(src, uuid);
    if (!*dom) {
        vm_virt_err_capture(err);
        return VM_VIRT_CHECK_NO_DOMAIN;
    }
    int state, reason;
    if (virDomainGetState(*dom, &state, &reason, 0) < 0 || state != VIR_DOMAIN_RUNNING) {
        virResetLastError();
        return VM_VIRT_CHECK_NOT_RUNNING;
    }
    char *xml = virDomainGetXMLDesc(*dom, 0);
    char *cpu = xml ? cpu_xml(xml) : NULL;
    free(xml);
    if (!cpu) {
        virResetLastError(); /* no CPU model to compare */
        return VM_VIRT_CHECK_OK;
    }
    enum vm_virt_check rc = VM_VIRT_CHECK_OK;
    int r = virConnectCompareHypervisorCPU(dst, NULL, arch, NULL, type, cpu, 0);
    if (r == VIR_CPU_COMPARE_INCOMPATIBLE) {
        rc = VM_VIRT_CHECK_CPU_INCOMPATIBLE;
    } else if (r < 0) {
        /* Comparison not possible (no model known to the target): the
         * migration itself will tell. */
        virResetLastError();
    }
    free(cpu);
    return rc;
}

/* A QEMU monitor command for one domain, on the thread pool. */
struct monitor_task {
    struct vm_virt_task t;
    virConnectPtr conn;
    char uuid[VIR_UUID_STRING_BUFLEN];
    const char *cmd;
    int n; /* spice: the channels */
    vm_virt_announce_cb announced;
    vm_virt_spice_cb counted;
    void *data;
};

static void monitor_work(struct vm_virt_task *t)
{
    struct monitor_task *mt = t->data;
    virDomainPtr d = virDomainLookupByUUIDString(mt->conn, mt->uuid);
    char *result = NULL;
    if (!d || virDomainQemuMonitorCommand(d, mt->cmd, &result, 0) < 0) {
        vm_virt_err_capture(&t->err);
        t->rc = -1;
    } else if (mt->counted) {
        json_t *j = json_loads(result, 0, NULL);
        json_t *ret = json_object_get(j, "return");
        if (json_is_true(json_object_get(ret, "enabled")))
            mt->n = (int)json_array_size(json_object_get(ret, "channels"));
        json_decref(j);
    }
    free(result);
    if (d)
        virDomainFree(d);
}

static void monitor_done(struct vm_virt_task *t)
{
    struct monitor_task *mt = t->data;
    if (mt->announced)
        mt->announced(t->rc == 0, t->rc < 0 ? t->err.message : NULL, mt->data);
    else
        mt->counted(t->rc == 0 ? mt->n : -1, t->err.message, mt->data);
    vm_virt_err_clear(&t->err);
    free(mt);
}

static void monitor_submit(uv_loop_t *loop, struct monitor_task *mt, virConnectPtr conn,
                           const char *uuid)
{
    mt->conn = conn;
    snprintf(mt->uuid, sizeof(mt->uuid), "%s", uuid ? uuid : "");
    mt->t = (struct vm_virt_task){.work = monitor_work, .done = monitor_done, .data = mt};
    int rc = vm_virt_submit(loop, &mt->t);
    if (rc < 0) {
        if (mt->announced)
            mt->announced(false, uv_strerror(rc), mt->data);
        else
            mt->counted(-1, uv_strerror(rc), mt->data);
        free(mt);
    }
}

void vm_virt_announce_self(uv_loop_t *loop, virConnectPtr conn, const char *uuid,
                           vm_virt_announce_cb done, void *data)
{
    struct monitor_task *mt = xcalloc(1, sizeof(*mt));
    mt->cmd = "{\"execute\":\"announce-self\",\"arguments\":"
              "{\"initial\":50,\"max\":550,\"rounds\":5,"
              "\"step\":100}}";
    mt->announced = done;
    mt->data = data;
    monitor_submit(loop, mt, conn, uuid);
}

void vm_virt_spice_count(uv_loop_t *loop, virConnectPtr conn, const char *uuid,
                         vm_virt_spice_cb done, void *data)
{
    struct monitor_task *mt = xcalloc(1, sizeof(*mt));
    mt->cmd = "{\"execute\":\"query-spice\"}";
    mt->counted = done;
    mt->data = data;
    monitor_submit(loop, mt, conn, uuid);
}

int vm_virt_domain_ref(virDomainPtr d)
{
    return virDomainRef(d);
}

void vm_virt_domain_free(virDomainPtr d)
{
    if (d)
        virDomainFree(d);
}
