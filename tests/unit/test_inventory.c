/* SPDX-License-Identifier: MIT */
/* test_inventory.c — src/backend/libvirt/inventory.c: domain XML fixtures (tests/inventory/
 * fixtures), hostile and malformed XML, libvirt's test driver (test:///default
 * and tests/inventory/node.xml), hosts made by tests/inventory/gen_inventory.py,
 * and concurrent use from threads.
 *
 * Also a benchmark, not run by ctest:
 *   test_inventory --bench URIS_FILE [THREADS]
 * opens every test:/// URI listed (one a line, as gen_inventory.py writes
 * them) and times each phase; see tests/inventory/README.md. */
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libxml/parser.h>

#include "runner.h"
#include "backend/libvirt/inventory.h"
#include "util/util.h"

/* ---- helpers ------------------------------------------------------------- */

static const char *src_dir(void)
{
    static char dir[4096];
    const char *env = getenv("VMM_SOURCE_DIR");

    if (env && *env)
        return env;
    if (!dir[0]) { /* run by hand: derive from this file's absolute path */
        snprintf(dir, sizeof(dir), "%s", __FILE__);
        char *p = strstr(dir, "/tests/unit/");
        CHECK(p != NULL);
        *p = '\0';
    }
    return dir;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        CHECK_FAIL("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = xmalloc((size_t)n + 1);
    CHECK_INT(fread(s, 1, (size_t)n, f), ==, n);
    s[n] = '\0';
    fclose(f);
    return s;
}

static char *fixture_path(const char *name)
{
    return xasprintf("%s/tests/inventory/fixtures/%s", src_dir(), name);
}

static json_t *parse_fixture(const char *name)
{
    char *path = fixture_path(name), *xml = read_file(path);
    struct vm_virt_err err = {0};
    json_t *d = vm_inv_domain_from_xml(xml, &err);

    if (!d)
        CHECK_FAIL("%s: %s", name, err.message);
    CHECK(err.message == NULL);
    free(xml);
    free(path);
    return d;
}

static char *dump(const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    CHECK(s != NULL);
    return s;
}

#define CHECK_JSON(j, expected)                                                                    \
    do {                                                                                           \
        char *s_ = dump(j);                                                                        \
        CHECK_STR(s_, expected);                                                                   \
        free(s_);                                                                                  \
    } while (0)

#define GET(obj, key) json_object_get((obj), (key))
#define AT(arr, i) json_array_get((arr), (i))

/* Parse xml expecting failure; returns the message (caller frees). */
static char *parse_err(const char *xml)
{
    struct vm_virt_err err = {0};
    json_t *d = vm_inv_domain_from_xml(xml, &err);

    if (d) {
        char *s = dump(d);
        CHECK_FAIL("expected an error for %.200s, got %s", xml ? xml : "(null)", s);
    }
    CHECK(err.message != NULL);
    CHECK_INT(err.code, ==, VIR_ERR_XML_ERROR);
    return err.message;
}

#define CHECK_PARSE_ERR(xml, needle)                                                               \
    do {                                                                                           \
        char *m_ = parse_err(xml);                                                                 \
        CHECK_CONTAINS(m_, needle);                                                                \
        free(m_);                                                                                  \
    } while (0)

static json_t *parse_ok(const char *xml)
{
    struct vm_virt_err err = {0};
    json_t *d = vm_inv_domain_from_xml(xml, &err);

    if (!d)
        CHECK_FAIL("unexpected error for %.300s: %s", xml, err.message);
    return d;
}

/* A minimal valid domain around `inner` (elements after <memory>). */
static char *domain_with(const char *memory, const char *inner)
{
    return xasprintf("<domain type='kvm'><name>x</name>"
                     "<uuid>00000000-0000-4000-8000-000000000001</uuid>%s%s</domain>",
                     memory ? memory : "<memory>1024</memory>", inner ? inner : "");
}

/* Redirect stderr into a temp file to prove nothing printed there. */
struct quiet {
    int saved;
    FILE *tmp;
};

static void quiet_begin(struct quiet *q)
{
    fflush(stderr);
    q->tmp = tmpfile();
    CHECK(q->tmp != NULL);
    q->saved = dup(2);
    dup2(fileno(q->tmp), 2);
}

static void quiet_end(struct quiet *q)
{
    fflush(stderr);
    dup2(q->saved, 2);
    close(q->saved);
    long n = ftell(q->tmp);
    if (n > 0) {
        char buf[512] = "";
        fseek(q->tmp, 0, SEEK_SET);
        size_t k = fread(buf, 1, sizeof(buf) - 1, q->tmp);
        buf[k] = '\0';
        CHECK_FAIL("stderr got %ld bytes: %s", n, buf);
    }
    fclose(q->tmp);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- fixtures -------------------------------------------------------------- */

static void test_fixture_kvm(void)
{
    json_t *d = parse_fixture("kvm-qbg-spice.xml");

    CHECK_STR(json_string_value(GET(d, "name")), "db1");
    CHECK_STR(json_string_value(GET(d, "uuid")), "c7a5fdbd-cdaf-9455-926a-d65c16db1809");
    CHECK_STR(json_string_value(GET(d, "type")), "kvm");
    CHECK_INT(json_integer_value(GET(d, "memory_bytes")), ==, 8LL << 30);
    CHECK_INT(json_integer_value(GET(d, "current_memory_bytes")), ==, 6144LL << 20);
    CHECK_INT(json_integer_value(GET(d, "vcpus")), ==, 4);
    CHECK_INT(json_integer_value(GET(d, "current_vcpus")), ==, 2);
    /* No inventory-level keys from vm_inv_domains. */
    CHECK(GET(d, "state") == NULL && GET(d, "active") == NULL);

    CHECK_JSON(
        GET(d, "tags"),
        "{\"network-critical\":\"\",\"role\":\"db\",\"tier\":\"gold\",\"zone\":[\"a\",\"b\"]}");
    CHECK_JSON(GET(d, "metadata"),
               "{\"http://example.com/app/1\":{\"@env\":\"prod\",\"@owner\":\"ops\","
               "\"contact\":{\"#text\":\"+1 555 0100\",\"@kind\":\"pager\"},"
               "\"note\":\"  keep    warm  \",\"port\":[\"5432\",\"5433\"],\"team\":\"storage\"},"
               "\"plain\":\"no namespace\","
               "\"urn:vmmigrate:1\":{\"network-critical\":\"\",\"role\":\"db\",\"tier\":\"gold\","
               "\"zone\":[\"a\",\"b\"]}}");

    json_t *ifs = GET(d, "interfaces");
    CHECK_INT(json_array_size(ifs), ==, 2);
    CHECK_JSON(AT(ifs, 0),
               "{\"mac\":\"52:54:00:6d:90:02\",\"model\":\"virtio\","
               "\"source\":{\"dev\":\"eth0\",\"mode\":\"vepa\"},\"target\":\"macvtap0\","
               "\"type\":\"direct\",\"virtualport\":{\"parameters\":{"
               "\"instanceid\":\"09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f\",\"managerid\":\"11\","
               "\"typeid\":\"1193047\",\"typeidversion\":\"2\"},\"type\":\"802.1Qbg\"}}");
    CHECK_JSON(AT(ifs, 1), "{\"mac\":\"52:54:00:6d:90:03\",\"model\":\"e1000e\","
                           "\"source\":{\"network\":\"default\",\"portgroup\":\"backend\"},"
                           "\"type\":\"network\"}");

    json_t *g = GET(d, "graphics");
    CHECK_INT(json_array_size(g), ==, 2);
    CHECK_JSON(AT(g, 0), "{\"autoport\":false,\"listen\":\"0.0.0.0\",\"port\":5901,"
                         "\"tls_port\":5902,\"type\":\"spice\"}");
    CHECK_JSON(AT(g, 1),
               "{\"autoport\":true,\"listen\":\"127.0.0.1\",\"port\":5903,\"type\":\"vnc\"}");

    json_t *disks = GET(d, "disks");
    CHECK_INT(json_array_size(disks), ==, 5);
    CHECK_JSON(AT(disks, 0), "{\"bus\":\"virtio\",\"cache\":\"none\",\"device\":\"disk\","
                             "\"format\":\"qcow2\",\"local\":true,\"readonly\":false,"
                             "\"shared\":false,\"source\":{\"file\":"
                             "\"/var/lib/libvirt/images/db1.qcow2\",\"index\":\"3\"},"
                             "\"target\":\"vda\",\"type\":\"file\"}");
    CHECK_JSON(AT(disks, 1), "{\"bus\":\"virtio\",\"cache\":\"writeback\",\"device\":\"disk\","
                             "\"format\":\"raw\",\"local\":false,\"readonly\":false,"
                             "\"shared\":false,\"source\":{\"hosts\":[{\"name\":"
                             "\"mon1.example.com\",\"port\":\"6789\"},{\"name\":"
                             "\"mon2.example.com\",\"port\":\"6789\"}],\"name\":"
                             "\"volumes/db1-data\",\"protocol\":\"rbd\"},\"target\":\"vdb\","
                             "\"type\":\"network\"}");
    CHECK_JSON(AT(disks, 2), "{\"bus\":\"virtio\",\"cache\":\"none\",\"device\":\"disk\","
                             "\"format\":\"raw\",\"local\":false,\"readonly\":false,"
                             "\"shared\":true,\"source\":{\"dev\":\"/dev/mapper/shared-quorum\"},"
                             "\"target\":\"vdc\",\"type\":\"block\"}");
    CHECK_JSON(AT(disks, 3), "{\"bus\":\"sata\",\"device\":\"cdrom\",\"format\":\"raw\","
                             "\"local\":true,\"readonly\":true,\"shared\":false,"
                             "\"source\":{\"file\":\"/srv/iso/tools.iso\"},\"target\":\"sda\","
                             "\"type\":\"file\"}");
    CHECK_JSON(AT(disks, 4), "{\"bus\":\"sata\",\"device\":\"cdrom\",\"local\":false,"
                             "\"readonly\":true,\"shared\":false,\"source\":{},\"target\":\"sdb\","
                             "\"type\":\"file\"}");

    /* The documented key order (jansson keeps insertion order). */
    char *s = json_dumps(d, JSON_COMPACT);
    const char *order[] = {"\"name\"",
                           "\"uuid\"",
                           "\"type\"",
                           "\"memory_bytes\"",
                           "\"current_memory_bytes\"",
                           "\"vcpus\"",
                           "\"current_vcpus\"",
                           "\"metadata\"",
                           "\"tags\"",
                           "\"interfaces\"",
                           "\"graphics\"",
                           "\"disks\""};
    const char *prev = s;
    for (size_t i = 0; i < VM_ARRAY_LEN(order); i++) {
        const char *p = strstr(s, order[i]);
        CHECK(p != NULL && p >= prev);
        prev = p;
    }
    free(s);
    json_decref(d);
}

static void test_fixture_ovs(void)
{
    json_t *d = parse_fixture("qemu-ovs-vnc.xml");

    CHECK_STR(json_string_value(GET(d, "type")), "qemu");
    CHECK_INT(json_integer_value(GET(d, "memory_bytes")), ==, 2147483648LL);
    CHECK_INT(json_integer_value(GET(d, "current_memory_bytes")), ==, 1073741824LL);
    CHECK_INT(json_integer_value(GET(d, "vcpus")), ==, 2);
    CHECK_INT(json_integer_value(GET(d, "current_vcpus")), ==, 2);
    CHECK_JSON(GET(d, "tags"), "{}");
    /* Prefixes dropped, attributes as "@", nesting kept. */
    CHECK_JSON(GET(d, "metadata"),
               "{\"http://openstack.org/xmlns/libvirt/nova/1.1\":{\"flavor\":{\"@name\":"
               "\"m1.small\",\"memory\":\"2048\",\"vcpus\":\"2\"},\"name\":\"web-03\","
               "\"package\":{\"@version\":\"27.1.0\"}}}");
    json_t *ifs = GET(d, "interfaces");
    CHECK_JSON(AT(ifs, 0), "{\"mac\":\"fa:16:3e:11:22:33\",\"model\":\"virtio\","
                           "\"source\":{\"bridge\":\"br-int\"},\"target\":\"tap4a1e6b8c-6a\","
                           "\"type\":\"bridge\",\"virtualport\":{\"parameters\":{\"interfaceid\":"
                           "\"4a1e6b8c-6a3d-4d8b-9a5e-4f6b0c1d2e3f\",\"profileid\":\"menial\"},"
                           "\"type\":\"openvswitch\"}}");
    /* A virtualport without a type (resolved by the network). */
    CHECK_JSON(AT(ifs, 1), "{\"source\":{\"network\":\"ovs-net\"},\"type\":\"network\","
                           "\"virtualport\":{\"parameters\":{\"interfaceid\":"
                           "\"7f000001-0000-4000-8000-000000000001\"}}}");
    /* listen type='network' has no address: no "listen". */
    CHECK_JSON(GET(d, "graphics"), "[{\"autoport\":true,\"port\":-1,\"type\":\"vnc\"}]");
    json_t *disks = GET(d, "disks");
    CHECK_JSON(AT(disks, 0), "{\"bus\":\"virtio\",\"device\":\"disk\",\"format\":\"qcow2\","
                             "\"local\":false,\"readonly\":false,\"shared\":false,"
                             "\"source\":{\"pool\":\"default\",\"volume\":\"web-03.qcow2\"},"
                             "\"target\":\"vda\",\"type\":\"volume\"}");
    CHECK_JSON(AT(disks, 1), "{\"device\":\"disk\",\"local\":true,\"readonly\":false,"
                             "\"shared\":false,\"source\":{\"dir\":\"/srv/share\"},"
                             "\"target\":\"hda\",\"type\":\"dir\"}");
    json_decref(d);
}

static void test_fixture_minimal(void)
{
    json_t *d = parse_fixture("qemu-minimal.xml");

    CHECK_JSON(d, "{\"current_memory_bytes\":536870912,\"current_vcpus\":1,\"disks\":[],"
                  "\"graphics\":[],\"interfaces\":[],\"memory_bytes\":536870912,\"metadata\":{},"
                  "\"name\":\"tiny\",\"tags\":{},\"type\":\"qemu\","
                  "\"uuid\":\"00000000-0000-4000-8000-000000000042\",\"vcpus\":1}");
    json_decref(d);

    d = parse_fixture("test-driver-default.xml");
    CHECK_STR(json_string_value(GET(d, "type")), "test");
    CHECK_INT(json_integer_value(GET(d, "memory_bytes")), ==, 8LL << 30);
    CHECK_INT(json_integer_value(GET(d, "current_memory_bytes")), ==, 2LL << 30);
    json_decref(d);
}

/* ---- memory units ------------------------------------------------------------ */

static void test_memory_units(void)
{
    static const struct {
        const char *memory;
        long long bytes;
    } ok[] = {
        {"<memory>1</memory>", 1024},
        {"<memory unit=''>1</memory>", 1024},
        {"<memory unit='b'>1</memory>", 1},
        {"<memory unit='bytes'>4097</memory>", 4097},
        {"<memory unit='B'>7</memory>", 7},
        {"<memory unit='k'>1</memory>", 1024},
        {"<memory unit='KiB'>3</memory>", 3072},
        {"<memory unit='KB'>3</memory>", 3000},
        {"<memory unit='kib'>1</memory>", 1024},
        {"<memory unit='M'>1</memory>", 1LL << 20},
        {"<memory unit='MiB'>512</memory>", 512LL << 20},
        {"<memory unit='MB'>512</memory>", 512000000LL},
        {"<memory unit='G'>2</memory>", 2LL << 30},
        {"<memory unit='GiB'>2</memory>", 2LL << 30},
        {"<memory unit='GB'>2</memory>", 2000000000LL},
        {"<memory unit='TiB'>1</memory>", 1LL << 40},
        {"<memory unit='TB'>1</memory>", 1000000000000LL},
        {"<memory unit='PiB'>1</memory>", 1LL << 50},
        {"<memory unit='EiB'>7</memory>", 7LL << 60},
        {"<memory unit='EB'>9</memory>", 9000000000000000000LL},
        {"<memory unit='KiB'> 16 </memory>", 16384},
        {"<memory unit='KiB'>\n  0\n</memory>", 0},
    };
    for (size_t i = 0; i < VM_ARRAY_LEN(ok); i++) {
        char *xml = domain_with(ok[i].memory, NULL);
        json_t *d = parse_ok(xml);
        if (json_integer_value(GET(d, "memory_bytes")) != ok[i].bytes)
            CHECK_FAIL("%s: %lld bytes, expected %lld", ok[i].memory,
                       (long long)json_integer_value(GET(d, "memory_bytes")), ok[i].bytes);
        json_decref(d);
        free(xml);
    }

    static const struct {
        const char *memory, *needle;
    } bad[] = {
        {"<memory unit='XiB'>1</memory>", "<memory> has an unknown unit 'XiB'"},
        {"<memory unit='KiBB'>1</memory>", "unknown unit 'KiBB'"},
        {"<memory unit='kilo'>1</memory>", "unknown unit 'kilo'"},
        {"<memory>-1</memory>", "<memory> value '-1' is not a non-negative integer"},
        {"<memory>12x</memory>", "value '12x'"},
        {"<memory>1 2</memory>", "value '1 2'"},
        {"<memory></memory>", "value ''"},
        {"<memory>0x10</memory>", "value '0x10'"},
        {"<memory unit='EiB'>8</memory>", "<memory> value 8 EiB is too large"},
        {"<memory>18446744073709551616</memory>", "is not a non-negative integer"},
        {"<memory>9007199254740992</memory>", "too large"},
        {"<memory>1</memory><currentMemory unit='parsec'>1</currentMemory>",
         "<currentMemory> has an unknown unit 'parsec'"},
    };
    for (size_t i = 0; i < VM_ARRAY_LEN(bad); i++) {
        char *xml = domain_with(bad[i].memory, NULL);
        CHECK_PARSE_ERR(xml, bad[i].needle);
        free(xml);
    }
}

/* ---- metadata and tags ---------------------------------------------------------- */

static json_t *meta_of(const char *metadata, json_t **tags)
{
    char *xml = domain_with(NULL, metadata);
    json_t *d = parse_ok(xml), *m = json_incref(GET(d, "metadata"));

    *tags = json_incref(GET(d, "tags"));
    json_decref(d);
    free(xml);
    return m;
}

static void test_metadata_rules(void)
{
    json_t *m, *t;

    /* Two children with one namespace: an array; text with attributes and
     * children: "#text", trimmed; CDATA is text; comments and PIs ignored;
     * an element with only an attribute. */
    m = meta_of("<metadata>"
                "<a:x xmlns:a='urn:a'>one</a:x>"
                "<b:y xmlns:b='urn:a'><k>v</k></b:y>"
                "<mixed xmlns='urn:m' id='7'>  head <c>1</c> tail <?pi x?><!-- c --></mixed>"
                "<cd><![CDATA[<not a tag> & stuff]]></cd>"
                "<empty/><attr only='yes'/>"
                "</metadata>",
                &t);
    CHECK_JSON(m, "{\"attr\":{\"@only\":\"yes\"},\"cd\":\"<not a tag> & stuff\",\"empty\":\"\","
                  "\"urn:a\":[\"one\",{\"k\":\"v\"}],"
                  "\"urn:m\":{\"#text\":\"head  tail\",\"@id\":\"7\",\"c\":\"1\"}}");
    CHECK_JSON(t, "{}");
    json_decref(m);
    json_decref(t);

    /* Tags: any prefix, default namespace too; two <tags> elements merge;
     * a structured tag converts like metadata; the tags element's own
     * attributes stay out of "tags"; text is verbatim. */
    m = meta_of("<metadata>"
                "<tags xmlns='urn:vmmigrate:1' version='1'><role>db</role><rack id='r1'/></tags>"
                "<q:tags xmlns:q='urn:vmmigrate:1'><role>cache</role><owner> Ann </owner></q:tags>"
                "<v:other xmlns:v='urn:vmmigrate:1'><role>ignored</role></v:other>"
                "<tags xmlns='urn:vmmigrate:2'><role>ignored</role></tags>"
                "<tags><role>ignored too</role></tags>"
                "</metadata>",
                &t);
    CHECK_JSON(t, "{\"owner\":\" Ann \",\"rack\":{\"@id\":\"r1\"},\"role\":[\"db\",\"cache\"]}");
    CHECK_JSON(GET(m, "urn:vmmigrate:1"),
               "[{\"@version\":\"1\",\"rack\":{\"@id\":\"r1\"},\"role\":\"db\"},"
               "{\"owner\":\" Ann \",\"role\":\"cache\"},{\"role\":\"ignored\"}]");
    CHECK_JSON(GET(m, "tags"), "{\"role\":\"ignored too\"}");
    json_decref(m);
    json_decref(t);

    /* Entities: the predefined ones and character references only. */
    m = meta_of("<metadata><e>&lt;&amp;&gt;&quot;&apos;&#x41;&#66;</e><u>h\xc3\xa9</u>"
                "<sp> </sp><nl>\n</nl></metadata>",
                &t);
    /* Whitespace-only text is kept verbatim too. */
    CHECK_JSON(m, "{\"e\":\"<&>\\\"'AB\",\"nl\":\"\\n\",\"sp\":\" \",\"u\":\"h\xc3\xa9\"}");
    json_decref(m);
    json_decref(t);

    /* XInclude is data, never processed. */
    m = meta_of("<metadata><xi:include xmlns:xi='http://www.w3.org/2001/XInclude' "
                "href='/etc/passwd' parse='text'/></metadata>",
                &t);
    CHECK_JSON(m, "{\"http://www.w3.org/2001/XInclude\":{\"@href\":\"/etc/passwd\","
                  "\"@parse\":\"text\"}}");
    json_decref(m);
    json_decref(t);

    /* No <metadata>, an empty one. */
    m = meta_of("<metadata/>", &t);
    CHECK_JSON(m, "{}");
    json_decref(m);
    json_decref(t);

    /* Depth: VM_INV_MAX_META_DEPTH levels below <metadata> pass, one more
     * fails. */
    for (int depth = VM_INV_MAX_META_DEPTH; depth <= VM_INV_MAX_META_DEPTH + 1; depth++) {
        size_t cap = (size_t)depth * 8 + 64, len = 0;
        char *inner = xmalloc(cap);
        len += (size_t)snprintf(inner + len, cap - len, "<metadata>");
        for (int i = 0; i < depth; i++)
            len += (size_t)snprintf(inner + len, cap - len, "<n>");
        for (int i = 0; i < depth; i++)
            len += (size_t)snprintf(inner + len, cap - len, "</n>");
        snprintf(inner + len, cap - len, "</metadata>");
        char *xml = domain_with(NULL, inner);
        if (depth == VM_INV_MAX_META_DEPTH) {
            json_decref(parse_ok(xml));
        } else {
            CHECK_PARSE_ERR(xml, "<metadata> is nested deeper than 32 elements");
        }
        free(xml);
        free(inner);
    }
}

/* ---- the domain's own fields ------------------------------------------------------ */

static void test_domain_fields(void)
{
    static const struct {
        const char *xml, *needle;
    } bad[] = {
        {"<node/>", "root element is <node>, not <domain>"},
        {"<x:domain xmlns:x='urn:x' type='kvm'/>", "not <domain>"},
        {"<domain><name>a</name><uuid>u</uuid><memory>1</memory></domain>", "<domain> has no type"},
        {"<domain type='kvm'><uuid>u</uuid><memory>1</memory></domain>", "has no <name>"},
        {"<domain type='kvm'><name></name><uuid>u</uuid><memory>1</memory></domain>",
         "has no <name>"},
        {"<domain type='kvm'><name>a</name><memory>1</memory></domain>", "has no <uuid>"},
        {"<domain type='kvm'><name>a</name><uuid>u</uuid></domain>", "has no <memory>"},
        {"<domain type='kvm'><name>a</name><uuid>u</uuid><memory>1</memory><vcpu>two</vcpu>"
         "</domain>",
         "<vcpu> value 'two' is not a vCPU count"},
        {"<domain type='kvm'><name>a</name><uuid>u</uuid><memory>1</memory>"
         "<vcpu>99999999999</vcpu></domain>",
         "is not a vCPU count"},
        {"<domain type='kvm'><name>a</name><uuid>u</uuid><memory>1</memory>"
         "<vcpu current='3'>2</vcpu></domain>",
         "<vcpu current='3'> is not a count up to 2"},
        {"<domain type='kvm'><name>a</name><uuid>u</uuid><memory>1</memory><devices>"
         "<graphics port='1'/></devices></domain>",
         "<graphics> has no type"},
        {"<domain type='kvm'><name>a</name><uuid>u</uuid><memory>1</memory><devices>"
         "<graphics type='vnc' port='59x'/></devices></domain>",
         "<graphics port='59x'> is not an integer"},
        {"<domain type='kvm'><name>a</name><uuid>u</uuid><memory>1</memory><devices>"
         "<graphics type='vnc' tlsPort='99999999999999999999'/></devices></domain>",
         "<graphics tlsPort='99999999999999999999'> is not an integer"},
    };
    for (size_t i = 0; i < VM_ARRAY_LEN(bad); i++)
        CHECK_PARSE_ERR(bad[i].xml, bad[i].needle);

    /* libvirt's defaults; the first of a repeated element wins. */
    json_t *d = parse_ok("<domain type='test'><name>a</name><name>b</name><uuid>u</uuid>"
                         "<memory>1</memory><memory>2</memory><devices>"
                         "<interface/><disk><source file='/f'/></disk>"
                         "<disk type='nvme' device='disk'><source type='pci' managed='yes' "
                         "namespace='1'><address domain='0' bus='1' slot='0' function='0'/>"
                         "</source></disk><disk type='block'><source dev=''/></disk>"
                         "<disk type='file'><source file='/a'/><source file='/b'/></disk>"
                         "<graphics type='rdp' autoport='no' port=' 3389 '/>"
                         "<hostdev/></devices></domain>");
    CHECK_STR(json_string_value(GET(d, "name")), "a");
    CHECK_INT(json_integer_value(GET(d, "memory_bytes")), ==, 1024);
    CHECK_JSON(GET(d, "interfaces"), "[{\"type\":\"user\"}]");
    CHECK_JSON(GET(d, "graphics"), "[{\"autoport\":false,\"port\":3389,\"type\":\"rdp\"}]");
    json_t *disks = GET(d, "disks");
    CHECK_JSON(AT(disks, 0), "{\"device\":\"disk\",\"local\":true,\"readonly\":false,"
                             "\"shared\":false,\"source\":{\"file\":\"/f\"},\"type\":\"file\"}");
    CHECK(json_is_false(GET(AT(disks, 1), "local")));
    CHECK_JSON(GET(AT(disks, 1), "source"),
               "{\"managed\":\"yes\",\"namespace\":\"1\",\"type\":\"pci\"}");
    CHECK(json_is_false(GET(AT(disks, 2), "local"))); /* empty path */
    CHECK_JSON(GET(AT(disks, 3), "source"), "{\"file\":\"/a\"}");
    json_decref(d);
}

/* ---- hostile and malformed input --------------------------------------------------- */

static void test_hostile(void)
{
    struct quiet q;
    static const char laughs[] =
        "<?xml version='1.0'?>\n<!DOCTYPE domain [\n"
        " <!ENTITY a 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'>\n"
        " <!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;'>\n"
        " <!ENTITY c '&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;'>\n"
        " <!ENTITY d '&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;'>\n"
        " <!ENTITY e '&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;'>\n"
        " <!ENTITY f '&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;'>\n"
        " <!ENTITY g '&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;'>\n"
        " <!ENTITY h '&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;'>\n"
        "]>\n<domain type='kvm'><name>&h;</name><uuid>u</uuid><memory>1</memory>"
        "<metadata><m>&h;&h;&h;&h;</m></metadata></domain>";
    static const char *const doctypes[] = {
        laughs,
        /* External entity. */
        "<?xml version='1.0'?><!DOCTYPE domain [<!ENTITY x SYSTEM 'file:///etc/passwd'>]>"
        "<domain type='kvm'><name>&x;</name><uuid>u</uuid><memory>1</memory></domain>",
        /* External DTD over the network, parameter entities. */
        "<!DOCTYPE domain SYSTEM 'http://127.0.0.1:9/evil.dtd'>"
        "<domain type='kvm'><name>a</name><uuid>u</uuid><memory>1</memory></domain>",
        "<!DOCTYPE domain [<!ENTITY % p SYSTEM 'file:///etc/shadow'> %p;]>"
        "<domain type='kvm'><name>a</name><uuid>u</uuid><memory>1</memory></domain>",
        /* Even an empty, harmless one. */
        "<!DOCTYPE domain><domain type='kvm'><name>a</name><uuid>u</uuid><memory>1</memory>"
        "</domain>",
    };
    static const struct {
        const char *xml, *needle;
    } garbage[] = {
        {"", "domain XML is empty"},
        {"hello", "not well-formed: line 1: Start tag expected"},
        {"{\"name\": \"db1\"}", "not well-formed"},
        {"<domain", "not well-formed"},
        {"<domain type='kvm'><name>a</name>", "not well-formed"},
        {"<domain type='kvm'></domian>", "Opening and ending tag mismatch"},
        {"<domain type='kvm' type='qemu'/>", "Attribute type redefined"},
        {"<domain type='kvm'/><domain type='kvm'/>", "Extra content at the end"},
        {"<domain type='kvm'><name>\xff\xfe</name></domain>", "not well-formed"},
        {"<domain type='kvm'><name>&undefined;</name></domain>", "Entity 'undefined' not defined"},
        {"<?xml version='1.0' encoding='UTF-16'?><domain/>", "not well-formed"},
        {"<?xml version='1.0' encoding='x-no-such-charset'?><domain/>", "not well-formed"},
        {"\xef\xbb\xbf", "not well-formed"},
        {"<!-- only a comment -->", "not well-formed"},
        {"<a:domain type='kvm'/>", "not <domain>"},
    };

    quiet_begin(&q);
    for (size_t i = 0; i < VM_ARRAY_LEN(doctypes); i++) {
        double t0 = now_s();
        CHECK_PARSE_ERR(doctypes[i], "has a <!DOCTYPE>: DTDs and entities are not accepted");
        CHECK(now_s() - t0 < 1.0); /* refused before any expansion */
    }
    for (size_t i = 0; i < VM_ARRAY_LEN(garbage); i++)
        CHECK_PARSE_ERR(garbage[i].xml, garbage[i].needle);
    CHECK_PARSE_ERR(NULL, "no domain XML");

    /* Size: exactly VM_INV_MAX_XML passes, one byte more fails (before
     * parsing). */
    {
        char *head = domain_with(NULL, "<metadata><pad>");
        const char *tail = "</pad></metadata></domain>";
        size_t hl = strlen(head), tl = strlen(tail), n = VM_INV_MAX_XML;
        char *big = xmalloc(n + 2);
        memcpy(big, head, hl);
        /* Strip the "</domain>" that domain_with closed with. */
        hl -= strlen("</domain>");
        memcpy(big, head, hl);
        memset(big + hl, 'p', n - hl - tl);
        memcpy(big + n - tl, tail, tl);
        big[n] = '\0';
        json_t *d = parse_ok(big);
        CHECK_INT(json_string_length(GET(GET(d, "metadata"), "pad")), ==, n - hl - tl);
        json_decref(d);
        memmove(big + n - tl + 1, big + n - tl, tl + 1);
        big[n - tl] = 'p';
        CHECK_INT(strlen(big), ==, n + 1);
        CHECK_PARSE_ERR(big, "domain XML is larger than 4194304 bytes");
        free(big);
        free(head);
    }

    /* Depth: libxml2's own limit (256 without XML_PARSE_HUGE) stops it. */
    {
        size_t levels = 100000, cap = levels * 7 + 256;
        char *deep = xmalloc(cap), *p = deep;
        p += sprintf(p, "<domain type='kvm'><name>a</name><uuid>u</uuid><memory>1</memory>"
                        "<metadata>");
        for (size_t i = 0; i < levels; i++)
            p += sprintf(p, "<n>");
        for (size_t i = 0; i < levels; i++)
            p += sprintf(p, "</n>");
        sprintf(p, "</metadata></domain>");
        CHECK_PARSE_ERR(deep, "Excessive depth in document: 256");
        free(deep);
    }

    /* Many attributes and siblings within the size cap: bounded work. */
    {
        size_t n = 50000, cap = n * 24 + 256;
        char *wide = xmalloc(cap), *p = wide;
        p += sprintf(p, "<domain type='kvm'><name>a</name><uuid>u</uuid><memory>1</memory>"
                        "<metadata><w>");
        for (size_t i = 0; i < n; i++)
            p += sprintf(p, "<k>%zu</k>", i);
        sprintf(p, "</w></metadata></domain>");
        double t0 = now_s();
        json_t *d = parse_ok(wide);
        CHECK_INT(json_array_size(GET(GET(GET(d, "metadata"), "w"), "k")), ==, n);
        CHECK(now_s() - t0 < 5.0);
        json_decref(d);
        free(wide);
    }
    quiet_end(&q);
}

/* ---- capabilities ------------------------------------------------------------------ */

static void test_caps(void)
{
    struct vm_virt_err err = {0};
    char *path = fixture_path("caps-qemu.xml"), *xml = read_file(path);
    json_t *c = vm_inv_caps_from_xml(xml, &err);

    CHECK(c != NULL);
    CHECK_JSON(c, "{\"arch\":\"x86_64\",\"host_uuid\":\"44454c4c-3400-105a-8033-b3c04f4b344a\","
                  "\"migration\":{\"live\":true,\"transports\":[\"tcp\",\"rdma\"]}}");
    json_decref(c);
    free(xml);
    free(path);

    /* Nothing optional present; whitespace around values trimmed. */
    c = vm_inv_caps_from_xml("<capabilities><host><cpu><arch>\n aarch64 \n</arch></cpu>"
                             "<migration_features><uri_transports/></migration_features>"
                             "</host></capabilities>",
                             &err);
    CHECK(c != NULL);
    CHECK_JSON(c, "{\"arch\":\"aarch64\",\"host_uuid\":null,"
                  "\"migration\":{\"live\":false,\"transports\":[]}}");
    json_decref(c);

    static const struct {
        const char *xml, *needle;
    } bad[] = {
        {"<capabilities/>", "capabilities XML: no <host>"},
        {"<domain type='kvm'/>", "capabilities XML: root element is not <capabilities>"},
        {"<c:capabilities xmlns:c='urn:c'><host/></c:capabilities>", "root element is not"},
        {"<!DOCTYPE capabilities [<!ENTITY x SYSTEM 'file:///etc/passwd'>]>"
         "<capabilities><host><uuid>&x;</uuid></host></capabilities>",
         "capabilities XML has a <!DOCTYPE>"},
        {"<capabilities><host>", "capabilities XML is not well-formed"},
        {"", "capabilities XML is empty"},
    };
    for (size_t i = 0; i < VM_ARRAY_LEN(bad); i++) {
        CHECK(vm_inv_caps_from_xml(bad[i].xml, &err) == NULL);
        CHECK_INT(err.code, ==, VIR_ERR_XML_ERROR);
        CHECK_CONTAINS(err.message, bad[i].needle);
        vm_virt_err_clear(&err);
    }
}

/* ---- libvirt's test driver ------------------------------------------------------------ */

static virConnectPtr open_conn(const char *uri)
{
    virConnectPtr c = virConnectOpen(uri);
    if (!c) {
        struct vm_virt_err e = {0};
        vm_virt_err_capture(&e);
        CHECK_FAIL("virConnectOpen(%s): %s", uri, e.message);
    }
    return c;
}

static json_t *host_ok(virConnectPtr c, const char *uri)
{
    struct vm_virt_err err = {0};
    json_t *h = vm_inv_host(c, uri, &err);
    if (!h)
        CHECK_FAIL("vm_inv_host(%s): %s", uri ? uri : "NULL", err.message);
    return h;
}

static json_t *domains_ok(virConnectPtr c, unsigned flags)
{
    struct vm_virt_err err = {0};
    json_t *a = vm_inv_domains(c, flags, &err);
    if (!a)
        CHECK_FAIL("vm_inv_domains(%#x): %s", flags, err.message);
    CHECK(json_is_array(a));
    return a;
}

static void test_default_driver(void)
{
    virConnectPtr c = open_conn("test:///default");
    json_t *h = host_ok(c, NULL), *doms;

    CHECK_STR(json_string_value(GET(h, "uri")), "test:///default");
    CHECK(json_string_length(GET(h, "hostname")) > 0);
    CHECK(json_is_null(GET(h, "host_uuid"))); /* the test driver's capabilities have none */
    CHECK_STR(json_string_value(GET(h, "arch")), "i686");
    CHECK_INT(json_integer_value(GET(h, "cpus")), ==, 16);
    CHECK_INT(json_integer_value(GET(h, "memory_bytes")), ==, 3145728LL * 1024);
    /* virNodeGetFreeMemory's answer (the driver's cells: 1 + 2 MiB; its
     * virNodeGetCellsFreeMemory says 2 + 4 MiB). */
    CHECK_INT(json_integer_value(GET(h, "free_memory_bytes")), ==, 3LL << 20);
    CHECK_INT(json_integer_value(GET(h, "running_vms")), ==, 1);
    CHECK_INT(json_integer_value(GET(h, "reserved_memory_bytes")), ==, 2LL << 30);
    CHECK_JSON(GET(h, "migration"), "{\"live\":null,\"transports\":[]}");
    /* Key order as documented. */
    char *s = json_dumps(h, JSON_COMPACT);
    CHECK(strstr(s, "{\"uri\":") == s);
    CHECK(strstr(s, "\"migration\":") > strstr(s, "\"reserved_memory_bytes\":"));
    free(s);
    json_decref(h);

    h = host_ok(c, "label-given");
    CHECK_STR(json_string_value(GET(h, "uri")), "label-given");
    json_decref(h);

    doms = domains_ok(c, 0);
    CHECK_INT(json_array_size(doms), ==, 1);
    json_t *d = AT(doms, 0);
    CHECK_STR(json_string_value(GET(d, "name")), "test");
    CHECK_STR(json_string_value(GET(d, "state")), "running");
    CHECK(json_is_true(GET(d, "active")));
    CHECK(json_is_true(GET(d, "persistent")));
    CHECK_INT(json_integer_value(GET(d, "memory_bytes")), ==, 8LL << 30);
    CHECK_INT(json_integer_value(GET(d, "current_memory_bytes")), ==, 2LL << 30);
    CHECK_JSON(GET(d, "disks"), "[{\"bus\":\"virtio\",\"device\":\"disk\",\"local\":true,"
                                "\"readonly\":false,\"shared\":false,\"source\":{\"file\":"
                                "\"/guest/diskimage1\"},\"target\":\"vda\",\"type\":\"file\"}]");
    CHECK_JSON(GET(d, "interfaces"),
               "[{\"mac\":\"aa:bb:cc:dd:ee:ff\",\"source\":{\"network\":\"default\"},"
               "\"target\":\"testnet0\",\"type\":\"network\"}]");
    json_decref(doms);

    /* Our fixture matches what the driver gives. */
    json_t *f = parse_fixture("test-driver-default.xml");
    doms = domains_ok(c, VM_INV_PER_DOMAIN_STATE);
    d = AT(doms, 0);
    json_object_del(d, "state");
    json_object_del(d, "active");
    json_object_del(d, "persistent");
    CHECK(json_equal(d, f));
    json_decref(f);
    json_decref(doms);
    virConnectClose(c);
}

static char *node_uri(void)
{
    return xasprintf("test://%s/tests/inventory/node.xml", src_dir());
}

static void test_node_file(void)
{
    char *uri = node_uri();
    virConnectPtr c = open_conn(uri);
    json_t *h = host_ok(c, uri), *doms, *d;

    CHECK_STR(json_string_value(GET(h, "uri")), uri);
    CHECK_INT(json_integer_value(GET(h, "cpus")), ==, 64);
    CHECK_INT(json_integer_value(GET(h, "memory_bytes")), ==, 64LL << 30);
    /* A custom test:/// node has no NUMA cells, so no free-memory figure:
     * memory less the running domains' (below). */
    CHECK_INT(json_integer_value(GET(h, "free_memory_bytes")), ==,
              (64LL << 30) - (5LL << 30) - (512LL << 20));
    /* alpha (running, 3 GiB current), beta (paused, 2 GiB), delta (running,
     * 512 MiB); gamma is shut off. */
    CHECK_INT(json_integer_value(GET(h, "running_vms")), ==, 3);
    CHECK_INT(json_integer_value(GET(h, "reserved_memory_bytes")), ==, (5LL << 30) + (512LL << 20));
    json_decref(h);

    doms = domains_ok(c, 0);
    CHECK_INT(json_array_size(doms), ==, 4);
    static const char *const want[][4] = {
        {"alpha", "running", "true", "true"},
        {"beta", "paused", "true", "true"},
        {"delta", "running", "true", "false"},
        {"gamma", "shutoff", "false", "true"},
    };
    for (size_t i = 0; i < 4; i++) {
        d = AT(doms, i);
        CHECK_STR(json_string_value(GET(d, "name")), want[i][0]);
        CHECK_STR(json_string_value(GET(d, "state")), want[i][1]);
        CHECK_STR(json_is_true(GET(d, "active")) ? "true" : "false", want[i][2]);
        CHECK_STR(json_is_true(GET(d, "persistent")) ? "true" : "false", want[i][3]);
    }
    d = AT(doms, 0);
    CHECK_JSON(GET(d, "tags"), "{\"network-critical\":\"\",\"role\":\"db\",\"tier\":\"gold\"}");
    CHECK_STR(json_string_value(GET(GET(AT(GET(d, "interfaces"), 0), "virtualport"), "type")),
              "802.1Qbg");
    CHECK_INT(json_integer_value(GET(d, "current_memory_bytes")), ==, 3LL << 30);
    d = AT(doms, 1);
    CHECK_JSON(GET(d, "graphics"), "[{\"autoport\":false,\"listen\":\"0.0.0.0\",\"port\":5900,"
                                   "\"tls_port\":5901,\"type\":\"spice\"}]");
    CHECK(json_is_false(GET(AT(GET(d, "disks"), 0), "local")));
    d = AT(doms, 2);
    CHECK_STR(json_string_value(GET(GET(AT(GET(d, "interfaces"), 0), "virtualport"), "type")),
              "openvswitch");

    /* The per-domain fallback gives the same answer. */
    json_t *slow = domains_ok(c, VM_INV_PER_DOMAIN_STATE);
    CHECK(json_equal(slow, doms));
    json_decref(slow);

    /* Filters. */
    static const struct {
        unsigned flags;
        const char *names;
    } filters[] = {
        {VIR_CONNECT_LIST_DOMAINS_ACTIVE, "alpha beta delta"},
        {VIR_CONNECT_LIST_DOMAINS_INACTIVE, "gamma"},
        {VIR_CONNECT_LIST_DOMAINS_PERSISTENT, "alpha beta gamma"},
        {VIR_CONNECT_LIST_DOMAINS_TRANSIENT, "delta"},
        {VIR_CONNECT_LIST_DOMAINS_PAUSED, "beta"},
        {VIR_CONNECT_LIST_DOMAINS_ACTIVE | VIR_CONNECT_LIST_DOMAINS_PERSISTENT, "alpha beta"},
        {VIR_CONNECT_LIST_DOMAINS_ACTIVE | VM_INV_PER_DOMAIN_STATE, "alpha beta delta"},
    };
    for (size_t i = 0; i < VM_ARRAY_LEN(filters); i++) {
        json_t *a = domains_ok(c, filters[i].flags);
        char names[256] = "";
        size_t k;
        json_t *e;
        json_array_foreach(a, k, e)
        {
            json_t *full = NULL;
            size_t j;
            json_t *x;
            snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s", k ? " " : "",
                     json_string_value(GET(e, "name")));
            /* Each entry equals the unfiltered one. */
            json_array_foreach(doms, j, x) if (json_equal(GET(x, "name"), GET(e, "name"))) full = x;
            CHECK(json_equal(full, e));
        }
        CHECK_STR(names, filters[i].names);
        json_decref(a);
    }
    json_decref(doms);

    /* A domain defined later shows up; one undefined disappears. */
    virDomainPtr dom = virDomainDefineXML(c, "<domain type='test'><name>x</name>"
                                             "<memory unit='MiB'>64</memory>"
                                             "<os><type>hvm</type></os></domain>");
    CHECK(dom != NULL);
    doms = domains_ok(c, 0);
    CHECK_INT(json_array_size(doms), ==, 5);
    CHECK_STR(json_string_value(GET(AT(doms, 4), "name")), "x");
    CHECK_STR(json_string_value(GET(AT(doms, 4), "state")), "shutoff");
    json_decref(doms);
    CHECK_INT(virDomainUndefine(dom), ==, 0);
    virDomainFree(dom);
    doms = domains_ok(c, 0);
    CHECK_INT(json_array_size(doms), ==, 4);
    json_decref(doms);

    virConnectClose(c);
    free(uri);
}

/* ---- generated hosts ------------------------------------------------------------------ */

static char *run_generator(const char *dir, int hosts, int vms, int seed)
{
    char *gen = xasprintf("%s/tests/inventory/gen_inventory.py", src_dir());
    char *cmd = xasprintf("/usr/bin/python3 %s --hosts %d --vms %d --seed %d %s > %s/stdout", gen,
                          hosts, vms, seed, dir, dir);
    int rc = system(cmd);
    CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 0);
    free(cmd);
    free(gen);
    char *out = xasprintf("%s/stdout", dir), *s = read_file(out);
    free(out);
    return s;
}

