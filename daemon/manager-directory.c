/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "directory.h"
#include "log.h"
#include "manager-certificates.h"
#include "manager-directory.h"
#include "manager.h"
#include "pin-file.h"
#include "policy.h"
#include "store.h"
#include "strv.h"

typedef struct Resolution {
        Manager *manager;
        unsigned pending;
        bool cancelled;
        ManagerDirectoryDone done;
        void *userdata;
} Resolution;

int manager_directory_start(Manager *m) {
        int r;

        r = directory_new(m->event, &m->directory);
        if (r < 0)
                return r;
        manager_directory_apply(m);
        return 0;
}

void manager_directory_apply(Manager *m) {
        _cleanup_(erase_and_freep) char *password = NULL;
        const Config *c = m->config;
        int r;

        if (!m->directory)
                return;
        if (c->directory_uri && c->directory_password_file) {
                _cleanup_free_ char *message = NULL;

                r = pin_file_read(c->directory_password_file, &password, &message);
                if (r < 0)
                        log_warning_errno(r, "[Directory] PasswordFile=: %s",
                                          message ? message : "cannot be read: %m");
        }
        r = directory_configure(m->directory, &(DirectorySettings){
                                                      .uri = c->directory_uri,
                                                      .base = c->directory_base,
                                                      .filter = c->directory_filter,
                                                      .bind_dn = c->directory_bind_dn,
                                                      .password = password,
                                                      .timeout_usec = c->directory_timeout_usec,
                                                      .cache_usec = c->directory_cache_usec,
                                              });
        if (r < 0)
                log_warning_errno(r, "Failed to apply [Directory]: %m");
}

void manager_directory_stop(Manager *m) {
        m->directory = directory_free(m->directory);
}

int manager_certificate_directory_fetched(Manager *m, const char *fingerprint, time_t *ret) {
        return store_get_directory_fetched(m->store, fingerprint, ret);
}

/* Whether the store cannot serve address by itself: no usable certificate
 * for encryption, or only ones the directory gave more than CacheSec= ago. */
static int needs_directory(Manager *m, const char *address) {
        _cleanup_(strv_freep) char **usable = NULL;
        CapabilityContext ctx;
        time_t now = time(NULL);
        int r;

        manager_capability_context(m, &ctx);
        r = capability_lookup(&ctx, address, CERT_PURPOSE_ENCRYPT, true, &usable);
        if (r < 0)
                return r;
        for (char **f = usable; *f; f++) {
                time_t at;

                r = store_get_directory_fetched(m->store, *f, &at);
                if (r < 0)
                        return r;
                if (at == 0 || (uint64_t) (now - at) * 1000000ULL < m->config->directory_cache_usec)
                        return false;
        }
        return true;
}

/* What of an entry's certificates is worth keeping: CAs (to build chains)
 * and certificates for the address asked for. */
static void keep_relevant(STACK_OF(X509) * certs, const char *address) {
        for (int i = sk_X509_num(certs) - 1; i >= 0; i--) {
                X509 *x509 = sk_X509_value(certs, i);

                if (X509_check_ca(x509) > 0 || X509_check_email(x509, address, strlen(address), 0) == 1)
                        continue;
                X509_free(sk_X509_delete(certs, i));
        }
}

static void resolution_step(Resolution *res) {
        if (--res->pending > 0)
                return;
        res->done(res->manager, res->cancelled, res->userdata);
        free(res);
}

static void on_lookup(int r, const char *address, STACK_OF(X509) * certs, const char *message, void *userdata) {
        Resolution *res = userdata;
        Manager *m = res->manager;

        if (r == -ECANCELED)
                res->cancelled = true;
        else if (r >= 0) {
                _cleanup_free_ char *text = NULL;

                keep_relevant(certs, address);
                if (sk_X509_num(certs) > 0) {
                        r = manager_store_directory_certificates(m, certs, time(NULL), NULL, &text);
                        if (r < 0)
                                log_warning_errno(r, "Certificates of %s from the directory not stored: %s", address,
                                                  text ? text : "%m");
                } else
                        log_info("The directory has no certificate for %s itself.", address);
        } else if (r != -ENOENT)
                log_debug("Directory lookup of %s failed: %s", address, strempty(message));
        sk_X509_pop_free(certs, X509_free);
        resolution_step(res);
}

int manager_directory_resolve(Manager *m, char *const *addresses, ManagerDirectoryDone done, void *userdata) {
        Resolution *res;
        int r = 0;

        if (!m->directory || !m->config->directory_uri || policy_check_enabled(m->config, NULL) < 0)
                return 0;

        res = calloc(1, sizeof(Resolution));
        if (!res)
                return -ENOMEM;
        *res = (Resolution){.manager = m, .pending = 1, .done = done, .userdata = userdata};

        for (size_t i = 0; addresses && addresses[i]; i++) {
                bool twice = false;

                if (!addresses[i][0])
                        continue;
                for (size_t k = 0; k < i; k++)
                        twice = twice || streq(addresses[k], addresses[i]);
                if (twice)
                        continue;
                r = needs_directory(m, addresses[i]);
                if (r < 0)
                        break;
                if (r == 0)
                        continue;
                r = directory_lookup(m->directory, addresses[i], on_lookup, res);
                if (r < 0)
                        break;
                if (r > 0)
                        res->pending++;
        }
        if (r < 0 && res->pending > 1) {
                /* Some were started: the callback comes when they end; the error is logged. */
                log_warning_errno(r, "Failed to ask the directory: %m");
                r = 0;
        } else if (r < 0) {
                free(res);
                return r;
        }
        if (res->pending == 1) {
                free(res);
                return 0;
        }
        res->pending--;
        return 1;
}
