/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "log.h"
#include "store.h"
#include "strv.h"
#include "x509-cache.h"

/* Taken while migrating, so that of several smimed sharing one PostgreSQL
 * database only one migrates ("smimed01" in ASCII). */
#define STORE_MIGRATION_LOCK INT64_C(0x736d696d65643031)
/* Taken by every batch of changes ("smimed02"). */
#define STORE_WRITE_LOCK INT64_C(0x736d696d65643032)

struct Store {
        Db *db;
        uint64_t generation;

        /* While nothing tells this handle of other handles' commits (a node
         * whose notification connection is down), store_generation() reads
         * the shared generation, and moves when it did. */
        bool check_shared;
        int64_t shared_seen;
};

/* Each entry takes the schema from version i to i + 1. Append, never edit.
 * Written for both backends (db.h): BLOB and INTEGER are BYTEA and BIGINT
 * on PostgreSQL. */
static const char *const migrations[] = {
        /* 0 → 1 */
        "CREATE TABLE certificate ("
        "  fingerprint TEXT PRIMARY KEY NOT NULL,"
        "  der BLOB NOT NULL,"
        "  subject_name BLOB NOT NULL,"
        "  issuer_name BLOB NOT NULL,"
        "  serial TEXT NOT NULL,"
        "  spki_sha256 TEXT NOT NULL,"
        "  not_before INTEGER NOT NULL,"
        "  not_after INTEGER NOT NULL,"
        "  is_ca INTEGER NOT NULL,"
        "  trusted INTEGER NOT NULL DEFAULT 0,"
        "  imported_at INTEGER NOT NULL"
        ");"
        "CREATE INDEX certificate_subject_name ON certificate(subject_name);"
        "CREATE INDEX certificate_issuer_serial ON certificate(issuer_name, serial);"
        "CREATE INDEX certificate_spki ON certificate(spki_sha256);"
        "CREATE INDEX certificate_not_before ON certificate(not_before);"
        "CREATE TABLE address ("
        "  address TEXT NOT NULL,"
        "  fingerprint TEXT NOT NULL REFERENCES certificate(fingerprint) ON DELETE CASCADE,"
        "  PRIMARY KEY (address, fingerprint)"
        ") WITHOUT ROWID;"
        "CREATE INDEX address_fingerprint ON address(fingerprint);"
        "CREATE TABLE crl ("
        "  issuer_name BLOB PRIMARY KEY NOT NULL,"
        "  this_update INTEGER NOT NULL,"
        "  next_update INTEGER,"
        "  der BLOB NOT NULL"
        ");",
        /* 1 → 2: the generation, shared by every smimed on the store. */
        "CREATE TABLE generation (value INTEGER NOT NULL);"
        "INSERT INTO generation (value) VALUES (0);",
        /* 2 → 3: ListCertificates pages by NotAfter, then fingerprint. */
        "CREATE INDEX certificate_not_after ON certificate(not_after, fingerprint);",
        /* 3 → 4: certificates found in the [Directory]: when they were last
         * fetched from it (NULL: imported otherwise). */
        "ALTER TABLE certificate ADD COLUMN directory_fetched_at INTEGER;",
        /* 4 → 5: what OCSP responders said, by the certificate's fingerprint,
         * kept until next_update (so every node of a cluster uses it). */
        "CREATE TABLE ocsp_answer ("
        "  fingerprint TEXT PRIMARY KEY NOT NULL,"
        "  status INTEGER NOT NULL,"
        "  uri TEXT NOT NULL,"
        "  this_update INTEGER NOT NULL,"
        "  next_update INTEGER NOT NULL,"
        "  revoked_at INTEGER NOT NULL,"
        "  checked_at INTEGER NOT NULL"
        ");",
};

Db *store_db(Store *store) {
        return store->db;
}

const char *store_name(const Store *store) {
        return db_name(store->db);
}

static int read_shared_generation(Store *store, int64_t *ret) {
        _cleanup_(db_statement_resetp) DbStatement *s = NULL;
        int r;

        r = db_prepare(store->db, "SELECT value FROM generation", &s);
        if (r < 0)
                return r;
        r = db_step(s, "reading the generation");
        if (r < 0)
                return r;
        *ret = r > 0 ? db_column_int64(s, 0) : 0;
        return 0;
}