static void test_generated(void)
{
    if (access("/usr/bin/python3", X_OK) != 0)
        CHECK_FAIL("/usr/bin/python3 is required (tests/inventory/gen_inventory.py)");
    char tmpl[] = "/tmp/vmm-inv-XXXXXX", tmpl2[] = "/tmp/vmm-inv-XXXXXX";
    CHECK(mkdtemp(tmpl) != NULL);
    CHECK(mkdtemp(tmpl2) != NULL);
    char *uris = run_generator(tmpl, 3, 7, 42);
    char *uris2 = run_generator(tmpl2, 3, 7, 42);

    /* Deterministic: the same seed writes the same files. */
    for (int i = 0; i < 3; i++) {
        char *a = xasprintf("%s/host%03d.xml", tmpl, i),
             *b = xasprintf("%s/host%03d.xml", tmpl2, i);
        char *x = read_file(a), *y = read_file(b);
        CHECK_STR(x, y);
        free(x);
        free(y);
        unlink(b);
        free(a);
        free(b);
    }

    int hosts = 0, vms = 0, qbg = 0, spice = 0, tagged = 0;
    for (char *line = strtok(uris, "\n"); line; line = strtok(NULL, "\n")) {
        CHECK(strncmp(line, "test:///", 8) == 0);
        virConnectPtr c = open_conn(line);
        json_t *h = host_ok(c, line), *doms = domains_ok(c, 0), *d;
        size_t i;
        CHECK_INT(json_array_size(doms), ==, 7);
        long long reserved = 0;
        int running = 0;
        json_array_foreach(doms, i, d)
        {
            const char *st = json_string_value(GET(d, "state"));
            if (strcmp(st, "shutoff") != 0) {
                running++;
                reserved += json_integer_value(GET(d, "current_memory_bytes"));
            }
            tagged += json_object_size(GET(d, "tags")) > 0;
            json_t *x;
            size_t j;
            json_array_foreach(GET(d, "interfaces"), j, x)
            {
                json_t *vp = GET(x, "virtualport");
                qbg += vp && strcmp(json_string_value(GET(vp, "type")), "802.1Qbg") == 0;
            }
            json_array_foreach(GET(d, "graphics"), j, x)
            {
                spice += strcmp(json_string_value(GET(x, "type")), "spice") == 0;
            }
        }
        /* The host's view agrees with the domains'. */
        CHECK_INT(json_integer_value(GET(h, "running_vms")), ==, running);
        CHECK_INT(json_integer_value(GET(h, "reserved_memory_bytes")), ==, reserved);
        CHECK_INT(json_integer_value(GET(h, "free_memory_bytes")), ==,
                  json_integer_value(GET(h, "memory_bytes")) - reserved);
        vms += (int)json_array_size(doms);
        hosts++;
        json_decref(h);
        json_decref(doms);
        virConnectClose(c);
    }
    CHECK_INT(hosts, ==, 3);
    CHECK_INT(vms, ==, 21);
    CHECK(qbg > 0 && spice > 0 && tagged > 0);
    free(uris);
    free(uris2);
    char *rm = xasprintf("rm -rf %s %s", tmpl, tmpl2);
    CHECK_INT(system(rm), ==, 0);
    free(rm);
}

