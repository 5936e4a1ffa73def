/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of the smimed.conf parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "config.h"
#include "strv.h"

static Config *parse_ok(const char *text) {
        ConfigError error = {};
        Config *config = NULL;
        int r;

        r = config_parse(text, "test.conf", &config, &error);
        if (r < 0)
                fail_msg("unexpected error %d: %s:%u %s", r, error.file, error.line, error.message);
        assert_non_null(config);
        config_error_done(&error);
        return config;
}

/* Parses text that must fail; checks the line and key named in the error and
 * that the message contains want. */
static void parse_fails(const char *text, unsigned line, const char *section, const char *key, const char *want) {
        _cleanup_(config_error_done) ConfigError error = {};
        _cleanup_free_ char *s = NULL;
        Config *config = NULL;
        int r;

        r = config_parse(text, "test.conf", &config, &error);
        assert_int_equal(r, -EINVAL);
        assert_null(config);
        assert_string_equal(error.file, "test.conf");
        assert_int_equal(error.line, line);
        if (section)
                assert_string_equal(error.section, section);
        if (key)
                assert_string_equal(error.key, key);
        else
                assert_null(error.key);
        assert_non_null(error.message);
        assert_non_null(strstr(error.message, want));

        s = config_error_to_string(&error);
        assert_non_null(s);
        assert_non_null(strstr(s, "test.conf:"));
}

static void test_defaults(void **state) {
        _cleanup_(config_freep) Config *config = parse_ok("");

        (void) state;
        assert_null(config->token_module);
        assert_null(config->token_uri);
        assert_null(config->token_pin_file);
        assert_int_equal(config->token_rescan_usec, CONFIG_DEFAULT_RESCAN_USEC);
        assert_string_equal(config->store_path, CONFIG_DEFAULT_STORE_PATH);
        assert_string_equal(config->store_backend, "sqlite");
        assert_null(config->store_connection);
        assert_null(config->store_password_file);
        assert_true(config->policy_enabled);
        assert_string_equal(config->path, "test.conf");
}

static void test_full_file(void **state) {
        _cleanup_(config_freep) Config *config = parse_ok(
                "# smimed.conf\n"
                "; another comment\n"
                "\n"
                "[Token]\n"
                "Module = /usr/lib/softhsm/libsofthsm2.so\n"
                "URI=pkcs11:token=mail%20keys;manufacturer=SoftHSM%20project\n"
                "PINFile=/etc/smimed/token-pin\n"
                "RescanIntervalSec=0.25\n"
                "\n"
                "  [Store]  \n"
                "Path=/var/lib/smimed/store.db\r\n"
                "[Policy]\n"
                "Enabled=no\n");

        (void) state;
        assert_string_equal(config->token_module, "/usr/lib/softhsm/libsofthsm2.so");
        assert_string_equal(config->token_uri, "pkcs11:token=mail%20keys;manufacturer=SoftHSM%20project");
        assert_string_equal(config->token_pin_file, "/etc/smimed/token-pin");
        assert_int_equal(config->token_rescan_usec, 250000);
        assert_string_equal(config->store_path, "/var/lib/smimed/store.db");
        assert_false(config->policy_enabled);
}

static void test_booleans(void **state) {
        static const char *const yes[] = { "yes", "YES", "true", "1", "on", "y", "t" };
        static const char *const no[] = { "no", "False", "0", "off", "n", "f" };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                assert_int_equal(parse_boolean(yes[i]), 1);
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                assert_int_equal(parse_boolean(no[i]), 0);
        assert_int_equal(parse_boolean("maybe"), -EINVAL);
        assert_int_equal(parse_boolean(""), -EINVAL);
}

static void test_last_wins_and_empty_resets(void **state) {
        _cleanup_(config_freep) Config *config = parse_ok(
                "[Policy]\nEnabled=no\nEnabled=yes\n"
                "[Store]\nPath=/a\nPath=\n"
                "[Token]\nModule=/x.so\nModule=\nRescanIntervalSec=9\nRescanIntervalSec=\n");

        (void) state;
        assert_true(config->policy_enabled);
        assert_string_equal(config->store_path, CONFIG_DEFAULT_STORE_PATH);
        assert_null(config->token_module);
        assert_int_equal(config->token_rescan_usec, CONFIG_DEFAULT_RESCAN_USEC);
}

