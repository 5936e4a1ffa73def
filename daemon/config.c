/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <ldap.h>
#include <libpq-fe.h>
#include <openssl/err.h>
#include <openssl/http.h>
#include <p11-kit/uri.h>

#include "config.h"
#include "strv.h"

typedef int (*ConfigParser)(const char *value, void *field, char **ret_message);

typedef enum ConfigFieldType {
        FIELD_STRING,
        FIELD_BOOL,
        FIELD_U64,
} ConfigFieldType;

typedef struct ConfigKey {
        const char *section;
        const char *key;
        ConfigParser parse;
        ConfigFieldType type;
        size_t offset;
} ConfigKey;

static int set_message(char **ret_message, const char *format, ...) _printf_(2, 3);
static int set_message(char **ret_message, const char *format, ...) {
        va_list ap;
        int r;

        va_start(ap, format);
        r = vasprintf(ret_message, format, ap);
        va_end(ap);
        if (r < 0) {
                *ret_message = NULL;
                return -ENOMEM;
        }
        return -EINVAL;
}

int parse_boolean(const char *value) {
        static const char *const yes[] = { "1", "yes", "y", "true", "t", "on" };
        static const char *const no[] = { "0", "no", "n", "false", "f", "off" };

        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (strcasecmp(value, yes[i]) == 0)
                        return 1;
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                if (strcasecmp(value, no[i]) == 0)
                        return 0;
        return -EINVAL;
}

static int parse_bool_field(const char *value, void *field, char **ret_message) {
        int b = parse_boolean(value);

        if (b < 0)
                return set_message(ret_message, "expected a boolean (yes or no), got \"%s\"", value);
        *(bool *) field = b;
        return 0;
}

static int parse_absolute_path(const char *value, void *field, char **ret_message) {
        if (value[0] != '/')
                return set_message(ret_message, "expected an absolute path, got \"%s\"", value);
        return free_and_strdup(field, value);
}

static int parse_pkcs11_uri(const char *value, void *field, char **ret_message) {
        P11KitUri *uri;
        int r;

        uri = p11_kit_uri_new();
        if (!uri)
                return -ENOMEM;
        r = p11_kit_uri_parse(value, P11_KIT_URI_FOR_TOKEN | P11_KIT_URI_FOR_MODULE, uri);
        p11_kit_uri_free(uri);
        if (r != P11_KIT_URI_OK)
                return set_message(ret_message, "not a valid RFC 7512 pkcs11: URI (%s)", p11_kit_uri_message(r));
        return free_and_strdup(field, value);
}

/* Seconds with up to six decimals: "5", "0.25". */
static int parse_seconds(const char *value, void *field, char **ret_message) {
        unsigned long long sec = 0, frac = 0;
        unsigned digits = 0;
        const char *p = value;

        if (!isdigit((unsigned char) *p))
                goto invalid;
        for (; isdigit((unsigned char) *p); p++) {
                if (sec > 1000000ULL)
                        goto invalid;
                sec = sec * 10 + (unsigned) (*p - '0');
        }
        if (*p == '.') {
                for (p++; isdigit((unsigned char) *p); p++) {
                        if (++digits > 6)
                                goto invalid;
                        frac = frac * 10 + (unsigned) (*p - '0');
                }
                if (digits == 0)
                        goto invalid;
        }
        if (*p != '\0')
                goto invalid;
        for (; digits < 6; digits++)
                frac *= 10;
        if (sec == 0 && frac == 0)
                return set_message(ret_message, "must be greater than zero");
        *(uint64_t *) field = sec * 1000000ULL + frac;
        return 0;

invalid:
        return set_message(ret_message, "expected a number of seconds, got \"%s\"", value);
}

/* A size in bytes, with an optional K, M or G (powers of 1024): "100M". */
static int parse_size(const char *value, void *field, char **ret_message) {
        unsigned long long n, factor = 1;
        char *end;

        if (!isdigit((unsigned char) value[0]))
                goto invalid;
        errno = 0;
        n = strtoull(value, &end, 10);
        if (errno != 0)
                goto invalid;
        if (*end == 'K' || *end == 'k')
                factor = 1024ULL, end++;
        else if (*end == 'M' || *end == 'm')
                factor = 1024ULL * 1024ULL, end++;
        else if (*end == 'G' || *end == 'g')
                factor = 1024ULL * 1024ULL * 1024ULL, end++;
        if (*end != '\0' || n == 0 || n > UINT64_MAX / factor)
                goto invalid;
        *(uint64_t *) field = n * factor;
        return 0;

invalid:
        return set_message(ret_message, "expected a size in bytes greater than zero (with K, M or G), got \"%s\"",
                           value);
}

