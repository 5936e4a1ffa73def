/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

#include <systemd/sd-bus.h>

typedef struct Manager Manager;

/* A method call whose input arrives through a file descriptor: the call is
 * parked until the fd has been read to its end (on the event loop, within
 * [Policy] IOTimeoutSec=), then done
 * runs with the data and must reply. data is erased and freed after done. */

typedef void (*PendingCallDone)(Manager *m, sd_bus_message *call, const void *data, size_t size, int error,
                                void *userdata);

typedef struct PendingCall PendingCall;

int pending_call_start(Manager *m, sd_bus_message *call, int fd, size_t max_size, PendingCallDone done, void *userdata,
                       void (*free_userdata)(void *));
/* The client sender went away: done runs with -ECONNRESET for each of its
 * calls, which are then dropped. Returns how many. */
unsigned pending_calls_cancel_sender(Manager *m, const char *sender);
void pending_calls_free(Manager *m);
