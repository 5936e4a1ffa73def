/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "macro.h"

/* smimed.conf: an INI file with the sections [Token], [Store], [Policy] and
 * [Revocation], [Directory].
 * Unknown sections and keys are errors; an empty value restores the default;
 * when a key is given twice the last one wins. */

#define CONFIG_DEFAULT_PATH SMIMED_SYSCONFDIR "/smimed/smimed.conf"
#define CONFIG_DEFAULT_STORE_PATH SMIMED_STATEDIR "/smimed/store.db"
#define CONFIG_DEFAULT_RESCAN_USEC (5ULL * 1000000ULL)
#define CONFIG_MAX_SIZE (1024U * 1024U)
#define CONFIG_DEFAULT_MAX_MESSAGE_SIZE (100ULL * 1024ULL * 1024ULL)
/* SignData and the other byte-array methods carry the message in the D-Bus
 * message itself: dbus-daemon's system bus takes at most 32 MiB, and an
 * encrypted result is a third larger than its input in base64. */
#define CONFIG_DEFAULT_MAX_DATA_SIZE (16ULL * 1024ULL * 1024ULL)
#define CONFIG_DEFAULT_IO_TIMEOUT_USEC (60ULL * 1000000ULL)
#define CONFIG_DEFAULT_MAX_CALLS_PER_CLIENT 16U
#define CONFIG_DEFAULT_MAX_CALLS_PER_USER 256U
#define CONFIG_DEFAULT_MAX_CALLS 1024U
#define CONFIG_DEFAULT_SPOOL_QUOTA_PER_CLIENT (256ULL * 1024ULL * 1024ULL)
#define CONFIG_DEFAULT_SPOOL_QUOTA (1024ULL * 1024ULL * 1024ULL)
/* A message of MaxMessageSize= (100 MiB) takes a few copies of itself in a
 * worker at most; one that works longer than this is stuck. */
#define CONFIG_DEFAULT_WORKER_MEMORY_MAX (2048ULL * 1024ULL * 1024ULL)
#define CONFIG_DEFAULT_WORKER_CPU_USEC (300ULL * 1000000ULL)
#define CONFIG_DEFAULT_WORKER_TIMEOUT_USEC (600ULL * 1000000ULL)
#define CONFIG_DEFAULT_MAX_RECIPIENTS 1000U
#define CONFIG_DEFAULT_EXPIRY_WARNING_DAYS 30U
#define CONFIG_DEFAULT_FETCH_TIMEOUT_USEC (10ULL * 1000000ULL)
#define CONFIG_DEFAULT_MAX_CRL_SIZE (10ULL * 1024ULL * 1024ULL)
#define CONFIG_DEFAULT_DIRECTORY_FILTER "(mail=%s)"
#define CONFIG_DEFAULT_DIRECTORY_TIMEOUT_USEC (5ULL * 1000000ULL)
#define CONFIG_DEFAULT_DIRECTORY_CACHE_USEC (3600ULL * 1000000ULL)