static int parse_unsigned(const char *value, void *field, char **ret_message) {
        unsigned long n;
        char *end;

        errno = 0;
        n = strtoul(value, &end, 10);
        if (!isdigit((unsigned char) value[0]) || *end != '\0' || errno != 0 || n == 0 || n > 65536)
                return set_message(ret_message, "expected a number between 1 and 65536, got \"%s\"", value);
        *(uint64_t *) field = n;
        return 0;
}

/* Days, 0 included (for "off"). */
static int parse_days(const char *value, void *field, char **ret_message) {
        unsigned long n;
        char *end;

        errno = 0;
        n = strtoul(value, &end, 10);
        if (!isdigit((unsigned char) value[0]) || *end != '\0' || errno != 0 || n > 36500)
                return set_message(ret_message, "expected a number of days between 0 and 36500, got \"%s\"", value);
        *(uint64_t *) field = n;
        return 0;
}

static const char *const known_digests[] = { "sha-1", "sha-256", "sha-384", "sha-512" };
static const char *const known_ciphers[] = { "aes-128-cbc", "aes-256-cbc", "aes-128-gcm", "aes-256-gcm" };

static bool is_one_of(const char *word, const char *const *list, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (streq(word, list[i]))
                        return true;
        return false;
}

/* A list of digest names separated by spaces or commas, stored as one
 * string with single spaces. */
static int parse_digests(const char *value, void *field, char **ret_message) {
        _cleanup_free_ char *copy = strdup(value), *joined = NULL;
        size_t len = 0;

        if (!copy || !(joined = calloc(strlen(value) + 1, 1)))
                return -ENOMEM;
        for (char *save = NULL, *w = strtok_r(copy, " ,\t", &save); w; w = strtok_r(NULL, " ,\t", &save)) {
                if (!is_one_of(w, known_digests, ELEMENTSOF(known_digests)))
                        return set_message(ret_message,
                                           "unknown digest \"%s\" (known: sha-1, sha-256, sha-384, sha-512)", w);
                len += (size_t) sprintf(joined + len, "%s%s", len ? " " : "", w);
        }
        if (len == 0)
                return set_message(ret_message, "expected at least one digest");
        free(*(char **) field);
        *(char **) field = TAKE_PTR(joined);
        return 0;
}

static int parse_cipher(const char *value, void *field, char **ret_message) {
        if (!is_one_of(value, known_ciphers, ELEMENTSOF(known_ciphers)))
                return set_message(ret_message,
                                   "unknown cipher \"%s\" (known: aes-128-cbc, aes-256-cbc, aes-128-gcm, aes-256-gcm)",
                                   value);
        return free_and_strdup(field, value);
}

static int parse_store_backend(const char *value, void *field, char **ret_message) {
        if (!streq(value, "sqlite") && !streq(value, "postgresql"))
                return set_message(ret_message, "unknown backend \"%s\" (known: sqlite, postgresql)", value);
        return free_and_strdup(field, value);
}

/* A libpq connection string or URI, parsed by libpq; never one with a
 * password in it (that is PasswordFile='s or the credential's). */
static int parse_store_connection(const char *value, void *field, char **ret_message) {
        PQconninfoOption *options;
        char *error = NULL;
        bool password = false;

        options = PQconninfoParse(value, &error);
        if (!options) {
                /* libpq's message quotes the string; not when a secret may be in it. */
                bool secret = strstr(value, "password") || strchr(value, '@');
                int r = error && !secret ? set_message(ret_message, "not a PostgreSQL connection string (%.*s)",
                                                       (int) strcspn(error, "\n"), error)
                                         : set_message(ret_message, "not a PostgreSQL connection string");

                PQfreemem(error);
                return r;
        }
        for (PQconninfoOption *o = options; o->keyword; o++)
                if (streq(o->keyword, "password") && o->val && o->val[0])
                        password = true;
        PQconninfoFree(options);
        if (password)
                return set_message(ret_message, "holds a password: put it in PasswordFile= or the credential "
                                                "store-password instead");
        return free_and_strdup(field, value);
}

