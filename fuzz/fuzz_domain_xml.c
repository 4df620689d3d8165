/* SPDX-License-Identifier: MIT */
/* fuzz_domain_xml.c — libFuzzer harness for vm_inv_domain_from_xml and
 * vm_inv_caps_from_xml (src/backend/libvirt/inventory.c): libvirt domain and capabilities
 * XML from an untrusted host.
 *
 * Input: the bytes of one document (cut at the first NUL, as a C string
 * would be), given to both parsers. Oracles beyond the sanitizers:
 *  - exactly one of result and error; an error has code VIR_ERR_XML_ERROR
 *    and a message saying which document it was about;
 *  - a result has the documented shape (inventory.h): every top-level key
 *    with its type, memory and vCPU counts in range, each device an object
 *    with its always-present keys, "local" only for unshared file/block/dir
 *    disks, metadata and tags holding only strings, objects and arrays;
 *  - parsing is deterministic (a second parse gives an equal object);
 *  - capabilities: {"host_uuid": string|null, "arch": string|null,
 *    "migration": {"live": bool, "transports": [string...]}} or an error. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/libvirt/inventory.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void need(bool ok)
{
    if (!ok)
        abort();
}

static bool is_str(const json_t *o, const char *key)
{
    return json_is_string(json_object_get(o, key));
}

static bool opt_str(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return !v || json_is_string(v);
}

static bool opt_int(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return !v || json_is_integer(v);
}

static bool all_strings(const json_t *o)
{
    const char *k;
    json_t *v;

    json_object_foreach((json_t *)o, k, v)
    {
        if (!json_is_string(v) && !(json_is_array(v) && strcmp(k, "hosts") == 0))
            return false;
    }
    return true;
}

/* Converted metadata: strings, objects of them, arrays of those (never an
 * array in an array: arrays only gather repeated keys). */
static void check_meta(const json_t *v, int depth, bool in_array)
{
    need(depth <= VM_INV_MAX_META_DEPTH + 2);
    if (json_is_string(v))
        return;
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        need(!in_array && json_array_size(v) >= 2);
        json_array_foreach((json_t *)v, i, e) check_meta(e, depth, true);
        return;
    }
    need(json_is_object(v));
    const char *k;
    json_t *e;
    json_object_foreach((json_t *)v, k, e)
    {
        if (depth > 0 && (k[0] == '@' || k[0] == '#')) /* depth 0: namespace URIs */
            need(json_is_string(e));
        check_meta(e, depth + 1, false);
    }
}

static void check_domain(const json_t *d)
{
    size_t i;
    json_t *e;

    need(json_is_object(d));
    need(is_str(d, "name") && json_string_length(json_object_get(d, "name")) > 0);
    need(is_str(d, "uuid") && is_str(d, "type"));
    json_int_t mem = json_integer_value(json_object_get(d, "memory_bytes"));
    json_int_t cur = json_integer_value(json_object_get(d, "current_memory_bytes"));
    json_int_t vcpus = json_integer_value(json_object_get(d, "vcpus"));
    json_int_t cvcpus = json_integer_value(json_object_get(d, "current_vcpus"));
    need(json_is_integer(json_object_get(d, "memory_bytes")) && mem >= 0);
    need(json_is_integer(json_object_get(d, "current_memory_bytes")) && cur >= 0);
    need(vcpus >= 0 && vcpus <= INT32_MAX && cvcpus >= 0 && cvcpus <= vcpus);
    need(json_is_object(json_object_get(d, "metadata")));
    need(json_is_object(json_object_get(d, "tags")));
    check_meta(json_object_get(d, "metadata"), 0, false);
    check_meta(json_object_get(d, "tags"), 0, false);

    json_array_foreach(json_object_get(d, "interfaces"), i, e)
    {
        need(json_is_object(e) && is_str(e, "type") && opt_str(e, "mac") && opt_str(e, "model") &&
             opt_str(e, "target"));
        json_t *src = json_object_get(e, "source"), *vp = json_object_get(e, "virtualport");
        need(!src || (json_is_object(src) && all_strings(src)));
        if (vp) {
            json_t *params = json_object_get(vp, "parameters");
            need(json_is_object(vp) && opt_str(vp, "type") && json_is_object(params) &&
                 all_strings(params));
        }
    }
    need(json_is_array(json_object_get(d, "interfaces")));

    json_array_foreach(json_object_get(d, "graphics"), i, e)
    {
        need(json_is_object(e) && is_str(e, "type") && opt_int(e, "port") &&
             opt_int(e, "tls_port") && opt_str(e, "listen") &&
             json_is_boolean(json_object_get(e, "autoport")));
    }
    need(json_is_array(json_object_get(d, "graphics")));

    json_array_foreach(json_object_get(d, "disks"), i, e)
    {
        need(json_is_object(e) && is_str(e, "device") && is_str(e, "type") &&
             opt_str(e, "target") && opt_str(e, "bus") && opt_str(e, "format") &&
             opt_str(e, "cache"));
        json_t *src = json_object_get(e, "source");
        need(json_is_object(src) && all_strings(src));
        bool shared = json_is_true(json_object_get(e, "shared"));
        bool local = json_is_true(json_object_get(e, "local"));
        need(json_is_boolean(json_object_get(e, "shared")) &&
             json_is_boolean(json_object_get(e, "readonly")) &&
             json_is_boolean(json_object_get(e, "local")));
        if (local) {
            const char *type = json_string_value(json_object_get(e, "type"));
            need(!shared);
            need(strcmp(type, "file") == 0 || strcmp(type, "block") == 0 ||
                 strcmp(type, "dir") == 0);
        }
    }
    need(json_is_array(json_object_get(d, "disks")));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vm_virt_err err = {0}, err2 = {0};
    char *xml;
    json_t *d, *again;

    if (size > VM_INV_MAX_XML + 16)
        return 0;
    xml = malloc(size + 1);
    if (!xml)
        return 0;
    memcpy(xml, data, size);
    xml[size] = '\0';

    d = vm_inv_domain_from_xml(xml, &err);
    need((d != NULL) != (err.message != NULL));
    if (d) {
        check_domain(d);
        again = vm_inv_domain_from_xml(xml, &err2);
        need(again && json_equal(d, again));
        json_decref(again);
        json_decref(d);
    } else {
        need(err.code == VIR_ERR_XML_ERROR);
        need(strncmp(err.message, "domain XML", 10) == 0 ||
             strncmp(err.message, "no domain XML", 13) == 0);
        vm_virt_err_clear(&err);
    }

    d = vm_inv_caps_from_xml(xml, &err);
    need((d != NULL) != (err.message != NULL));
    if (d) {
        json_t *u = json_object_get(d, "host_uuid"), *a = json_object_get(d, "arch");
        json_t *m = json_object_get(d, "migration"), *t = json_object_get(m, "transports"), *e;
        size_t i;
        need(json_object_size(d) == 3 && (json_is_null(u) || json_is_string(u)) &&
             (json_is_null(a) || json_is_string(a)) && json_is_object(m) &&
             json_is_boolean(json_object_get(m, "live")) && json_is_array(t));
        json_array_foreach(t, i, e) need(json_is_string(e));
        json_decref(d);
    } else {
        need(err.code == VIR_ERR_XML_ERROR && strncmp(err.message, "capabilities XML", 16) == 0);
        vm_virt_err_clear(&err);
    }
    free(xml);
    return 0;
}