uint64_t store_generation(Store *store) {
        int64_t shared;

        /* A store that cannot be read counts as changed: nothing cached is trusted. */
        if (store->check_shared && (read_shared_generation(store, &shared) < 0 || shared != store->shared_seen)) {
                store->shared_seen = shared;
                store->generation++;
        }
        return store->generation;
}

void store_changed_elsewhere(Store *store) {
        store->generation++;
}

int store_check_shared_generation(Store *store, bool check) {
        int r = 0;

        if (check && !store->check_shared)
                r = read_shared_generation(store, &store->shared_seen);
        store->check_shared = check;
        return r;
}

int store_announce(Store *store, StoreChange change, const char *fingerprint) {
        static const char *const words[_STORE_CHANGE_MAX] = {
                [STORE_CHANGE_ADDED] = "added", [STORE_CHANGE_REMOVED] = "removed", [STORE_CHANGE_TRUST] = "trust",
                [STORE_CHANGE_CRL] = "crl",     [STORE_CHANGE_KEYS] = "keys",
        };
        _cleanup_free_ char *payload = NULL;

        if (asprintf(&payload, "%s%s%s", words[change], fingerprint ? " " : "", strempty(fingerprint)) < 0)
                return -ENOMEM;
        return db_notify(store->db, STORE_CHANNEL, payload);
}

int store_parse_change(const char *payload, StoreChange *ret_change, const char **ret_fingerprint) {
        static const struct {
                const char *word;
                StoreChange change;
                bool fingerprint;
        } table[] = {
                {"added ", STORE_CHANGE_ADDED, true}, {"removed ", STORE_CHANGE_REMOVED, true},
                {"trust ", STORE_CHANGE_TRUST, true}, {"crl", STORE_CHANGE_CRL, false},
                {"keys", STORE_CHANGE_KEYS, false},
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                size_t n = strlen(table[i].word);

                if (table[i].fingerprint ? strncmp(payload, table[i].word, n) != 0 : !streq(payload, table[i].word))
                        continue;
                if (table[i].fingerprint &&
                    (strlen(payload + n) != 64 || strspn(payload + n, "0123456789abcdef") != 64))
                        return -EBADMSG;
                *ret_change = table[i].change;
                *ret_fingerprint = table[i].fingerprint ? payload + n : NULL;
                return 0;
        }
        return -EBADMSG;
}

/* A store at the current version is only read (it may be read-only).
 * Otherwise one transaction, under the migration lock: the version read
 * again (another node may have migrated meanwhile), every step still to
 * do, the new version. */
static int store_migrate(Store *store, char **ret_message) {
        int version = 0, r;

        r = db_get_schema_version(store->db, &version);
        if (r < 0)
                return r;
        if (version == (int) ELEMENTSOF(migrations))
                return 0;

        r = db_begin(store->db);
        if (r < 0)
                return r;
        r = db_lock_transaction(store->db, STORE_MIGRATION_LOCK);
        if (r >= 0)
                r = db_get_schema_version(store->db, &version);
        if (r < 0)
                goto fail;
        if (version > (int) ELEMENTSOF(migrations)) {
                if (asprintf(ret_message,
                             "The certificate store %s has schema version %d, newer than this smimed knows (%zu).",
                             db_name(store->db), version, ELEMENTSOF(migrations)) < 0)
                        *ret_message = NULL;
                r = -EPROTONOSUPPORT;
                goto fail;
        }
        if (version == (int) ELEMENTSOF(migrations)) {
                db_rollback(store->db);
                return 0;
        }
        for (int v = version; v < (int) ELEMENTSOF(migrations); v++) {
                r = db_exec_schema(store->db, migrations[v]);
                if (r < 0)
                        goto fail;
        }
        r = db_set_schema_version(store->db, (int) ELEMENTSOF(migrations));
        if (r >= 0)
                r = db_commit(store->db);
        if (r < 0)
                goto fail;
        log_info("Certificate store %s: schema migrated from version %d to %zu.", db_name(store->db), version,
                 ELEMENTSOF(migrations));
        return 0;

fail:
        db_rollback(store->db);
        return r;
}

