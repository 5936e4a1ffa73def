/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "macro.h"

/* Asks polkit, without blocking the event loop, whether the sender of a
 * method call may perform an action.
 *
 * A method handler calls bus_polkit_check() first thing:
 *   r > 0  authorized: go on;
 *   r == 0 polkit was asked; return 1 and do nothing else. When polkit
 *          answers, the same message is dispatched again (through
 *          sd_bus_enqueue_for_read()) and this time the answer is returned;
 *   r < 0  denied or failed: return r, *error says why
 *          (AccessDenied or InteractiveAuthorizationRequired).
 *
 * The subject is the caller's unique bus name; details are pairs of strings
 * (key, value, …, NULL) a polkit rule can read with action.lookup(). When the
 * caller allowed interactive authorization, polkit may ask an agent.
 *
 * A yes is remembered for 10 seconds for the same caller connection, action
 * and details; a no never is. */

#define POLKIT_ACTION_SIGN "org.smimed1.sign"
#define POLKIT_ACTION_DECRYPT "org.smimed1.decrypt"
#define POLKIT_ACTION_MANAGE_CERTIFICATES "org.smimed1.manage-certificates"
#define POLKIT_ACTION_MANAGE_KEYS "org.smimed1.manage-keys"

typedef struct PolkitRegistry PolkitRegistry;

int polkit_registry_new(PolkitRegistry **ret);
PolkitRegistry *polkit_registry_free(PolkitRegistry *registry);
DEFINE_TRIVIAL_CLEANUP_FUNC(PolkitRegistry *, polkit_registry_free);

/* For work that finds out in the middle what it needs authorization for:
 * asks polkit about the sender of message and calls callback with 1
 * (authorized) or a negative errno and *error, from the event loop. Returns
 * 1 when a recent yes for the same caller, action and details is remembered
 * (the callback is then not called), 0 when the question is on its way,
 * < 0 when polkit cannot even be asked. */
typedef void (*PolkitCallback)(int r, const sd_bus_error *error, void *userdata);

int bus_polkit_check_callback(PolkitRegistry *registry, sd_bus_message *message, const char *action,
                              const char *const *details, PolkitCallback callback, void *userdata);
/* Whether a recent yes for sender, action and details is remembered; asks
 * nothing. Safe from any thread (the only function here that is). */
bool polkit_registry_remembers(PolkitRegistry *registry, const char *sender, const char *action,
                               const char *const *details);
/* Forgets the pending callbacks for userdata (which is going away). */
void polkit_registry_cancel(PolkitRegistry *registry, void *userdata);
/* Forgets the calls of sender waiting for polkit to be dispatched again
 * (bus_polkit_check()): its client went away. Callbacks are left to their
 * owners. Returns how many. */
unsigned polkit_registry_cancel_sender(PolkitRegistry *registry, const char *sender);

int bus_polkit_check(PolkitRegistry *registry, sd_bus_message *message, const char *action,
                     const char *const *details, sd_bus_error *error);

/* bus_polkit_check() for each of addresses in turn, with the details
 * "address" (that one) and "fingerprint": > 0 only when every one is
 * authorized, 0 while polkit is asked about one (the call is dispatched
 * again with the answer, and earlier yeses are remembered meanwhile), < 0
 * at the first refusal. For a key or certificate that speaks for all of
 * its addresses. No addresses: one check with address "". */
int bus_polkit_check_addresses(PolkitRegistry *registry, sd_bus_message *message, const char *action,
                               char *const *addresses, const char *fingerprint, sd_bus_error *error);
