/* SPDX-License-Identifier: MIT */
/* inventory.h — what policies see: hosts and their VMs as plain JSON data,
 * built from libvirt.
 *
 * Owns nothing between calls: every function returns a new json_t the
 * caller owns (json_decref) or NULL with *err set (the caller clears it with
 * vm_virt_err_clear). No globals but a once-only libxml2 initialisation, so
 * the functions may run concurrently on thread-pool workers (virt.h's
 * vm_virt_task), each on its own virConnectPtr. vm_inv_host and
 * vm_inv_domains block on libvirt: call them from a task's work function
 * only. vm_inv_domain_from_xml and vm_inv_caps_from_xml do no I/O.
 *
 * Domain and capabilities XML come from hosts and are untrusted. They are
 * parsed by libxml2 with no network (XML_PARSE_NONET), no DTD loading, no
 * entity substitution; a document with a DOCTYPE at all is refused before
 * its internal subset is read (so no entity tricks), as is one larger than
 * VM_INV_MAX_XML bytes or nested deeper than libxml2's 256 levels, and
 * <metadata> is converted to at most VM_INV_MAX_META_DEPTH levels.
 *
 * ---- Host: vm_inv_host() ------------------------------------------------
 *
 *   {"uri": "qemu+ssh://a/system", "hostname": "a.example",
 *    "host_uuid": "2f5c..." | null,      capabilities <host><uuid>
 *    "arch": "x86_64" | null,             capabilities <host><cpu><arch>
 *    "cpus": 64,                          virNodeGetInfo: logical CPUs
 *    "memory_bytes": 270582939648,        virNodeGetInfo
 *    "free_memory_bytes": 201863462912,   virNodeGetFreeMemory; if the driver
 *                                         has no figure (libvirt's test driver
 *                                         on a node file): memory_bytes -
 *                                         reserved_memory_bytes (floor 0)
 *    "running_vms": 12,                   active domains (any state but shutoff)
 *    "reserved_memory_bytes": 68719476736, sum of their current memory
 *    "migration": {"live": true,          <migration_features><live/>; null when
 *                                         there is no <migration_features> (unknown)
 *                  "transports": ["tcp", "rdma"]}}   <uri_transports>
 * Cost: five calls plus one virDomainGetInfo per active domain.
 *
 * ---- Domain: vm_inv_domain_from_xml() ------------------------------------
 *
 * Every key below is always present except those marked "omitted if
 * absent", which appear only when the XML has them. A document without
 * <domain type=''>, <name>, <uuid> or <memory>, with a malformed number,
 * or a <graphics> without a type is an error; elsewhere libvirt's defaults
 * fill in (interface type "user", disk type "file", device "disk"), and
 * of repeated singletons (two <name>s) the first counts. Memory is in bytes;
 * <memory>/<currentMemory> take libvirt's units (unit='b'|'bytes'|'KB'|'k'|
 * 'KiB'|'MB'|'M'|'MiB'|...|'EiB', case-insensitive, "xB" = 1000^n, "x" and
 * "xiB" = 1024^n; default KiB).
 *
 *   {"name": "db1", "uuid": "c7a5fdbd-...", "type": "kvm",
 *    "memory_bytes": 8589934592,          <memory>
 *    "current_memory_bytes": 4294967296,  <currentMemory>, else = memory_bytes
 *    "vcpus": 4,                          <vcpu> (maximum; 1 if absent)
 *    "current_vcpus": 2,                  <vcpu current=''>, else = vcpus
 *    "metadata": {...}, "tags": {...},    see below
 *    "interfaces": [
 *      {"type": "direct",
 *       "mac": "52:54:00:...",            omitted if absent (same for all below)
 *       "source": {"dev": "eth0", "mode": "vepa"},   every <source> attribute
 *       "model": "virtio",                <model type=''>
 *       "target": "macvtap0",             <target dev=''>
 *       "virtualport": {"type": "802.1Qbg",           type omitted if absent
 *                       "parameters": {"managerid": "11", "typeid": "1193047",
 *                                      "typeidversion": "2", "instanceid": "..."}}}],
 *                                         parameters: every <parameters> attribute
 *                                         (managerid, typeid, typeidversion,
 *                                         instanceid, profileid, interfaceid)
 *    "graphics": [{"type": "spice", "port": 5901, "tls_port": 5902,
 *                  "listen": "0.0.0.0", "autoport": false}],
 *                                         port/tls_port/listen omitted if absent;
 *                                         listen = listen='' else the first
 *                                         <listen address=''>; autoport = 'yes'
 *    "disks": [{"device": "disk",         default "disk"
 *               "type": "network",        default "file"
 *               "target": "vda", "bus": "virtio",     omitted if absent
 *               "source": {"protocol": "rbd", "name": "pool/img",
 *                          "hosts": [{"name": "mon1", "port": "6789"}]},
 *                                         every <source> attribute, plus "hosts"
 *                                         (each <host>'s attributes) if any; {}
 *                                         when there is no <source>
 *               "format": "raw", "cache": "none",     <driver type/cache>, omitted if absent
 *               "shared": false,          <shareable/>
 *               "readonly": false,        <readonly/>
 *               "local": false}]}
 *
 * "local" is true when the disk's data sits on this host's file system or
 * block devices: type is "file", "block" or "dir", it has a <source> naming
 * a file/dev/dir, and it is not <shareable/>. Network disks (rbd, iscsi,
 * nbd, gluster, ...), storage pool volumes (type "volume": where they live
 * is the pool's business), nvme/vhostuser and empty drives are not local.
 * The rule reads the XML only: a file on an NFS mount is "local": true.
 *
 * Metadata. Every element child E of <metadata> becomes
 *   metadata[K] = convert(E)
 * where K is E's namespace URI, or E's name if it has no namespace.
 * convert(E):
 *   - E has no attributes and no element children: the concatenated text of
 *     E, verbatim ("" for an empty element);
 *   - otherwise an object: "@a" = value of each attribute a (local name);
 *     C = convert(child) for each element child, keyed by the child's local
 *     name (namespace prefixes dropped); a name repeated among siblings
 *     gives an array of the values in document order; "#text" = E's own
 *     text, trimmed of surrounding whitespace, if any is left.
 * Keys repeated at the top (two children with one namespace) likewise give
 * an array. Comments and processing instructions are ignored. Nesting
 * deeper than VM_INV_MAX_META_DEPTH below <metadata> is an error.
 *
 * Tags. Our own namespace is VM_INV_TAGS_NS ("urn:vmmigrate:1"): for each
 * <metadata> child <tags> in that namespace (any prefix), each element
 * child C of it sets tags[C's local name] = convert(C) (repeats give an
 * array, as above). Example:
 *   <metadata>
 *     <vmm:tags xmlns:vmm="urn:vmmigrate:1">
 *       <role>db</role><tier>gold</tier><network-critical/>
 *     </vmm:tags>
 *     <app:info xmlns:app="http://example.com/app" owner="ops"><team>x</team></app:info>
 *   </metadata>
 * gives
 *   "tags": {"role": "db", "tier": "gold", "network-critical": ""},
 *   "metadata": {"urn:vmmigrate:1": {"role": "db", "tier": "gold",
 *                                    "network-critical": ""},
 *                "http://example.com/app": {"@owner": "ops", "team": "x"}}
 * (the tags element stays in metadata too: every child is converted).
 *
 * ---- Host's domains: vm_inv_domains() ------------------------------------
 *
 * An array of the domain objects above, sorted by name, each with three
 * more keys:
 *   "state": "running"     virDomainState's name (vm_virt_state_name():
 *                          nostate running blocked paused shutdown shutoff
 *                          crashed pmsuspended)
 *   "active": true         has a process (libvirt's domain ID)
 *   "persistent": true     has a stored configuration
 * The live XML is used for active domains (actual ports and sources).
 * Cost: two listing calls (virConnectGetAllDomainStats for the states,
 * virConnectListAllDomains for the transient ones) plus one
 * virDomainGetXMLDesc per domain; a domain that vanishes mid-way is left
 * out. A domain whose XML breaks the rules above (too large, too deep,
 * not well-formed) is listed as {"name", "uuid", "state", "active",
 * "persistent", "unreadable": "what is wrong"} and nothing else: the
 * host's inventory does not fail for one bad domain. */
