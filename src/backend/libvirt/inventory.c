/* SPDX-License-Identifier: MIT */
/* inventory.c — see inventory.h.
 *
 * XML is read by walking libxml2's tree once, element by element, rather
 * than by XPath: one pass over <domain>'s children and one over
 * <devices>', no expression compilation or node-set allocation per field
 * (measured: see tests/inventory/README.md). Attribute and text values are
 * read in place; only the rare multi-node ones are copied, into the walk's
 * `owned` list, freed with the document. */
#include "backend/libvirt/inventory.h"

#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#include "util/util.h"

/* ---- parsing untrusted XML ---------------------------------------------- */

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void xml_init(void)
{
    xmlInitParser();
}

struct xml_diag {
    char msg[256]; /* the first fatal error, else the first error */
    bool fatal;
    bool doctype;
};

#if LIBXML_VERSION >= 21200
static void capture_error(void *data, const xmlError *e)
#else
static void capture_error(void *data, xmlErrorPtr e)
#endif
{
    xmlParserCtxtPtr ctxt = data;
    struct xml_diag *d = ctxt ? ctxt->_private : NULL;

    if (!d || !e || e->level < XML_ERR_ERROR || d->fatal)
        return;
    if (d->msg[0] && e->level != XML_ERR_FATAL)
        return;
    d->fatal = e->level == XML_ERR_FATAL;
    snprintf(d->msg, sizeof(d->msg), "line %d: %s", e->line,
             e->message ? e->message : "malformed XML");
    size_t n = strlen(d->msg);
    while (n && (d->msg[n - 1] == '\n' || d->msg[n - 1] == ' '))
        d->msg[--n] = '\0';
}

/* SAX: <!DOCTYPE ...> was read. Stop before its internal subset, so no
 * entity or DTD declaration is ever processed. */
static void refuse_doctype(void *ctx, const xmlChar *name, const xmlChar *ext_id,
                           const xmlChar *sys_id)
{
    xmlParserCtxtPtr ctxt = ctx;
    struct xml_diag *d = ctxt->_private;

    d->doctype = true;
    xmlStopParser(ctxt);
}

/* Parse xml ("what" names it in errors) with the rules of inventory.h.
 * Returns the document (caller frees with xmlFreeDoc) or NULL + err. */
static xmlDocPtr parse_xml(const char *xml, const char *what, struct vm_virt_err *err)
{
    struct xml_diag d = {.msg = ""};
    xmlParserCtxtPtr ctxt;
    xmlDocPtr doc;
    size_t len;

    pthread_once(&xml_once, xml_init);
    if (!xml) {
        vm_virt_err_set(err, VIR_ERR_XML_ERROR, "no %s XML", what);
        return NULL;
    }
    len = strnlen(xml, (size_t)VM_INV_MAX_XML + 1);
    if (len > VM_INV_MAX_XML) {
        vm_virt_err_set(err, VIR_ERR_XML_ERROR, "%s XML is larger than %u bytes", what,
                        VM_INV_MAX_XML);
        return NULL;
    }
    if (len == 0) {
        vm_virt_err_set(err, VIR_ERR_XML_ERROR, "%s XML is empty", what);
        return NULL;
    }
    ctxt = xmlCreateMemoryParserCtxt(xml, (int)len);
    if (!ctxt) {
        vm_virt_err_set(err, VIR_ERR_XML_ERROR, "%s XML: cannot create a parser", what);
        return NULL;
    }
    /* No XML_PARSE_NOENT (entities stay unexpanded), no XML_PARSE_DTDLOAD,
     * no XML_PARSE_HUGE (libxml2's depth and size limits stay on). */
    xmlCtxtUseOptions(ctxt, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING |
                                XML_PARSE_NOCDATA | XML_PARSE_COMPACT | XML_PARSE_NOBLANKS);
    ctxt->_private = &d;
    ctxt->sax->internalSubset = refuse_doctype;
    ctxt->sax->serror = capture_error;
    ctxt->vctxt.error = NULL;
    ctxt->vctxt.warning = NULL;

    xmlParseDocument(ctxt);
    doc = ctxt->myDoc;
    ctxt->myDoc = NULL;
    if (d.doctype) {
        vm_virt_err_set(err, VIR_ERR_XML_ERROR,
                        "%s XML has a <!DOCTYPE>: DTDs and entities are not accepted", what);
    } else if (!ctxt->wellFormed || !doc || !xmlDocGetRootElement(doc)) {
        vm_virt_err_set(err, VIR_ERR_XML_ERROR, "%s XML is not well-formed: %s", what,
                        d.msg[0] ? d.msg : "no root element");
    } else {
        xmlFreeParserCtxt(ctxt);
        return doc;
    }
    xmlFreeDoc(doc);
    xmlFreeParserCtxt(ctxt);
    return NULL;
}