int store_open_db(Db *db, Store **ret, char **ret_message) {
        _cleanup_(store_freep) Store *store = NULL;
        int r;

        *ret_message = NULL;
        store = calloc(1, sizeof(Store));
        if (!store) {
                db_close(db);
                return -ENOMEM;
        }
        store->db = db;
        r = store_migrate(store, ret_message);
        if (r < 0) {
                if (!*ret_message &&
                    asprintf(ret_message, "Cannot open the certificate store %s: %s", db_name(db), strerror(-r)) < 0)
                        *ret_message = NULL;
                return r;
        }
        *ret = TAKE_PTR(store);
        return 0;
}

int store_open(const char *path, Store **ret, char **ret_message) {
        Db *db = NULL;
        int r;

        r = db_open_sqlite(path, &db, ret_message);
        if (r < 0)
                return r;
        return store_open_db(db, ret, ret_message);
}

Store *store_free(Store *store) {
        if (!store)
                return NULL;
        db_close(store->db);
        return mfree(store);
}

/* Writers take turns, on PostgreSQL too (where BEGIN alone would not wait):
 * a batch sees no other batch half done, on any node. */
int store_begin(Store *store) {
        int r;

        r = db_begin(store->db);
        if (r < 0)
                return r;
        r = db_lock_transaction(store->db, STORE_WRITE_LOCK);
        if (r < 0)
                db_rollback(store->db);
        return r;
}

int store_commit(Store *store) {
        int r;

        r = db_exec(store->db, "UPDATE generation SET value = value + 1");
        if (r >= 0)
                r = db_commit(store->db);
        if (r < 0)
                return r;
        store->generation++;
        return 0;
}

void store_rollback(Store *store) {
        db_rollback(store->db);
}