#ifndef VMM_INVENTORY_H
#define VMM_INVENTORY_H

#include <jansson.h>
#include <libvirt/libvirt.h>

#include "backend/libvirt/virt.h"

#define VM_INV_TAGS_NS "urn:vmmigrate:1"
#define VM_INV_MAX_XML (4u * 1024 * 1024) /* bytes of one XML document */
#define VM_INV_MAX_META_DEPTH 32          /* element levels below <metadata> */

/* The host's capacity and migration features, as above. uri is echoed
 * (NULL: the connection's own URI). NULL + *err on failure. */
json_t *vm_inv_host(virConnectPtr c, const char *uri, struct vm_virt_err *err);

/* One libvirt domain XML document as a domain object (above). NULL + *err
 * (code VIR_ERR_XML_ERROR, message naming what was wrong) on failure. */
json_t *vm_inv_domain_from_xml(const char *xml, struct vm_virt_err *err);

/* The capabilities part of a host object, from virConnectGetCapabilities'
 * XML: {"host_uuid", "arch", "migration"} as above. NULL + *err
 * (VIR_ERR_XML_ERROR) if it is not well-formed or has no <host>. */
json_t *vm_inv_caps_from_xml(const char *xml, struct vm_virt_err *err);

/* Ask for per-domain virDomainGetState instead of one
 * virConnectGetAllDomainStats (used automatically when the driver lacks
 * the latter). */
#define VM_INV_PER_DOMAIN_STATE (1u << 30)

/* Every domain of the host (active and inactive), as above. flags: 0, or
 * VIR_CONNECT_LIST_DOMAINS_* filter bits (e.g. _ACTIVE), optionally with
 * VM_INV_PER_DOMAIN_STATE. NULL + *err on failure; a domain whose XML
 * fails to parse fails the whole call (its name in the message). */
json_t *vm_inv_domains(virConnectPtr c, unsigned flags, struct vm_virt_err *err);

#endif