/* ---- reading the tree ---------------------------------------------------- */

struct walk {
    char msg[384];   /* the first error */
    xmlChar **owned; /* copied values, freed by walk_fini */
    size_t n_owned, cap_owned;
};

static int fail(struct walk *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct walk *w, const char *fmt, ...)
{
    if (!w->msg[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->msg, sizeof(w->msg), fmt, ap);
        va_end(ap);
    }
    return -1;
}

static const char *own(struct walk *w, xmlChar *s)
{
    if (!s)
        return "";
    if (w->n_owned == w->cap_owned) {
        w->cap_owned = w->cap_owned ? 2 * w->cap_owned : 8;
        w->owned = xrealloc(w->owned, w->cap_owned * sizeof(*w->owned));
    }
    w->owned[w->n_owned++] = s;
    return (const char *)s;
}

static void walk_fini(struct walk *w)
{
    for (size_t i = 0; i < w->n_owned; i++)
        xmlFree(w->owned[i]);
    free(w->owned);
}

static bool is_el(const xmlNode *n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

static const xmlNode *child(const xmlNode *n, const char *name)
{
    for (const xmlNode *c = n ? n->children : NULL; c; c = c->next)
        if (is_el(c, name))
            return c;
    return NULL;
}

static bool has_element_child(const xmlNode *n)
{
    for (const xmlNode *c = n->children; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE)
            return true;
    return false;
}

static const char *attr_value(struct walk *w, const xmlAttr *a)
{
    const xmlNode *c = a->children;

    if (!c)
        return "";
    if (!c->next && c->type == XML_TEXT_NODE)
        return c->content ? (const char *)c->content : "";
    return own(w, xmlNodeListGetString(a->doc, c, 1));
}

/* The value of n's attribute `name` (no namespace), or NULL. */
static const char *attr(struct walk *w, const xmlNode *n, const char *name)
{
    for (const xmlAttr *a = n ? n->properties : NULL; a; a = a->next)
        if (!a->ns && strcmp((const char *)a->name, name) == 0)
            return attr_value(w, a);
    return NULL;
}

/* The concatenated text and CDATA children of n ("" if none), verbatim. */
static const char *text(struct walk *w, const xmlNode *n)
{
    const xmlNode *first = NULL;
    size_t count = 0, len = 0;

    for (const xmlNode *c = n->children; c; c = c->next) {
        if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && c->content) {
            if (!first)
                first = c;
            count++;
            len += strlen((const char *)c->content);
        }
    }
    if (count == 0)
        return "";
    if (count == 1)
        return (const char *)first->content;
    char *s = xmalloc(len + 1), *p = s;
    for (const xmlNode *c = first; c; c = c->next) {
        if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && c->content) {
            size_t k = strlen((const char *)c->content);
            memcpy(p, c->content, k);
            p += k;
        }
    }
    *p = '\0';
    /* xmlFree is free() unless the process replaced libxml2's allocator:
     * copy into libxml2's memory to stay correct either way. */
    xmlChar *x = xmlStrdup((const xmlChar *)s);
    free(s);
    return own(w, x);
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* A JSON string of s without surrounding whitespace. */
static json_t *jstr_trim(const char *s)
{
    size_t n;

    while (is_space(*s))
        s++;
    n = strlen(s);
    while (n && is_space(s[n - 1]))
        n--;
    return json_stringn(s, n);
}

static json_t *jstr_or_null(const char *s)
{
    json_t *j = s ? json_string(s) : NULL;
    return j ? j : json_null();
}

static int put(struct walk *w, json_t *o, const char *key, json_t *v)
{
    if (!v || json_object_set_new(o, key, v) < 0)
        return fail(w, "cannot store \"%.64s\" (not UTF-8?)", key);
    return 0;
}

static int put_str(struct walk *w, json_t *o, const char *key, const char *s)
{
    return s ? put(w, o, key, json_string(s)) : 0;
}

