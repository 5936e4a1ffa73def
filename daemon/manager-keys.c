/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509v3.h>

#include "message.h"
#include "certificate-parse.h"
#include "certificate-request.h"
#include "log.h"
#include "manager-certificates.h"
#include "manager-keys.h"
#include "manager.h"
#include "openssl-util.h"
#include "strv.h"
#include "worker-pool.h"

static int token_unavailable(Manager *m, char **ret_message) {
        return message_fail(ret_message, -ENODEV, "The token is %s: %s", token_state_to_string(token_get_state(m->token)),
                    token_get_state_reason(m->token));
}

const TokenKey *manager_find_key(Manager *m, const char *id) {
        for (size_t i = 0; i < m->n_keys; i++)
                if (streq(m->keys[i].id, id))
                        return &m->keys[i];
        return NULL;
}

int manager_key_uri(Manager *m, const char *id, char **ret) {
        return token_key_uri(m->token, id, ret);
}

int manager_key_certificates(Manager *m, const TokenKey *key, char ***ret_fingerprints) {
        if (!key->spki_sha256[0]) {
                *ret_fingerprints = NULL;
                return 0;
        }
        return store_find_by_spki(m->store, key->spki_sha256, ret_fingerprints);
}

/* Re-reads the keys and tells bus clients about keys that came or went. */
void manager_keys_changed_elsewhere(Manager *m) {
        _cleanup_(strv_freep) char **before = NULL;
        size_t old_count = m->n_keys;

        for (size_t i = 0; i < m->n_keys; i++)
                (void) strv_extend(&before, m->keys[i].id);

        manager_refresh_keys(m);

        for (size_t i = 0; i < m->n_keys; i++)
                if (!strv_contains(before, m->keys[i].id))
                        manager_notify_one(m, MANAGER_EVENT_KEY_ADDED, m->keys[i].id);
        for (char **id = before; id && *id; id++)
                if (!manager_find_key(m, *id))
                        manager_notify_one(m, MANAGER_EVENT_KEY_REMOVED, *id);
        if (old_count != m->n_keys)
                manager_notify_one(m, MANAGER_EVENT_PROPERTIES_CHANGED, "KeyCount");
}

void manager_keys_changed(Manager *m) {
        int r;

        manager_keys_changed_elsewhere(m);
        /* Other nodes on a shared token re-read theirs. */
        r = store_announce(m->store, STORE_CHANGE_KEYS, NULL);
        if (r < 0)
                log_warning_errno(r, "Cannot tell other nodes that the keys changed: %m");
}

void manager_refresh_keys(Manager *m) {
        int r;

        token_keys_free(m->keys, m->n_keys);
        m->keys = NULL;
        m->n_keys = 0;
        m->key_spkis = strv_free(m->key_spkis);
        manager_notify(m, MANAGER_EVENT_CERTIFICATES_STALE, NULL); /* HasPrivateKey may have changed */

        if (token_get_state(m->token) != TOKEN_STATE_READY)
                return;

        r = token_list_keys(m->token, &m->keys, &m->n_keys);
        if (r < 0) {
                log_warning_errno(r, "Cannot list the keys in the token: %m");
                return;
        }
        m->key_spkis = calloc(1, sizeof(char *));
        for (size_t i = 0; m->key_spkis && i < m->n_keys; i++)
                if (m->keys[i].spki_sha256[0] && strv_extend(&m->key_spkis, m->keys[i].spki_sha256) < 0)
                        break;
}

void manager_bind_certificates(Manager *m, CertInfo **infos, size_t n) {
        if (token_get_state(m->token) != TOKEN_STATE_READY)
                return;

        for (size_t i = 0; i < n; i++)
                for (size_t k = 0; k < m->n_keys; k++) {
                        const TokenKey *key = &m->keys[k];
                        int r;

                        if (!streq(key->spki_sha256, infos[i]->spki_sha256))
                                continue;
                        r = token_add_certificate(m->token, key->id, infos[i]->x509, key->label);
                        if (r < 0)
                                log_warning_errno(r, "Cannot store certificate %s next to key %s in the token: %m",
                                                  infos[i]->fingerprint, key->id);
                        else if (r > 0)
                                log_info("Certificate %s bound to key %s in the token.", infos[i]->fingerprint,
                                         key->id);
                }
}

/* The label of a key: its certificate's first mail address, else its CN. */
static char *key_label(X509 *certificate) {
        _cleanup_(strv_freep) char **addresses = NULL;
        char cn[256];

        if (certificate_addresses(certificate, &addresses) >= 0 && addresses[0])
                return strdup(addresses[0]);
        if (X509_NAME_get_text_by_NID(X509_get_subject_name(certificate), NID_commonName, cn, sizeof(cn)) > 0)
                return strdup(cn);
        return strdup("smimed key");
}