/* ---- threads ------------------------------------------------------------------------ */

struct thread_arg {
    char *xml[4];
    char *want[4];
    char *uri;
    char *want_doms;
    int rounds;
};

static void *thread_main(void *p)
{
    struct thread_arg *a = p;
    virConnectPtr c = open_conn(a->uri);

    for (int r = 0; r < a->rounds; r++) {
        for (int i = 0; i < 4; i++) {
            struct vm_virt_err err = {0};
            json_t *d = vm_inv_domain_from_xml(a->xml[i], &err);
            CHECK(d != NULL);
            char *s = dump(d);
            CHECK_STR(s, a->want[i]);
            free(s);
            json_decref(d);
        }
        json_t *doms = domains_ok(c, 0);
        char *s = dump(doms);
        CHECK_STR(s, a->want_doms);
        free(s);
        json_decref(doms);
        /* A bad document on one thread leaves the others alone. */
        char *m = parse_err("<domain type='kvm'><name>a</name></nomad>");
        CHECK_CONTAINS(m, "mismatch");
        free(m);
    }
    virConnectClose(c);
    return NULL;
}

static void test_threads(void)
{
    static const char *const names[] = {"kvm-qbg-spice.xml", "qemu-ovs-vnc.xml", "qemu-minimal.xml",
                                        "test-driver-default.xml"};
    struct thread_arg a = {.rounds = 50};
    pthread_t t[4];

    for (int i = 0; i < 4; i++) {
        char *path = fixture_path(names[i]);
        a.xml[i] = read_file(path);
        json_t *d = parse_fixture(names[i]);
        a.want[i] = dump(d);
        json_decref(d);
        free(path);
    }
    a.uri = node_uri();
    virConnectPtr c = open_conn(a.uri);
    json_t *doms = domains_ok(c, 0);
    a.want_doms = dump(doms);
    json_decref(doms);
    virConnectClose(c);

    for (int i = 0; i < 4; i++)
        CHECK_INT(pthread_create(&t[i], NULL, thread_main, &a), ==, 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 4; i++) {
        free(a.xml[i]);
        free(a.want[i]);
    }
    free(a.want_doms);
    free(a.uri);
}