/* Store v under key; a key seen before turns into an array of its values. */
static int add_repeat(struct walk *w, json_t *o, const char *key, json_t *v)
{
    json_t *old = json_object_get(o, key);

    if (!old)
        return put(w, o, key, v);
    if (json_is_array(old))
        return json_array_append_new(old, v) < 0 ? fail(w, "cannot store \"%.64s\"", key) : 0;
    json_t *a = json_array();
    json_array_append(a, old);
    json_array_append_new(a, v);
    return put(w, o, key, a);
}

/* Every attribute of n as "name": "value" in o. */
static int put_attrs(struct walk *w, json_t *o, const xmlNode *n, const char *prefix)
{
    char key[128];

    for (const xmlAttr *a = n ? n->properties : NULL; a; a = a->next) {
        const char *name = (const char *)a->name;
        if (prefix) {
            if ((size_t)snprintf(key, sizeof(key), "%s%s", prefix, name) >= sizeof(key))
                return fail(w, "attribute name \"%.64s...\" is too long", name);
            name = key;
        }
        if (put(w, o, name, json_string(attr_value(w, a))) < 0)
            return -1;
    }
    return 0;
}

/* ---- numbers ------------------------------------------------------------- */

/* A non-negative decimal integer, optionally surrounded by whitespace. */
static int parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    bool digits = false;

    while (is_space(*s))
        s++;
    for (; *s >= '0' && *s <= '9'; s++, digits = true) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    while (is_space(*s))
        s++;
    if (!digits || *s)
        return -1;
    *out = v;
    return 0;
}

static int parse_int(const char *s, long long *out)
{
    uint64_t v;
    bool neg;

    while (is_space(*s))
        s++;
    neg = *s == '-';
    if (parse_u64(s + neg, &v) < 0 || v > (uint64_t)LLONG_MAX)
        return -1;
    *out = neg ? -(long long)v : (long long)v;
    return 0;
}

static bool ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char x = *a >= 'A' && *a <= 'Z' ? (char)(*a + 32) : *a;
        char y = *b >= 'A' && *b <= 'Z' ? (char)(*b + 32) : *b;
        if (x != y)
            return false;
    }
    return *a == *b;
}

/* libvirt's memory units (virScaleInteger): b/bytes; k, m, g, t, p, e alone
 * or with "iB" are powers of 1024, with "B" powers of 1000; no unit is KiB. */
static int unit_scale(const char *unit, uint64_t *scale)
{
    static const char prefixes[] = "kmgtpe";
    const char *p;
    char c;

    if (!unit || !*unit) {
        *scale = 1024;
        return 0;
    }
    if (ieq(unit, "b") || ieq(unit, "bytes")) {
        *scale = 1;
        return 0;
    }
    c = unit[0] >= 'A' && unit[0] <= 'Z' ? (char)(unit[0] + 32) : unit[0];
    p = c ? strchr(prefixes, c) : NULL;
    if (!p)
        return -1;
    uint64_t base;
    if (!unit[1] || ieq(unit + 1, "ib"))
        base = 1024;
    else if (ieq(unit + 1, "b"))
        base = 1000;
    else
        return -1;
    *scale = 1;
    for (long i = 0; i <= p - prefixes; i++)
        *scale *= base;
    return 0;
}

/* <memory unit='...'>N</memory> in bytes. */
static int memory_bytes(struct walk *w, const xmlNode *n, json_int_t *out)
{
    const char *t = text(w, n), *unit = attr(w, n, "unit");
    uint64_t v, scale;

    if (parse_u64(t, &v) < 0)
        return fail(w, "<%s> value '%.64s' is not a non-negative integer", (const char *)n->name,
                    t);
    if (unit_scale(unit, &scale) < 0)
        return fail(w, "<%s> has an unknown unit '%.32s'", (const char *)n->name, unit);
    if (v > (uint64_t)INT64_MAX / scale)
        return fail(w, "<%s> value %" PRIu64 " %.32s is too large", (const char *)n->name, v,
                    unit ? unit : "KiB");
    *out = (json_int_t)(v * scale);
    return 0;
}

/* ---- <metadata> ------------------------------------------------------------ */