/* An ImportPKCS12 in progress: the file is read on a worker (the KDF and
 * MAC iterations are the file's choice, and the parser sees untrusted
 * bytes), the key goes into the token and its certificates into the store
 * on the loop. */
struct Pkcs12Job {
        Manager *manager;
        char *sender;
        void *data;
        size_t size;
        char *passphrase;
        bool client_gone;          /* nothing is enrolled for a client that left */

        /* the worker's */
        EVP_PKEY *key;
        X509 *certificate;
        STACK_OF(X509) *chain;
        char *message;

        Pkcs12ImportDone done;
        void *userdata;
        Pkcs12Job *next;
};

static Pkcs12Job *pkcs12_job_free(Pkcs12Job *j) {
        if (!j)
                return NULL;
        free(j->sender);
        if (j->data) {
                explicit_bzero(j->data, j->size);
                free(j->data);
        }
        erase_and_free(j->passphrase);
        EVP_PKEY_free(j->key);
        X509_free(j->certificate);
        sk_X509_pop_free(j->chain, X509_free);
        free(j->message);
        return mfree(j);
}

static void pkcs12_job_unlink(Pkcs12Job *j) {
        for (Pkcs12Job **i = &j->manager->pkcs12_jobs; *i; i = &(*i)->next)
                if (*i == j) {
                        *i = j->next;
                        break;
                }
}

/* On a worker: the file, and whether its key and certificate belong together. */
static int pkcs12_read_work(void *userdata) {
        Pkcs12Job *j = userdata;
        int r;

        r = pkcs12_parse(j->data, j->size, j->passphrase, &j->key, &j->certificate, &j->chain, &j->message);
        if (r < 0)
                return r;
        if (!j->key)
                return message_fail(&j->message, -ENOKEY, "The PKCS#12 file holds no private key.");
        if (!j->certificate && j->chain && sk_X509_num(j->chain) > 0)
                return message_fail(&j->message, -EKEYREJECTED,
                                    "The certificates in the PKCS#12 file do not belong to its private key.");
        if (!j->certificate)
                return message_fail(&j->message, -ENOENT,
                                    "The PKCS#12 file holds a private key but not its certificate; export it with the "
                                    "certificate.");
        if (!X509_check_private_key(j->certificate, j->key))
                return message_fail(&j->message, -EKEYREJECTED,
                                    "The certificate in the file does not belong to its key.");
        return 0;
}

/* On the loop: the key into the token, its certificates into the store,
 * both or neither. */
static int pkcs12_enroll(Manager *m, Pkcs12Job *j, char **ret_key_id, char ***ret_fingerprints, char **ret_message) {
        _cleanup_(sk_X509_free_allp) STACK_OF(X509) *all = NULL;
        _cleanup_free_ char *label = NULL, *id = NULL;
        bool created = false;
        int r;

        if (token_get_state(m->token) != TOKEN_STATE_READY)
                return token_unavailable(m, ret_message);

        label = key_label(j->certificate);
        if (!label)
                return -ENOMEM;

        r = token_import_key(m->token, j->key, j->certificate, label, &id, &created);
        if (r == -ENODEV)
                return token_unavailable(m, ret_message);
        if (r == -EOPNOTSUPP)
                return message_fail(ret_message, r, "The token does not take this kind of key (%s).",
                                    OBJ_nid2sn(EVP_PKEY_get_base_id(j->key)));
        if (r < 0)
                return message_fail(ret_message, r, "The key cannot be written into the token: %m");

        all = sk_X509_new_null();
        if (!all || !X509_up_ref(j->certificate) || !sk_X509_push(all, j->certificate))
                r = -ENOMEM;
        for (int i = 0; r >= 0 && j->chain && i < sk_X509_num(j->chain); i++) {
                X509 *x = sk_X509_value(j->chain, i);

                if (!X509_up_ref(x) || !sk_X509_push(all, x))
                        r = -ENOMEM;
        }
        if (r >= 0)
                r = manager_store_certificates(m, all, false, ret_fingerprints, NULL, ret_message);
        if (r < 0) {
                /* All or nothing: a key whose certificate did not land goes again. */
                if (created && token_remove_key(m->token, id) < 0)
                        log_error("Key %s stays in the token although its import failed.", id);
                return r;
        }

        log_info("Enrolled key %s (\"%s\") from a PKCS#12 file%s.", id, label, created ? "" : ", already there");
        manager_keys_changed(m);
        *ret_key_id = TAKE_PTR(id);
        return 0;
}