static void test_sections_are_reopened(void **state) {
        _cleanup_(config_freep) Config *config = parse_ok(
                "[Token]\nModule=/a.so\n[Policy]\nEnabled=no\n[Token]\nPINFile=/p\n");

        (void) state;
        assert_string_equal(config->token_module, "/a.so");
        assert_string_equal(config->token_pin_file, "/p");
        assert_false(config->policy_enabled);
}

static void test_unknown_key(void **state) {
        (void) state;
        parse_fails("[Token]\nModule=/a.so\nPIN=123456\n", 3, "Token", "PIN", "unknown key");
}

static void test_unknown_key_value_not_repeated(void **state) {
        _cleanup_(config_error_done) ConfigError error = {};
        _cleanup_free_ char *s = NULL;
        Config *config = NULL;

        (void) state;
        assert_int_equal(config_parse("[Token]\nPin=s3cret-value\n", "x.conf", &config, &error), -EINVAL);
        s = config_error_to_string(&error);
        assert_non_null(s);
        assert_null(strstr(s, "s3cret-value"));
        assert_string_equal(s, "x.conf:2: [Token] Pin=: unknown key");
}

static void test_keys_are_case_sensitive(void **state) {
        (void) state;
        parse_fails("[Policy]\nenabled=yes\n", 2, "Policy", "enabled", "unknown key");
}

static void test_key_in_wrong_section(void **state) {
        (void) state;
        parse_fails("[Store]\nModule=/a.so\n", 2, "Store", "Module", "unknown key");
}

static void test_unknown_section(void **state) {
        (void) state;
        parse_fails("[Token]\n[Tokens]\nModule=/a.so\n", 2, NULL, NULL, "unknown section [Tokens]");
}

static void test_unterminated_section(void **state) {
        (void) state;
        parse_fails("\n[Token\n", 2, NULL, NULL, "closing");
}

static void test_key_outside_section(void **state) {
        (void) state;
        parse_fails("Enabled=yes\n", 1, NULL, "Enabled", "outside of any section");
}

static void test_missing_equals(void **state) {
        (void) state;
        parse_fails("[Policy]\nEnabled\n", 2, "Policy", NULL, "Key=Value");
}

static void test_bad_boolean(void **state) {
        (void) state;
        parse_fails("[Policy]\nEnabled=perhaps\n", 2, "Policy", "Enabled", "expected a boolean");
}

static void test_relative_path(void **state) {
        (void) state;
        parse_fails("[Store]\nPath=store.db\n", 2, "Store", "Path", "absolute path");
        parse_fails("[Token]\nModule=libsofthsm2.so\n", 2, "Token", "Module", "absolute path");
        parse_fails("[Token]\nPINFile=pin\n", 2, "Token", "PINFile", "absolute path");
}

static void test_bad_uri(void **state) {
        (void) state;
        parse_fails("[Token]\nURI=token=foo\n", 2, "Token", "URI", "pkcs11: URI");
        parse_fails("[Token]\nURI=pkcs11:token=%zz\n", 2, "Token", "URI", "pkcs11: URI");
}

static void test_bad_seconds(void **state) {
        (void) state;
        parse_fails("[Token]\nRescanIntervalSec=0\n", 2, "Token", "RescanIntervalSec", "greater than zero");
        parse_fails("[Token]\nRescanIntervalSec=5m\n", 2, "Token", "RescanIntervalSec", "seconds");
        parse_fails("[Token]\nRescanIntervalSec=-1\n", 2, "Token", "RescanIntervalSec", "seconds");
        parse_fails("[Token]\nRescanIntervalSec=1.\n", 2, "Token", "RescanIntervalSec", "seconds");
        parse_fails("[Token]\nRescanIntervalSec=0.0000001\n", 2, "Token", "RescanIntervalSec", "seconds");
}