static json_t *convert(struct walk *w, const xmlNode *e, int depth)
{
    json_t *o;

    if (depth > VM_INV_MAX_META_DEPTH) {
        fail(w, "<metadata> is nested deeper than %d elements (at <%.64s>)", VM_INV_MAX_META_DEPTH,
             (const char *)e->name);
        return NULL;
    }
    bool kids = has_element_child(e);
    if (!kids && !e->properties) {
        json_t *s = json_string(text(w, e));
        if (!s)
            fail(w, "<metadata> element <%.64s> has text that is not UTF-8", (const char *)e->name);
        return s;
    }
    o = json_object();
    if (put_attrs(w, o, e, "@") < 0)
        goto fail;
    for (const xmlNode *c = e->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        json_t *v = convert(w, c, depth + 1);
        if (!v || add_repeat(w, o, (const char *)c->name, v) < 0)
            goto fail;
    }
    json_t *t = jstr_trim(text(w, e));
    if (t && json_string_length(t) > 0) {
        if (put(w, o, "#text", t) < 0)
            goto fail;
    } else {
        json_decref(t);
    }
    return o;
fail:
    json_decref(o);
    return NULL;
}

static int conv_metadata(struct walk *w, const xmlNode *md, json_t *meta, json_t *tags)
{
    for (const xmlNode *e = md ? md->children : NULL; e; e = e->next) {
        if (e->type != XML_ELEMENT_NODE)
            continue;
        const char *ns = e->ns && e->ns->href ? (const char *)e->ns->href : NULL;
        json_t *v = convert(w, e, 1);
        if (!v || add_repeat(w, meta, ns ? ns : (const char *)e->name, v) < 0)
            return -1;
        if (!ns || strcmp(ns, VM_INV_TAGS_NS) != 0 || strcmp((const char *)e->name, "tags") != 0)
            continue;
        for (const xmlNode *c = e->children; c; c = c->next) {
            if (c->type != XML_ELEMENT_NODE)
                continue;
            json_t *t = convert(w, c, 2);
            if (!t || add_repeat(w, tags, (const char *)c->name, t) < 0)
                return -1;
        }
    }
    return 0;
}

/* ---- devices ------------------------------------------------------------- */

