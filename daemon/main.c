/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include <openssl/provider.h>
#include <systemd/sd-daemon.h>

#include "config.h"
#include "fuse-mounts.h"
#include "heap.h"
#include "log.h"
#include "manager-bus.h"
#include "manager-certificates.h"
#include "manager.h"
#include "store-copy.h"
#include "smimed-bus-names.h"

static void help(void) {
        printf("Usage: smimed [OPTIONS]\n"
               "\n"
               "S/MIME key service: signs, encrypts, decrypts and verifies mail for\n"
               "applications on the D-Bus system bus (%s), with the private keys kept\n"
               "in a PKCS#11 token and polkit deciding who may use them.\n"
               "\n"
               "  -c --config=FILE   Read the configuration from FILE\n"
               "                     (default: %s)\n"
               "     --copy-store-from=PATH\n"
               "                     Copy every certificate, trust flag and CRL of the\n"
               "                     SQLite store at PATH into the store the configuration\n"
               "                     names (e.g. [Store] Backend=postgresql), then exit\n"
               "  -h --help          Show this help\n"
               "     --version       Show the version\n"
               "\n"
               "See smimed(8) and smimed.conf(5).\n",
               SMIMED_BUS_NAME, CONFIG_DEFAULT_PATH);
}

enum {
        ARG_VERSION = 0x100,
        ARG_COPY_STORE_FROM,
};

static const char *arg_copy_store_from;

static int parse_argv(int argc, char *argv[], const char **ret_config_path, bool *ret_explicit) {
        static const struct option options[] = {
                {"config", required_argument, NULL, 'c'},
                {"copy-store-from", required_argument, NULL, ARG_COPY_STORE_FROM},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, ARG_VERSION},
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, "c:h", options, NULL)) >= 0) {
                switch (c) {
                case 'c':
                        *ret_config_path = optarg;
                        *ret_explicit = true;
                        break;
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("smimed %s\n", SMIMED_VERSION);
                        return 0;
                case ARG_COPY_STORE_FROM:
                        if (optarg[0] != '/') {
                                log_error("--copy-store-from= takes an absolute path (got \"%s\").", optarg);
                                return -EINVAL;
                        }
                        arg_copy_store_from = optarg;
                        break;
                case '?':
                        return -EINVAL;
                default:
                        return -EINVAL;
                }
        }

        if (optind < argc) {
                log_error("smimed takes no positional arguments (got \"%s\"); see --help.", argv[optind]);
                return -EINVAL;
        }
        return 1;
}