static int parse_revocation_method(const char *value, void *field, char **ret_message) {
        if (!streq(value, "crl") && !streq(value, "ocsp") && !streq(value, "ocsp-then-crl") && !streq(value, "none"))
                return set_message(ret_message, "unknown method \"%s\" (known: crl, ocsp, ocsp-then-crl, none)",
                                   value);
        return free_and_strdup(field, value);
}

/* An http:// URL with a host: what the OCSP client can ask. */
static int parse_http_url(const char *value, void *field, char **ret_message) {
        char *host = NULL;
        int ssl = 0, ok;

        ok = OSSL_HTTP_parse_url(value, &ssl, NULL, &host, NULL, NULL, NULL, NULL, NULL);
        ERR_clear_error();
        ok = ok && !ssl && host && host[0] && strncasecmp(value, "http://", 7) == 0 && !strpbrk(value, " \t");
        OPENSSL_free(host);
        if (!ok)
                return set_message(ret_message, "expected an http:// URL, got \"%s\"", value);
        return free_and_strdup(field, value);
}

static int parse_revocation_unknown(const char *value, void *field, char **ret_message) {
        if (!streq(value, "soft") && !streq(value, "hard"))
                return set_message(ret_message, "expected soft or hard, got \"%s\"", value);
        *(bool *) field = streq(value, "hard");
        return 0;
}

/* The directory's URI: one ldap://, ldaps:// or ldapi:// URL, as libldap
 * parses it. */
static int parse_directory_uri(const char *value, void *field, char **ret_message) {
        LDAPURLDesc *desc = NULL;

        if (!startswith(value, "ldap://") && !startswith(value, "ldaps://") && !startswith(value, "ldapi://"))
                return set_message(ret_message, "expected an ldap://, ldaps:// or ldapi:// URI, got \"%s\"", value);
        if (ldap_url_parse(value, &desc) != LDAP_URL_SUCCESS)
                return set_message(ret_message, "not a valid LDAP URI: \"%s\"", value);
        ldap_free_urldesc(desc);
        return free_and_strdup(field, value);
}

/* An RFC 4515 filter with exactly one %s, where the escaped address goes;
 * no other % (write %% for one). */
static int parse_directory_filter(const char *value, void *field, char **ret_message) {
        unsigned n = 0;

        for (const char *p = value; *p; p++) {
                if (*p != '%')
                        continue;
                if (p[1] == 's')
                        n++;
                else if (p[1] != '%')
                        return set_message(ret_message, "only %%s (the address) and %%%% may follow a %%, in \"%s\"",
                                           value);
                p++;
        }
        if (n != 1 || value[0] != '(')
                return set_message(ret_message, "expected a filter in parentheses with one %%s, got \"%s\"", value);
        return free_and_strdup(field, value);
}

static int parse_string(const char *value, void *field, char **ret_message) {
        (void) ret_message;
        return free_and_strdup(field, value);
}

