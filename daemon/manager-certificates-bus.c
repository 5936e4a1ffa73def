/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include "bus-audit.h"

#include "bus-util.h"
#include "certificate-bus.h"
#include "manager-certificates.h"
#include "manager-revocation.h"
#include "manager-bus.h"
#include "manager-methods-bus.h"
#include "manager.h"
#include "smime-limits.h"
#include "smimed-errors.h"
#include "strv.h"

/* org.smimed1.Manager's certificate methods: ImportCertificates,
 * ImportCRL, FetchCRLs, LookupCertificates. */

static int reply_certificate_paths(sd_bus_message *message, char **fingerprints) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(message, &reply);
        if (r < 0)
                return r;
        r = bus_append_certificate_paths(reply, fingerprints);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int read_import_data(sd_bus_message *message, const void **ret_data, size_t *ret_size, sd_bus_error *error) {
        int r;

        r = sd_bus_message_read_array(message, 'y', ret_data, ret_size);
        if (r < 0)
                return r;
        if (*ret_size > IMPORT_MAX_SIZE)
                return sd_bus_error_setf(error, SMIMED_ERROR_INVALID_FORMAT, "The data is larger than %u MiB.",
                                         IMPORT_MAX_SIZE / 1024 / 1024);
        return 0;
}

int manager_method_import_certificates(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_(strv_freep) char **fingerprints = NULL;
        _cleanup_free_ char *reason = NULL;
        Manager *m = userdata;
        const void *data;
        size_t size;
        int trust = false, r;
        BusOption options[] = {{"trust", 'b', &trust}};

        r = bus_call_authorize(m->clients, m->bus->polkit, message, POLKIT_ACTION_MANAGE_CERTIFICATES, NULL, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        r = read_import_data(message, &data, &size, error);
        if (r < 0)
                return r;
        r = bus_read_options(message, options, ELEMENTSOF(options), error);
        if (r < 0)
                return r;

        r = manager_import_certificates(m, data, size, trust, &fingerprints, &reason);
        audit_call(message, trust ? AUDIT_TRUST_CHANGE : AUDIT_CERTIFICATE_IMPORT,
                   trust ? "import-certificates-trusted" : "import-certificates", r,
                   fingerprints ? fingerprints[0] : NULL, NULL, NULL, reason);
        if (r < 0)
                return bus_error_set_from_manager(error, r, reason);
        return reply_certificate_paths(message, fingerprints);
}

int manager_method_import_crl(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *reason = NULL;
        Manager *m = userdata;
        const void *data;
        unsigned count = 0;
        size_t size;
        int r;

        r = bus_call_authorize(m->clients, m->bus->polkit, message, POLKIT_ACTION_MANAGE_CERTIFICATES, NULL, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        r = read_import_data(message, &data, &size, error);
        if (r < 0)
                return r;
        r = bus_read_options(message, NULL, 0, error);
        if (r < 0)
                return r;

        r = manager_import_crls(m, data, size, &count, &reason);
        audit_call(message, AUDIT_CERTIFICATE_IMPORT, "import-crl", r, NULL, NULL, NULL, reason);
        if (r < 0)
                return bus_error_set_from_manager(error, r, reason);
        return sd_bus_reply_method_return(message, "u", (uint32_t) count);
}

static void fetch_crls_done(Manager *m, int r, unsigned fetched, const char *message, void *userdata) {
        _cleanup_(bus_call_freep) BusCall *c = userdata;

        (void) m;
        audit_call(c->call, AUDIT_CERTIFICATE_IMPORT, "fetch-crls", r, NULL, NULL, NULL, message);
        if (r == -ECANCELED)
                return; /* smimed is stopping */
        if (r < 0) {
                (void) bus_reply_manager_error(c->call, r, message);
                return;
        }
        (void) sd_bus_reply_method_return(c->call, "u", (uint32_t) fetched);
}

int manager_method_fetch_crls(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_(bus_call_end) BusCall call = {};
        Manager *m = userdata;
        BusCall *taken;
        int r;

        r = bus_read_options(message, NULL, 0, error);
        if (r < 0)
                return r;
        r = bus_call_begin(m->clients, message, &call, error);
        if (r < 0)
                return r;
        r = bus_polkit_check(m->bus->polkit, message, POLKIT_ACTION_MANAGE_CERTIFICATES, NULL, error);
        if (r == 0)
                bus_call_keep(&call);
        if (r <= 0)
                return r < 0 ? r : 1;

        taken = bus_call_take(&call);
        if (!taken)
                return -ENOMEM;
        r = manager_fetch_crls(m, fetch_crls_done, taken);
        if (r < 0) {
                audit_call(message, AUDIT_CERTIFICATE_IMPORT, "fetch-crls", r, NULL, NULL, NULL, NULL);
                bus_call_free(taken);
                return bus_error_set_from_manager(error, r, NULL);
        }
        return 1; /* the reply comes when every download has ended */
}

static int parse_purpose(const char *s, CertPurpose *ret, sd_bus_error *error) {
        if (!s || streq(s, "any"))
                *ret = CERT_PURPOSE_ANY;
        else if (streq(s, "sign"))
                *ret = CERT_PURPOSE_SIGN;
        else if (streq(s, "encrypt"))
                *ret = CERT_PURPOSE_ENCRYPT;
        else
                return sd_bus_error_setf(error, SMIMED_ERROR_INVALID_ARGUMENT,
                                         "Unknown purpose \"%s\" (expected sign, encrypt or any).", s);
        return 0;
}
/* call: when given, an address the store cannot serve is looked up in the
 * [Directory] first (unless "directory" is false), as for GetCapabilities. */
static int lookup_certificates_resolved(Manager *m, sd_bus_message *message, sd_bus_error *error);

static int lookup_certificates(Manager *m, sd_bus_message *message, BusCall **call, sd_bus_error *error) {
        _cleanup_(strv_freep) char **fingerprints = NULL;
        _cleanup_free_ char *address = NULL;
        const char *raw, *purpose_name = NULL;
        CapabilityContext ctx;
        CertPurpose purpose = CERT_PURPOSE_ANY;
        int usable = false, directory = true, r;
        BusOption filter[] = {
                {"purpose", 's', &purpose_name},
                {"usable", 'b', &usable},
                {"directory", 'b', &directory},
        };

        r = sd_bus_message_read(message, "s", &raw);
        if (r < 0)
                return r;
        r = bus_read_address(raw, true, &address, error);
        if (r < 0)
                return r;
        r = bus_read_options(message, filter, ELEMENTSOF(filter), error);
        if (r < 0)
                return r;
        r = parse_purpose(purpose_name, &purpose, error);
        if (r < 0)
                return r;

        if (call && directory && address[0]) {
                r = bus_directory_resolve_then(m, (char *const[]){address, NULL}, call, lookup_certificates_resolved,
                                               error);
                if (r != 0)
                        return r < 0 ? r : 0;
        }

        manager_capability_context(m, &ctx);
        r = capability_lookup(&ctx, address, purpose, usable, &fingerprints);
        if (r < 0)
                return bus_error_set_from_manager(error, r, NULL);
        return reply_certificate_paths(message, fingerprints);
}

static int lookup_certificates_resolved(Manager *m, sd_bus_message *message, sd_bus_error *error) {
        return lookup_certificates(m, message, NULL, error);
}

static int lookup_certificates_queued(Manager *m, BusCall **call, sd_bus_error *error) {
        return lookup_certificates(m, (*call)->call, call, error);
}

int manager_method_lookup_certificates(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_(bus_call_end) BusCall call = {};
        Manager *m = userdata;
        int r;

        r = bus_call_begin(m->clients, message, &call, error);
        if (r < 0)
                return r;
        return bus_queue_taking_call(m, message, &call, lookup_certificates_queued);
}