/* Back on the loop. */
static void pkcs12_read_done(int r, void *userdata) {
        Pkcs12Job *j = userdata;
        _cleanup_(strv_freep) char **fingerprints = NULL;
        _cleanup_free_ char *id = NULL, *message = NULL;

        if (j->client_gone)
                r = message_fail(&message, -ECONNRESET, "The client went away; nothing was enrolled.");
        else if (r < 0)
                message = TAKE_PTR(j->message);
        else
                r = pkcs12_enroll(j->manager, j, &id, &fingerprints, &message);
        pkcs12_job_unlink(j);
        j->done(r, message, id, fingerprints, j->userdata);
        pkcs12_job_free(j);
}

int manager_import_pkcs12_start(Manager *m, const char *sender, uint64_t owner, const void *data, size_t size,
                                const char *passphrase, Pkcs12ImportDone done, void *userdata, char **ret_message) {
        Pkcs12Job *j;
        int r;

        if (token_get_state(m->token) != TOKEN_STATE_READY)
                return token_unavailable(m, ret_message);
        if (size == 0)
                return message_fail(ret_message, -EBADMSG, "The file is empty.");
        if (size > PKCS12_MAX_SIZE)
                return message_fail(ret_message, -EFBIG, "The file is larger than %u KiB.", PKCS12_MAX_SIZE / 1024);

        j = calloc(1, sizeof(Pkcs12Job));
        if (!j)
                return -ENOMEM;
        j->manager = m;
        j->done = done;
        j->userdata = userdata;
        j->sender = strdup(strempty(sender));
        j->data = malloc(size);
        j->passphrase = strdup(passphrase);
        if (!j->sender || !j->data || !j->passphrase) {
                pkcs12_job_free(j);
                return -ENOMEM;
        }
        memcpy(j->data, data, size);
        j->size = size;

        r = worker_pool_submit(m->workers, owner, pkcs12_read_work, pkcs12_read_done, j);
        if (r < 0) {
                pkcs12_job_free(j);
                return r;
        }
        j->next = m->pkcs12_jobs;
        m->pkcs12_jobs = j;
        return 0;
}

unsigned manager_pkcs12_jobs_cancel_sender(Manager *m, const char *sender) {
        unsigned n = 0;

        for (Pkcs12Job *j = m->pkcs12_jobs; j; j = j->next)
                if (streq(j->sender, sender)) {
                        j->client_gone = true; /* a worker holds it: pkcs12_read_done() drops it */
                        n++;
                }
        return n;
}

void manager_pkcs12_jobs_free(Manager *m) {
        while (m->pkcs12_jobs) {
                Pkcs12Job *j = m->pkcs12_jobs;

                m->pkcs12_jobs = j->next;
                j->done(-ESHUTDOWN, "smimed stopped before the file was read; nothing was enrolled.", NULL, NULL,
                        j->userdata);
                pkcs12_job_free(j);
        }
}

static const char *const key_types[] = { "rsa-2048", "rsa-3072", "rsa-4096", "ec-p256", "ec-p384" };

typedef struct GenerateJob {
        Manager *manager;
        struct GenerateJob *next;
        char *sender;          /* the caller's unique name */
        bool client_gone;      /* it disconnected: the key it would get is removed again */
        char *address;
        char **addresses; /* address first, then the others of the request */
        char *type;
        X509_NAME *subject;
        GenerateKeyDone done;
        void *userdata;
        /* results, from the worker */
        char *id;
        char *csr;
        char *message;
} GenerateJob;

static void generate_job_free(GenerateJob *j) {
        free(j->sender);
        free(j->address);
        strv_free(j->addresses);
        free(j->type);
        X509_NAME_free(j->subject);
        free(j->id);
        free(j->csr);
        free(j->message);
        free(j);
}

/* On a worker: the key pair in the token, then the request signed by it. */
static int generate_work(void *userdata) {
        GenerateJob *j = userdata;
        Token *token = j->manager->token;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_free_ char *uri = NULL;
        int r;

        r = token_generate_key(token, j->type, j->address, &j->id);
        if (r == -ENODEV)
                return message_fail(&j->message, r, "The token is not ready.");
        if (r < 0)
                return message_fail(&j->message, r, "The token cannot generate the key: %m");

        r = token_key_uri(token, j->id, &uri);
        if (r >= 0)
                r = token_load_private_key(token, uri, &key);
        if (r >= 0)
                r = certificate_request_pem(key, (const char *const *) j->addresses, j->subject, &j->csr);
        if (r < 0) {
                token_forget_keys(token);
                if (token_remove_key(token, j->id) < 0)
                        log_error("Key %s stays in the token although making its request failed.", j->id);
                return message_fail(&j->message, r, "The certificate request cannot be made with the new key: %m");
        }
        return 0;
}

