/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libsmimed-internal.h"
#include "macro.h"
#include "strv.h"

#define FINGERPRINT_LENGTH 64

static bool fingerprint_is_valid(const char *s) {
        if (strlen(s) != FINGERPRINT_LENGTH)
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return false;
        return true;
}

/* The object path of a fingerprint given in any case. */
static int certificate_path(const char *fingerprint, char **ret, smimed_error *error) {
        char lower[FINGERPRINT_LENGTH + 1] = {};
        int r;

        if (!fingerprint)
                return error_set(error, -EINVAL, NULL, "No fingerprint given.");
        if (strlen(fingerprint) == FINGERPRINT_LENGTH)
                for (size_t i = 0; i < FINGERPRINT_LENGTH; i++)
                        lower[i] = (fingerprint[i] >= 'A' && fingerprint[i] <= 'F') ? fingerprint[i] - 'A' + 'a'
                                                                                     : fingerprint[i];
        if (!fingerprint_is_valid(lower))
                return error_set(error, -EINVAL, NULL,
                                 "A fingerprint is the SHA-256 of the certificate: 64 hexadecimal digits.");

        /* The last component is the fingerprint itself (no sd_bus_path_encode():
         * it would escape a leading digit). */
        r = asprintf(ret, SMIMED_CERTIFICATE_PATH_PREFIX "/%s", lower);
        if (r < 0)
                return error_set(error, -ENOMEM, NULL, strerror(ENOMEM));
        return 0;
}

/* The fingerprint in a certificate's object path, or NULL. */
static const char *fingerprint_from_path(const char *path) {
        const char *prefix = SMIMED_CERTIFICATE_PATH_PREFIX "/";

        if (strncmp(path, prefix, strlen(prefix)) != 0 || !fingerprint_is_valid(path + strlen(prefix)))
                return NULL;
        return path + strlen(prefix);
}

int bus_read_certificate_paths(sd_bus_message *reply, char ***ret) {
        _cleanup_(strv_freep) char **fingerprints = NULL;
        const char *path;
        int r;

        fingerprints = calloc(1, sizeof(char *));
        if (!fingerprints)
                return -ENOMEM;

        r = sd_bus_message_enter_container(reply, 'a', "o");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(reply, "o", &path)) > 0) {
                const char *fingerprint = fingerprint_from_path(path);

                if (!fingerprint)
                        return -EBADMSG;
                r = strv_extend(&fingerprints, fingerprint);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(reply);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(fingerprints);
        return 0;
}

static int call_import(smimed *s, const char *method, const void *data, size_t size, const bool *trust,
                       sd_bus_message **ret_reply, smimed_error *error) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        if (!s)
                return error_set(error, -EINVAL, NULL, "Invalid argument.");
        if (!data)
                return error_set(error, -EINVAL, NULL, "No data given.");
        if (size == 0)
                return error_set(error, -EINVAL, NULL, "The data is empty.");

        r = sd_bus_message_new_method_call(s->bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                           SMIMED_MANAGER_INTERFACE, method);
        if (r >= 0)
                r = sd_bus_message_append_array(m, 'y', data, size);
        if (r >= 0)
                r = trust ? sd_bus_message_append(m, "a{sv}", 1, "trust", "b", (int) *trust)
                          : sd_bus_message_append(m, "a{sv}", 0);
        if (r < 0)
                return error_set(error, r, NULL, strerror(-r));

        r = sd_bus_call(s->bus, m, 0, &e, ret_reply);
        if (r < 0)
                return error_from_bus(error, r, &e);
        return 0;
}

_public_ int smimed_import_certificates(smimed *s, const void *data, size_t size, bool trust,
                                        char ***ret_fingerprints, smimed_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(strv_freep) char **fingerprints = NULL;
        int r;

        r = call_import(s, "ImportCertificates", data, size, &trust, &reply, error);
        if (r < 0)
                return r;

        r = bus_read_certificate_paths(reply, &fingerprints);
        if (r < 0)
                return error_set(error, r, NULL, bus_bad_reply);
        if (ret_fingerprints)
                *ret_fingerprints = TAKE_PTR(fingerprints);
        return 0;
}

