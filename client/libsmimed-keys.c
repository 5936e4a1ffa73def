/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libsmimed-internal.h"
#include "macro.h"
#include "strv.h"

/* smimed reads the file for up to 30 s, then decrypts it and writes the
 * token; polkit may ask someone for a password first. */
#define IMPORT_PKCS12_TIMEOUT_USEC (2 * 60 * USEC_PER_SEC)
/* RSA-4096 generation in a software token can take minutes. */
#define GENERATE_KEY_TIMEOUT_USEC (5 * 60 * USEC_PER_SEC)

/* A key id as smimed writes it (CKA_ID): lower-case hex, at least one byte. */
static bool key_id_is_valid(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n % 2 != 0)
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return false;
        return true;
}

/* The object path of a key id given in any case. */
static int key_path(const char *id, char **ret, smimed_error *error) {
        _cleanup_free_ char *lower = NULL;

        if (!id)
                return error_set(error, -EINVAL, NULL, "No key id given.");
        lower = strdup(id);
        if (!lower)
                return error_set(error, -ENOMEM, NULL, strerror(ENOMEM));
        for (char *p = lower; *p; p++)
                if (*p >= 'A' && *p <= 'F')
                        *p = *p - 'A' + 'a';
        if (!key_id_is_valid(lower))
                return error_set(error, -EINVAL, NULL, "A key id is the token's CKA_ID: hexadecimal digits.");

        if (asprintf(ret, SMIMED_KEY_PATH_PREFIX "/%s", lower) < 0)
                return error_set(error, -ENOMEM, NULL, strerror(ENOMEM));
        return 0;
}

/* The id in a key's object path, or NULL. */
static const char *key_id_from_path(const char *path) {
        const char *prefix = SMIMED_KEY_PATH_PREFIX "/";

        if (strncmp(path, prefix, strlen(prefix)) != 0 || !key_id_is_valid(path + strlen(prefix)))
                return NULL;
        return path + strlen(prefix);
}

static void key_done(smimed_key *k) {
        free(k->path);
        free(k->id);
        free(k->label);
        free(k->algorithm);
        free(k->uri);
        strv_free(k->certificates);
        *k = (smimed_key) {};
}

_public_ void smimed_keys_free(smimed_key *keys, size_t n) {
        if (!keys)
                return;
        for (size_t i = 0; i < n; i++)
                key_done(&keys[i]);
        free(keys);
}

typedef struct KeyList {
        smimed_key *items;
        size_t n;
} KeyList;

static void key_list_done(KeyList *l) {
        smimed_keys_free(l->items, l->n);
        *l = (KeyList) {};
}

static int key_read_certificates(sd_bus_message *m, smimed_key *k) {
        char **fingerprints = NULL;
        int r;

        r = sd_bus_message_enter_container(m, 'v', "ao");
        if (r < 0)
                return r;
        r = bus_read_certificate_paths(m, &fingerprints);
        if (r < 0)
                return r;
        strv_free(k->certificates);
        k->certificates = fingerprints;
        return sd_bus_message_exit_container(m);
}

static int key_read_property(sd_bus_message *m, const char *name, smimed_key *k) {
        if (streq(name, "Id"))
                return bus_read_variant_string(m, &k->id);
        if (streq(name, "Label"))
                return bus_read_variant_string(m, &k->label);
        if (streq(name, "Algorithm"))
                return bus_read_variant_string(m, &k->algorithm);
        if (streq(name, "URI"))
                return bus_read_variant_string(m, &k->uri);
        if (streq(name, "Bits"))
                return bus_read_variant_uint32(m, &k->bits);
        if (streq(name, "Certificates"))
                return key_read_certificates(m, k);
        return sd_bus_message_skip(m, "v"); /* newer daemon, newer property */
}

static int key_read_all(sd_bus_message *reply, smimed_key *k) {
        int r;

        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                const char *name;

                r = sd_bus_message_read(reply, "s", &name);
                if (r < 0)
                        return r;
                r = key_read_property(reply, name, k);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        if (!k->certificates) {
                k->certificates = calloc(1, sizeof(char *));
                if (!k->certificates)
                        return -ENOMEM;
        }
        return sd_bus_message_exit_container(reply);
}

static int key_compare(const void *a, const void *b) {
        const smimed_key *x = a, *y = b;
        int c = strcmp(strempty(x->label), strempty(y->label));

        return c != 0 ? c : strcmp(x->id, y->id);
}

/* One object of GetManagedObjects' answer, its path read: the key, when it
 * has the key interface (added to l), else nothing. */
