/* SPDX-License-Identifier: MIT */
/* test_vdp.c — the built-in vdp feature's pure parts (feature_vdp.c):
 * parameters from args and the domain's <virtualport>, the vdptool argv, and
 * parsing vdptool's output, which exits 0 whatever happened (outputs as
 * captured from Debian 12's lldpad against the lab's bridge). */
#include <stdlib.h>

#include "runner.h"
#include "feature/feature_vdp.h"
#include "util/util.h"

static const char ok_assoc[] = "Response from VDP\n\tmode = assoc\n\tmgrid2 = mgr1\n"
                               "\ttypeid = 1193046\n\ttypeidver = 1\n"
                               "\tuuid = 6f1b4c5e-0d1f-4e58-9a7b-2f6f5d3c1a01\n"
                               "\tfilter = 10-52:54:00:12:34:56\n";

static void test_parse(void)
{
    char *d;
    CHECK_INT(vm_vdp_parse(ok_assoc, "", "assoc", &d), ==, VM_VDP_OK);
    CHECK(!d);
    /* asked for preassoc, got assoc: not what was asked */
    CHECK_INT(vm_vdp_parse(ok_assoc, "", "preassoc", &d), ==, VM_VDP_FAILED);
    CHECK_CONTAINS(d, "unexpected vdptool output");
    free(d);
    CHECK_INT(vm_vdp_parse("Response from VDP\n\tmode = deassoc\n\tError returned by Bridge: "
                           "Insufficient resources at bridge\n",
                           "", "assoc", &d),
              ==, VM_VDP_REJECTED);
    CHECK_STR(d, "rejected by the bridge: Insufficient resources at bridge");
    free(d);
    CHECK_INT(vm_vdp_parse("Response from VDP\n\tmode = deassoc\n", "", "assoc", &d), ==,
              VM_VDP_REJECTED);
    CHECK_CONTAINS(d, "answered deassoc");
    free(d);
    CHECK_INT(vm_vdp_parse("Internal Error : Ack not received from bridge\n", "", "assoc", &d), ==,
              VM_VDP_TIMEOUT);
    free(d);
    CHECK_INT(vm_vdp_parse("", "", "assoc", &d), ==, VM_VDP_TIMEOUT);
    free(d);
    CHECK_INT(vm_vdp_parse("", "FAILED: Invalid parameters\n", "deassoc", &d), ==, VM_VDP_FAILED);
    CHECK_STR(d, "lldpad refused: Invalid parameters");
    free(d);
    CHECK_INT(vm_vdp_parse("VSI  0:\n\tmode = assoc\n", "", NULL, &d), ==, VM_VDP_OK);
    CHECK_INT(vm_vdp_parse("FAILED: VDP protocol not supported on interface\n", "", NULL, &d), ==,
              VM_VDP_FAILED);
    free(d);
}

static void test_params(void)
{
    json_t *vm = json_loads(
        "{\"uuid\":\"c7a5fdbd-0000-4000-8000-000000000001\",\"interfaces\":["
        "{\"type\":\"bridge\",\"mac\":\"52:54:00:00:00:09\"},"
        "{\"type\":\"direct\",\"mac\":\"52:54:00:00:00:01\",\"source\":{\"dev\":\"eth0\"},"
        "\"virtualport\":{\"type\":\"802.1Qbg\",\"parameters\":{\"managerid\":\"11\","
        "\"typeid\":\"1193047\",\"typeidversion\":\"2\","
        "\"instanceid\":\"a0000000-0000-4000-8000-0000000000f1\"}}}]}",
        0, NULL);
    struct vm_vdp v;
    char *why;
    json_t *args = json_pack("{s:i}", "vlan", 10);
    CHECK_INT(vm_vdp_params(vm, args, "qemu+ssh://a/system", "qemu+ssh://b/system", &v, &why), ==,
              0);
    CHECK_STR(v.mac, "52:54:00:00:00:01");
    CHECK_STR(v.mgrid, "11");
    CHECK_STR(v.typeid, "1193047");
    CHECK_STR(v.typeidver, "2");
    CHECK_STR(v.uuid, "a0000000-0000-4000-8000-0000000000f1");
    CHECK_STR(v.iface_source, "eth0");
    CHECK_STR(v.vlan, "10");
    char **a = vm_vdp_argv(&v, "assoc", 1);
    const char *want[] = {"vdptool",
                          "-i",
                          "eth0",
                          "-T",
                          "-W",
                          "-V",
                          "assoc",
                          "-c",
                          "mode=assoc",
                          "-c",
                          "mgrid2=11",
                          "-c",
                          "typeid=1193047",
                          "-c",
                          "typeidver=2",
                          "-c",
                          "uuid=a0000000-0000-4000-8000-0000000000f1",
                          "-c",
                          "hints=none",
                          "-c",
                          "filter=10-52:54:00:00:00:01",
                          NULL};
    for (int i = 0; want[i]; i++)
        CHECK_STR(a[i], want[i]);
    CHECK(!a[21]);
    vm_vdp_argv_free(a);
    vm_vdp_clear(&v);
    json_decref(args);

    /* per-host interfaces, explicit values win */
    args = json_pack("{s:{s:s, s:s}, s:s, s:s, s:s, s:s, s:s}", "interfaces", "qemu:///a", "evb-a",
                     "qemu:///b", "evb-b", "mac", "52:54:00:12:34:56", "mgrid", "mgr1", "typeid",
                     "1193046", "typeidver", "1", "uuid", "6f1b4c5e-0d1f-4e58-9a7b-2f6f5d3c1a01");
    CHECK_INT(vm_vdp_params(vm, args, "qemu:///a", "qemu:///b", &v, &why), ==, 0);
    CHECK_STR(v.iface_source, "evb-a");
    CHECK_STR(v.iface_target, "evb-b");
    CHECK_STR(v.mgrid, "mgr1");
    CHECK_STR(v.vlan, "0");
    vm_vdp_clear(&v);
    json_decref(args);

    /* nothing to go on / hostile values */
    json_t *bare = json_pack("{s:s}", "uuid", "u");
    args = json_object();
    CHECK_INT(vm_vdp_params(bare, args, "x", "y", &v, &why), ==, -1);
    CHECK_CONTAINS(why, "vdp: no mac");
    free(why);
    json_decref(args);
    args = json_pack("{s:s, s:s, s:s, s:s, s:s}", "mac", "52:54:00:00:00:01; rm -rf /", "mgrid",
                     "m", "typeid", "1", "typeidver", "1", "interface", "eth0");
    CHECK_INT(vm_vdp_params(bare, args, "x", "y", &v, &why), ==, -1);
    CHECK_CONTAINS(why, "has characters vdptool must not see");
    free(why);
    json_decref(args);
    json_decref(bare);
    json_decref(vm);
}

static const struct vm_test tests[] = {
    VM_TEST(test_parse),
    VM_TEST(test_params),
    {0},
};
static const struct vm_test_suite suite = {.tests = tests};

int main(int argc, char **argv)
{
    return vm_test_main(argc, argv, &suite);
}
