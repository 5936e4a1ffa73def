/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/x509.h>

#include "openssl-util.h"
#include "message.h"
#include "certificate-parse.h"
#include "log.h"
#include "pin-file.h"
#include "manager-certificates.h"
#include "manager-cluster.h"
#include "manager-keys.h"
#include "manager-expiry.h"
#include "manager-revocation.h"
#include "manager.h"
#include "policy.h"
#include "store-lookup.h"
#include "strv.h"

static void crl_stack_freep(STACK_OF(X509_CRL) **s) {
        sk_X509_CRL_pop_free(*s, X509_CRL_free);
}

typedef struct CertInfos {
        CertInfo **items;
        size_t n;
} CertInfos;

static void cert_infos_done(CertInfos *c) {
        for (size_t i = 0; i < c->n; i++)
                cert_info_free(c->items[i]);
        free(c->items);
}

void manager_crls_changed(Manager *m) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_REALTIME, &ts);
        m->crl_updated_usec = (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
        manager_notify(m, MANAGER_EVENT_CERTIFICATES_STALE, NULL); /* statuses may say revoked now */
        manager_notify_one(m, MANAGER_EVENT_PROPERTIES_CHANGED, "CRLUpdated");
}

void manager_update_certificate_count(Manager *m) {
        uint64_t count;
        int r;

        r = store_count_certificates(m->store, &count);
        if (r < 0) {
                log_warning_errno(r, "Cannot count the certificates in the store: %m");
                return;
        }
        if (count != m->certificate_count) {
                m->certificate_count = count;
                manager_notify_one(m, MANAGER_EVENT_PROPERTIES_CHANGED, "CertificateCount");
        }
        manager_update_expiring_count(m);
}

/* The store's password: PasswordFile=, else the credential store-password
 * when it was passed, else none (trust, peer or a client certificate). */
static int read_store_password(const Config *config, char **ret_password, char **ret_message) {
        _cleanup_free_ char *credential = NULL;
        const char *path = config->store_password_file, *credentials;

        *ret_password = NULL;
        if (!path) {
                credentials = getenv("CREDENTIALS_DIRECTORY");
                if (!credentials)
                        return 0;
                if (asprintf(&credential, "%s/store-password", credentials) < 0)
                        return -ENOMEM;
                if (access(credential, F_OK) < 0)
                        return 0;
                path = credential;
        }
        return pin_file_read(path, ret_password, ret_message);
}

int manager_open_db(const Config *config, Db **ret, char **ret_message) {
        _cleanup_(erase_and_freep) char *password = NULL;
        int r;

        if (streq(config->store_backend, "sqlite"))
                return db_open_sqlite(config->store_path, ret, ret_message);
        if (!config->store_connection)
                return message_fail(ret_message, -EINVAL, "[Store] Backend=postgresql needs Connection=.");
        r = read_store_password(config, &password, ret_message);
        if (r < 0)
                return r;
        return db_open_postgresql(config->store_connection, password, config->io_timeout_usec, ret, ret_message);
}

bool manager_store_config_changed(const Config *a, const Config *b) {
        return !streq(a->store_path, b->store_path) || !streq(a->store_backend, b->store_backend) ||
               !streq_ptr(a->store_connection, b->store_connection) ||
               !streq_ptr(a->store_password_file, b->store_password_file);
}

int manager_open_store(Manager *m, const Config *config, char **ret_message) {
        _cleanup_(store_freep) Store *store = NULL;
        Validator *validator = NULL;
        ValidationLookup lookup;
        Db *db = NULL;
        int r;

        r = manager_open_db(config, &db, ret_message);
        if (r < 0)
                return r;
        r = store_open_db(db, &store, ret_message);
        if (r < 0)
                return r;
        /* A new store, a new validator: no result of the old store's is kept. */
        lookup = store_validation_lookup(store);
        lookup.want_crl = manager_want_crl;
        lookup.want_crl_userdata = m;
        lookup.want_ocsp = manager_want_ocsp;
        r = validator_new(&lookup, &validator);
        if (r < 0)
                return message_fail(ret_message, r, "Cannot open the certificate store %s: %m", store_name(store));

        validator_free(m->validator);
        store_free(m->store);
        m->validator = validator;
        m->store = TAKE_PTR(store);
        manager_cluster_start(m, config);
        manager_notify(m, MANAGER_EVENT_CERTIFICATES_STALE, NULL);
        m->certificate_count = UINT64_MAX; /* makes the next count announce itself */
        manager_update_certificate_count(m);
        log_info("Certificate store %s: %" PRIu64 " certificates.", store_name(m->store), m->certificate_count);
        return 0;
}

void manager_capability_context(Manager *m, CapabilityContext *ret) {
        *ret = (CapabilityContext){
                .lookup = store_capability_lookup(m->store),
                .validator = m->validator,
                .policy = &m->policy,
                .now = time(NULL),
                .token_ready = token_get_state(m->token) == TOKEN_STATE_READY,
                .token_problem = token_get_state_reason(m->token),
                .key_spkis = m->key_spkis,
                .disabled = policy_check_enabled(m->config, NULL) < 0,
                .generation = m->change_generation,
        };
}