static int key_list_read_object(sd_bus_message *reply, const char *path, KeyList *l) {
        int r;

        r = sd_bus_message_enter_container(reply, 'a', "{sa{sv}}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(reply, 'e', "sa{sv}")) > 0) {
                _cleanup_(key_done) smimed_key k = {};
                const char *interface, *id = key_id_from_path(path);
                smimed_key *more;

                r = sd_bus_message_read(reply, "s", &interface);
                if (r < 0)
                        return r;
                if (!streq(interface, SMIMED_KEY_INTERFACE) || !id) {
                        r = sd_bus_message_skip(reply, "a{sv}");
                        if (r >= 0)
                                r = sd_bus_message_exit_container(reply);
                        if (r < 0)
                                return r;
                        continue;
                }
                k.path = strdup(path);
                if (!k.path)
                        return -ENOMEM;
                r = key_read_all(reply, &k);
                if (r < 0)
                        return r;
                if (!k.id) {
                        k.id = strdup(id);
                        if (!k.id)
                                return -ENOMEM;
                }
                more = reallocarray(l->items, l->n + 1, sizeof(smimed_key));
                if (!more)
                        return -ENOMEM;
                l->items = more;
                l->items[l->n++] = k;
                k = (smimed_key){};
                r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(reply);
}

/* GetManagedObjects of the keys' own ObjectManager (/org/smimed1/key): every
 * key with its properties in one call, and none of the store's
 * certificates, which that of /org/smimed1 would send too. */
_public_ int smimed_list_keys(smimed *s, smimed_key **ret, size_t *ret_n, smimed_error *error) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(key_list_done) KeyList l = {};
        int r;

        if (!s || !ret || !ret_n)
                return error_set(error, -EINVAL, NULL, "Invalid argument.");

        r = sd_bus_call_method(s->bus, SMIMED_BUS_NAME, SMIMED_KEY_PATH_PREFIX, "org.freedesktop.DBus.ObjectManager",
                               "GetManagedObjects", &e, &reply, NULL);
        if (r < 0)
                return error_from_bus(error, r, &e);
        r = sd_bus_message_enter_container(reply, 'a', "{oa{sa{sv}}}");
        while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'e', "oa{sa{sv}}")) > 0) {
                const char *path;

                r = sd_bus_message_read(reply, "o", &path);
                if (r >= 0)
                        r = key_list_read_object(reply, path, &l);
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(reply);
        if (r < 0)
                return error_set(error, r, NULL, r == -ENOMEM ? strerror(ENOMEM) : bus_bad_reply);
        if (l.n > 1)
                qsort(l.items, l.n, sizeof(smimed_key), key_compare);

        /* Never NULL, as before: a caller may free it unconditionally. */
        if (!l.items) {
                l.items = calloc(1, sizeof(smimed_key));
                if (!l.items)
                        return error_set(error, -ENOMEM, NULL, strerror(ENOMEM));
        }
        *ret = TAKE_PTR(l.items);
        *ret_n = l.n;
        l.n = 0;
        return 0;
}

/* Reads the "o" of a key that ImportPKCS12 and GenerateKey return. */
static int read_key_path(sd_bus_message *reply, char **ret_id) {
        const char *path, *id;
        int r;

        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return r;
        id = key_id_from_path(path);
        if (!id)
                return -EBADMSG;
        *ret_id = strdup(id);
        return *ret_id ? 0 : -ENOMEM;
}

_public_ int smimed_import_pkcs12_fd(smimed *s, int fd, const char *passphrase, char **ret_key_id,
                                     char ***ret_fingerprints, smimed_error *error) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(strv_freep) char **fingerprints = NULL;
        _cleanup_(input_relay_done) InputRelay in = {-1, -1};
        _cleanup_free_ char *id = NULL;
        int r;

        if (!s)
                return error_set(error, -EINVAL, NULL, "Invalid argument.");
        if (fd < 0)
                return error_set(error, -EBADF, NULL, "No file descriptor given.");
        r = fd_check_input(fd, error);
        if (r >= 0)
                r = input_relay_open(&in, fd, error);
        if (r < 0)
                return r;

        r = sd_bus_message_new_method_call(s->bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                           SMIMED_MANAGER_INTERFACE, "ImportPKCS12");
        if (r >= 0)
                r = sd_bus_message_sensitive(m); /* sd-bus wipes the message when it frees it */
        if (r < 0)
                return error_set(error, r, NULL, strerror(-r));

        r = sd_bus_message_append(m, "h", in.fd); /* sd-bus sends a duplicate; fd stays the caller's */
        if (r < 0)
                return error_set(error, r, NULL, "Cannot pass the file descriptor.");
        r = sd_bus_message_append(m, "s", strempty(passphrase));
        if (r == -EINVAL)
                return error_set(error, r, NULL, "The passphrase is not valid UTF-8 text.");
        if (r >= 0)
                r = sd_bus_message_append(m, "a{sv}", 0);
        if (r < 0)
                return error_set(error, r, NULL, strerror(-r));

        r = sd_bus_call(s->bus, m, IMPORT_PKCS12_TIMEOUT_USEC, &e, &reply);
        if (r < 0)
                return error_from_bus(error, r, &e);

        r = read_key_path(reply, &id);
        if (r >= 0)
                r = bus_read_certificate_paths(reply, &fingerprints);
        if (r < 0)
                return error_set(error, r, NULL, bus_bad_reply);

        if (ret_key_id)
                *ret_key_id = TAKE_PTR(id);
        if (ret_fingerprints)
                *ret_fingerprints = TAKE_PTR(fingerprints);
        return 0;
}

