/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus-audit.h"
#include "bus-call.h"
#include "certificate.h"
#include "bus-util.h"
#include "certificate-bus.h"
#include "log.h"
#include "manager-bus.h"
#include "manager-certificates.h"
#include "manager.h"
#include "smimed-bus-names.h"
#include "strv.h"
#include "validate.h"

#define USEC_PER_SEC 1000000ULL

/* What the certificate objects show, for the one certificate last asked
 * about: GetAll reads many properties of one object in a row. It is good for
 * one store generation and one second (statuses depend on the clock), and
 * until the core says certificates are stale. Validations are made when a
 * property needs them. */
typedef struct CertificateView {
        CertInfo *info;
        bool trusted;
        time_t loaded_at;
        uint64_t store_generation;
        bool validated;
        Validation validation[3]; /* by CertPurpose */
} CertificateView;

static void certificate_view_done(CertificateView *view) {
        cert_info_free(view->info);
        for (size_t i = 0; i < ELEMENTSOF(view->validation); i++)
                validation_done(&view->validation[i]);
        *view = (CertificateView) {};
}

static CertificateView *certificate_view_free(CertificateView *view) {
        if (!view)
                return NULL;
        certificate_view_done(view);
        return mfree(view);
}

#define VIEW(m) (((Manager *) (m))->bus->certificate_view)

char *certificate_bus_path(const char *fingerprint) {
        char *path;

        if (asprintf(&path, SMIMED_CERTIFICATE_PATH_PREFIX "/%s", fingerprint) < 0)
                return NULL;
        return path;
}

static bool is_fingerprint(const char *s) {
        if (strlen(s) != 64)
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return false;
        return true;
}

/* Loads the certificate of path into the view. 1: found, 0: no such object. */
static int certificate_view_load(Manager *m, const char *path) {
        CertificateView *view;
        const char *fingerprint;
        X509 *x509 = NULL;
        bool trusted;
        int r;

        if (strncmp(path, SMIMED_CERTIFICATE_PATH_PREFIX "/", strlen(SMIMED_CERTIFICATE_PATH_PREFIX) + 1) != 0)
                return 0;
        fingerprint = path + strlen(SMIMED_CERTIFICATE_PATH_PREFIX) + 1;
        if (!is_fingerprint(fingerprint))
                return 0;

        if (!m->bus->certificate_view) {
                m->bus->certificate_view = calloc(1, sizeof(CertificateView));
                if (!m->bus->certificate_view)
                        return -ENOMEM;
        }
        view = m->bus->certificate_view;
        /* Status depends on the clock: a view is reused within the same second only. */
        if (view->info && streq(view->info->fingerprint, fingerprint) &&
            view->store_generation == manager_store_generation(m) && view->loaded_at == time(NULL))
                return 1;

        certificate_view_done(view);
        r = manager_load_certificate(m, fingerprint, &x509, &trusted);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        r = cert_info_new(x509, &view->info);
        X509_free(x509);
        if (r < 0)
                return r;
        view->trusted = trusted;
        view->loaded_at = time(NULL);
        view->store_generation = manager_store_generation(m);
        return 1;
}

static const Validation *certificate_view_validation(Manager *m, CertPurpose purpose) {
        CertificateView *view = VIEW(m);
        int r;

        static const CertPurpose purposes[] = { CERT_PURPOSE_ANY, CERT_PURPOSE_SIGN, CERT_PURPOSE_ENCRYPT };

        if (!view->validated) {
                r = manager_validate_certificate(m, view->info->x509, view->loaded_at, purposes, ELEMENTSOF(purposes),
                                                 view->validation);
                if (r < 0) {
                        log_warning_errno(r, "Cannot validate certificate %s: %m", view->info->fingerprint);
                        return NULL;
                }
                view->validated = true;
        }
        return &view->validation[purpose];
}

static int certificate_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                            sd_bus_error *error) {
        Manager *m = userdata;
        int r;

        r = certificate_view_load(m, path);
        if (r < 0)
                return bus_error_set_from_manager(error, r, NULL);
        if (r == 0)
                return 0;
        *found = m;
        return 1;
}

