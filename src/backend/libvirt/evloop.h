/* SPDX-License-Identifier: MIT */
/* evloop.h — libvirt's event loop, implemented on libuv.
 *
 * vm_evloop_register() installs handle and timeout callbacks with
 * virEventRegisterImpl() so that libvirt's sockets, keepalive and domain
 * events are served by our uv_loop_t: libvirt watches become uv_poll_t,
 * libvirt timeouts uv_timer_t. libvirt may call the add/update/remove
 * functions from any thread (thread-pool workers open connections, the
 * remote driver toggles its socket watch around every call): changes are
 * recorded under a mutex and applied on the loop thread, woken with
 * uv_async_send(). Callbacks and libvirt's free functions run on the loop
 * thread only, never inside the remove call.
 *
 * The module owns every uv handle it creates; none of them keeps the loop
 * alive (they are unreferenced). vm_evloop_shutdown() closes them all and
 * must be followed by running the loop until the close callbacks ran. */
#ifndef VMM_EVLOOP_H
#define VMM_EVLOOP_H

#include <uv.h>

/* Once per process, on the loop thread, before the first virConnectOpen.
 * Returns 0 or a negative uv error code. */
int vm_evloop_register(uv_loop_t *loop);
/* Close every handle still registered (libvirt's free callbacks still run). */
void vm_evloop_shutdown(void);

#endif