static const ConfigKey config_keys[] = {
        {"Token", "Module", parse_absolute_path, FIELD_STRING, offsetof(Config, token_module)},
        {"Token", "URI", parse_pkcs11_uri, FIELD_STRING, offsetof(Config, token_uri)},
        {"Token", "PINFile", parse_absolute_path, FIELD_STRING, offsetof(Config, token_pin_file)},
        {"Token", "RescanIntervalSec", parse_seconds, FIELD_U64, offsetof(Config, token_rescan_usec)},
        {"Token", "Workers", parse_unsigned, FIELD_U64, offsetof(Config, token_workers)},
        {"Store", "Path", parse_absolute_path, FIELD_STRING, offsetof(Config, store_path)},
        {"Store", "Backend", parse_store_backend, FIELD_STRING, offsetof(Config, store_backend)},
        {"Store", "Connection", parse_store_connection, FIELD_STRING, offsetof(Config, store_connection)},
        {"Store", "PasswordFile", parse_absolute_path, FIELD_STRING, offsetof(Config, store_password_file)},
        {"Policy", "Enabled", parse_bool_field, FIELD_BOOL, offsetof(Config, policy_enabled)},
        {"Policy", "MaxMessageSize", parse_size, FIELD_U64, offsetof(Config, max_message_size)},
        {"Policy", "MaxDataSize", parse_size, FIELD_U64, offsetof(Config, max_data_size)},
        {"Policy", "IOTimeoutSec", parse_seconds, FIELD_U64, offsetof(Config, io_timeout_usec)},
        {"Policy", "MaxCallsPerClient", parse_unsigned, FIELD_U64, offsetof(Config, max_calls_per_client)},
        {"Policy", "MaxCallsPerUser", parse_unsigned, FIELD_U64, offsetof(Config, max_calls_per_user)},
        {"Policy", "MaxCalls", parse_unsigned, FIELD_U64, offsetof(Config, max_calls)},
        {"Policy", "SpoolQuotaPerClient", parse_size, FIELD_U64, offsetof(Config, spool_quota_per_client)},
        {"Policy", "SpoolQuota", parse_size, FIELD_U64, offsetof(Config, spool_quota)},
        {"Policy", "MaxRecipients", parse_unsigned, FIELD_U64, offsetof(Config, max_recipients)},
        {"Policy", "WorkerMemoryMax", parse_size, FIELD_U64, offsetof(Config, worker_memory_max)},
        {"Policy", "WorkerCPUSec", parse_seconds, FIELD_U64, offsetof(Config, worker_cpu_usec)},
        {"Policy", "WorkerTimeoutSec", parse_seconds, FIELD_U64, offsetof(Config, worker_timeout_usec)},
        {"Policy", "AutoImportCertificates", parse_bool_field, FIELD_BOOL, offsetof(Config, auto_import)},
        {"Policy", "RequireSenderMatch", parse_bool_field, FIELD_BOOL, offsetof(Config, require_sender_match)},
        {"Policy", "ExpiryWarningDays", parse_days, FIELD_U64, offsetof(Config, expiry_warning_days)},
        {"Policy", "MinimumRSABits", parse_unsigned, FIELD_U64, offsetof(Config, minimum_rsa_bits)},
        {"Policy", "AllowSHA1Signatures", parse_bool_field, FIELD_BOOL, offsetof(Config, allow_sha1_signatures)},
        {"Policy", "AllowedDigests", parse_digests, FIELD_STRING, offsetof(Config, allowed_digests)},
        {"Policy", "DefaultCipher", parse_cipher, FIELD_STRING, offsetof(Config, default_cipher)},
        {"Revocation", "Method", parse_revocation_method, FIELD_STRING, offsetof(Config, revocation_method)},
        {"Revocation", "FetchTimeoutSec", parse_seconds, FIELD_U64, offsetof(Config, fetch_timeout_usec)},
        {"Revocation", "Unknown", parse_revocation_unknown, FIELD_BOOL, offsetof(Config, revocation_unknown_hard)},
        {"Revocation", "MaxCRLSize", parse_size, FIELD_U64, offsetof(Config, max_crl_size)},
        {"Revocation", "OCSPResponder", parse_http_url, FIELD_STRING, offsetof(Config, ocsp_responder)},
        {"Directory", "URI", parse_directory_uri, FIELD_STRING, offsetof(Config, directory_uri)},
        {"Directory", "Base", parse_string, FIELD_STRING, offsetof(Config, directory_base)},
        {"Directory", "Filter", parse_directory_filter, FIELD_STRING, offsetof(Config, directory_filter)},
        {"Directory", "BindDN", parse_string, FIELD_STRING, offsetof(Config, directory_bind_dn)},
        {"Directory", "PasswordFile", parse_absolute_path, FIELD_STRING, offsetof(Config, directory_password_file)},
        {"Directory", "TimeoutSec", parse_seconds, FIELD_U64, offsetof(Config, directory_timeout_usec)},
        {"Directory", "CacheSec", parse_seconds, FIELD_U64, offsetof(Config, directory_cache_usec)},
};