static void test_load_file(void **state) {
        char path[] = "/tmp/smimed-config-test.XXXXXX";
        _cleanup_(config_error_done) ConfigError error = {};
        Config *config = NULL;
        FILE *f;
        int fd;

        (void) state;
        fd = mkstemp(path);
        assert_true(fd >= 0);
        f = fdopen(fd, "w");
        assert_non_null(f);
        fputs("[Policy]\nEnabled=no\n", f);
        fclose(f);

        assert_int_equal(config_load(path, &config, &error), 0);
        assert_false(config->policy_enabled);
        assert_string_equal(config->path, path);
        config_free(config);
        config = NULL;

        /* A NUL byte in the middle is not silently cut off. */
        f = fopen(path, "w");
        assert_non_null(f);
        fwrite("[Policy]\n\0Enabled=no\n", 1, 21, f);
        fclose(f);
        assert_int_equal(config_load(path, &config, &error), -EINVAL);
        assert_non_null(strstr(error.message, "NUL"));

        unlink(path);
        config_error_done(&error);
        assert_int_equal(config_load(path, &config, &error), -ENOENT);
        assert_string_equal(error.file, path);
        assert_int_equal(error.line, 0);
        assert_non_null(strstr(error.message, "cannot open"));
}

static void write_text(const char *dir, const char *name, const char *text) {
        _cleanup_free_ char *path = NULL;
        FILE *f;

        assert_true(asprintf(&path, "%s/%s", dir, name) > 0);
        f = fopen(path, "w");
        assert_non_null(f);
        fputs(text, f);
        assert_int_equal(fclose(f), 0);
}

/* Drop-ins: in name order across the directories, an earlier directory
 * hides a name in later ones, empty files and links to /dev/null only hide,
 * each file starts outside any section, errors name the drop-in. */