_public_ int smimed_import_crl(smimed *s, const void *data, size_t size, unsigned *ret_count,
                               smimed_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        uint32_t count;
        int r;

        r = call_import(s, "ImportCRL", data, size, NULL, &reply, error);
        if (r < 0)
                return r;

        r = sd_bus_message_read(reply, "u", &count);
        if (r < 0)
                return error_set(error, r, NULL, bus_bad_reply);
        if (ret_count)
                *ret_count = count;
        return 0;
}

/* Downloads take up to FetchTimeoutSec= each, a few at a time. */
#define FETCH_CRLS_TIMEOUT_USEC (5 * 60 * USEC_PER_SEC)

_public_ int smimed_fetch_crls(smimed *s, unsigned *ret_fetched, smimed_error *error) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        uint32_t fetched;
        int r;

        if (!s)
                return error_set(error, -EINVAL, NULL, "Invalid argument.");
        r = sd_bus_message_new_method_call(s->bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE,
                                           "FetchCRLs");
        if (r >= 0)
                r = sd_bus_message_append(m, "a{sv}", 0);
        if (r < 0)
                return error_set(error, r, NULL, strerror(-r));
        r = sd_bus_call(s->bus, m, FETCH_CRLS_TIMEOUT_USEC, &e, &reply);
        if (r < 0)
                return error_from_bus(error, r, &e);
        r = sd_bus_message_read(reply, "u", &fetched);
        if (r < 0)
                return error_set(error, r, NULL, bus_bad_reply);
        if (ret_fetched)
                *ret_fetched = fetched;
        return 0;
}

static bool purpose_is_valid(const char *purpose) {
        return !purpose || streq(purpose, "any") || streq(purpose, "sign") || streq(purpose, "encrypt");
}

_public_ int smimed_lookup_certificates(smimed *s, const char *address, const char *purpose, bool usable_only,
                                        char ***ret_fingerprints, smimed_error *error) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(strv_freep) char **fingerprints = NULL;
        int r;

        if (!s || !ret_fingerprints)
                return error_set(error, -EINVAL, NULL, "Invalid argument.");
        if (!purpose_is_valid(purpose))
                return error_set(error, -EINVAL, NULL, "Unknown purpose (expected sign, encrypt or any).");

        r = sd_bus_message_new_method_call(s->bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                           SMIMED_MANAGER_INTERFACE, "LookupCertificates");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", strempty(address));
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0 && purpose)
                r = sd_bus_message_append(m, "{sv}", "purpose", "s", purpose);
        if (r >= 0 && usable_only)
                r = sd_bus_message_append(m, "{sv}", "usable", "b", 1);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return error_set(error, r, NULL, strerror(-r));

        r = sd_bus_call(s->bus, m, 0, &e, &reply);
        if (r < 0)
                return error_from_bus(error, r, &e);

        r = bus_read_certificate_paths(reply, &fingerprints);
        if (r < 0)
                return error_set(error, r, NULL, bus_bad_reply);
        *ret_fingerprints = TAKE_PTR(fingerprints);
        return 0;
}

static void chain_free(smimed_chain_entry *chain, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(chain[i].fingerprint);
                free(chain[i].subject);
        }
        free(chain);
}

_public_ void smimed_certificate_done(smimed_certificate *c) {
        if (!c)
                return;
        free(c->path);
        free(c->fingerprint);
        free(c->subject);
        free(c->issuer);
        free(c->common_name);
        free(c->serial);
        strv_free(c->addresses);
        free(c->key_algorithm);
        free(c->status);
        free(c->status_text);
        free(c->summary);
        chain_free(c->chain, c->n_chain);
        free(c->der);
        *c = (smimed_certificate) {};
}