/* ---- benchmark (not a test) --------------------------------------------------------- */

struct bench_host {
    char *uri;
    virConnectPtr c;
    json_t *host, *doms;
    char **xml;
    size_t n_xml;
};

struct bench_slice {
    struct bench_host *hosts;
    size_t from, to;
};

static void *bench_worker(void *p)
{
    struct bench_slice *s = p;

    for (size_t i = s->from; i < s->to; i++) {
        struct bench_host *h = &s->hosts[i];
        struct vm_virt_err err = {0};
        h->c = virConnectOpen(h->uri);
        CHECK(h->c != NULL);
        h->host = vm_inv_host(h->c, h->uri, &err);
        h->doms = vm_inv_domains(h->c, 0, &err);
        if (!h->host || !h->doms)
            CHECK_FAIL("%s: %s", h->uri, err.message);
        virConnectClose(h->c);
        h->c = NULL;
    }
    return NULL;
}

static int bench(const char *uris_file, int threads)
{
    char *all = read_file(uris_file);
    struct bench_host *hosts = NULL;
    size_t n = 0, vms = 0;
    double t0, t_open = 0, t_host = 0, t_doms = 0, t_close = 0, t_xmldesc = 0, t_ours = 0,
               t_libxml = 0;

    for (char *line = strtok(all, "\n"); line; line = strtok(NULL, "\n")) {
        hosts = xrealloc(hosts, (n + 1) * sizeof(*hosts));
        memset(&hosts[n], 0, sizeof(*hosts));
        hosts[n++].uri = line;
    }
    fprintf(stderr, "bench: %zu hosts\n", n);

    /* Phase by phase, one thread. */
    for (size_t i = 0; i < n; i++) {
        struct bench_host *h = &hosts[i];
        struct vm_virt_err err = {0};
        t0 = now_s();
        h->c = virConnectOpen(h->uri);
        t_open += now_s() - t0;
        CHECK(h->c != NULL);
        t0 = now_s();
        h->host = vm_inv_host(h->c, h->uri, &err);
        t_host += now_s() - t0;
        t0 = now_s();
        h->doms = vm_inv_domains(h->c, 0, &err);
        t_doms += now_s() - t0;
        if (!h->host || !h->doms)
            CHECK_FAIL("%s: %s", h->uri, err.message);
        vms += json_array_size(h->doms);

        /* The split of vm_inv_domains: libvirt formatting the XML vs. our
         * parsing (and of that, libxml2's parse alone). */
        virDomainPtr *doms = NULL;
        int nd = virConnectListAllDomains(h->c, &doms, 0);
        CHECK(nd >= 0);
        h->xml = xcalloc((size_t)nd + 1, sizeof(char *));
        h->n_xml = (size_t)nd;
        t0 = now_s();
        for (int k = 0; k < nd; k++)
            h->xml[k] = virDomainGetXMLDesc(doms[k], 0);
        t_xmldesc += now_s() - t0;
        for (int k = 0; k < nd; k++)
            virDomainFree(doms[k]);
        free(doms);
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < hosts[i].n_xml; k++) {
            struct vm_virt_err err = {0};
            t0 = now_s();
            json_t *d = vm_inv_domain_from_xml(hosts[i].xml[k], &err);
            t_ours += now_s() - t0;
            CHECK(d != NULL);
            json_decref(d);
            t0 = now_s();
            xmlDocPtr doc = xmlReadMemory(hosts[i].xml[k], (int)strlen(hosts[i].xml[k]), NULL, NULL,
                                          XML_PARSE_NONET | XML_PARSE_COMPACT | XML_PARSE_NOBLANKS);
            xmlFreeDoc(doc);
            t_libxml += now_s() - t0;
        }
    }
    t0 = now_s();
    for (size_t i = 0; i < n; i++)
        virConnectClose(hosts[i].c);
    t_close = now_s() - t0;

    fprintf(stderr,
            "bench: %zu hosts, %zu VMs, 1 thread\n"
            "  virConnectOpen (test driver parses node XML) %8.3f s\n"
            "  vm_inv_host                                   %8.3f s\n"
            "  vm_inv_domains                                %8.3f s\n"
            "    of which virDomainGetXMLDesc (libvirt)      %8.3f s\n"
            "    of which vm_inv_domain_from_xml (ours)      %8.3f s (%.1f us/VM)\n"
            "      of which libxml2 parse alone              %8.3f s\n"
            "  virConnectClose                               %8.3f s\n"
            "  inventory total (host + domains)              %8.3f s\n",
            n, vms, t_open, t_host, t_doms, t_xmldesc, t_ours, t_ours * 1e6 / (double)vms, t_libxml,
            t_close, t_host + t_doms);

    /* All phases per host on `threads` threads (the libuv pool's shape). */
    if (threads > 1) {
        for (size_t i = 0; i < n; i++) {
            json_decref(hosts[i].host);
            json_decref(hosts[i].doms);
        }
        pthread_t *t = xcalloc((size_t)threads, sizeof(*t));
        struct bench_slice *sl = xcalloc((size_t)threads, sizeof(*sl));
        t0 = now_s();
        for (int k = 0; k < threads; k++) {
            sl[k] = (struct bench_slice){hosts, n * (size_t)k / (size_t)threads,
                                         n * (size_t)(k + 1) / (size_t)threads};
            CHECK_INT(pthread_create(&t[k], NULL, bench_worker, &sl[k]), ==, 0);
        }
        for (int k = 0; k < threads; k++)
            pthread_join(t[k], NULL);
        fprintf(stderr, "bench: open+host+domains+close, %d threads: %.3f s\n", threads,
                now_s() - t0);
        free(t);
        free(sl);
    }
    for (size_t i = 0; i < n; i++) {
        json_decref(hosts[i].host);
        json_decref(hosts[i].doms);
        for (size_t k = 0; k < hosts[i].n_xml; k++)
            free(hosts[i].xml[k]);
        free(hosts[i].xml);
    }
    free(hosts);
    free(all);
    return 0;
}

static void setup(void)
{
    vm_virt_global_init();
}

static void teardown(void)
{
    xmlCleanupParser();
}

static const struct vm_test tests[] = {
    VM_TEST(test_fixture_kvm),
    VM_TEST(test_fixture_ovs),
    VM_TEST(test_fixture_minimal),
    VM_TEST(test_memory_units),
    VM_TEST(test_metadata_rules),
    VM_TEST(test_domain_fields),
    VM_TEST(test_hostile),
    VM_TEST(test_caps),
    VM_TEST(test_default_driver),
    VM_TEST(test_node_file),
    VM_TEST(test_generated),
    VM_TEST(test_threads),
    {0},
};
static const struct vm_test_suite suite = {.tests = tests, .setup = setup, .teardown = teardown};

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "--bench") == 0) {
        setup();
        return bench(argv[2], argc >= 4 ? atoi(argv[3]) : 1);
    }
    return vm_test_main(argc, argv, &suite);
}