static void test_dropins(void **state) {
        char top[] = "/tmp/smimed-config-test.XXXXXX";
        _cleanup_free_ char *main_path = NULL, *etc = NULL, *run = NULL, *lib = NULL, *null_link = NULL,
                            *cleanup = NULL;
        _cleanup_(config_error_done) ConfigError error = {};
        Config *config = NULL;

        (void) state;
        assert_non_null(mkdtemp(top));
        assert_true(asprintf(&main_path, "%s/smimed.conf", top) > 0);
        assert_true(asprintf(&etc, "%s/etc", top) > 0);
        assert_true(asprintf(&run, "%s/run", top) > 0);
        assert_true(asprintf(&lib, "%s/lib", top) > 0);
        assert_int_equal(mkdir(etc, 0755), 0);
        assert_int_equal(mkdir(lib, 0755), 0); /* run is missing: that is fine */
        char *const dirs[] = {etc, run, lib, NULL};

        write_text(top, "smimed.conf", "[Policy]\nMaxRecipients=10\nMinimumRSABits=3072\n");
        /* 10-lib (only in lib) then 20-etc (etc) then 30-both (etc hides lib's). */
        write_text(lib, "10-lib.conf", "[Policy]\nMaxRecipients=11\nMaxCalls=7\n");
        write_text(etc, "20-etc.conf", "[Policy]\nMaxRecipients=12\n");
        write_text(lib, "30-both.conf", "[Policy]\nMaxRecipients=99\n");
        write_text(etc, "30-both.conf", "[Policy]\nMaxRecipients=13\n");
        /* Masked: an empty file in etc, a link to /dev/null in etc. */
        write_text(lib, "40-empty.conf", "[Policy]\nEnabled=no\n");
        write_text(etc, "40-empty.conf", "");
        write_text(lib, "50-null.conf", "[Policy]\nAutoImportCertificates=no\n");
        assert_true(asprintf(&null_link, "%s/50-null.conf", etc) > 0);
        assert_int_equal(symlink("/dev/null", null_link), 0);
        /* Not drop-ins. */
        write_text(etc, "60-other.txt", "[Policy]\nEnabled=no\n");
        write_text(etc, ".70-hidden.conf", "[Policy]\nEnabled=no\n");

        assert_int_equal(config_load_with_dropins(main_path, false, dirs, &config, &error), 0);
        assert_int_equal(config->max_recipients, 13);
        assert_int_equal(config->max_calls, 7);
        assert_int_equal(config->minimum_rsa_bits, 3072);
        assert_true(config->policy_enabled);
        assert_true(config->auto_import);
        assert_string_equal(config->path, main_path);
        config = config_free(config);

        /* Without the main file: an error, unless it may be missing. */
        assert_int_equal(unlink(main_path), 0);
        assert_int_equal(config_load_with_dropins(main_path, false, dirs, &config, &error), -ENOENT);
        config_error_done(&error);
        assert_int_equal(config_load_with_dropins(main_path, true, dirs, &config, &error), 0);
        assert_int_equal(config->max_recipients, 13);
        assert_int_equal(config->minimum_rsa_bits, 2048);
        config = config_free(config);

        /* A key outside a section in a drop-in, though the file before ended in one. */
        write_text(etc, "80-bad.conf", "MaxCalls=3\n");
        assert_int_equal(config_load_with_dropins(main_path, true, dirs, &config, &error), -EINVAL);
        assert_null(config);
        assert_non_null(strstr(error.file, "/etc/80-bad.conf"));
        assert_int_equal(error.line, 1);
        assert_non_null(strstr(error.message, "outside of any section"));

        /* The directories smimed reads. */
        {
                _cleanup_(strv_freep) char **own = config_dropin_dirs("/srv/x/smimed.conf");
                _cleanup_(strv_freep) char **system = config_dropin_dirs(CONFIG_DEFAULT_PATH);

                assert_non_null(own);
                assert_string_equal(own[0], "/srv/x/smimed.conf.d");
                assert_null(own[1]);
                assert_non_null(system);
                assert_string_equal(system[0], SMIMED_SYSCONFDIR "/smimed/smimed.conf.d");
                assert_string_equal(system[1], "/run/smimed/smimed.conf.d");
                assert_string_equal(system[3], "/usr/lib/smimed/smimed.conf.d");
        }

        assert_true(asprintf(&cleanup, "rm -rf '%s'", top) > 0);
        assert_int_equal(system(cleanup), 0);
}

/* conf/smimed.conf, installed as /etc/smimed/smimed.conf: every key, each in
 * its section, commented out with its default; as shipped and with every
 * key uncommented, it reads as the defaults. */