/* SMIMED_LOG_LEVEL=debug|info|notice|warning|err, or 0…7. */
static void log_level_from_environment(void) {
        static const char *const names[] = {
                [LOG_ERR] = "err", [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
                [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
        };
        const char *e = getenv("SMIMED_LOG_LEVEL");

        if (!e)
                return;
        for (int level = 0; level < (int) ELEMENTSOF(names); level++)
                if ((names[level] && streq(e, names[level])) || (e[0] == '0' + level && e[1] == '\0')) {
                        log_set_max_level(level);
                        return;
                }
        log_warning("Ignoring SMIMED_LOG_LEVEL=%s (expected debug, info, notice, warning, err or 0…7).", e);
}

/* The default provider, and the legacy one for PKCS#12 files that still use
 * RC2 or 3DES-with-SHA1 (what older exports produce). */
static OSSL_PROVIDER *provider_default, *provider_legacy;

static void openssl_setup(void) {
        provider_default = OSSL_PROVIDER_load(NULL, "default");
        if (!provider_default)
                log_warning("Cannot load OpenSSL's default provider.");
        provider_legacy = OSSL_PROVIDER_load(NULL, "legacy");
        if (!provider_legacy)
                log_notice("OpenSSL's legacy provider is not available: old PKCS#12 files (RC2) cannot be read.");
}

static void openssl_teardown(void) {
        if (provider_legacy)
                OSSL_PROVIDER_unload(provider_legacy);
        if (provider_default)
                OSSL_PROVIDER_unload(provider_default);
}

static int load_config(const char *path, bool explicit, Config **ret) {
        _cleanup_(config_error_done) ConfigError error = {};
        _cleanup_free_ char *message = NULL;
        int r;

        if (!explicit && access(path, F_OK) < 0 && errno == ENOENT)
                log_notice("No %s: running with the defaults and the drop-ins, if any.", path);
        r = config_load_with_own_dropins(path, !explicit, ret, &error);
        if (r < 0) {
                message = config_error_to_string(&error);
                return log_error_errno(r, "Bad configuration: %s", message ?: "out of memory");
        }
        return 0;
}

/* smimed --copy-store-from=PATH: no bus, no token; the configuration's
 * store is the target. */
static int copy_store(const Config *config) {
        _cleanup_(store_freep) Store *from = NULL, *to = NULL;
        _cleanup_free_ char *message = NULL;
        StoreCopied copied;
        Db *db = NULL;
        int r;

        if (streq(config->store_backend, "sqlite") && streq(config->store_path, arg_copy_store_from))
                return log_error_errno(-EINVAL, "%s is the store the configuration names already.",
                                       arg_copy_store_from);
        /* Not made when missing, as store_open() would. */
        if (access(arg_copy_store_from, R_OK) < 0)
                return log_error_errno(errno, "Cannot read %s: %m", arg_copy_store_from);
        r = store_open(arg_copy_store_from, &from, &message);
        if (r < 0)
                return log_error_errno(r, "%s", message ?: "Cannot open the store to copy.");
        r = manager_open_db(config, &db, &message);
        if (r >= 0)
                r = store_open_db(db, &to, &message);
        if (r < 0)
                return log_error_errno(r, "%s", message ?: "Cannot open the certificate store.");
        r = store_copy(from, to, &copied, &message);
        if (r < 0)
                return log_error_errno(r, "%s", message);
        /* An announcement per change went out with the commit: running
         * nodes show what came. */
        printf("Copied %u certificates (%u made trust anchors) and %u CRLs from %s into %s.\n", copied.certificates,
               copied.trusted, copied.crls, store_name(from), store_name(to));
        return 0;
}

/* The jobs first (they hold calls and polkit questions of the bus side),
 * then the bus side (it holds calls that refer to the manager). */
static Manager *daemon_free(Manager *m) {
        if (!m)
                return NULL;
        manager_stop_jobs(m);
        manager_bus_done(m);
        return manager_free(m);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, daemon_free);

int main(int argc, char *argv[]) {
        _cleanup_(daemon_freep) Manager *m = NULL;
        _cleanup_(config_freep) Config *config = NULL;
        const char *config_path = CONFIG_DEFAULT_PATH;
        bool explicit = false;
        sigset_t mask;
        int r;

        log_level_from_environment();

        r = parse_argv(argc, argv, &config_path, &explicit);
        if (r <= 0)
                return r < 0 ? 2 : 0;

        r = load_config(config_path, explicit, &config);
        if (r < 0)
                return 1;

        if (arg_copy_store_from) {
                openssl_setup();
                r = copy_store(config);
                openssl_teardown();
                return r < 0 ? 1 : 0;
        }

        /* A client that closes its end of an output pipe must not kill us:
         * the write fails with EPIPE instead. */
        (void) signal(SIGPIPE, SIG_IGN);
        /* Nor a store or spool file that grows past RLIMIT_FSIZE (LimitFSIZE=
         * in the unit): the write fails with EFBIG, SQLite rolls the
         * transaction back, and the caller gets StoreFailed. */
        (void) signal(SIGXFSZ, SIG_IGN);
        heap_keep_for_reuse();

        /* sd-event takes the signals through a signalfd; they must be blocked first. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0) {
                log_error_errno(errno, "Failed to block SIGTERM, SIGINT and SIGHUP: %m");
                return 1;
        }

        openssl_setup();
        r = fuse_mounts_watch();
        if (r < 0)
                log_warning_errno(
                        r, "Cannot open /proc/self/mountinfo (tried again at each call that passes a file): %m");

        r = manager_new(config_path, config, &m);
        if (r < 0) {
                log_error_errno(r, "Failed to set up: %m");
                return 1;
        }
        TAKE_PTR(config); /* the manager owns it now */

        r = manager_start(m);
        if (r >= 0)
                r = manager_bus_start(m);
        if (r < 0)
                return 1;
        manager_start_token(m);
        r = manager_bus_request_name(m);
        if (r < 0)
                return 1;
        (void) sd_notifyf(false, "READY=1\nSTATUS=Token %s", token_state_to_string(manager_token_state(m)));
        log_info("smimed " SMIMED_VERSION " is serving " SMIMED_BUS_NAME ".");

        r = manager_run(m);
        m = daemon_free(m);
        openssl_teardown();
        return r == 0 ? 0 : 1;
}