static void generate_job_unlink(GenerateJob *j) {
        for (GenerateJob **i = &j->manager->generate_jobs; *i; i = &(*i)->next)
                if (*i == j) {
                        *i = j->next;
                        break;
                }
}

/* On a worker: a key whose caller went away while it was made. */
static int generate_undo_work(void *userdata) {
        GenerateJob *j = userdata;

        token_forget_keys(j->manager->token);
        return token_remove_key(j->manager->token, j->id);
}

/* Back on the loop: the key is gone again, or could not be removed. */
static void generate_undo_done(int r, void *userdata) {
        GenerateJob *j = userdata;
        Manager *m = j->manager;
        _cleanup_free_ char *message = NULL;

        (void) message_fail(&message, -ECONNRESET,
                            r < 0 ? "The client went away while the key was made; removing it again failed."
                                  : "The client went away while the key was made; it was removed again.");
        j->done(-ECONNRESET, message, j->id, NULL, j->userdata); /* the audit record */
        if (r < 0)
                log_error_errno(r, "The client of GenerateKey went away; key %s stays in the token, removing it failed: %m",
                                j->id);
        else
                log_info("The client of GenerateKey went away; key %s was removed from the token again.", j->id);
        generate_job_unlink(j);
        generate_job_free(j);
        manager_generation_ended(m);
}

void manager_generate_jobs_free(Manager *m) {
        while (m->generate_jobs) {
                GenerateJob *j = m->generate_jobs;

                m->generate_jobs = j->next;
                j->done(-ESHUTDOWN, "smimed stopped while the key was made; it may be in the token (smimectl keys).",
                        j->id, NULL, j->userdata);
                generate_job_free(j);
        }
}

unsigned manager_generate_jobs_cancel_sender(Manager *m, const char *sender) {
        unsigned n = 0;

        for (GenerateJob *j = m->generate_jobs; j; j = j->next)
                if (streq(j->sender, sender)) {
                        j->client_gone = true; /* a worker holds it: generate_done() undoes it */
                        n++;
                }
        return n;
}

/* Back on the loop. */
static void generate_done(int r, void *userdata) {
        GenerateJob *j = userdata;
        Manager *m = j->manager;

        if (r >= 0 && j->client_gone) {
                /* Nobody would ever learn of this key: not on the loop, the token may be slow. */
                r = worker_pool_submit(m->workers, 0, generate_undo_work, generate_undo_done, j);
                if (r >= 0)
                        return;
                generate_undo_done(r, j);
                return;
        }
        if (r >= 0) {
                log_info("Generated key %s (%s) for %s in the token.", j->id, j->type, j->address);
                manager_keys_changed(m);
        }
        j->done(r, j->message, r >= 0 ? j->id : NULL, r >= 0 ? j->csr : NULL, j->userdata);
        generate_job_unlink(j);
        generate_job_free(j);
        manager_generation_ended(m);
}

/* Appends each of more (NULL: none) that *l does not hold yet. */
static int strv_extend_missing(char ***l, char *const *more) {
        for (char *const *a = more; a && *a; a++)
                if (!strv_contains(*l, *a) && strv_extend(l, *a) < 0)
                        return -ENOMEM;
        return 0;
}

/* The key type that renews a certificate's key: the same curve, or RSA
 * of the same size (at least the smallest smimed makes). */
static const char *renewal_key_type(X509 *x509) {
        EVP_PKEY *key = X509_get0_pubkey(x509);
        char group[64];

        if (key && EVP_PKEY_get_base_id(key) == EVP_PKEY_EC) {
                if (EVP_PKEY_get_group_name(key, group, sizeof(group), NULL) && streq(group, "secp384r1"))
                        return "ec-p384";
                return "ec-p256";
        }
        if (key && EVP_PKEY_get_bits(key) > 3072)
                return "rsa-4096";
        if (key && EVP_PKEY_get_bits(key) > 2048)
                return "rsa-3072";
        return "rsa-2048";
}

