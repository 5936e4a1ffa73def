/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>

#include "bus-util.h"
#include "capabilities.h"
#include "certificate-bus.h"
#include "manager-certificates.h"
#include "manager-directory.h"
#include "manager-methods-bus.h"
#include "manager.h"
#include "log.h"
#include "smimed-errors.h"
#include "strv.h"

/* org.smimed1.Manager.GetCapabilities: what a composer may do, with reasons. */

/* from_directory: whether the certificate was found in the [Directory]
 * (and since when it is cached), so that a composer can say so. The store
 * failing here (its server gone in the middle of the call) is the store's
 * error, StoreUnavailable, as in the answers before it. */
static int append_directory(Manager *m, sd_bus_message *reply, const char *fingerprint, sd_bus_error *error) {
        time_t fetched = 0;
        int r;

        r = manager_certificate_directory_fetched(m, fingerprint, &fetched);
        if (r < 0 && r != -ENOENT)
                return bus_error_set_from_manager(error, r, NULL);
        r = sd_bus_message_append(reply, "{sv}", "from_directory", "b", fetched > 0);
        if (r >= 0 && fetched > 0)
                r = sd_bus_message_append(reply, "{sv}", "directory_fetched", "t", (uint64_t) fetched * 1000000ULL);
        return r;
}

/* asked: the address as the caller wrote it, reported back unchanged. */
static int append_capability(Manager *m, sd_bus_message *reply, const char *asked, const Capability *c,
                             sd_bus_error *error) {
        int r;

        r = sd_bus_message_open_container(reply, 'a', "{sv}");
        if (r < 0)
                return r;
        r = sd_bus_message_append(reply, "{sv}{sv}{sv}{sv}", "address", "s", asked, "possible", "b", c->possible,
                                  "reason", "s", c->reason, "message", "s", c->message);
        if (r < 0)
                return r;
        if (c->info) {
                _cleanup_free_ char *path = certificate_bus_path(c->info->fingerprint);
                _cleanup_free_ char *summary = cert_info_summary(c->info);

                if (!path || !summary)
                        return -ENOMEM;
                r = sd_bus_message_append(reply, "{sv}{sv}{sv}{sv}{sv}{sv}", "certificate", "o", path, "fingerprint",
                                          "s", c->info->fingerprint, "subject", "s", c->info->subject, "issuer", "s",
                                          c->info->issuer, "not_after", "t",
                                          (uint64_t) (c->info->not_after > 0 ? c->info->not_after : 0) * 1000000ULL,
                                          "summary", "s", summary);
                if (r < 0)
                        return r;
                r = append_directory(m, reply, c->info->fingerprint, error);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(reply);
}

static int get_capabilities_resolved(Manager *m, sd_bus_message *message, sd_bus_error *error);

/* call: when given, the addresses the store cannot serve are looked up in
 * the [Directory] first (unless the option directory is false): then the
 * call is taken, 0 returned, and the answer comes when the lookups end. */
static int get_capabilities(Manager *m, sd_bus_message *message, BusCall **call, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(strv_freep) char **recipients = NULL, **normalized = NULL;
        _cleanup_free_ char *sender = NULL;
        const char *raw_sender;
        CapabilityContext ctx;
        int directory = true, r;
        BusOption options[] = {
                {"directory", 'b', &directory},
        };

        r = sd_bus_message_read(message, "s", &raw_sender);
        if (r < 0)
                return r;
        r = sd_bus_message_read_strv(message, &recipients);
        if (r < 0)
                return r;
        r = bus_read_options(message, options, ELEMENTSOF(options), error);
        if (r < 0)
                return r;

        r = bus_read_address(raw_sender, true, &sender, error);
        if (r < 0)
                return r;
        normalized = calloc(strv_length(recipients) + 1, sizeof(char *));
        if (!normalized)
                return -ENOMEM;
        for (size_t i = 0; recipients && recipients[i]; i++) {
                r = bus_read_address(recipients[i], false, &normalized[i], error);
                if (r < 0)
                        return r;
        }

        if (call && directory) {
                r = bus_directory_resolve_then(m, normalized, call, get_capabilities_resolved, error);
                if (r != 0)
                        return r < 0 ? r : 0;
        }

        manager_capability_context(m, &ctx);
        r = sd_bus_message_new_method_return(message, &reply);
        if (r < 0)
                return r;

        if (sender[0]) {
                _cleanup_(capability_done) Capability c = {};

                r = capability_for_cached(m->capability_cache, &ctx, sender, CERT_PURPOSE_SIGN, &c);
                if (r < 0)
                        return bus_error_set_from_manager(error, r, NULL);
                r = append_capability(m, reply, raw_sender, &c, error);
        } else
                r = sd_bus_message_append(reply, "a{sv}", 0);
        if (r < 0)
                return r;

        r = sd_bus_message_open_container(reply, 'a', "a{sv}");
        if (r < 0)
                return r;
        for (size_t i = 0; normalized[i]; i++) {
                _cleanup_(capability_done) Capability c = {};

                r = capability_for_cached(m->capability_cache, &ctx, normalized[i], CERT_PURPOSE_ENCRYPT, &c);
                if (r < 0)
                        return bus_error_set_from_manager(error, r, NULL);
                r = append_capability(m, reply, recipients[i], &c, error);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int get_capabilities_resolved(Manager *m, sd_bus_message *message, sd_bus_error *error) {
        return get_capabilities(m, message, NULL, error);
}

static int get_capabilities_queued(Manager *m, BusCall **call, sd_bus_error *error) {
        return get_capabilities(m, (*call)->call, call, error);
}

int manager_method_get_capabilities(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_(bus_call_end) BusCall call = {};
        _cleanup_(strv_freep) char **recipients = NULL;
        Manager *m = userdata;
        const char *sender;
        int r;

        r = bus_call_begin(m->clients, message, &call, error);
        if (r < 0)
                return r;
        /* A look at the size first: a call over the limit is not queued at all. */
        r = sd_bus_message_read(message, "s", &sender);
        if (r >= 0)
                r = sd_bus_message_read_strv(message, &recipients);
        if (r < 0)
                return r;
        r = bus_check_recipient_count(m, strv_length(recipients), error);
        if (r < 0)
                return r;
        return bus_queue_taking_call(m, message, &call, get_capabilities_queued);
}