static int read_chain(sd_bus_message *m, smimed_certificate *c) {
        smimed_chain_entry *chain = NULL;
        const char *fingerprint, *subject;
        size_t n = 0;
        int r;

        r = sd_bus_message_enter_container(m, 'v', "a(ss)");
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(m, 'a', "(ss)");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(m, "(ss)", &fingerprint, &subject)) > 0) {
                smimed_chain_entry *grown = reallocarray(chain, n + 1, sizeof(smimed_chain_entry));

                if (!grown) {
                        r = -ENOMEM;
                        break;
                }
                chain = grown;
                chain[n] = (smimed_chain_entry) { .fingerprint = strdup(fingerprint), .subject = strdup(subject) };
                n++;
                if (!chain[n - 1].fingerprint || !chain[n - 1].subject) {
                        r = -ENOMEM;
                        break;
                }
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        if (r < 0) {
                chain_free(chain, n);
                return r;
        }

        chain_free(c->chain, c->n_chain);
        c->chain = chain;
        c->n_chain = n;
        return 0;
}

static int read_der(sd_bus_message *m, smimed_certificate *c) {
        const void *der;
        void *copy = NULL;
        size_t size;
        int r;

        r = sd_bus_message_enter_container(m, 'v', "ay");
        if (r < 0)
                return r;
        r = sd_bus_message_read_array(m, 'y', &der, &size);
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        if (size > 0) {
                copy = malloc(size);
                if (!copy)
                        return -ENOMEM;
                memcpy(copy, der, size);
        }

        free(c->der);
        c->der = copy;
        c->der_size = size;
        return 0;
}

typedef struct CertificateProperty {
        const char *name;
        const char *signature;
        size_t offset;
} CertificateProperty;

#define FIELD(name, signature, field) { name, signature, offsetof(smimed_certificate, field) }

static const CertificateProperty certificate_properties[] = {
        FIELD("Fingerprint", "s", fingerprint),
        FIELD("Subject", "s", subject),
        FIELD("Issuer", "s", issuer),
        FIELD("CommonName", "s", common_name),
        FIELD("SerialNumber", "s", serial),
        FIELD("Addresses", "as", addresses),
        FIELD("NotBefore", "t", not_before),
        FIELD("NotAfter", "t", not_after),
        FIELD("KeyAlgorithm", "s", key_algorithm),
        FIELD("KeyBits", "u", key_bits),
        FIELD("IsCA", "b", is_ca),
        FIELD("Trusted", "b", trusted),
        FIELD("HasPrivateKey", "b", has_private_key),
        FIELD("Status", "s", status),
        FIELD("StatusText", "s", status_text),
        FIELD("CanSign", "b", can_sign),
        FIELD("CanEncrypt", "b", can_encrypt),
        FIELD("Summary", "s", summary),
        FIELD("Chain", "a(ss)", chain),
        FIELD("DER", "ay", der),
};

static const CertificateProperty *certificate_property_find(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(certificate_properties); i++)
                if (streq(certificate_properties[i].name, name))
                        return &certificate_properties[i];
        return NULL;
}

/* Reads the variant of property p into its field of c. */
static int certificate_read_property(sd_bus_message *m, const CertificateProperty *p, smimed_certificate *c) {
        void *field = (char *) c + p->offset;

        if (streq(p->signature, "s"))
                return bus_read_variant_string(m, field);
        if (streq(p->signature, "b"))
                return bus_read_variant_bool(m, field);
        if (streq(p->signature, "u"))
                return bus_read_variant_uint32(m, field);
        if (streq(p->signature, "t"))
                return bus_read_variant_uint64(m, field);
        if (streq(p->signature, "as"))
                return bus_read_variant_strv(m, field);
        if (streq(p->signature, "a(ss)"))
                return read_chain(m, c);
        return read_der(m, c);
}

/* Reads a GetAll reply; seen[i] tells whether certificate_properties[i] was in it. */
static int certificate_read_all(sd_bus_message *reply, smimed_certificate *c, bool *seen) {
        int r;

        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                const CertificateProperty *p;
                const char *name;

                r = sd_bus_message_read(reply, "s", &name);
                if (r < 0)
                        return r;
                p = certificate_property_find(name);
                if (p) {
                        r = certificate_read_property(reply, p, c);
                        seen[p - certificate_properties] = true;
                } else
                        r = sd_bus_message_skip(reply, "v"); /* newer daemon, newer property */
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(reply);
}

/* Properties that are expensive to compute (validation) may be "explicit":
 * GetAll leaves them out and only Get returns them. A daemon that does not
 * have a property at all answers UnknownProperty; the field stays unset. */