/* renew: the certificate, which must be one of address's. */
static int renewal_certificate(Manager *m, const GenerateKeyRequest *req, X509 **ret_x509, char ***ret_addresses,
                               char **ret_message) {
        _cleanup_(X509_freep) X509 *x509 = NULL;
        _cleanup_(strv_freep) char **addresses = NULL;
        int r;

        r = store_get_certificate(m->store, req->renew, &x509, NULL);
        if (r == -ENOENT)
                return message_fail(ret_message, r, "No certificate %s is in the store to renew.", req->renew);
        if (r < 0)
                return message_fail(ret_message, r, "The certificate %s cannot be read from the store: %m",
                                    req->renew);
        r = certificate_addresses(x509, &addresses);
        if (r < 0)
                return r;
        if (!strv_contains(addresses, req->address))
                return message_fail(ret_message, -EINVAL, "Certificate %s is not one of %s: it cannot renew it.",
                                    req->renew, req->address);
        *ret_x509 = TAKE_PTR(x509);
        *ret_addresses = TAKE_PTR(addresses);
        return 0;
}

int manager_generate_key_start(Manager *m, const char *sender, const GenerateKeyRequest *req, GenerateKeyDone done,
                               void *userdata, char **ret_message) {
        _cleanup_free_ char *default_subject = NULL;
        _cleanup_(X509_freep) X509 *renewed = NULL;
        _cleanup_(strv_freep) char **renewed_addresses = NULL;
        const char *address = req->address, *type = req->type, *subject = req->subject;
        GenerateJob *j;
        bool known = false;
        int r;

        if (token_get_state(m->token) != TOKEN_STATE_READY)
                return token_unavailable(m, ret_message);
        if (m->stopping)
                return message_fail(ret_message, -ESHUTDOWN, "smimed is stopping.");

        if (req->renew) {
                r = renewal_certificate(m, req, &renewed, &renewed_addresses, ret_message);
                if (r < 0)
                        return r;
                type = type ?: renewal_key_type(renewed);
        }
        type = type ?: "rsa-3072";
        for (size_t i = 0; i < ELEMENTSOF(key_types); i++)
                known |= streq(key_types[i], type);
        if (!known)
                return message_fail(ret_message, -EINVAL,
                                    "Unknown key type \"%s\" (expected rsa-2048, rsa-3072, rsa-4096, ec-p256 or "
                                    "ec-p384).",
                                    type);

        j = calloc(1, sizeof(GenerateJob));
        if (!j)
                return -ENOMEM;
        j->manager = m;
        j->done = done;
        j->userdata = userdata;
        j->sender = strdup(strempty(sender));
        j->address = strdup(address);
        j->type = strdup(type);
        if (!j->sender || !j->address || !j->type || strv_extend(&j->addresses, address) < 0) {
                generate_job_free(j);
                return -ENOMEM;
        }
        if (strv_extend_missing(&j->addresses, req->more_addresses) < 0 ||
            strv_extend_missing(&j->addresses, renewed_addresses) < 0) {
                generate_job_free(j);
                return -ENOMEM;
        }

        if (renewed && !subject) {
                j->subject = X509_NAME_dup(X509_get_subject_name(renewed));
                if (!j->subject) {
                        generate_job_free(j);
                        return -ENOMEM;
                }
        }

        if (!subject && !j->subject) {
                if (asprintf(&default_subject, "CN=%s", address) < 0) {
                        generate_job_free(j);
                        return -ENOMEM;
                }
                subject = default_subject;
        }
        r = j->subject ? 0 : parse_distinguished_name(subject, &j->subject);
        if (r < 0) {
                generate_job_free(j);
                if (r == -ENOMEM)
                        return r;
                return message_fail(ret_message, -EINVAL,
                                    "\"%s\" is not a distinguished name (expected e.g. \"CN=Alice,O=Example\").",
                                    subject);
        }

        /* Key generation can take long (RSA-4096 in an HSM): not on the loop. */
        log_debug("GenerateKey for %s (%s): handing it to a worker.", address, type);
        r = worker_pool_submit(m->workers, 0, generate_work, generate_done, j);
        if (r < 0) {
                generate_job_free(j);
                return r;
        }
        j->next = m->generate_jobs;
        m->generate_jobs = j;
        return 0;
}

int manager_remove_key(Manager *m, const char *id, char **ret_message) {
        int r;

        if (token_get_state(m->token) != TOKEN_STATE_READY)
                return token_unavailable(m, ret_message);

        r = token_remove_key(m->token, id);
        if (r == -ENOENT)
                return message_fail(ret_message, -ENOKEY, "No key %s is in the token.", id);
        if (r < 0)
                return message_fail(ret_message, r, "The key cannot be removed from the token: %m");

        token_forget_keys(m->token); /* the engine's handle of it is stale now */
        log_info("Removed key %s from the token.", id);
        manager_keys_changed(m);
        return 0;
}