static int conv_interface(struct walk *w, const xmlNode *n, json_t *list)
{
    json_t *o = json_object();
    const char *type = attr(w, n, "type");

    json_array_append_new(list, o);
    /* libvirt's default when type is missing. */
    if (put_str(w, o, "type", type ? type : "user") < 0)
        return -1;
    for (const xmlNode *c = n->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        int rc = 0;
        if (is_el(c, "mac")) {
            rc = put_str(w, o, "mac", attr(w, c, "address"));
        } else if (is_el(c, "source")) {
            json_t *src = json_object();
            rc = put(w, o, "source", src);
            rc = rc ? rc : put_attrs(w, src, c, NULL);
        } else if (is_el(c, "model")) {
            rc = put_str(w, o, "model", attr(w, c, "type"));
        } else if (is_el(c, "target")) {
            rc = put_str(w, o, "target", attr(w, c, "dev"));
        } else if (is_el(c, "virtualport")) {
            json_t *vp = json_object(), *params;
            rc = put(w, o, "virtualport", vp);
            rc = rc ? rc : put_str(w, vp, "type", attr(w, c, "type"));
            rc = rc ? rc : put(w, vp, "parameters", params = json_object());
            rc = rc ? rc : put_attrs(w, params, child(c, "parameters"), NULL);
        }
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int put_int_attr(struct walk *w, json_t *o, const char *key, const xmlNode *n,
                        const char *name)
{
    const char *s = attr(w, n, name);
    long long v;

    if (!s)
        return 0;
    if (parse_int(s, &v) < 0)
        return fail(w, "<%s %s='%.32s'> is not an integer", (const char *)n->name, name, s);
    return put(w, o, key, json_integer(v));
}

static int conv_graphics(struct walk *w, const xmlNode *n, json_t *list)
{
    json_t *o = json_object();
    const char *type = attr(w, n, "type"), *listen = attr(w, n, "listen"), *autoport;

    json_array_append_new(list, o);
    if (!type)
        return fail(w, "<graphics> has no type");
    for (const xmlNode *c = n->children; c && !listen; c = c->next)
        if (is_el(c, "listen"))
            listen = attr(w, c, "address");
    autoport = attr(w, n, "autoport");
    if (put_str(w, o, "type", type) < 0 || put_int_attr(w, o, "port", n, "port") < 0 ||
        put_int_attr(w, o, "tls_port", n, "tlsPort") < 0 || put_str(w, o, "listen", listen) < 0 ||
        put(w, o, "autoport", json_boolean(autoport && strcmp(autoport, "yes") == 0)) < 0)
        return -1;
    return 0;
}

static int conv_disk(struct walk *w, const xmlNode *n, json_t *list)
{
    json_t *o = json_object(), *src = NULL;
    const char *type = attr(w, n, "type"), *device = attr(w, n, "device");
    const xmlNode *source = NULL, *target = NULL, *driver = NULL;
    bool shared = false, readonly = false;

    json_array_append_new(list, o);
    /* libvirt's defaults. */
    type = type ? type : "file";
    device = device ? device : "disk";
    for (const xmlNode *c = n->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (!source && is_el(c, "source"))
            source = c;
        else if (!target && is_el(c, "target"))
            target = c;
        else if (!driver && is_el(c, "driver"))
            driver = c;
        else if (is_el(c, "shareable"))
            shared = true;
        else if (is_el(c, "readonly"))
            readonly = true;
    }
    if (put_str(w, o, "device", device) < 0 || put_str(w, o, "type", type) < 0 ||
        put_str(w, o, "target", attr(w, target, "dev")) < 0 ||
        put_str(w, o, "bus", attr(w, target, "bus")) < 0 ||
        put(w, o, "source", src = json_object()) < 0 || put_attrs(w, src, source, NULL) < 0)
        return -1;
    json_t *hosts = NULL;
    for (const xmlNode *c = source ? source->children : NULL; c; c = c->next) {
        if (!is_el(c, "host"))
            continue;
        if (!hosts && put(w, src, "hosts", hosts = json_array()) < 0)
            return -1;
        json_t *h = json_object();
        json_array_append_new(hosts, h);
        if (put_attrs(w, h, c, NULL) < 0)
            return -1;
    }
    const char *path = NULL;
    if (strcmp(type, "file") == 0)
        path = attr(w, source, "file");
    else if (strcmp(type, "block") == 0)
        path = attr(w, source, "dev");
    else if (strcmp(type, "dir") == 0)
        path = attr(w, source, "dir");
    bool local = path && *path && !shared;
    if (put_str(w, o, "format", attr(w, driver, "type")) < 0 ||
        put_str(w, o, "cache", attr(w, driver, "cache")) < 0 ||
        put(w, o, "shared", json_boolean(shared)) < 0 ||
        put(w, o, "readonly", json_boolean(readonly)) < 0 ||
        put(w, o, "local", json_boolean(local)) < 0)
        return -1;
    return 0;
}

/* ---- the domain ---------------------------------------------------------- */

static int conv_domain(struct walk *w, const xmlNode *root, json_t *d)
{
    const xmlNode *name = NULL, *uuid = NULL, *mem = NULL, *cur = NULL, *vcpu = NULL, *md = NULL,
                  *devices = NULL;
    const char *type;
    json_int_t mem_b, cur_b;
    uint64_t vcpus = 1, cur_vcpus;

    if (!is_el(root, "domain") || root->ns)
        return fail(w, "root element is <%.64s>, not <domain>", (const char *)root->name);
    for (const xmlNode *c = root->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        const char *n = (const char *)c->name;
        /* The first of each wins, like libvirt's XPath lookups. */
#define TAKE(var, el)                                                                              \
    if (strcmp(n, el) == 0) {                                                                      \
        if (!var)                                                                                  \
            var = c;                                                                               \
        continue;                                                                                  \
    }
        TAKE(name, "name")
        TAKE(uuid, "uuid")
        TAKE(mem, "memory")
        TAKE(cur, "currentMemory")
        TAKE(vcpu, "vcpu")
        TAKE(md, "metadata")
        TAKE(devices, "devices")
#undef TAKE
    }
    if (!(type = attr(w, root, "type")))
        return fail(w, "<domain> has no type");
    if (!name || !*text(w, name))
        return fail(w, "<domain> has no <name>");
    if (!uuid || !*text(w, uuid))
        return fail(w, "<domain> has no <uuid>");
    if (!mem)
        return fail(w, "<domain> has no <memory>");
    if (memory_bytes(w, mem, &mem_b) < 0 || (cur && memory_bytes(w, cur, &cur_b) < 0))
        return -1;
    if (!cur)
        cur_b = mem_b;
    if (vcpu && (parse_u64(text(w, vcpu), &vcpus) < 0 || vcpus > INT_MAX))
        return fail(w, "<vcpu> value '%.32s' is not a vCPU count", text(w, vcpu));
    cur_vcpus = vcpus;
    const char *cv = attr(w, vcpu, "current");
    if (cv && (parse_u64(cv, &cur_vcpus) < 0 || cur_vcpus > vcpus))
        return fail(w, "<vcpu current='%.32s'> is not a count up to %" PRIu64, cv, vcpus);

    json_t *meta, *tags, *ifaces = NULL, *graphics = NULL, *disks = NULL;
    if (put_str(w, d, "name", text(w, name)) < 0 || put_str(w, d, "uuid", text(w, uuid)) < 0 ||
        put_str(w, d, "type", type) < 0 || put(w, d, "memory_bytes", json_integer(mem_b)) < 0 ||
        put(w, d, "current_memory_bytes", json_integer(cur_b)) < 0 ||
        put(w, d, "vcpus", json_integer((json_int_t)vcpus)) < 0 ||
        put(w, d, "current_vcpus", json_integer((json_int_t)cur_vcpus)) < 0 ||
        put(w, d, "metadata", meta = json_object()) < 0 ||
        put(w, d, "tags", tags = json_object()) < 0 ||
        put(w, d, "interfaces", ifaces = json_array()) < 0 ||
        put(w, d, "graphics", graphics = json_array()) < 0 ||
        put(w, d, "disks", disks = json_array()) < 0)
        return -1;
    if (conv_metadata(w, md, meta, tags) < 0)
        return -1;
    for (const xmlNode *c = devices ? devices->children : NULL; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        int rc = 0;
        if (is_el(c, "interface"))
            rc = conv_interface(w, c, ifaces);
        else if (is_el(c, "graphics"))
            rc = conv_graphics(w, c, graphics);
        else if (is_el(c, "disk"))
            rc = conv_disk(w, c, disks);
        if (rc < 0)
            return -1;
    }
    return 0;
}

json_t *vm_inv_domain_from_xml(const char *xml, struct vm_virt_err *err)
{
    struct walk w = {.msg = ""};
    xmlDocPtr doc = parse_xml(xml, "domain", err);
    json_t *d;

    if (!doc)
        return NULL;
    d = json_object();
    if (conv_domain(&w, xmlDocGetRootElement(doc), d) < 0) {
        vm_virt_err_set(err, VIR_ERR_XML_ERROR, "domain XML: %s", w.msg);
        json_decref(d);
        d = NULL;
    }
    walk_fini(&w);
    xmlFreeDoc(doc);
    return d;
}

/* ---- hosts ---------------------------------------------------------------- */

json_t *vm_inv_caps_from_xml(const char *xml, struct vm_virt_err *err)
{
    struct walk w = {.msg = ""};
    xmlDocPtr doc = parse_xml(xml, "capabilities", err);
    const xmlNode *root, *host, *n;
    json_t *caps, *migr, *transports;

    if (!doc)
        return NULL;
    root = xmlDocGetRootElement(doc);
    bool root_ok = is_el(root, "capabilities") && !root->ns;
    host = root_ok ? child(root, "host") : NULL;
    if (!host) {
        vm_virt_err_set(err, VIR_ERR_XML_ERROR, "capabilities XML: %s",
                        root_ok ? "no <host>" : "root element is not <capabilities>");
        caps = NULL;
        goto out;
    }
    caps = json_object();
    n = child(host, "uuid");
    json_object_set_new(caps, "host_uuid", n ? jstr_trim(text(&w, n)) : json_null());
    n = child(child(host, "cpu"), "arch");
    json_object_set_new(caps, "arch", n ? jstr_trim(text(&w, n)) : json_null());
    n = child(host, "migration_features");
    migr = json_object();
    json_object_set_new(caps, "migration", migr);
    /* No <migration_features> at all (libvirt's test driver): unknown, not
     * "no" -- null, and preflight finds out. */
    json_object_set_new(migr, "live", n ? json_boolean(child(n, "live") != NULL) : json_null());
    json_object_set_new(migr, "transports", transports = json_array());
    for (const xmlNode *t = child(child(n, "uri_transports"), "uri_transport"); t; t = t->next)
        if (is_el(t, "uri_transport"))
            json_array_append_new(transports, jstr_trim(text(&w, t)));
out:
    walk_fini(&w);
    xmlFreeDoc(doc);
    return caps;
}

json_t *vm_inv_host(virConnectPtr c, const char *uri, struct vm_virt_err *err)
{
    char *own_uri = NULL, *hostname = NULL, *caps = NULL;
    virDomainPtr *doms = NULL;
    int n = -1, running = 0;
    unsigned long long free_b, reserved = 0;
    virNodeInfo ni;
    json_t *h = NULL, *cj = NULL;

    if (!uri && !(uri = own_uri = virConnectGetURI(c)))
        goto fail_virt;
    if (virNodeGetInfo(c, &ni) < 0 || !(hostname = virConnectGetHostname(c)) ||
        !(caps = virConnectGetCapabilities(c)))
        goto fail_virt;
    /* libvirt turns a 0 answer into an error: the driver has no figure
     * (libvirt's test driver on a node file has no NUMA cells), estimated
     * below. A lost connection fails the next call. */
    free_b = virNodeGetFreeMemory(c);
    if (free_b == 0)
        virResetLastError();
    if ((n = virConnectListAllDomains(c, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE)) < 0)
        goto fail_virt;
    for (int i = 0; i < n; i++) {
        virDomainInfo di;
        if (virDomainGetInfo(doms[i], &di) < 0) {
            if (virGetLastErrorCode() == VIR_ERR_NO_DOMAIN) { /* it went away */
                virResetLastError();
                continue;
            }
            goto fail_virt;
        }
        if (di.state == VIR_DOMAIN_SHUTOFF)
            continue;
        running++;
        reserved += (unsigned long long)di.memory * 1024;
    }

    if (!(cj = vm_inv_caps_from_xml(caps, err)))
        goto out;
    h = json_object();
    json_object_set_new(h, "uri", jstr_or_null(uri));
    json_object_set_new(h, "hostname", jstr_or_null(hostname));
    json_object_set(h, "host_uuid", json_object_get(cj, "host_uuid"));
    json_object_set(h, "arch", json_object_get(cj, "arch"));
    json_object_set_new(h, "cpus", json_integer(ni.cpus));
    json_object_set_new(h, "memory_bytes", json_integer((json_int_t)ni.memory * 1024));
    unsigned long long total = (unsigned long long)ni.memory * 1024;
    if (free_b == 0)
        free_b = total > reserved ? total - reserved : 0;
    json_object_set_new(h, "free_memory_bytes", json_integer((json_int_t)free_b));
    json_object_set_new(h, "running_vms", json_integer(running));
    json_object_set_new(h, "reserved_memory_bytes", json_integer((json_int_t)reserved));
    json_object_set(h, "migration", json_object_get(cj, "migration"));
    goto out;

fail_virt:
    vm_virt_err_capture(err);
out:
    for (int i = 0; i < n; i++)
        virDomainFree(doms[i]);
    free(doms);
    free(caps);
    free(hostname);
    free(own_uri);
    json_decref(cj);
    return h;
}

/* ---- a host's domains ------------------------------------------------------ */

struct dom_item {
    virDomainPtr dom;
    const char *name;
    int state; /* -1: not known yet */
    bool persistent;
};

static int by_name(const void *a, const void *b)
{
    const struct dom_item *x = a, *y = b;
    return strcmp(x->name, y->name);
}

static int by_uuid(const void *a, const void *b)
{
    return memcmp(a, b, VIR_UUID_BUFLEN);
}

/* Mark the items that are transient. 0 or -1 (libvirt error pending). */
static int mark_persistence(virConnectPtr c, unsigned filter, struct dom_item *items, int n)
{
    virDomainPtr *trans = NULL;
    unsigned char(*uuids)[VIR_UUID_BUFLEN];
    int nt;

    for (int i = 0; i < n; i++)
        items[i].persistent = !(filter & VIR_CONNECT_LIST_DOMAINS_TRANSIENT);
    if (filter & (VIR_CONNECT_LIST_DOMAINS_PERSISTENT | VIR_CONNECT_LIST_DOMAINS_TRANSIENT))
        return 0;
    /* One more listing instead of virDomainIsPersistent per domain. A
     * domain made persistent meanwhile reads persistent: it is, now. */
    if ((nt = virConnectListAllDomains(c, &trans, VIR_CONNECT_LIST_DOMAINS_TRANSIENT)) < 0)
        return -1;
    uuids = xcalloc(nt ? (size_t)nt : 1, sizeof(*uuids));
    for (int i = 0; i < nt; i++) {
        virDomainGetUUID(trans[i], uuids[i]);
        virDomainFree(trans[i]);
    }
    free(trans);
    qsort(uuids, (size_t)nt, sizeof(*uuids), by_uuid);
    for (int i = 0; i < n && nt > 0; i++) {
        unsigned char u[VIR_UUID_BUFLEN];
        if (virDomainGetUUID(items[i].dom, u) == 0 &&
            bsearch(u, uuids, (size_t)nt, sizeof(*uuids), by_uuid))
            items[i].persistent = false;
    }
    free(uuids);
    return 0;
}

static bool vanished(void)
{
    if (virGetLastErrorCode() != VIR_ERR_NO_DOMAIN)
        return false;
    virResetLastError();
    return true;
}

json_t *vm_inv_domains(virConnectPtr c, unsigned flags, struct vm_virt_err *err)
{
    unsigned filter = flags & ~VM_INV_PER_DOMAIN_STATE;
    virDomainStatsRecordPtr *recs = NULL;
    virDomainPtr *doms = NULL;
    struct dom_item *items = NULL;
    json_t *out = NULL;
    int n = -1;

    if (!(flags & VM_INV_PER_DOMAIN_STATE)) {
        /* One call lists the domains with their states. */
        n = virConnectGetAllDomainStats(c, VIR_DOMAIN_STATS_STATE, &recs, filter);
        if (n < 0 && virGetLastErrorCode() != VIR_ERR_NO_SUPPORT)
            goto fail_virt;
        if (n < 0)
            virResetLastError();
    }
    if (n < 0 && (n = virConnectListAllDomains(c, &doms, filter)) < 0)
        goto fail_virt;
    items = xcalloc(n ? (size_t)n : 1, sizeof(*items));
    for (int i = 0; i < n; i++) {
        int st;
        items[i].dom = recs ? recs[i]->dom : doms[i];
        items[i].name = virDomainGetName(items[i].dom);
        items[i].state = -1;
        if (recs &&
            virTypedParamsGetInt(recs[i]->params, recs[i]->nparams, "state.state", &st) == 1)
            items[i].state = st;
        if (!items[i].name)
            goto fail_virt;
    }
    if (mark_persistence(c, filter, items, n) < 0)
        goto fail_virt;
    qsort(items, (size_t)n, sizeof(*items), by_name);

    out = json_array();
    for (int i = 0; i < n; i++) {
        struct dom_item *it = &items[i];
        struct vm_virt_err perr = {0};
        char *xml;
        json_t *d;

        if (it->state < 0) {
            int reason;
            if (virDomainGetState(it->dom, &it->state, &reason, 0) < 0) {
                if (vanished())
                    continue;
                goto fail_virt;
            }
        }
        if (!(xml = virDomainGetXMLDesc(it->dom, 0))) {
            if (vanished())
                continue;
            goto fail_virt;
        }
        d = vm_inv_domain_from_xml(xml, &perr);
        free(xml);
        if (!d) {
            /* That domain's problem, not the host's: listed by name and
             * UUID with what is wrong, so the plan leaves it alone. */
            char uuid[VIR_UUID_STRING_BUFLEN];
            d = json_pack("{s:s, s:s}", "name", it->name, "unreadable", perr.message);
            if (virDomainGetUUIDString(it->dom, uuid) == 0)
                json_object_set_new(d, "uuid", json_string(uuid));
            else
                virResetLastError();
            vm_virt_err_clear(&perr);
        }
        json_object_set_new(d, "state", json_string(vm_virt_state_name(it->state)));
        json_object_set_new(d, "active", json_boolean(virDomainGetID(it->dom) != (unsigned)-1));
        json_object_set_new(d, "persistent", json_boolean(it->persistent));
        json_array_append_new(out, d);
    }
    goto done;

fail_virt:
    vm_virt_err_capture(err);
    json_decref(out);
    out = NULL;
done:
    free(items);
    if (recs)
        virDomainStatsRecordListFree(recs);
    for (int i = 0; doms && i < n; i++)
        virDomainFree(doms[i]);
    free(doms);
    return out;
}
