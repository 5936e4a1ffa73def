/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

#include "macro.h"

/* What smimed keeps per bus client (a unique bus name), so that no client
 * can take more than its share:
 *   - its calls in flight, against [Policy] MaxCallsPerClient=, and with the
 *     other connections of its user MaxCallsPerUser=, and everyone's MaxCalls=;
 *   - the bytes of its messages spooled, against SpoolQuotaPerClient= and
 *     everyone's SpoolQuota=;
 *   - its queue of work for the event loop (GetCapabilities, lookups), served
 *     one call per client in turn, so that a flood from one client delays
 *     another's call by at most one of its own.
 * A call is named by its sender and serial, which stay the same when polkit
 * has it dispatched again. No D-Bus. */

typedef struct ClientLimits {
        unsigned max_calls_per_client;
        unsigned max_calls_per_user;
        unsigned max_calls;
        uint64_t spool_quota_per_client;
        uint64_t spool_quota;
} ClientLimits;

typedef struct ClientTable ClientTable;

int client_table_new(sd_event *event, ClientTable **ret);
ClientTable *client_table_free(ClientTable *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(ClientTable *, client_table_free);

void client_table_set_limits(ClientTable *t, const ClientLimits *limits);

/* Counts a call of sender (running as uid) from now until client_call_end().
 * Returns 1 when counted, 0 when it already was (dispatched again), -EUSERS
 * with *ret_message naming the limit when one is reached. */
int client_call_begin(ClientTable *t, const char *sender, uid_t uid, uint64_t serial, char **ret_message);
/* The call was answered (or dropped). Nothing when it was not counted or its
 * client is gone. */
void client_call_end(ClientTable *t, const char *sender, uint64_t serial);

/* How many calls sender has in flight, and everyone. */
unsigned client_calls(ClientTable *t, const char *sender);
unsigned client_table_calls(const ClientTable *t);

/* A small number that names sender's client while it is connected (0 for an
 * unknown one): the key the worker pool takes turns by. */
uint64_t client_id(ClientTable *t, const char *sender);

/* Charges bytes of spool space to sender; -EDQUOT with *ret_message naming
 * the quota when it would go over. client_spool_release() gives them back,
 * also after the client is gone. */
int client_spool_charge(ClientTable *t, const char *sender, uint64_t bytes, char **ret_message);
void client_spool_release(ClientTable *t, const char *sender, uint64_t bytes);
uint64_t client_table_spooled(const ClientTable *t);

/* The spool space one call holds: charged as its input arrives, given
 * back together when the call is freed (also after its client left). */
typedef struct ClientCharge {
        ClientTable *table;
        char *sender;
        uint64_t bytes;
        char *message;          /* why the last charge was refused */
} ClientCharge;

int client_charge_init(ClientCharge *c, ClientTable *t, const char *sender);
/* -EDQUOT with c->message naming the quota when it would go over. */
int client_charge_add(ClientCharge *c, uint64_t bytes);
void client_charge_done(ClientCharge *c);

/* Queues run(userdata) for sender's call serial, to be run from the event
 * loop in turn with other clients' work. free_userdata() runs after run(),
 * or when the client goes away first. */
typedef void (*ClientWork)(void *userdata);
int client_queue_work(ClientTable *t, const char *sender, ClientWork run, void *userdata,
                      void (*free_userdata)(void *));

/* Called before each turn with a budget of messages: reads what the bus
 * has for smimed (up to budget), so that every client whose call has
 * arrived is in line before the next turn is given. */
typedef void (*ClientBeforeTurn)(unsigned budget, void *userdata);
void client_table_set_before_turn(ClientTable *t, ClientBeforeTurn fn, void *userdata);

/* The client disconnected: its queued work is dropped, its counts leave the
 * totals. Returns how many queued items were dropped. */
unsigned client_table_forget(ClientTable *t, const char *sender);