int store_add_certificate(Store *store, const CertInfo *info, bool trusted, bool *ret_added) {
        _cleanup_(db_statement_resetp) DbStatement *insert = NULL, *address = NULL, *trust = NULL;
        int r;

        /* Not INSERT OR IGNORE: that also skips a row that breaks a NOT NULL
         * constraint, and the certificate would pass for one already there. */
        r = db_prepare(store->db,
                       "INSERT INTO certificate (fingerprint, der, subject_name, issuer_name, serial,"
                       " spki_sha256, not_before, not_after, is_ca, trusted, imported_at)"
                       " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (fingerprint) DO NOTHING",
                       &insert);
        if (r < 0)
                return r;
        db_bind_text(insert, 1, info->fingerprint);
        db_bind_blob(insert, 2, info->der, info->der_size);
        db_bind_blob(insert, 3, info->subject_name_der, info->subject_name_der_size);
        db_bind_blob(insert, 4, info->issuer_name_der, info->issuer_name_der_size);
        db_bind_text(insert, 5, info->serial);
        db_bind_text(insert, 6, info->spki_sha256);
        db_bind_int64(insert, 7, (int64_t) info->not_before);
        db_bind_int64(insert, 8, (int64_t) info->not_after);
        db_bind_int64(insert, 9, info->is_ca);
        db_bind_int64(insert, 10, trusted);
        db_bind_int64(insert, 11, (int64_t) time(NULL));
        r = db_step_done(insert, "adding a certificate");
        if (r < 0)
                return r;
        *ret_added = db_changes(insert) > 0;

        if (!*ret_added) {
                if (!trusted)
                        return 0;
                r = db_prepare(store->db, "UPDATE certificate SET trusted = 1 WHERE fingerprint = $1 AND trusted = 0",
                               &trust);
                if (r < 0)
                        return r;
                db_bind_text(trust, 1, info->fingerprint);
                r = db_step_done(trust, "trusting a certificate");
                if (r < 0 || db_changes(trust) == 0)
                        return r;
                return store_announce(store, STORE_CHANGE_TRUST, info->fingerprint);
        }
        r = store_announce(store, STORE_CHANGE_ADDED, info->fingerprint);
        if (r < 0)
                return r;

        r = db_prepare(store->db, "INSERT INTO address (address, fingerprint) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                       &address);
        if (r < 0)
                return r;
        for (char **a = info->addresses; *a; a++) {
                db_reset(address);
                db_bind_text(address, 1, *a);
                db_bind_text(address, 2, info->fingerprint);
                r = db_step_done(address, "adding an address");
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Runs one statement that changes the row of fingerprint, in its own
 * transaction unless one is open. */
static int store_change_one(Store *store, const char *sql, const char *fingerprint, int value, StoreChange change,
                            const char *what) {
        _cleanup_(db_statement_resetp) DbStatement *s = NULL;
        bool own = !db_in_transaction(store->db);
        int r;

        if (own) {
                r = store_begin(store);
                if (r < 0)
                        return r;
        }
        r = db_prepare(store->db, sql, &s);
        if (r >= 0) {
                db_bind_text(s, 1, fingerprint);
                if (value >= 0)
                        db_bind_int64(s, 2, value);
                r = db_step_done(s, what);
        }
        if (r >= 0 && db_changes(s) == 0)
                r = -ENOENT;
        if (r >= 0)
                r = store_announce(store, change, fingerprint);
        if (own) {
                if (r >= 0)
                        r = store_commit(store);
                if (r < 0)
                        store_rollback(store);
        }
        return r;
}

int store_remove_certificate(Store *store, const char *fingerprint) {
        return store_change_one(store, "DELETE FROM certificate WHERE fingerprint = $1", fingerprint, -1,
                                STORE_CHANGE_REMOVED, "removing a certificate");
}

int store_set_trusted(Store *store, const char *fingerprint, bool trusted) {
        return store_change_one(store, "UPDATE certificate SET trusted = $2 WHERE fingerprint = $1", fingerprint,
                                trusted, STORE_CHANGE_TRUST, "changing trust");
}

int store_set_directory_fetched(Store *store, const char *fingerprint, time_t at, bool only_if_marked) {
        _cleanup_(db_statement_resetp) DbStatement *s = NULL;
        int r;

        r = db_prepare(store->db,
                       only_if_marked ? "UPDATE certificate SET directory_fetched_at = $2"
                                        " WHERE fingerprint = $1 AND directory_fetched_at IS NOT NULL"
                                      : "UPDATE certificate SET directory_fetched_at = $2 WHERE fingerprint = $1",
                       &s);
        if (r < 0)
                return r;
        db_bind_text(s, 1, fingerprint);
        db_bind_int64(s, 2, (int64_t) at);
        return db_step_done(s, "marking a certificate as from the directory");
}

int store_get_directory_fetched(Store *store, const char *fingerprint, time_t *ret) {
        _cleanup_(db_statement_resetp) DbStatement *s = NULL;
        int r;

        r = db_prepare(store->db, "SELECT directory_fetched_at FROM certificate WHERE fingerprint = $1", &s);
        if (r < 0)
                return r;
        db_bind_text(s, 1, fingerprint);
        r = db_step(s, "reading where a certificate came from");
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;
        *ret = db_column_is_null(s, 0) ? 0 : (time_t) db_column_int64(s, 0);
        return 0;
}

int store_count_certificates(Store *store, uint64_t *ret) {
        _cleanup_(db_statement_resetp) DbStatement *s = NULL;
        int r;

        r = db_prepare(store->db, "SELECT COUNT(*) FROM certificate", &s);
        if (r < 0)
                return r;
        r = db_step(s, "counting certificates");
        if (r < 0)
                return r;
        *ret = r > 0 ? (uint64_t) db_column_int64(s, 0) : 0;
        return 0;
}

/* The certificate in column of s. d2i_X509 is the dearest part of a
 * lookup (OpenSSL 3 decodes the public key through its decoder framework),
 * and every Sign and Encrypt looks its certificates up again: parsed
 * through the cache the worker protocol uses too. */
static int column_der(DbStatement *s, unsigned column, uint8_t **ret, size_t *ret_size) {
        size_t size;
        const unsigned char *der = db_column_blob(s, column, &size);

        if (!der || size == 0)
                return -EBADMSG;
        *ret = malloc(size);
        if (!*ret)
                return -ENOMEM;
        memcpy(*ret, der, size);
        *ret_size = size;
        return 0;
}

static int column_x509(DbStatement *s, unsigned column, X509 **ret) {
        size_t size;
        const unsigned char *der = db_column_blob(s, column, &size);
        X509 *x;

        if (!der || size == 0)
                return -EBADMSG;
        x = x509_cache_parse(der, size);
        if (!x)
                return -EBADMSG;
        *ret = x;
        return 0;
}

int store_get_certificate(Store *store, const char *fingerprint, X509 **ret, bool *ret_trusted) {
        _cleanup_(db_statement_resetp) DbStatement *s = NULL;
        int r;

        r = db_prepare(store->db, "SELECT der, trusted FROM certificate WHERE fingerprint = $1", &s);
        if (r < 0)
                return r;
        db_bind_text(s, 1, fingerprint);
        r = db_step(s, "reading a certificate");
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;
        if (ret_trusted)
                *ret_trusted = db_column_int64(s, 1) != 0;
        return ret ? column_x509(s, 0, ret) : 0;
}

/* The first column of every row of s, as a strv. */
static int collect_fingerprints(DbStatement *s, char ***ret) {
        _cleanup_(strv_freep) char **l = NULL;
        int r;

        l = calloc(1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        while ((r = db_step(s, "looking up certificates")) > 0) {
                r = strv_extend(&l, db_column_text(s, 0));
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;

        *ret = TAKE_PTR(l);
        return 0;
}

int store_find_by_address(Store *store, const char *address, char ***ret) {
        _cleanup_(db_statement_resetp) DbStatement *s = NULL;
        int r;

        if (address && address[0]) {
                r = db_prepare(store->db,
                               "SELECT a.fingerprint FROM address a JOIN certificate c USING (fingerprint)"
                               " WHERE a.address = $1 ORDER BY c.not_before DESC, c.fingerprint",
                               &s);
                if (r < 0)
                        return r;
                db_bind_text(s, 1, address);
        } else {
                r = db_prepare(store->db, "SELECT fingerprint FROM certificate ORDER BY not_before DESC, fingerprint",
                               &s);
                if (r < 0)
                        return r;
        }

        return collect_fingerprints(s, ret);
}

int store_find_by_spki(Store *store, const char *spki_sha256, char ***ret) {
        _cleanup_(db_statement_resetp) DbStatement *s = NULL;
        int r;

        r = db_prepare(store->db,
                       "SELECT fingerprint FROM certificate WHERE spki_sha256 = $1 ORDER BY not_before DESC, "
                       "fingerprint",
                       &s);
        if (r < 0)
                return r;
        db_bind_text(s, 1, spki_sha256);
        return collect_fingerprints(s, ret);
}

int store_find_by_issuer_serial(Store *store, const unsigned char *issuer_der, size_t size, const char *serial,
                                X509 **ret) {
        _cleanup_(db_statement_resetp) DbStatement *s = NULL;
        int r;

        r = db_prepare(store->db, "SELECT der FROM certificate WHERE issuer_name = $1 AND serial = $2", &s);
        if (r < 0)
                return r;
        db_bind_blob(s, 1, issuer_der, size);
        db_bind_text(s, 2, serial);
        r = db_step(s, "looking up a certificate by issuer and serial");
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;
        return column_x509(s, 0, ret);
}

int store_foreach_by_subject(Store *store, const unsigned char *name_der, size_t size, StoreCertificateCallback cb,
                             void *userdata) {
        _cleanup_(db_statement_resetp) DbStatement *s = NULL;
        int r;

        r = db_prepare(store->db, "SELECT der, trusted FROM certificate WHERE subject_name = $1", &s);
        if (r < 0)
                return r;
        db_bind_blob(s, 1, name_der, size);

        while ((r = db_step(s, "looking up issuers")) > 0) {
                X509 *x;

                if (column_x509(s, 0, &x) < 0)
                        continue;
                r = cb(x, db_column_int64(s, 1) != 0, userdata);
                X509_free(x);
                if (r < 0)
                        return r;
        }
        return r;
}

int store_put_crl(Store *store, X509_CRL *crl, bool *ret_stored) {
        _cleanup_(db_statement_resetp) DbStatement *s = NULL;
        unsigned char *name = NULL, *der = NULL;
        time_t this_update, next_update = 0;
        int name_size, der_size, r;

        if (asn1_time_to_time_t(X509_CRL_get0_lastUpdate(crl), &this_update) < 0)
                return -EINVAL;
        (void) asn1_time_to_time_t(X509_CRL_get0_nextUpdate(crl), &next_update);

        name_size = i2d_X509_NAME(X509_CRL_get_issuer(crl), &name);
        der_size = i2d_X509_CRL(crl, &der);
        if (name_size <= 0 || der_size <= 0) {
                OPENSSL_free(name);
                OPENSSL_free(der);
                return -EINVAL;
        }

        /* Keep the newest CRL of each issuer; an older one changes nothing. */
        r = db_prepare(store->db,
                       "INSERT INTO crl (issuer_name, this_update, next_update, der) VALUES ($1, $2, $3, $4)"
                       " ON CONFLICT (issuer_name) DO UPDATE SET this_update = $2, next_update = $3, der = $4"
                       " WHERE $2 > crl.this_update",
                       &s);
        if (r >= 0) {
                db_bind_blob(s, 1, name, (size_t) name_size);
                db_bind_int64(s, 2, (int64_t) this_update);
                if (next_update > 0)
                        db_bind_int64(s, 3, (int64_t) next_update);
                else
                        db_bind_null(s, 3);
                db_bind_blob(s, 4, der, (size_t) der_size);
                r = db_step_done(s, "adding a CRL");
                if (r >= 0)
                        *ret_stored = db_changes(s) > 0;
                if (r >= 0 && *ret_stored)
                        r = store_announce(store, STORE_CHANGE_CRL, NULL);
        }
        OPENSSL_free(name);
        OPENSSL_free(der);
        return r;
}

int store_get_crl(Store *store, const unsigned char *name_der, size_t size, X509_CRL **ret) {
        _cleanup_(db_statement_resetp) DbStatement *s = NULL;
        const unsigned char *der, *p;
        X509_CRL *crl;
        size_t der_size;
        int r;

        r = db_prepare(store->db, "SELECT der FROM crl WHERE issuer_name = $1", &s);
        if (r < 0)
                return r;
        db_bind_blob(s, 1, name_der, size);
        r = db_step(s, "reading a CRL");
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;

        der = p = db_column_blob(s, 0, &der_size);
        crl = der && der_size <= LONG_MAX ? d2i_X509_CRL(NULL, &p, (long) der_size) : NULL;
        if (!crl)
                return -EBADMSG;
        *ret = crl;
        return 0;
}

int store_put_ocsp(Store *store, const char *fingerprint, const OcspAnswer *answer) {
        _cleanup_(db_statement_resetp) DbStatement *purge = NULL, *s = NULL;
        int r;

        /* Answers past their next_update are of no use to anyone. */
        r = db_prepare(store->db, "DELETE FROM ocsp_answer WHERE next_update < $1", &purge);
        if (r < 0)
                return r;
        db_bind_int64(purge, 1, (int64_t) time(NULL));
        r = db_step_done(purge, "dropping old OCSP answers");
        if (r < 0)
                return r;

        r = db_prepare(store->db,
                       "INSERT INTO ocsp_answer (fingerprint, status, uri, this_update, next_update, revoked_at,"
                       " checked_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"
                       " ON CONFLICT (fingerprint) DO UPDATE SET status = $2, uri = $3, this_update = $4,"
                       " next_update = $5, revoked_at = $6, checked_at = $7",
                       &s);
        if (r < 0)
                return r;
        db_bind_text(s, 1, fingerprint);
        db_bind_int64(s, 2, (int64_t) answer->status);
        db_bind_text(s, 3, answer->uri ? answer->uri : "");
        db_bind_int64(s, 4, (int64_t) answer->this_update);
        db_bind_int64(s, 5, (int64_t) answer->next_update);
        db_bind_int64(s, 6, (int64_t) answer->revoked_at);
        db_bind_int64(s, 7, (int64_t) answer->checked_at);
        r = db_step_done(s, "adding an OCSP answer");
        if (r < 0)
                return r;
        /* The other nodes hear of it as of a CRL: revocation data changed. */
        return store_announce(store, STORE_CHANGE_CRL, NULL);
}

int store_get_ocsp(Store *store, const char *fingerprint, OcspAnswer *ret) {
        _cleanup_(db_statement_resetp) DbStatement *s = NULL;
        int64_t status;
        int r;

        r = db_prepare(store->db,
                       "SELECT status, uri, this_update, next_update, revoked_at, checked_at FROM ocsp_answer"
                       " WHERE fingerprint = $1",
                       &s);
        if (r < 0)
                return r;
        db_bind_text(s, 1, fingerprint);
        r = db_step(s, "reading an OCSP answer");
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;
        status = db_column_int64(s, 0);
        if (status < 0 || status >= _OCSP_STATUS_MAX)
                return -EBADMSG;
        *ret = (OcspAnswer){
                .status = (OcspStatus) status,
                .uri = strdup(strempty(db_column_text(s, 1))),
                .this_update = (time_t) db_column_int64(s, 2),
                .next_update = (time_t) db_column_int64(s, 3),
                .revoked_at = (time_t) db_column_int64(s, 4),
                .checked_at = (time_t) db_column_int64(s, 5),
        };
        if (!ret->uri)
                return -ENOMEM;
        return 0;
}

int store_foreach_certificate(Store *store, StoreCertificateCallback cb, void *userdata) {
        _cleanup_(db_statement_resetp) DbStatement *s = NULL;
        int r;

        r = db_prepare(store->db, "SELECT der, trusted FROM certificate ORDER BY fingerprint", &s);
        if (r < 0)
                return r;
        while ((r = db_step(s, "reading every certificate")) > 0) {
                X509 *x;

                r = column_x509(s, 0, &x);
                if (r < 0)
                        return r;
                r = cb(x, db_column_int64(s, 1) != 0, userdata);
                X509_free(x);
                if (r < 0)
                        return r;
        }
        return r;
}

int store_foreach_crl(Store *store, StoreCrlCallback cb, void *userdata) {
        _cleanup_(db_statement_resetp) DbStatement *s = NULL;
        int r;

        r = db_prepare(store->db, "SELECT der FROM crl ORDER BY issuer_name", &s);
        if (r < 0)
                return r;
        while ((r = db_step(s, "reading every CRL")) > 0) {
                const unsigned char *der, *p;
                size_t size;
                X509_CRL *crl;

                der = p = db_column_blob(s, 0, &size);
                crl = der && size <= LONG_MAX ? d2i_X509_CRL(NULL, &p, (long) size) : NULL;
                if (!crl)
                        return -EBADMSG;
                r = cb(crl, userdata);
                X509_CRL_free(crl);
                if (r < 0)
                        return r;
        }
        return r;
}

void store_list_rows_free(StoreListRow *rows, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(rows[i].der);
        free(rows);
}

/* The filters of StoreListFilter, as $1…$3; a NULL parameter lets every row
 * through (the CASTs give PostgreSQL their types). Shared by the page and the
 * count. */
#define LIST_WHERE                                                                                                    \
        " (CAST($1 AS BIGINT) IS NULL OR c.not_after < $1)"                                                           \
        " AND (CAST($2 AS BIGINT) IS NULL OR c.is_ca = $2)"                                                           \
        " AND (CAST($3 AS TEXT) IS NULL OR EXISTS (SELECT 1 FROM address a WHERE a.fingerprint = c.fingerprint"       \
        " AND a.address LIKE $3 ESCAPE '!'))"

/* A LIKE pattern for addresses starting with prefix (already lower-cased,
 * as the address table is): its wildcards escaped. */
static char *address_pattern(const char *prefix) {
        char *pattern = malloc(strlen(prefix) * 2 + 2), *p = pattern;

        if (!pattern)
                return NULL;
        for (const char *c = prefix; *c; c++) {
                if (*c == '%' || *c == '_' || *c == '!')
                        *p++ = '!';
                *p++ = *c;
        }
        *p++ = '%';
        *p = '\0';
        return pattern;
}

static void bind_list_filter(DbStatement *s, const StoreListFilter *filter, const char *pattern) {
        if (filter->expiring_before > 0)
                db_bind_int64(s, 1, (int64_t) filter->expiring_before);
        else
                db_bind_null(s, 1);
        if (filter->is_ca >= 0)
                db_bind_int64(s, 2, filter->is_ca > 0);
        else
                db_bind_null(s, 2);
        if (pattern)
                db_bind_text(s, 3, pattern);
        else
                db_bind_null(s, 3);
}

int store_list_certificates(Store *store, const StoreListFilter *filter, const StoreListPage *page, StoreListRow **ret,
                            size_t *ret_n) {
        _cleanup_(db_statement_resetp) DbStatement *s = NULL;
        _cleanup_free_ char *pattern = NULL;
        StoreListRow *rows = NULL;
        size_t n = 0, allocated = 0;
        int r;

        if (filter->address_prefix) {
                pattern = address_pattern(filter->address_prefix);
                if (!pattern)
                        return -ENOMEM;
        }
        r = db_prepare(store->db,
                       "SELECT c.fingerprint, c.der, c.trusted, c.is_ca, c.not_after, c.spki_sha256"
                       " FROM certificate c WHERE" LIST_WHERE " AND (c.not_after, c.fingerprint) > ($4, $5)"
                       " ORDER BY c.not_after, c.fingerprint LIMIT $6 OFFSET $7",
                       &s);
        if (r < 0)
                return r;
        bind_list_filter(s, filter, pattern);
        db_bind_int64(s, 4, page->after_fingerprint ? (int64_t) page->after_not_after : INT64_MIN);
        db_bind_text(s, 5, strempty(page->after_fingerprint));
        db_bind_int64(s, 6, page->limit > INT64_MAX ? INT64_MAX : (int64_t) page->limit);
        db_bind_int64(s, 7, page->offset > INT64_MAX ? INT64_MAX : (int64_t) page->offset);

        while ((r = db_step(s, "listing certificates")) > 0) {
                StoreListRow *row;

                if (n == allocated) {
                        size_t grown = allocated ? allocated * 2 : 64;
                        StoreListRow *more = reallocarray(rows, grown, sizeof(StoreListRow));

                        if (!more) {
                                r = -ENOMEM;
                                break;
                        }
                        rows = more;
                        allocated = grown;
                }
                row = &rows[n];
                *row = (StoreListRow){
                        .trusted = db_column_int64(s, 2) != 0,
                        .is_ca = db_column_int64(s, 3) != 0,
                        .not_after = (time_t) db_column_int64(s, 4),
                };
                snprintf(row->fingerprint, sizeof(row->fingerprint), "%s", db_column_text(s, 0));
                snprintf(row->spki_sha256, sizeof(row->spki_sha256), "%s", db_column_text(s, 5));
                r = column_der(s, 1, &row->der, &row->der_size);
                if (r < 0)
                        break;
                n++;
        }
        if (r < 0) {
                store_list_rows_free(rows, n);
                return r;
        }
        *ret = rows;
        *ret_n = n;
        return 0;
}

int store_count_listed(Store *store, const StoreListFilter *filter, uint64_t *ret) {
        _cleanup_(db_statement_resetp) DbStatement *s = NULL;
        _cleanup_free_ char *pattern = NULL;
        int r;

        if (filter->address_prefix) {
                pattern = address_pattern(filter->address_prefix);
                if (!pattern)
                        return -ENOMEM;
        }
        r = db_prepare(store->db, "SELECT COUNT(*) FROM certificate c WHERE" LIST_WHERE, &s);
        if (r < 0)
                return r;
        bind_list_filter(s, filter, pattern);
        r = db_step(s, "counting certificates");
        if (r < 0)
                return r;
        *ret = r > 0 ? (uint64_t) db_column_int64(s, 0) : 0;
        return 0;
}