static int certificate_enumerate(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error) {
        _cleanup_(strv_freep) char **fingerprints = NULL, **paths = NULL;
        Manager *m = userdata;
        int r;

        r = manager_list_certificates(m, &fingerprints);
        if (r < 0)
                return bus_error_set_from_manager(error, r, NULL);
        paths = calloc(strv_length(fingerprints) + 1, sizeof(char *));
        if (!paths)
                return -ENOMEM;
        for (size_t i = 0; fingerprints[i]; i++) {
                paths[i] = certificate_bus_path(fingerprints[i]);
                if (!paths[i])
                        return -ENOMEM;
        }
        *nodes = TAKE_PTR(paths);
        return 0;
}

static int property_get_string(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        const CertInfo *info = VIEW(userdata)->info;
        const char *value = "";

        if (streq(property, "Fingerprint"))
                value = info->fingerprint;
        else if (streq(property, "Subject"))
                value = info->subject;
        else if (streq(property, "Issuer"))
                value = info->issuer;
        else if (streq(property, "CommonName"))
                value = info->common_name;
        else if (streq(property, "SerialNumber"))
                value = info->serial;
        else if (streq(property, "KeyAlgorithm"))
                value = info->key_algorithm;
        return sd_bus_message_append(reply, "s", value);
}

static int property_get_addresses(sd_bus *bus, const char *path, const char *interface, const char *property,
                                  sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append_strv(reply, VIEW(userdata)->info->addresses);
}

static int property_get_time(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        const CertInfo *info = VIEW(userdata)->info;
        time_t t = streq(property, "NotBefore") ? info->not_before : info->not_after;

        return sd_bus_message_append(reply, "t", t > 0 ? (uint64_t) t * USEC_PER_SEC : 0);
}

static int property_get_key_bits(sd_bus *bus, const char *path, const char *interface, const char *property,
                                 sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "u", (uint32_t) VIEW(userdata)->info->key_bits);
}

static int property_get_bool(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const CertificateView *view = VIEW(m);
        bool value = false;

        if (streq(property, "IsCA"))
                value = view->info->is_ca;
        else if (streq(property, "Trusted"))
                value = view->trusted;
        else if (streq(property, "HasPrivateKey"))
                value = strv_contains(m->key_spkis, view->info->spki_sha256);
        return sd_bus_message_append(reply, "b", value);
}

static int property_get_usable(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        CertPurpose purpose = streq(property, "CanSign") ? CERT_PURPOSE_SIGN : CERT_PURPOSE_ENCRYPT;
        const Validation *v = certificate_view_validation(userdata, purpose);

        if (!v)
                return -EIO;
        return sd_bus_message_append(reply, "b", v->status == CERT_STATUS_VALID);
}

static int property_get_status(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        const Validation *v = certificate_view_validation(userdata, CERT_PURPOSE_ANY);

        if (!v)
                return -EIO;
        if (streq(property, "Revocation"))
                return sd_bus_message_append(reply, "s", strempty(v->revocation));
        return sd_bus_message_append(reply, "s",
                                     streq(property, "Status") ? cert_status_to_string(v->status) : v->message);
}

static int property_get_summary(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *summary = cert_info_summary(VIEW(userdata)->info);

        if (!summary)
                return -ENOMEM;
        return sd_bus_message_append(reply, "s", summary);
}