size_t config_n_keys(void) {
        return ELEMENTSOF(config_keys);
}

void config_key_name(size_t i, const char **ret_section, const char **ret_key) {
        *ret_section = config_keys[i].section;
        *ret_key = config_keys[i].key;
}

bool config_equal(const Config *a, const Config *b) {
        for (size_t i = 0; i < ELEMENTSOF(config_keys); i++) {
                const void *x = (const char *) a + config_keys[i].offset,
                           *y = (const char *) b + config_keys[i].offset;

                switch (config_keys[i].type) {
                case FIELD_STRING:
                        if (!streq_ptr(*(char *const *) x, *(char *const *) y))
                                return false;
                        break;
                case FIELD_BOOL:
                        if (*(const bool *) x != *(const bool *) y)
                                return false;
                        break;
                case FIELD_U64:
                        if (*(const uint64_t *) x != *(const uint64_t *) y)
                                return false;
                        break;
                }
        }
        return true;
}

static bool section_is_known(const char *section) {
        for (size_t i = 0; i < ELEMENTSOF(config_keys); i++)
                if (streq(config_keys[i].section, section))
                        return true;
        return false;
}

static const ConfigKey *config_key_find(const char *section, const char *key) {
        for (size_t i = 0; i < ELEMENTSOF(config_keys); i++)
                if (streq(config_keys[i].section, section) && streq(config_keys[i].key, key))
                        return &config_keys[i];
        return NULL;
}

/* An empty value puts the key back to what a fresh Config holds. */
static int config_key_reset(Config *config, const ConfigKey *k) {
        _cleanup_(config_freep) Config *defaults = NULL;
        void *field = (char *) config + k->offset;
        void *default_field;
        int r;

        r = config_new_default(&defaults);
        if (r < 0)
                return r;
        default_field = (char *) defaults + k->offset;

        switch (k->type) {
        case FIELD_STRING:
                return free_and_strdup(field, *(char **) default_field);
        case FIELD_BOOL:
                *(bool *) field = *(bool *) default_field;
                return 0;
        case FIELD_U64:
                *(uint64_t *) field = *(uint64_t *) default_field;
                return 0;
        }
        return -EINVAL;
}

int config_new_default(Config **ret) {
        _cleanup_(config_freep) Config *config = NULL;

        config = calloc(1, sizeof(Config));
        if (!config)
                return -ENOMEM;

        config->store_path = strdup(CONFIG_DEFAULT_STORE_PATH);
        config->store_backend = strdup("sqlite");
        if (!config->store_path || !config->store_backend)
                return -ENOMEM;
        config->token_rescan_usec = CONFIG_DEFAULT_RESCAN_USEC;
        config->policy_enabled = true;
        config->max_message_size = CONFIG_DEFAULT_MAX_MESSAGE_SIZE;
        config->max_data_size = CONFIG_DEFAULT_MAX_DATA_SIZE;
        config->io_timeout_usec = CONFIG_DEFAULT_IO_TIMEOUT_USEC;
        config->max_calls_per_client = CONFIG_DEFAULT_MAX_CALLS_PER_CLIENT;
        config->max_calls_per_user = CONFIG_DEFAULT_MAX_CALLS_PER_USER;
        config->max_calls = CONFIG_DEFAULT_MAX_CALLS;
        config->spool_quota_per_client = CONFIG_DEFAULT_SPOOL_QUOTA_PER_CLIENT;
        config->spool_quota = CONFIG_DEFAULT_SPOOL_QUOTA;
        config->worker_memory_max = CONFIG_DEFAULT_WORKER_MEMORY_MAX;
        config->worker_cpu_usec = CONFIG_DEFAULT_WORKER_CPU_USEC;
        config->worker_timeout_usec = CONFIG_DEFAULT_WORKER_TIMEOUT_USEC;
        config->max_recipients = CONFIG_DEFAULT_MAX_RECIPIENTS;
        config->auto_import = true;
        config->require_sender_match = true;
        config->expiry_warning_days = CONFIG_DEFAULT_EXPIRY_WARNING_DAYS;
        config->minimum_rsa_bits = 2048;
        config->allowed_digests = strdup("sha-256 sha-384 sha-512");
        config->default_cipher = strdup("aes-256-cbc");
        config->revocation_method = strdup("crl");
        config->fetch_timeout_usec = CONFIG_DEFAULT_FETCH_TIMEOUT_USEC;
        config->max_crl_size = CONFIG_DEFAULT_MAX_CRL_SIZE;
        config->directory_filter = strdup(CONFIG_DEFAULT_DIRECTORY_FILTER);
        config->directory_timeout_usec = CONFIG_DEFAULT_DIRECTORY_TIMEOUT_USEC;
        config->directory_cache_usec = CONFIG_DEFAULT_DIRECTORY_CACHE_USEC;
        if (!config->allowed_digests || !config->default_cipher || !config->revocation_method ||
            !config->directory_filter)
                return -ENOMEM;

        *ret = TAKE_PTR(config);
        return 0;
}

