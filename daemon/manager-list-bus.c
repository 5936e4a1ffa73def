/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bus-call.h"
#include "bus-util.h"
#include "certificate-bus.h"
#include "certificate-list.h"
#include "log.h"
#include "manager-bus.h"
#include "manager-methods-bus.h"
#include "manager.h"
#include "smimed-errors.h"

/* org.smimed1.Manager.ListCertificates(a{sv} filter) →
 * (a(osassstsbbb) certificates, t total): a page of the store. The work is
 * done in the client's turns (client.c), about LIST_TURN_USEC at a time, so
 * that a status filter over a large store does not hold up other callers. */

#define LIST_TURN_USEC 250U
#define USEC_PER_SEC 1000000ULL

typedef struct ListCall {
        Manager *manager;
        BusCall *call;
        CertificateList *list;
        bool requeued; /* the next turn's work item owns it now */
} ListCall;

static void list_call_free(void *userdata) {
        ListCall *lc = userdata;

        if (lc->requeued) {
                lc->requeued = false;
                return;
        }
        certificate_list_free(lc->list);
        bus_call_free(lc->call);
        free(lc);
}

static int parse_status(const char *word, CertStatus *ret, sd_bus_error *error) {
        for (CertStatus s = 0; s < _CERT_STATUS_MAX; s++)
                if (streq(word, cert_status_to_string(s))) {
                        *ret = s;
                        return 0;
                }
        return sd_bus_error_setf(error, SMIMED_ERROR_INVALID_ARGUMENT,
                                 "Unknown status \"%s\" (expected valid, expired, not-yet-valid, revoked, untrusted, "
                                 "wrong-usage or weak).",
                                 word);
}

/* Lower-cased; white space and control characters start no address. */
static int parse_address_prefix(const char *s, char **ret, sd_bus_error *error) {
        char *p;

        for (const char *c = s; *c; c++)
                if ((unsigned char) *c <= 0x20 || *c == 0x7f)
                        return sd_bus_error_setf(error, SMIMED_ERROR_INVALID_ARGUMENT,
                                                 "\"%s\" does not start a mail address (it contains white space or "
                                                 "a control character).",
                                                 s);
        p = strdup(s);
        if (!p)
                return -ENOMEM;
        for (char *c = p; *c; c++)
                if (*c >= 'A' && *c <= 'Z')
                        *c = (char) (*c - 'A' + 'a');
        *ret = p;
        return 0;
}

static int read_query(sd_bus_message *message, CertificateListQuery *q, char **ret_prefix, sd_bus_error *error) {
        uint64_t offset = 0, expiring_before = 0;
        uint32_t limit = CERTIFICATE_LIST_DEFAULT_LIMIT;
        const char *status = NULL, *address = NULL;
        int ca = -1, r;
        BusOption filter[] = {
                {"offset", 't', &offset},   {"limit", 'u', &limit},
                {"status", 's', &status},   {"expiring-before", 't', &expiring_before},
                {"address", 's', &address}, {"ca", 'b', &ca},
        };

        r = bus_read_options(message, filter, ELEMENTSOF(filter), error);
        if (r < 0)
                return r;
        if (limit == 0 || limit > CERTIFICATE_LIST_MAX_LIMIT)
                return sd_bus_error_setf(error, SMIMED_ERROR_INVALID_ARGUMENT,
                                         "The limit must be between 1 and %u, not %u.", CERTIFICATE_LIST_MAX_LIMIT,
                                         limit);

        *q = (CertificateListQuery){
                .filter = STORE_LIST_FILTER_ALL,
                .offset = offset,
                .limit = limit,
        };
        if (status) {
                r = parse_status(status, &q->status, error);
                if (r < 0)
                        return r;
                q->by_status = true;
        }
        if (expiring_before > 0) {
                /* NotAfter (whole seconds) * 10^6 < expiring_before */
                uint64_t seconds = expiring_before / USEC_PER_SEC + (expiring_before % USEC_PER_SEC != 0);

                q->filter.expiring_before = seconds > (uint64_t) INT64_MAX ? (time_t) INT64_MAX : (time_t) seconds;
        }
        q->filter.is_ca = ca;
        if (address && address[0]) {
                r = parse_address_prefix(address, ret_prefix, error);
                if (r < 0)
                        return r;
                q->filter.address_prefix = *ret_prefix;
        }
        return 0;
}

static int reply_list(sd_bus_message *call, const CertificateList *list) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const CertificateListEntry *entries;
        uint64_t total;
        size_t n;
        int r;

        entries = certificate_list_entries(list, &n, &total);
        r = sd_bus_message_new_method_return(call, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(osassstsbbb)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                const CertificateListEntry *e = &entries[i];
                _cleanup_free_ char *path = certificate_bus_path(e->fingerprint);

                if (!path)
                        return -ENOMEM;
                r = sd_bus_message_open_container(reply, 'r', "osassstsbbb");
                if (r >= 0)
                        r = sd_bus_message_append(reply, "os", path, e->fingerprint);
                if (r >= 0)
                        r = sd_bus_message_append_strv(reply, e->addresses);
                if (r >= 0)
                        r = sd_bus_message_append(reply, "sstsbbb", e->subject, e->issuer,
                                                  e->not_after > 0 ? (uint64_t) e->not_after * USEC_PER_SEC : 0,
                                                  cert_status_to_string(e->status), e->trusted, e->is_ca,
                                                  e->has_private_key);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_message_append(reply, "t", total);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static void list_call_run(void *userdata) {
        ListCall *lc = userdata;
        sd_bus_message *call = lc->call->call;
        int r;

        r = certificate_list_step(lc->list, LIST_TURN_USEC);
        if (r == 0) {
                /* More to do: in this client's next turn, after the others'. */
                r = client_queue_work(lc->manager->clients, sd_bus_message_get_sender(call), list_call_run, lc,
                                      list_call_free);
                if (r >= 0) {
                        lc->requeued = true;
                        return;
                }
        }
        if (r > 0)
                r = reply_list(call, lc->list);
        if (r < 0) {
                r = bus_reply_manager_error(call, r, NULL);
                if (r < 0)
                        log_debug_errno(r, "Failed to send an error reply: %m");
        }
}

int manager_method_list_certificates(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_(bus_call_end) BusCall call = {};
        _cleanup_free_ char *prefix = NULL;
        CertificateListQuery query;
        Manager *m = userdata;
        ListCall *lc;
        int r;

        r = bus_call_begin(m->clients, message, &call, error);
        if (r < 0)
                return r;
        r = read_query(message, &query, &prefix, error);
        if (r < 0)
                return r;

        lc = calloc(1, sizeof(ListCall));
        if (!lc)
                return -ENOMEM;
        lc->manager = m;
        r = certificate_list_new(m, &query, &lc->list);
        if (r >= 0) {
                lc->call = bus_call_take(&call);
                r = lc->call ? 0 : -ENOMEM;
        }
        if (r >= 0)
                r = client_queue_work(m->clients, sd_bus_message_get_sender(message), list_call_run, lc,
                                      list_call_free);
        if (r < 0) {
                list_call_free(lc);
                return r;
        }
        return 1;
}