typedef struct Config {
        char *path;              /* the file it was read from, NULL for defaults */

        char *token_module;      /* NULL: every module p11-kit is configured with */
        char *token_uri;         /* NULL: the first token that needs a login */
        char *token_pin_file;    /* NULL: $CREDENTIALS_DIRECTORY/token-pin */
        uint64_t token_rescan_usec;
        uint64_t token_workers;  /* 0: one per CPU */

        char *store_path;          /* SQLite's file; its directory holds the spool on every backend */
        char *store_backend;       /* "sqlite" or "postgresql" */
        char *store_connection;    /* libpq's connection string, never with a password */
        char *store_password_file; /* NULL: $CREDENTIALS_DIRECTORY/store-password when there */

        bool policy_enabled;
        uint64_t max_message_size;
        uint64_t max_data_size;          /* of SignData, EncryptData, DecryptData, VerifyData, ImportPKCS12Data */
        uint64_t io_timeout_usec;        /* how long a client fd may take to reach EOF or be drained */
        uint64_t max_calls_per_client;   /* calls in flight of one bus connection */
        uint64_t max_calls_per_user;     /* … of all connections of one uid */
        uint64_t max_calls;              /* … of everyone */
        uint64_t spool_quota_per_client; /* bytes of messages in progress of one connection */
        uint64_t spool_quota;            /* … of everyone */
        uint64_t max_recipients;         /* addresses in one GetCapabilities or Encrypt */
        uint64_t worker_memory_max;      /* a smimed-worker's address space */
        uint64_t worker_cpu_usec;        /* … CPU time for one request */
        uint64_t worker_timeout_usec;    /* … time to answer one request */
        bool auto_import;                /* store the signer of a valid signature */
        bool require_sender_match;       /* From must be an address of the signer */
        uint64_t expiry_warning_days;    /* certificates expiring within it are announced; 0: none */
        uint64_t minimum_rsa_bits;
        bool allow_sha1_signatures;
        char *allowed_digests;           /* "sha-256 sha-384", single spaces */
        char *default_cipher;

        char *revocation_method;      /* "crl" (fetched from distribution points) or "none" */
        uint64_t fetch_timeout_usec;  /* one CRL download, from connecting to the last byte */
        bool revocation_unknown_hard; /* Unknown=hard: no current CRL makes a certificate unusable */
        uint64_t max_crl_size;        /* of one downloaded CRL */
        char *ocsp_responder;         /* asked about certificates without an OCSP URI of their own; NULL: none */

        char *directory_uri;             /* NULL: no directory is asked */
        char *directory_base;            /* NULL: the server's default */
        char *directory_filter;          /* with one %s for the escaped address */
        char *directory_bind_dn;         /* NULL: an anonymous bind */
        char *directory_password_file;   /* the bind's password; never logged */
        uint64_t directory_timeout_usec; /* one lookup, from connecting to the last entry */
        uint64_t directory_cache_usec;   /* how long a certificate (or a miss) from it is kept */
} Config;

/* Where a file went wrong. file, section and key are NULL when they do not
 * apply; line is 0 for errors about the whole file. */
typedef struct ConfigError {
        char *file;
        unsigned line;
        char *section;
        char *key;
        char *message;
} ConfigError;

int config_new_default(Config **ret);
Config *config_free(Config *config);
DEFINE_TRIVIAL_CLEANUP_FUNC(Config *, config_free);

/* Parses text as if it came from the file called name. */
int config_parse(const char *text, const char *name, Config **ret, ConfigError *error);

/* Reads and parses path. A missing file is -ENOENT with error filled in. */
int config_load(const char *path, Config **ret, ConfigError *error);

/* Drop-ins, as systemd's: after path (which may be missing when
 * missing_ok), every *.conf file in dropin_dirs (NULL-terminated, the most
 * important first), in the order of the file names wherever they are; a
 * name in an earlier directory hides the same name in later ones, and a
 * drop-in that is empty or a link to /dev/null only hides. Each file
 * starts outside any section; errors name the file that has them. */
int config_load_with_dropins(const char *path, bool missing_ok, char *const *dropin_dirs, Config **ret,
                             ConfigError *error);
/* The drop-in directories of path: for CONFIG_DEFAULT_PATH
 * /etc/smimed/smimed.conf.d, /run/…, /usr/local/lib/… and /usr/lib/…;
 * for another file, that file's name with ".d". NULL when out of memory. */
char **config_dropin_dirs(const char *path);
/* config_load_with_dropins() with config_dropin_dirs(path): what smimed reads. */
int config_load_with_own_dropins(const char *path, bool missing_ok, Config **ret, ConfigError *error);

void config_error_done(ConfigError *error);

/* "FILE:LINE: [Section] Key=: message", or shorter when parts do not apply.
 * Returns a new string or NULL when out of memory. */
char *config_error_to_string(const ConfigError *error);

int parse_boolean(const char *value);

/* The keys there are, for what must name them all (conf/smimed.conf). */
size_t config_n_keys(void);
void config_key_name(size_t i, const char **ret_section, const char **ret_key);
/* Whether every key has the same value in a and b. */
bool config_equal(const Config *a, const Config *b);

/* Whether digest ("sha-256") is one of config's AllowedDigests=. */
bool config_digest_allowed(const Config *config, const char *digest);