static int property_get_chain(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        const Validation *v = certificate_view_validation(userdata, CERT_PURPOSE_ANY);
        int r;

        if (!v)
                return -EIO;
        r = sd_bus_message_open_container(reply, 'a', "(ss)");
        if (r < 0)
                return r;
        for (int i = 0; i < sk_X509_num(v->chain); i++) {
                X509 *x = sk_X509_value(v->chain, i);
                _cleanup_free_ char *subject = x509_name_to_string(X509_get_subject_name(x));
                char fingerprint[SHA256_HEX_SIZE];

                if (!subject || x509_fingerprint(x, fingerprint) < 0)
                        return -ENOMEM;
                r = sd_bus_message_append(reply, "(ss)", fingerprint, subject);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(reply);
}

static int property_get_der(sd_bus *bus, const char *path, const char *interface, const char *property,
                            sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        const CertInfo *info = VIEW(userdata)->info;

        return sd_bus_message_append_array(reply, 'y', info->der, info->der_size);
}

/* The details a polkit rule can scope on. */
static int certificate_check(Manager *m, sd_bus_message *message, sd_bus_error *error) {
        const CertInfo *info = VIEW(m)->info;
        const char *details[] = {
                "fingerprint", info->fingerprint,
                "address", info->addresses[0] ? info->addresses[0] : "",
                NULL,
        };

        return bus_call_authorize(m->clients, m->bus->polkit, message, POLKIT_ACTION_MANAGE_CERTIFICATES, details,
                                  error);
}

static int method_remove(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *fingerprint = NULL, *reason = NULL;
        Manager *m = userdata;
        int r;

        r = certificate_check(m, message, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        fingerprint = strdup(VIEW(m)->info->fingerprint);
        if (!fingerprint)
                return -ENOMEM;
        r = manager_remove_certificate(m, fingerprint, &reason);
        audit_call(message, AUDIT_CERTIFICATE_REMOVE, "remove-certificate", r, fingerprint, NULL, NULL, reason);
        if (r < 0)
                return bus_error_set_from_manager(error, r, reason);
        return sd_bus_reply_method_return(message, NULL);
}

static int method_set_trusted(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *fingerprint = NULL, *reason = NULL;
        Manager *m = userdata;
        int trusted, r;

        r = sd_bus_message_read(message, "b", &trusted);
        if (r < 0)
                return r;

        r = certificate_check(m, message, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        fingerprint = strdup(VIEW(m)->info->fingerprint);
        if (!fingerprint)
                return -ENOMEM;
        r = manager_set_certificate_trusted(m, fingerprint, trusted, &reason);
        audit_call(message, AUDIT_TRUST_CHANGE, trusted ? "trust" : "distrust", r, fingerprint, NULL, NULL, reason);
        if (r < 0)
                return bus_error_set_from_manager(error, r, reason);
        return sd_bus_reply_method_return(message, NULL);
}

#define CONST SD_BUS_VTABLE_PROPERTY_CONST

static const sd_bus_vtable certificate_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Fingerprint", "s", property_get_string, 0, CONST),
        SD_BUS_PROPERTY("Subject", "s", property_get_string, 0, CONST),
        SD_BUS_PROPERTY("Issuer", "s", property_get_string, 0, CONST),
        SD_BUS_PROPERTY("CommonName", "s", property_get_string, 0, CONST),
        SD_BUS_PROPERTY("SerialNumber", "s", property_get_string, 0, CONST),
        SD_BUS_PROPERTY("Addresses", "as", property_get_addresses, 0, CONST),
        SD_BUS_PROPERTY("NotBefore", "t", property_get_time, 0, CONST),
        SD_BUS_PROPERTY("NotAfter", "t", property_get_time, 0, CONST),
        SD_BUS_PROPERTY("KeyAlgorithm", "s", property_get_string, 0, CONST),
        SD_BUS_PROPERTY("KeyBits", "u", property_get_key_bits, 0, CONST),
        SD_BUS_PROPERTY("IsCA", "b", property_get_bool, 0, CONST),
        SD_BUS_PROPERTY("Trusted", "b", property_get_bool, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("HasPrivateKey", "b", property_get_bool, 0, 0),
        SD_BUS_PROPERTY("Status", "s", property_get_status, 0, SD_BUS_VTABLE_PROPERTY_EXPLICIT),
        SD_BUS_PROPERTY("StatusText", "s", property_get_status, 0, SD_BUS_VTABLE_PROPERTY_EXPLICIT),
        SD_BUS_PROPERTY("Revocation", "s", property_get_status, 0, SD_BUS_VTABLE_PROPERTY_EXPLICIT),
        SD_BUS_PROPERTY("CanSign", "b", property_get_usable, 0, SD_BUS_VTABLE_PROPERTY_EXPLICIT),
        SD_BUS_PROPERTY("CanEncrypt", "b", property_get_usable, 0, SD_BUS_VTABLE_PROPERTY_EXPLICIT),
        SD_BUS_PROPERTY("Summary", "s", property_get_summary, 0, 0),
        SD_BUS_PROPERTY("Chain", "a(ss)", property_get_chain, 0, SD_BUS_VTABLE_PROPERTY_EXPLICIT),
        /* Fetched by those who need it: not in GetAll and GetManagedObjects. */
        SD_BUS_PROPERTY("DER", "ay", property_get_der, 0, SD_BUS_VTABLE_PROPERTY_EXPLICIT | CONST),
        SD_BUS_METHOD_WITH_ARGS("Remove", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_remove, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SetTrusted", SD_BUS_ARGS("b", trusted), SD_BUS_NO_RESULT, method_set_trusted,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

int certificate_bus_register(Manager *m) {
        int r;

        r = sd_bus_add_fallback_vtable(m->bus->connection, &m->bus->certificate_slot, SMIMED_CERTIFICATE_PATH_PREFIX,
                                       SMIMED_CERTIFICATE_INTERFACE, certificate_vtable, certificate_find, m);
        if (r < 0)
                return log_error_errno(r, "Failed to serve " SMIMED_CERTIFICATE_INTERFACE ": %m");

        r = sd_bus_add_node_enumerator(m->bus->connection, &m->bus->certificate_enumerator_slot,
                                       SMIMED_CERTIFICATE_PATH_PREFIX, certificate_enumerate, m);
        if (r < 0)
                return log_error_errno(r, "Failed to enumerate certificate objects: %m");
        return 0;
}

void certificate_bus_on_event(Manager *m, const ManagerEvent *event) {
        int r = 0;

        if (event->type == MANAGER_EVENT_CERTIFICATES_STALE) {
                if (m->bus->certificate_view)
                        certificate_view_done(m->bus->certificate_view);
                return;
        }
        if (!m->bus->certificate_slot)
                return;
        for (char *const *f = event->names; f && *f; f++) {
                _cleanup_free_ char *path = certificate_bus_path(*f);

                if (!path) {
                        log_oom();
                        return;
                }
                switch (event->type) {
                case MANAGER_EVENT_CERTIFICATE_ADDED:
                        r = sd_bus_emit_interfaces_added(m->bus->connection, path, SMIMED_CERTIFICATE_INTERFACE, NULL);
                        break;
                case MANAGER_EVENT_CERTIFICATE_REMOVED:
                        r = sd_bus_emit_interfaces_removed(m->bus->connection, path, SMIMED_CERTIFICATE_INTERFACE,
                                                           NULL);
                        break;
                case MANAGER_EVENT_CERTIFICATE_TRUST:
                        r = sd_bus_emit_properties_changed(m->bus->connection, path, SMIMED_CERTIFICATE_INTERFACE,
                                                           "Trusted", NULL);
                        break;
                default:
                        return;
                }
                if (r < 0)
                        log_warning_errno(r, "Failed to announce a change of certificate %s: %m", *f);
        }
}

void certificate_bus_done(Manager *m) {
        m->bus->certificate_slot = sd_bus_slot_unref(m->bus->certificate_slot);
        m->bus->certificate_enumerator_slot = sd_bus_slot_unref(m->bus->certificate_enumerator_slot);
        m->bus->certificate_view = certificate_view_free(m->bus->certificate_view);
}

int bus_append_certificate_paths(sd_bus_message *reply, char **fingerprints) {
        int r;

        r = sd_bus_message_open_container(reply, 'a', "o");
        if (r < 0)
                return r;
        for (char **f = fingerprints; f && *f; f++) {
                _cleanup_free_ char *path = certificate_bus_path(*f);

                if (!path)
                        return -ENOMEM;
                r = sd_bus_message_append(reply, "o", path);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(reply);
}