static int certificate_get_property(smimed *s, const char *path, const CertificateProperty *p,
                                    smimed_certificate *c, smimed_error *error) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_call_method(s->bus, SMIMED_BUS_NAME, path, DBUS_PROPERTIES_INTERFACE, "Get", &e, &reply, "ss",
                               SMIMED_CERTIFICATE_INTERFACE, p->name);
        if (r < 0) {
                if (sd_bus_error_has_name(&e, SD_BUS_ERROR_UNKNOWN_PROPERTY))
                        return 0;
                return error_from_bus(error, r, &e);
        }
        r = certificate_read_property(reply, p, c);
        if (r < 0)
                return error_set(error, r, NULL, bus_bad_reply);
        return 0;
}

_public_ int smimed_get_certificate(smimed *s, const char *fingerprint, smimed_certificate *ret,
                                    smimed_error *error) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(smimed_certificate_done) smimed_certificate c = {};
        bool seen[ELEMENTSOF(certificate_properties)] = {};
        int r;

        if (!s || !ret)
                return error_set(error, -EINVAL, NULL, "Invalid argument.");
        r = certificate_path(fingerprint, &c.path, error);
        if (r < 0)
                return r;

        r = sd_bus_call_method(s->bus, SMIMED_BUS_NAME, c.path, DBUS_PROPERTIES_INTERFACE, "GetAll", &e, &reply,
                               "s", SMIMED_CERTIFICATE_INTERFACE);
        if (r < 0)
                return error_from_bus(error, r, &e);
        r = certificate_read_all(reply, &c, seen);
        if (r < 0)
                return error_set(error, r, NULL, bus_bad_reply);

        for (size_t i = 0; i < ELEMENTSOF(certificate_properties); i++) {
                if (seen[i])
                        continue;
                r = certificate_get_property(s, c.path, &certificate_properties[i], &c, error);
                if (r < 0)
                        return r;
        }

        if (!c.fingerprint) {
                c.fingerprint = strdup(fingerprint_from_path(c.path));
                if (!c.fingerprint)
                        return error_set(error, -ENOMEM, NULL, strerror(ENOMEM));
        }

        *ret = c;
        c = (smimed_certificate) {};
        return 0;
}

_public_ int smimed_get_certificate_revocation(smimed *s, const char *fingerprint, char **ret, smimed_error *error) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *path = NULL;
        char *value = NULL;
        int r;

        if (!s || !ret)
                return error_set(error, -EINVAL, NULL, "Invalid argument.");
        r = certificate_path(fingerprint, &path, error);
        if (r < 0)
                return r;
        r = sd_bus_get_property_string(s->bus, SMIMED_BUS_NAME, path, SMIMED_CERTIFICATE_INTERFACE, "Revocation", &e,
                                       &value);
        if (r < 0)
                return error_from_bus(error, r, &e);
        *ret = value;
        return 0;
}

/* Calls Remove (trusted NULL) or SetTrusted on a certificate. */
static int call_certificate(smimed *s, const char *fingerprint, const bool *trusted, smimed_error *error) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *path = NULL;
        int r;

        if (!s)
                return error_set(error, -EINVAL, NULL, "Invalid argument.");
        r = certificate_path(fingerprint, &path, error);
        if (r < 0)
                return r;

        if (trusted)
                r = sd_bus_call_method(s->bus, SMIMED_BUS_NAME, path, SMIMED_CERTIFICATE_INTERFACE, "SetTrusted",
                                       &e, NULL, "b", (int) *trusted);
        else
                r = sd_bus_call_method(s->bus, SMIMED_BUS_NAME, path, SMIMED_CERTIFICATE_INTERFACE, "Remove", &e,
                                       NULL, NULL);
        if (r < 0)
                return error_from_bus(error, r, &e);
        return 0;
}

_public_ int smimed_remove_certificate(smimed *s, const char *fingerprint, smimed_error *error) {
        return call_certificate(s, fingerprint, NULL, error);
}

_public_ int smimed_set_certificate_trusted(smimed *s, const char *fingerprint, bool trusted,
                                            smimed_error *error) {
        return call_certificate(s, fingerprint, &trusted, error);
}