uint64_t manager_store_generation(Manager *m) {
        return store_generation(m->store);
}

int manager_load_certificate(Manager *m, const char *fingerprint, X509 **ret, bool *ret_trusted) {
        return store_get_certificate(m->store, fingerprint, ret, ret_trusted);
}

int manager_list_certificates(Manager *m, char ***ret_fingerprints) {
        return store_find_by_address(m->store, NULL, ret_fingerprints);
}

int manager_validate_certificate(Manager *m, X509 *x509, time_t at, const CertPurpose *purposes, size_t n,
                                 Validation *ret) {
        return validate_certificate_purposes(m->validator, x509, &m->policy, at, purposes, n, ret);
}

static int read_certificates(STACK_OF(X509) *certs, CertInfos *ret, char **ret_message) {
        CertInfos infos = {};
        size_t n = (size_t) sk_X509_num(certs);
        int r;

        infos.items = calloc(n ? n : 1, sizeof(CertInfo *));
        if (!infos.items)
                return -ENOMEM;
        for (; infos.n < n; infos.n++) {
                r = cert_info_new(sk_X509_value(certs, (int) infos.n), &infos.items[infos.n]);
                if (r < 0) {
                        cert_infos_done(&infos);
                        return r == -ENOMEM ? r
                                            : message_fail(ret_message, -EBADMSG,
                                                   "item %zu of %zu: the certificate cannot be read (bad dates, "
                                                   "names or key)",
                                                   infos.n + 1, n);
                }
        }
        *ret = infos;
        return 0;
}

/* directory_at > 0: the certificates came from the [Directory] then; the
 * new ones are marked so, and the ones it gave before marked again. */
static int store_certificates(Manager *m, STACK_OF(X509) * certs, bool trust, time_t directory_at,
                              char ***ret_fingerprints, char ***ret_added, char **ret_message) {
        _cleanup_(cert_infos_done) CertInfos infos = {};
        _cleanup_(strv_freep) char **fingerprints = NULL, **added = NULL;
        int r;

        r = read_certificates(certs, &infos, ret_message);
        if (r < 0)
                return r;

        fingerprints = calloc(1, sizeof(char *));
        added = calloc(1, sizeof(char *));
        if (!fingerprints || !added)
                return -ENOMEM;

        /* One transaction: the batch lands whole or not at all. */
        r = store_begin(m->store);
        if (r < 0)
                return message_fail(ret_message, r, "The certificate store cannot be written: %m");
        for (size_t i = 0; i < infos.n; i++) {
                const CertInfo *info = infos.items[i];
                bool is_new;

                if (strv_contains(fingerprints, info->fingerprint))
                        continue;
                /* Only CA certificates become anchors through an import. */
                r = store_add_certificate(m->store, info, trust && info->is_ca, &is_new);
                if (r >= 0 && directory_at > 0)
                        r = store_set_directory_fetched(m->store, info->fingerprint, directory_at, !is_new);
                if (r >= 0)
                        r = strv_extend(&fingerprints, info->fingerprint);
                if (r >= 0 && is_new)
                        r = strv_extend(&added, info->fingerprint);
                if (r < 0)
                        break;
        }
        if (r >= 0)
                r = store_commit(m->store);
        if (r < 0) {
                store_rollback(m->store);
                return message_fail(ret_message, r, "The certificate store cannot be written: %m");
        }

        log_info("Imported %zu certificates (%zu new)%s%s.", strv_length(fingerprints), strv_length(added),
                 trust ? ", CA certificates trusted" : "", directory_at > 0 ? " from the directory" : "");
        manager_bind_certificates(m, infos.items, infos.n);
        for (char **f = added; *f; f++)
                manager_notify_one(m, MANAGER_EVENT_CERTIFICATE_ADDED, *f);
        if (trust)
                for (char **f = fingerprints; *f; f++)
                        if (!strv_contains(added, *f))
                                manager_notify_one(m, MANAGER_EVENT_CERTIFICATE_TRUST, *f);
        manager_update_certificate_count(m);

        if (ret_fingerprints)
                *ret_fingerprints = TAKE_PTR(fingerprints);
        if (ret_added)
                *ret_added = TAKE_PTR(added);
        return 0;
}

int manager_store_certificates(Manager *m, STACK_OF(X509) * certs, bool trust, char ***ret_fingerprints,
                               char ***ret_added, char **ret_message) {
        return store_certificates(m, certs, trust, 0, ret_fingerprints, ret_added, ret_message);
}

int manager_store_directory_certificates(Manager *m, STACK_OF(X509) * certs, time_t at, char ***ret_fingerprints,
                                         char **ret_message) {
        return store_certificates(m, certs, false, at, ret_fingerprints, NULL, ret_message);
}