Config *config_free(Config *config) {
        if (!config)
                return NULL;
        free(config->path);
        free(config->token_module);
        free(config->token_uri);
        free(config->token_pin_file);
        free(config->store_path);
        free(config->store_backend);
        free(config->store_connection);
        free(config->store_password_file);
        free(config->allowed_digests);
        free(config->default_cipher);
        free(config->revocation_method);
        free(config->ocsp_responder);
        free(config->directory_uri);
        free(config->directory_base);
        free(config->directory_filter);
        free(config->directory_bind_dn);
        free(config->directory_password_file);
        return mfree(config);
}

void config_error_done(ConfigError *error) {
        if (!error)
                return;
        free(error->file);
        free(error->section);
        free(error->key);
        free(error->message);
        *error = (ConfigError) {};
}

static int config_error_set(ConfigError *error, int r, const char *name, unsigned line,
                            const char *section, const char *key, char *message) {
        if (!error) {
                free(message);
                return r;
        }

        config_error_done(error);
        error->line = line;
        error->message = message;
        if ((name && !(error->file = strdup(name))) ||
            (section && !(error->section = strdup(section))) ||
            (key && !(error->key = strdup(key))) ||
            !error->message) {
                config_error_done(error);
                return -ENOMEM;
        }
        return r;
}

char *config_error_to_string(const ConfigError *error) {
        char *s = NULL;
        int r;

        if (error->key)
                r = asprintf(&s, "%s:%u: [%s] %s=: %s", strempty(error->file), error->line,
                             strempty(error->section), error->key, strempty(error->message));
        else if (error->line > 0)
                r = asprintf(&s, "%s:%u: %s", strempty(error->file), error->line, strempty(error->message));
        else
                r = asprintf(&s, "%s: %s", strempty(error->file), strempty(error->message));

        return r < 0 ? NULL : s;
}

static char *strip(char *s) {
        char *end;

        while (isspace((unsigned char) *s))
                s++;
        end = s + strlen(s);
        while (end > s && isspace((unsigned char) end[-1]))
                *--end = '\0';
        return s;
}

static int config_parse_line(Config *config, char *line, char **section, const char *name,
                             unsigned line_number, ConfigError *error) {
        const ConfigKey *k;
        char *eq, *key, *value, *message = NULL;
        int r;

        line = strip(line);
        if (line[0] == '\0' || line[0] == '#' || line[0] == ';')
                return 0;

        if (line[0] == '[') {
                size_t n = strlen(line);

                if (line[n - 1] != ']')
                        return config_error_set(error, -EINVAL, name, line_number, NULL, NULL,
                                                strdup("section header is missing its closing \"]\""));
                line[n - 1] = '\0';
                if (!section_is_known(line + 1)) {
                        set_message(
                                &message,
                                "unknown section [%s] (known: [Token], [Store], [Policy], [Revocation], [Directory])",
                                line + 1);
                        return config_error_set(error, -EINVAL, name, line_number, NULL, NULL, message);
                }
                return free_and_strdup(section, line + 1);
        }

        eq = strchr(line, '=');
        if (!eq)
                return config_error_set(error, -EINVAL, name, line_number, *section, NULL,
                                        strdup("expected Key=Value"));
        *eq = '\0';
        key = strip(line);
        value = strip(eq + 1);

        if (!*section)
                return config_error_set(error, -EINVAL, name, line_number, NULL, key,
                                        strdup("key outside of any section"));

        /* The value of an unknown key is never repeated: it might be a secret
         * put in the wrong place. */
        k = config_key_find(*section, key);
        if (!k)
                return config_error_set(error, -EINVAL, name, line_number, *section, key,
                                        strdup("unknown key"));

        if (value[0] == '\0')
                return config_key_reset(config, k);

        r = k->parse(value, (char *) config + k->offset, &message);
        if (r == -EINVAL)
                return config_error_set(error, r, name, line_number, *section, key, message);
        return r;
}