_public_ int smimed_import_pkcs12(smimed *s, const void *data, size_t size, const char *passphrase,
                                  char **ret_key_id, char ***ret_fingerprints, smimed_error *error) {
        _cleanup_(closep) int fd = -1;

        if (!s)
                return error_set(error, -EINVAL, NULL, "Invalid argument.");
        if (!data)
                return error_set(error, -EINVAL, NULL, "No data given.");
        if (size == 0)
                return error_set(error, -EINVAL, NULL, "The data is empty.");

        fd = memfd_from_data("smimed-pkcs12", data, size);
        if (fd < 0)
                return error_set(error, fd, NULL, strerror(-fd));
        return smimed_import_pkcs12_fd(s, fd, passphrase, ret_key_id, ret_fingerprints, error);
}

/* GenerateKey, with the "renew" option when renew is a fingerprint. */
static int generate_key(smimed *s, const char *address, const char *type, const char *subject, const char *renew,
                        char **ret_key_id, char **ret_csr_pem, smimed_error *error) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_free_ char *id = NULL;
        const char *csr;
        int r;

        if (!s)
                return error_set(error, -EINVAL, NULL, "Invalid argument.");
        if (!address || !address[0])
                return error_set(error, -EINVAL, NULL, "No mail address given.");

        r = sd_bus_message_new_method_call(s->bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                           SMIMED_MANAGER_INTERFACE, "GenerateKey");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", address);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0 && type && type[0])
                r = sd_bus_message_append(m, "{sv}", "type", "s", type);
        if (r >= 0 && subject && subject[0])
                r = sd_bus_message_append(m, "{sv}", "subject", "s", subject);
        if (r >= 0 && renew && renew[0])
                r = sd_bus_message_append(m, "{sv}", "renew", "s", renew);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r == -EINVAL)
                return error_set(error, r, NULL, "The address, type, subject or fingerprint is not valid UTF-8 text.");
        if (r < 0)
                return error_set(error, r, NULL, strerror(-r));

        r = sd_bus_call(s->bus, m, GENERATE_KEY_TIMEOUT_USEC, &e, &reply);
        if (r < 0)
                return error_from_bus(error, r, &e);

        r = read_key_path(reply, &id);
        if (r >= 0)
                r = sd_bus_message_read(reply, "s", &csr);
        if (r < 0)
                return error_set(error, r, NULL, bus_bad_reply);

        if (ret_csr_pem) {
                *ret_csr_pem = strdup(csr);
                if (!*ret_csr_pem)
                        return error_set(error, -ENOMEM, NULL, strerror(ENOMEM));
        }
        if (ret_key_id)
                *ret_key_id = TAKE_PTR(id);
        return 0;
}

_public_ int smimed_generate_key(smimed *s, const char *address, const char *type, const char *subject,
                                 char **ret_key_id, char **ret_csr_pem, smimed_error *error) {
        return generate_key(s, address, type, subject, NULL, ret_key_id, ret_csr_pem, error);
}

_public_ int smimed_renew_key(smimed *s, const char *address, const char *fingerprint, const char *type,
                              char **ret_key_id, char **ret_csr_pem, smimed_error *error) {
        if (!fingerprint || !fingerprint[0])
                return error_set(error, -EINVAL, NULL, "No certificate given to renew.");
        return generate_key(s, address, type, NULL, fingerprint, ret_key_id, ret_csr_pem, error);
}

_public_ int smimed_remove_key(smimed *s, const char *key_id, smimed_error *error) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *path = NULL;
        int r;

        if (!s)
                return error_set(error, -EINVAL, NULL, "Invalid argument.");
        r = key_path(key_id, &path, error);
        if (r < 0)
                return r;

        r = sd_bus_call_method(s->bus, SMIMED_BUS_NAME, path, SMIMED_KEY_INTERFACE, "Remove", &e, NULL, NULL);
        if (r < 0)
                return error_from_bus(error, r, &e);
        return 0;
}