static void test_commented_default_file(void **state) {
        _cleanup_(config_freep) Config *defaults = NULL, *as_shipped = NULL, *uncommented = NULL;
        _cleanup_(config_error_done) ConfigError error = {};
        _cleanup_free_ char *text = NULL, *all = NULL;
        size_t size = 0;
        FILE *f;

        (void) state;
        f = fopen(SMIMED_SOURCE_ROOT "/conf/smimed.conf", "re");
        assert_non_null(f);
        text = calloc(1, 64 * 1024);
        assert_non_null(text);
        size = fread(text, 1, 64 * 1024 - 1, f);
        fclose(f);
        assert_true(size > 0);

        assert_int_equal(config_new_default(&defaults), 0);
        assert_int_equal(config_load(SMIMED_SOURCE_ROOT "/conf/smimed.conf", &as_shipped, &error), 0);
        assert_true(config_equal(defaults, as_shipped));

        /* Every "#Key=" line uncommented. */
        all = strdup(text);
        assert_non_null(all);
        for (char *line = all; line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
                if (line[0] == '#' && line[1] >= 'A' && line[1] <= 'Z' && strchr(line, '=') &&
                    strchr(line, '=') < (strchr(line, '\n') ?: line + strlen(line)))
                        line[0] = ' ';
        if (config_parse(all, "smimed.conf uncommented", &uncommented, &error) < 0)
                fail_msg("conf/smimed.conf uncommented: %s:%u %s", error.file, error.line, error.message);
        if (!config_equal(defaults, uncommented))
                fail_msg("conf/smimed.conf: a default shown is not the default");

        for (size_t i = 0; i < config_n_keys(); i++) {
                _cleanup_free_ char *header = NULL, *entry = NULL;
                const char *section, *key, *start, *end;

                config_key_name(i, &section, &key);
                assert_true(asprintf(&header, "\n[%s]\n", section) > 0);
                assert_true(asprintf(&entry, "\n#%s=", key) > 0);
                start = strstr(text, header);
                if (!start) {
                        fail_msg("conf/smimed.conf has no [%s]", section);
                        continue; /* (fail_msg() does not return; GCC's ASan build cannot tell) */
                }
                end = strstr(start + 1, "\n[") ?: text + size;
                if (!strstr(start, entry) || strstr(start, entry) > end)
                        fail_msg("conf/smimed.conf does not show [%s] %s=", section, key);
        }
}

static void test_sizes(void **state) {
        _cleanup_(config_freep) Config *a = parse_ok("[Policy]\nMaxMessageSize=25M\n");
        _cleanup_(config_freep) Config *b = parse_ok("[Policy]\nMaxMessageSize=4096\n");
        _cleanup_(config_freep) Config *c = parse_ok("");

        (void) state;
        assert_int_equal(a->max_message_size, 25ULL * 1024 * 1024);
        assert_int_equal(b->max_message_size, 4096);
        assert_int_equal(c->max_message_size, CONFIG_DEFAULT_MAX_MESSAGE_SIZE);
        parse_fails("[Policy]\nMaxMessageSize=0\n", 2, "Policy", "MaxMessageSize", "greater than zero");
        parse_fails("[Policy]\nMaxMessageSize=10T\n", 2, "Policy", "MaxMessageSize", "size in bytes");
        parse_fails("[Policy]\nMaxMessageSize=-5\n", 2, "Policy", "MaxMessageSize", "size in bytes");
        parse_fails("[Policy]\nMaxMessageSize=99999999999999999999G\n", 2, "Policy", "MaxMessageSize", "size");
}

static void test_io_timeout(void **state) {
        _cleanup_(config_freep) Config *a = parse_ok("[Policy]\nIOTimeoutSec=1\n");
        _cleanup_(config_freep) Config *b = parse_ok("[Policy]\nIOTimeoutSec=0.5\n");
        _cleanup_(config_freep) Config *c = parse_ok("");
        _cleanup_(config_freep) Config *d = parse_ok("[Policy]\nIOTimeoutSec=7\nIOTimeoutSec=\n");

        (void) state;
        assert_int_equal(a->io_timeout_usec, 1000000);
        assert_int_equal(b->io_timeout_usec, 500000);
        assert_int_equal(c->io_timeout_usec, CONFIG_DEFAULT_IO_TIMEOUT_USEC);
        assert_int_equal(CONFIG_DEFAULT_IO_TIMEOUT_USEC, 60ULL * 1000000ULL);
        assert_int_equal(d->io_timeout_usec, CONFIG_DEFAULT_IO_TIMEOUT_USEC);
        parse_fails("[Policy]\nIOTimeoutSec=0\n", 2, "Policy", "IOTimeoutSec", "greater than zero");
        parse_fails("[Policy]\nIOTimeoutSec=1m\n", 2, "Policy", "IOTimeoutSec", "seconds");
        parse_fails("[Token]\nIOTimeoutSec=1\n", 2, "Token", "IOTimeoutSec", "unknown key");
}

static void test_revocation(void **state) {
        _cleanup_(config_freep) Config *defaults = parse_ok("");
        _cleanup_(config_freep) Config *set = parse_ok("[Revocation]\nMethod=none\nFetchTimeoutSec=2.5\nUnknown=hard\n"
                                                       "MaxCRLSize=64K\n");
        _cleanup_(config_freep) Config *reset = parse_ok("[Revocation]\nMethod=none\nUnknown=hard\nMaxCRLSize=1M\n"
                                                         "FetchTimeoutSec=3\nMethod=\nUnknown=\nMaxCRLSize=\n"
                                                         "FetchTimeoutSec=\n");

        (void) state;
        assert_string_equal(defaults->revocation_method, "crl");
        assert_int_equal(defaults->fetch_timeout_usec, 10ULL * 1000000ULL);
        assert_false(defaults->revocation_unknown_hard);
        assert_int_equal(defaults->max_crl_size, 10ULL * 1024ULL * 1024ULL);

        assert_string_equal(set->revocation_method, "none");
        assert_int_equal(set->fetch_timeout_usec, 2500000);
        assert_true(set->revocation_unknown_hard);
        assert_int_equal(set->max_crl_size, 64 * 1024);

        assert_string_equal(reset->revocation_method, "crl");
        assert_int_equal(reset->fetch_timeout_usec, CONFIG_DEFAULT_FETCH_TIMEOUT_USEC);
        assert_false(reset->revocation_unknown_hard);
        assert_int_equal(reset->max_crl_size, CONFIG_DEFAULT_MAX_CRL_SIZE);

        parse_fails("[Revocation]\nMethod=ldap\n", 2, "Revocation", "Method", "known: crl, ocsp, ocsp-then-crl, none");
        parse_fails("[Revocation]\nOCSPResponder=https://ocsp.example.com/\n", 2, "Revocation", "OCSPResponder",
                    "http:// URL");
        parse_fails("[Revocation]\nOCSPResponder=ocsp.example.com\n", 2, "Revocation", "OCSPResponder", "http:// URL");
        {
                _cleanup_(config_freep) Config *ocsp =
                        parse_ok("[Revocation]\nMethod=ocsp-then-crl\nOCSPResponder=http://ocsp.example.com:8080/x\n");
                _cleanup_(config_freep) Config *plain = parse_ok("[Revocation]\nMethod=ocsp\n");

                assert_string_equal(ocsp->revocation_method, "ocsp-then-crl");
                assert_string_equal(ocsp->ocsp_responder, "http://ocsp.example.com:8080/x");
                assert_string_equal(plain->revocation_method, "ocsp");
                assert_null(plain->ocsp_responder);
                assert_null(defaults->ocsp_responder);
        }
        parse_fails("[Revocation]\nUnknown=maybe\n", 2, "Revocation", "Unknown", "soft or hard");
        parse_fails("[Revocation]\nFetchTimeoutSec=0\n", 2, "Revocation", "FetchTimeoutSec", "greater than zero");
        parse_fails("[Revocation]\nMaxCRLSize=0\n", 2, "Revocation", "MaxCRLSize", "size");
        parse_fails("[Policy]\nUnknown=soft\n", 2, "Policy", "Unknown", "unknown key");
}

static void test_directory(void **state) {
        _cleanup_(config_freep) Config *defaults = parse_ok("");
        _cleanup_(config_freep) Config *set =
                parse_ok("[Directory]\nURI=ldap://127.0.0.1:3890/\nBase=dc=example,dc=com\n"
                         "Filter=(&(objectClass=inetOrgPerson)(mail=%s))\nBindDN=cn=reader,dc=example,dc=com\n"
                         "PasswordFile=/run/credentials/smimed.service/ldap\nTimeoutSec=0.5\nCacheSec=60\n");
        _cleanup_(config_freep) Config *reset = parse_ok("[Directory]\nURI=ldapi://%2Frun%2Fslapd%2Fldapi\n"
                                                         "Filter=(uid=%s)\nTimeoutSec=1\nURI=\nFilter=\n"
                                                         "TimeoutSec=\n");

        (void) state;
        assert_null(defaults->directory_uri);
        assert_null(defaults->directory_base);
        assert_string_equal(defaults->directory_filter, "(mail=%s)");
        assert_null(defaults->directory_bind_dn);
        assert_null(defaults->directory_password_file);
        assert_int_equal(defaults->directory_timeout_usec, 5ULL * 1000000ULL);
        assert_int_equal(defaults->directory_cache_usec, 3600ULL * 1000000ULL);

        assert_string_equal(set->directory_uri, "ldap://127.0.0.1:3890/");
        assert_string_equal(set->directory_base, "dc=example,dc=com");
        assert_string_equal(set->directory_filter, "(&(objectClass=inetOrgPerson)(mail=%s))");
        assert_string_equal(set->directory_bind_dn, "cn=reader,dc=example,dc=com");
        assert_string_equal(set->directory_password_file, "/run/credentials/smimed.service/ldap");
        assert_int_equal(set->directory_timeout_usec, 500000);
        assert_int_equal(set->directory_cache_usec, 60ULL * 1000000ULL);

        assert_null(reset->directory_uri);
        assert_string_equal(reset->directory_filter, CONFIG_DEFAULT_DIRECTORY_FILTER);
        assert_int_equal(reset->directory_timeout_usec, CONFIG_DEFAULT_DIRECTORY_TIMEOUT_USEC);

        parse_fails("[Directory]\nURI=http://example.com/\n", 2, "Directory", "URI", "ldap://");
        parse_fails("[Directory]\nFilter=(mail=%s)(cn=%s)\n", 2, "Directory", "Filter", "one %s");
        parse_fails("[Directory]\nFilter=mail=%s\n", 2, "Directory", "Filter", "parentheses");
        parse_fails("[Directory]\nFilter=(mail=%d)\n", 2, "Directory", "Filter", "may follow");
        parse_fails("[Directory]\nPasswordFile=secret\n", 2, "Directory", "PasswordFile", "absolute path");
        parse_fails("[Directory]\nTimeoutSec=0\n", 2, "Directory", "TimeoutSec", "greater than zero");
}

static void test_client_limits(void **state) {
        _cleanup_(config_freep) Config *a = parse_ok("[Policy]\nMaxCallsPerClient=4\nMaxCallsPerUser=8\nMaxCalls=32\n"
                                                     "SpoolQuotaPerClient=10M\nSpoolQuota=1G\nMaxRecipients=50\n");
        _cleanup_(config_freep) Config *c = parse_ok("");

        (void) state;
        assert_int_equal(a->max_calls_per_client, 4);
        assert_int_equal(a->max_calls_per_user, 8);
        assert_int_equal(a->max_calls, 32);
        assert_int_equal(a->spool_quota_per_client, 10ULL * 1024 * 1024);
        assert_int_equal(a->spool_quota, 1024ULL * 1024 * 1024);
        assert_int_equal(a->max_recipients, 50);
        assert_int_equal(c->max_calls_per_client, 16);
        assert_int_equal(c->max_calls_per_user, 256);
        assert_int_equal(c->max_calls, 1024);
        assert_int_equal(c->spool_quota_per_client, 256ULL * 1024 * 1024);
        assert_int_equal(c->spool_quota, 1024ULL * 1024 * 1024);
        assert_int_equal(c->max_recipients, 1000);
        parse_fails("[Policy]\nMaxCallsPerClient=0\n", 2, "Policy", "MaxCallsPerClient", "between 1 and");
        parse_fails("[Policy]\nMaxCalls=many\n", 2, "Policy", "MaxCalls", "between 1 and");
        parse_fails("[Policy]\nSpoolQuota=0\n", 2, "Policy", "SpoolQuota", "greater than zero");
        parse_fails("[Token]\nMaxRecipients=3\n", 2, "Token", "MaxRecipients", "unknown key");
}

static void test_worker_limits(void **state) {
        _cleanup_(config_freep) Config *a = parse_ok("[Policy]\nWorkerMemoryMax=512M\nWorkerCPUSec=30\n"
                                                     "WorkerTimeoutSec=45.5\n");
        _cleanup_(config_freep) Config *c = parse_ok("");

        (void) state;
        assert_int_equal(a->worker_memory_max, 512ULL * 1024 * 1024);
        assert_int_equal(a->worker_cpu_usec, 30ULL * 1000000ULL);
        assert_int_equal(a->worker_timeout_usec, 45500000ULL);
        assert_int_equal(c->worker_memory_max, 2048ULL * 1024 * 1024);
        assert_int_equal(c->worker_cpu_usec, 300ULL * 1000000ULL);
        assert_int_equal(c->worker_timeout_usec, 600ULL * 1000000ULL);
        parse_fails("[Policy]\nWorkerMemoryMax=0\n", 2, "Policy", "WorkerMemoryMax", "greater than zero");
        parse_fails("[Policy]\nWorkerCPUSec=never\n", 2, "Policy", "WorkerCPUSec", "seconds");
        parse_fails("[Token]\nWorkerTimeoutSec=3\n", 2, "Token", "WorkerTimeoutSec", "unknown key");
}

/* [Store] on PostgreSQL: the connection string is libpq's to judge, and a
 * password in it is refused without being repeated. */
static void test_store_backend(void **state) {
        _cleanup_(config_freep) Config *config =
                parse_ok("[Store]\nBackend=postgresql\nConnection=host=/run/postgresql dbname=smimed user=smimed\n"
                         "PasswordFile=/etc/smimed/store-password\n");

        (void) state;
        assert_string_equal(config->store_backend, "postgresql");
        assert_string_equal(config->store_connection, "host=/run/postgresql dbname=smimed user=smimed");
        assert_string_equal(config->store_password_file, "/etc/smimed/store-password");
        config = config_free(config);
        config = parse_ok("[Store]\nConnection=postgresql://smimed@db.example.com/smimed?sslmode=verify-full\n");
        assert_string_equal(config->store_connection, "postgresql://smimed@db.example.com/smimed?sslmode=verify-full");

        parse_fails("[Store]\nBackend=mysql\n", 2, "Store", "Backend",
                    "unknown backend \"mysql\" (known: sqlite, postgresql)");
        parse_fails("[Store]\nConnection=host=a dbname\n", 2, "Store", "Connection",
                    "not a PostgreSQL connection string");
        parse_fails("[Store]\nConnection=host=a password=hunter2\n", 2, "Store", "Connection", "holds a password");
        parse_fails("[Store]\nConnection=postgresql://smimed:hunter2@db/smimed\n", 2, "Store", "Connection",
                    "holds a password");
        parse_fails("[Store]\nPasswordFile=store-password\n", 2, "Store", "PasswordFile", "absolute path");
        {
                _cleanup_(config_error_done) ConfigError error = {};
                _cleanup_free_ char *text = NULL;
                Config *c = NULL;

                assert_true(config_parse("[Store]\nConnection=host=a password=hunter2\n", "test.conf", &c, &error) <
                            0);
                text = config_error_to_string(&error);
                assert_null(strstr(text, "hunter2"));
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_client_limits),
                cmocka_unit_test(test_worker_limits),
                cmocka_unit_test(test_full_file),
                cmocka_unit_test(test_booleans),
                cmocka_unit_test(test_last_wins_and_empty_resets),
                cmocka_unit_test(test_sections_are_reopened),
                cmocka_unit_test(test_unknown_key),
                cmocka_unit_test(test_unknown_key_value_not_repeated),
                cmocka_unit_test(test_keys_are_case_sensitive),
                cmocka_unit_test(test_key_in_wrong_section),
                cmocka_unit_test(test_unknown_section),
                cmocka_unit_test(test_unterminated_section),
                cmocka_unit_test(test_key_outside_section),
                cmocka_unit_test(test_missing_equals),
                cmocka_unit_test(test_bad_boolean),
                cmocka_unit_test(test_relative_path),
                cmocka_unit_test(test_bad_uri),
                cmocka_unit_test(test_bad_seconds),
                cmocka_unit_test(test_load_file),
                cmocka_unit_test(test_dropins),
                cmocka_unit_test(test_commented_default_file),
                cmocka_unit_test(test_sizes),
                cmocka_unit_test(test_io_timeout),
                cmocka_unit_test(test_store_backend),
                cmocka_unit_test(test_revocation),
                cmocka_unit_test(test_directory),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
