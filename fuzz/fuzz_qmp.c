/* SPDX-License-Identifier: MIT */
/* fuzz_qmp.c — libFuzzer harness for the QMP stream parser (src/backend/qemu/qmp.c).
 *
 * Input: byte 0 picks the maximum message size (16 .. 2056 bytes, small so
 * the oversize path is hit), byte 1 the chunking; the rest is the byte
 * stream from "QEMU". Oracles beyond the sanitizers:
 *  - feeding in chunks gives exactly the messages and result of feeding
 *    everything at once (framing does not depend on read boundaries);
 *  - the parser never buffers more than max + 1 bytes;
 *  - every classified message carries the members its type promises;
 *  - a callback asking to stop is obeyed at once. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/qemu/qmp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct trace {
    uint64_t n;
    uint64_t hash;
    uint64_t stop_at; /* 0 = never */
};

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;

    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 0x100000001b3ull;
    return h;
}

static void check_msg(const struct vm_qmp_msg *m)
{
    if (!json_is_object(m->root))
        abort();
    switch (m->type) {
    case VM_QMP_MSG_GREETING:
        if (!json_is_object(m->version) || !json_is_array(m->capabilities))
            abort();
        break;
    case VM_QMP_MSG_RETURN:
        if (!m->ret || m->ret != json_object_get(m->root, "return"))
            abort();
        break;
    case VM_QMP_MSG_ERROR:
        if (!m->err_class || !m->err_desc)
            abort();
        break;
    case VM_QMP_MSG_EVENT:
        if (!m->event || !m->event[0] || (m->data && !json_is_object(m->data)))
            abort();
        break;
    default:
        abort();
    }
    if (m->has_id && !json_is_integer(json_object_get(m->root, "id")))
        abort();
}

static int record(void *cb_data, const struct vm_qmp_msg *m)
{
    struct trace *t = cb_data;
    char *s = json_dumps(m->root, JSON_COMPACT | JSON_SORT_KEYS);

    check_msg(m);
    if (!s)
        abort();
    t->hash = fnv(t->hash, &m->type, sizeof(m->type));
    t->hash = fnv(t->hash, s, strlen(s));
    free(s);
    t->n++;
    return t->stop_at && t->n == t->stop_at ? 42 : 0;
}

static void check_bounded(const struct vm_qmp_parser *p)
{
    if (p->cap > p->max_msg + 1 || vm_qmp_parser_pending(p) > p->max_msg + 1)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vm_qmp_parser whole, chunked;
    struct trace tw = {0, 14695981039346656037ull, 0}, tc = tw;
    size_t max, maxchunk;
    bool random_chunks;
    uint32_t rng;
    int rw, rc = 0;

    if (size < 2)
        return 0;
    max = 16 + (size_t)data[0] * 8;
    maxchunk = 1 + (data[1] & 0x7f);
    random_chunks = data[1] & 0x80;
    rng = 0x9e3779b9u ^ ((uint32_t)data[0] << 8 | data[1]);
    data += 2;
    size -= 2;

    vm_qmp_parser_init(&whole, max);
    rw = vm_qmp_parser_feed(&whole, data, size, record, &tw);
    check_bounded(&whole);
    if (rw != 0 && rw != VM_QMP_E_PROTO && rw != VM_QMP_E_TOOBIG)
        abort();
    if ((rw != 0) != (vm_qmp_parser_errmsg(&whole)[0] != '\0'))
        abort();

    vm_qmp_parser_init(&chunked, max);
    for (size_t off = 0; off < size && rc == 0;) {
        size_t k = maxchunk;
        if (random_chunks) { /* sizes 1 .. maxchunk, else all maxchunk */
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            k = 1 + rng % maxchunk;
        }
        if (k > size - off)
            k = size - off;
        rc = vm_qmp_parser_feed(&chunked, data + off, k, record, &tc);
        check_bounded(&chunked);
        off += k;
    }
    if (rc != rw || tc.n != tw.n || tc.hash != tw.hash)
        abort();
    /* Sticky errors. */
    if (rc != 0 && vm_qmp_parser_feed(&chunked, "{}\n", 3, record, &tc) != rc)
        abort();
    vm_qmp_parser_fini(&whole);
    vm_qmp_parser_fini(&chunked);

    /* Stop half-way through: nothing after the stopping message. */
    if (tw.n >= 2) {
        struct vm_qmp_parser p;
        struct trace ts = {0, 0, tw.n / 2 + 1};
        vm_qmp_parser_init(&p, max);
        if (vm_qmp_parser_feed(&p, data, size, record, &ts) != 42 || ts.n != ts.stop_at)
            abort();
        vm_qmp_parser_fini(&p);
    }
    return 0;
}