int manager_import_certificates(Manager *m, const void *data, size_t size, bool trust, char ***ret_fingerprints,
                                char **ret_message) {
        _cleanup_(sk_X509_free_allp) STACK_OF(X509) *certs = NULL;
        int r;

        r = certificates_parse(data, size, &certs, ret_message);
        if (r < 0)
                return r;
        return manager_store_certificates(m, certs, trust, ret_fingerprints, NULL, ret_message);
}

typedef struct CrlIssuerSearch {
        X509_CRL *crl;
        bool found;
        bool verified;
} CrlIssuerSearch;

static int crl_try_issuer(X509 *issuer, bool trusted, void *userdata) {
        CrlIssuerSearch *s = userdata;

        (void) trusted;
        s->found = true;
        if (!s->verified && X509_CRL_verify(s->crl, X509_get0_pubkey(issuer)) == 1)
                s->verified = true;
        return 0;
}

static int crl_check_issuer(Manager *m, X509_CRL *crl, size_t i, size_t n, char **ret_message) {
        CrlIssuerSearch search = { .crl = crl };
        unsigned char *name = NULL;
        char issuer[256] = "";
        int len, r;

        X509_NAME_oneline(X509_CRL_get_issuer(crl), issuer, sizeof(issuer));
        len = i2d_X509_NAME(X509_CRL_get_issuer(crl), &name);
        if (len <= 0)
                return message_fail(ret_message, -EBADMSG, "item %zu of %zu: the CRL has no readable issuer", i + 1, n);
        r = store_foreach_by_subject(m->store, name, (size_t) len, crl_try_issuer, &search);
        OPENSSL_free(name);
        if (r < 0)
                return message_fail(ret_message, r, "The certificate store cannot be read: %m");

        if (!search.found)
                return message_fail(ret_message, -ENOENT,
                            "item %zu of %zu: the CRL's issuer %s is not in the store; import its certificate first",
                            i + 1, n, issuer);
        if (!search.verified)
                return message_fail(ret_message, -EKEYREJECTED,
                            "item %zu of %zu: the CRL's signature does not verify with the key of its issuer %s",
                            i + 1, n, issuer);
        return 0;
}

int manager_store_crls(Manager *m, STACK_OF(X509_CRL) * crls, unsigned *ret_stored, char **ret_message) {
        size_t n = (size_t) sk_X509_CRL_num(crls);
        unsigned stored = 0;
        int r;

        r = store_begin(m->store);
        if (r < 0)
                return message_fail(ret_message, r, "The certificate store cannot be written: %m");
        for (size_t i = 0; r >= 0 && i < n; i++) {
                bool is_stored = false;

                r = store_put_crl(m->store, sk_X509_CRL_value(crls, (int) i), &is_stored);
                if (r >= 0 && is_stored)
                        stored++;
        }
        if (r >= 0)
                r = store_commit(m->store);
        if (r < 0) {
                store_rollback(m->store);
                return message_fail(ret_message, r, "The certificate store cannot be written: %m");
        }
        if (stored > 0)
                manager_crls_changed(m);
        *ret_stored = stored;
        return 0;
}

int manager_import_crls(Manager *m, const void *data, size_t size, unsigned *ret_count, char **ret_message) {
        _cleanup_(crl_stack_freep) STACK_OF(X509_CRL) *crls = NULL;
        size_t n;
        unsigned stored = 0;
        int r;

        r = crls_parse(data, size, &crls, ret_message);
        if (r < 0)
                return r;
        n = (size_t) sk_X509_CRL_num(crls);

        for (size_t i = 0; i < n; i++) {
                r = crl_check_issuer(m, sk_X509_CRL_value(crls, (int) i), i, n, ret_message);
                if (r < 0)
                        return r;
        }

        r = manager_store_crls(m, crls, &stored, ret_message);
        if (r < 0)
                return r;
        log_info("Imported %u of %zu CRLs (the others were not newer than the stored ones).", stored, n);
        *ret_count = stored;
        return 0;
}

int manager_remove_certificate(Manager *m, const char *fingerprint, char **ret_message) {
        int r;

        r = store_remove_certificate(m->store, fingerprint);
        if (r == -ENOENT)
                return message_fail(ret_message, r, "No certificate %s is in the store.", fingerprint);
        if (r < 0)
                return message_fail(ret_message, r, "The certificate store cannot be written: %m");

        log_info("Removed certificate %s.", fingerprint);
        manager_notify_one(m, MANAGER_EVENT_CERTIFICATE_REMOVED, fingerprint);
        manager_update_certificate_count(m);
        return 0;
}

int manager_set_certificate_trusted(Manager *m, const char *fingerprint, bool trusted, char **ret_message) {
        int r;

        r = store_set_trusted(m->store, fingerprint, trusted);
        if (r == -ENOENT)
                return message_fail(ret_message, r, "No certificate %s is in the store.", fingerprint);
        if (r < 0)
                return message_fail(ret_message, r, "The certificate store cannot be written: %m");

        log_info("Certificate %s is %s.", fingerprint, trusted ? "now a trust anchor" : "no longer a trust anchor");
        manager_notify_one(m, MANAGER_EVENT_CERTIFICATE_TRUST, fingerprint);
        return 0;
}