/* One file's text over what config holds; each file starts outside any section. */
static int config_parse_into(Config *config, const char *text, const char *name, ConfigError *error) {
        _cleanup_free_ char *copy = NULL, *section = NULL;
        unsigned line_number = 0;
        char *p, *line;
        int r;

        if (strlen(text) > CONFIG_MAX_SIZE)
                return config_error_set(error, -EFBIG, name, 0, NULL, NULL,
                                        strdup("file is larger than 1 MiB"));

        copy = strdup(text);
        if (!copy)
                return -ENOMEM;

        for (p = copy; p; ) {
                line = p;
                p = strchr(p, '\n');
                if (p)
                        *p++ = '\0';
                line_number++;

                r = config_parse_line(config, line, &section, name, line_number, error);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int config_new_named(const char *name, Config **ret) {
        _cleanup_(config_freep) Config *config = NULL;
        int r;

        r = config_new_default(&config);
        if (r < 0)
                return r;
        if (name) {
                config->path = strdup(name);
                if (!config->path)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(config);
        return 0;
}

int config_parse(const char *text, const char *name, Config **ret, ConfigError *error) {
        _cleanup_(config_freep) Config *config = NULL;
        int r;

        r = config_new_named(name, &config);
        if (r < 0)
                return r;
        r = config_parse_into(config, text, name, error);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(config);
        return 0;
}

/* The text of the file at path, checked: a regular file, at most 1 MiB, no NUL. */
static int config_read_file(const char *path, char **ret, ConfigError *error) {
        _cleanup_(closep) int fd = -1;
        _cleanup_free_ char *text = NULL;
        char *message = NULL;
        struct stat st;
        size_t done = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                int r = -errno;

                set_message(&message, "cannot open: %s", strerror(-r));
                return config_error_set(error, r, path, 0, NULL, NULL, message);
        }
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return config_error_set(error, -EINVAL, path, 0, NULL, NULL, strdup("not a regular file"));
        if ((uintmax_t) st.st_size > CONFIG_MAX_SIZE)
                return config_error_set(error, -EFBIG, path, 0, NULL, NULL, strdup("file is larger than 1 MiB"));

        text = malloc((size_t) st.st_size + 1);
        if (!text)
                return -ENOMEM;
        while (done < (size_t) st.st_size) {
                ssize_t n = read(fd, text + done, (size_t) st.st_size - done);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                done += (size_t) n;
        }
        text[done] = '\0';
        if (strlen(text) != done)
                return config_error_set(error, -EINVAL, path, 0, NULL, NULL, strdup("file contains a NUL byte"));

        *ret = TAKE_PTR(text);
        return 0;
}

int config_load(const char *path, Config **ret, ConfigError *error) {
        return config_load_with_dropins(path, false, NULL, ret, error);
}

char **config_dropin_dirs(const char *path) {
        _cleanup_(strv_freep) char **dirs = NULL;
        _cleanup_free_ char *own = NULL;

        if (streq(path, CONFIG_DEFAULT_PATH)) {
                static const char *const system_dirs[] = {
                        SMIMED_SYSCONFDIR "/smimed/smimed.conf.d",
                        "/run/smimed/smimed.conf.d",
                        "/usr/local/lib/smimed/smimed.conf.d",
                        "/usr/lib/smimed/smimed.conf.d",
                };

                for (size_t i = 0; i < ELEMENTSOF(system_dirs); i++)
                        if (strv_extend(&dirs, system_dirs[i]) < 0)
                                return NULL;
                return TAKE_PTR(dirs);
        }
        if (asprintf(&own, "%s.d", path) < 0 || strv_consume(&dirs, TAKE_PTR(own)) < 0)
                return NULL;
        return TAKE_PTR(dirs);
}

static void closedirp(DIR **d) {
        if (*d)
                (void) closedir(*d);
}

static int compare_basename(const void *a, const void *b) {
        const char *x = *(const char *const *) a, *y = *(const char *const *) b;

        return strcmp(strrchr(x, '/') + 1, strrchr(y, '/') + 1);
}

/* The drop-in files of dirs, by name; a name in an earlier directory hides
 * it in the later ones. */
static int config_list_dropins(char *const *dirs, char ***ret) {
        _cleanup_(strv_freep) char **files = NULL;
        size_t n;

        for (char *const *d = dirs; d && *d; d++) {
                _cleanup_(closedirp) DIR *dir = opendir(*d);
                struct dirent *de;

                if (!dir) {
                        if (errno == ENOENT || errno == ENOTDIR)
                                continue;
                        return -errno;
                }
                while ((de = readdir(dir))) {
                        size_t len = strlen(de->d_name);
                        bool hidden = false;
                        char *path;

                        if (de->d_name[0] == '.' || len <= 5 || !streq(de->d_name + len - 5, ".conf"))
                                continue;
                        for (char **f = files; f && *f; f++)
                                if (streq(strrchr(*f, '/') + 1, de->d_name))
                                        hidden = true;
                        if (hidden)
                                continue;
                        if (asprintf(&path, "%s/%s", *d, de->d_name) < 0 || strv_consume(&files, path) < 0)
                                return -ENOMEM;
                }
        }
        n = strv_length(files);
        if (n > 1)
                qsort(files, n, sizeof(char *), compare_basename);
        *ret = TAKE_PTR(files);
        return 0;
}

/* A drop-in that is a link to /dev/null (or empty) removes one of the same
 * name further down, and says nothing itself. */
static bool config_dropin_is_mask(const char *path) {
        _cleanup_free_ char *target = realpath(path, NULL);
        struct stat st;

        if (target && streq(target, "/dev/null"))
                return true;
        return stat(path, &st) >= 0 && S_ISREG(st.st_mode) && st.st_size == 0;
}

int config_load_with_dropins(const char *path, bool missing_ok, char *const *dropin_dirs, Config **ret,
                             ConfigError *error) {
        _cleanup_(config_freep) Config *config = NULL;
        _cleanup_(strv_freep) char **dropins = NULL;
        _cleanup_free_ char *text = NULL;
        int r;

        r = config_new_named(path, &config);
        if (r < 0)
                return r;

        r = config_read_file(path, &text, error);
        if (r == -ENOENT && missing_ok)
                config_error_done(error);
        else if (r < 0)
                return r;
        else {
                r = config_parse_into(config, text, path, error);
                if (r < 0)
                        return r;
        }

        r = config_list_dropins(dropin_dirs, &dropins);
        if (r < 0) {
                char *message = NULL;

                set_message(&message, "cannot read a drop-in directory: %s", strerror(-r));
                return config_error_set(error, r, path, 0, NULL, NULL, message);
        }
        for (char **f = dropins; f && *f; f++) {
                _cleanup_free_ char *dropin_text = NULL;

                if (config_dropin_is_mask(*f))
                        continue;
                r = config_read_file(*f, &dropin_text, error);
                if (r < 0)
                        return r;
                r = config_parse_into(config, dropin_text, *f, error);
                if (r < 0)
                        return r;
        }

        *ret = TAKE_PTR(config);
        return 0;
}

bool config_digest_allowed(const Config *config, const char *digest) {
        size_t n = strlen(digest);

        for (const char *p = config->allowed_digests; p && *p;) {
                if (strncmp(p, digest, n) == 0 && (p[n] == ' ' || p[n] == '\0'))
                        return true;
                p = strchr(p, ' ');
                if (p)
                        p++;
        }
        return false;
}

int config_load_with_own_dropins(const char *path, bool missing_ok, Config **ret, ConfigError *error) {
        _cleanup_(strv_freep) char **dirs = config_dropin_dirs(path);

        if (!dirs)
                return -ENOMEM;
        return config_load_with_dropins(path, missing_ok, dirs, ret, error);
}
