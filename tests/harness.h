/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-bus.h>

#include "macro.h"

/* The test harness: real components in a scratch directory.
 *
 *   harness_new()        a scratch directory and a SoftHSM2 token in it
 *                        ("smimed-test", a random PIN in a 0600 file, an
 *                        RSA-2048 key with CKA_ID 01 and label "test-key");
 *   harness_start_bus()  a private dbus-daemon and a real polkitd on it,
 *                        which sees, in a mount namespace of its own, the
 *                        test directory's actions (policy/org.smimed1.policy)
 *                        and rules in place of the system's;
 *                        DBUS_SYSTEM_BUS_ADDRESS points at it; with
 *                        SMIMED_TEST_BUS=dbus-broker, dbus-broker instead
 *                        (dbus-broker-launch on the same configuration,
 *                        tests/dbus-test.conf, socket-activated by the
 *                        harness; its log in dbus-broker.log);
 *   harness_start_smimed() the built smimed on a config, waiting for READY=1.
 *
 * smimed runs as the system user "smimed", as under its unit (User=,
 * UMask=0077): its token, PIN file and state directory belong to that user,
 * so a file smimed cannot reach fails the tests as it would fail production.
 *
 * Children die with the test (PR_SET_PDEATHSIG; polkitd leaves with its bus),
 * and harness_free() stops them and removes the directory, also after a
 * failed test. Tests need root: they create the users "smimed" (the daemon's)
 * and "smimed-test" (for denial tests) and mount in polkitd's namespace;
 * nothing is installed on the machine. */

#define HARNESS_TOKEN_LABEL "smimed-test"
#define HARNESS_KEY_LABEL "test-key"
#define HARNESS_KEY_ID_HEX "01"
#define HARNESS_TEST_USER "smimed-test"
#define HARNESS_SMIMED_USER "smimed"
#define HARNESS_TIMEOUT_USEC (60ULL * 1000000ULL)

typedef struct Harness {
        char *dir;              /* root's, 0755 */
        char *state_dir;        /* smimed's, 0700, as /var/lib/smimed: the store, spool files */
        char *softhsm_conf;
        char *pin;
        char *pin_file;
        char *key_pem;          /* the test key's public key, PEM */

        char *bus_address;
        const char *bus_daemon; /* "dbus-daemon", or "dbus-broker" (SMIMED_TEST_BUS=dbus-broker) */
        pid_t dbus_pid;         /* dbus-daemon, or dbus-broker-launch (dbus-broker is its child) */
        pid_t bus_log_pid;      /* dbus-broker: the harness's reader of its journal socket */
        pid_t polkit_pid;

        pid_t smimed_pid;
        char *smimed_log;
        unsigned n_configs;

        struct PgServer *store_server; /* SMIMED_TEST_STORE=postgresql: the store's server */
        char *store_connection;        /* set: the store on this PostgreSQL (a test's shared server) */

        uid_t test_uid;
        gid_t test_gid;

        /* HARNESS_SMIMED_USER, looked up once: smimed and its wrapper run
         * with these ids, its supplementary groups and its HOME, USER,
         * LOGNAME and SHELL, as systemd starts a service with User=. */
        uid_t smimed_uid;
        gid_t smimed_gid;
        gid_t *smimed_groups;
        int n_smimed_groups;
        char **smimed_env;
} Harness;

/* Who a program run by the harness runs as. */
typedef enum HarnessUser {
        HARNESS_USER_ROOT,
        HARNESS_USER_TEST,      /* HARNESS_TEST_USER */
        HARNESS_USER_SMIMED,    /* HARNESS_SMIMED_USER, as smimed itself */
} HarnessUser;

int harness_new(Harness **ret);
Harness *harness_free(Harness *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(Harness *, harness_free);

int harness_start_bus(Harness *h);

/* The [Token], [Store] and [Policy] sections that make smimed use the
 * harness token. extra is appended (later keys win). */
/* The [Store] section of the harness's configs: SQLite in the state
 * directory, or PostgreSQL: store_connection's, or with
 * SMIMED_TEST_STORE=postgresql the harness's own server. */
char *harness_store_section(Harness *h);
char *harness_config_text(Harness *h, const char *extra);
/* Writes text to a new file in the scratch directory; returns its path. */
char *harness_write_file(Harness *h, const char *name, const char *text, mode_t mode);
/* The same, owned by HARNESS_SMIMED_USER: what is smimed's own, as a PIN
 * file or a credential (0600 or 0400: smimed refuses others). */
char *harness_write_smimed_file(Harness *h, const char *name, const char *text, mode_t mode);

/* Starts smimed on config and waits until it sends READY=1. Returns -EIO if
 * it exits first. Extra environment as "NAME=value" strings, NULL-terminated. */
int harness_start_smimed(Harness *h, const char *config_path, char *const *extra_env);
/* The same, with resource limits for smimed. */
typedef struct HarnessSmimedOptions {
        uint64_t rlimit_fsize;  /* > 0: the soft RLIMIT_FSIZE, in bytes (the hard one stays) */
} HarnessSmimedOptions;
int harness_start_smimed_full(Harness *h, const char *config_path, char *const *extra_env,
                              const HarnessSmimedOptions *options);
/* SIGTERM, then waits; returns the exit status (or 128+signal). */
int harness_stop_smimed(Harness *h);
/* Sends sig to smimed and waits for it to end; returns as harness_stop_smimed(). */
int harness_kill_smimed(Harness *h, int sig);

/* smimed's output (all of its runs) is appended to h->smimed_log. The size
 * it has now, and a wait (on inotify, up to HARNESS_TIMEOUT_USEC) until the
 * part from offset from on holds needle. */
size_t harness_smimed_log_size(Harness *h);
int harness_wait_smimed_log(Harness *h, size_t from, const char *needle);

/* smimed's open fds: their number, and when ret_list is given, one
 * "  fd -> target" line each (free() it). */
int harness_smimed_fds(Harness *h, unsigned *ret_n, char **ret_list);

/* Runs argv to its end with stdout and stderr captured. Returns the exit
 * status (or 128+signal). as_test_user drops to HARNESS_TEST_USER first. */
int harness_run(Harness *h, char *const *argv, bool as_test_user, char **ret_stdout, char **ret_stderr);
/* The same as any of the harness's users. */
int harness_run_as(Harness *h, char *const *argv, HarnessUser user, char **ret_stdout, char **ret_stderr);

/* Runs fn in a child process as HARNESS_TEST_USER; returns its exit status.
 * fn may write up to 4 KiB of text to *out for the parent. */
int harness_run_as_test_user(Harness *h, int (*fn)(char *out, size_t size, void *userdata), void *userdata,
                             char **ret_out);

/* Reads a whole file; NULL when it cannot. */
char *harness_read_file(const char *path);

/* A client connection to the harness bus. */
int harness_bus_open(sd_bus **ret);

/* Reads a property of org.smimed1.Manager as a string: strings as they are,
 * booleans as "true"/"false", numbers in decimal. */
int harness_get_manager_property(sd_bus *bus, const char *property, char **ret);

/* Records every value PropertiesChanged signals carry for one property of
 * org.smimed1.Manager, from the moment it is created. harness_watch_wait()
 * then processes the bus until a signal carried expected. */
typedef struct PropertyWatch PropertyWatch;

int harness_watch_manager_property(sd_bus *bus, const char *property, PropertyWatch **ret);
int harness_watch_wait(PropertyWatch *w, const char *expected);
PropertyWatch *property_watch_free(PropertyWatch *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(PropertyWatch *, property_watch_free);

/* Records the object paths that InterfacesAdded and InterfacesRemoved of
 * the ObjectManager on /org/smimed1 (on /org/smimed1/key for
 * org.smimed1.Key) announce for one interface, from the
 * moment it is created. harness_objects_wait() processes the bus until a
 * signal of that kind named path. */
typedef struct ObjectWatch ObjectWatch;

int harness_watch_objects(sd_bus *bus, const char *interface, ObjectWatch **ret);
int harness_objects_wait(ObjectWatch *w, const char *path, bool added);
/* How many signals of that kind named path so far. */
unsigned harness_objects_seen(const ObjectWatch *w, const char *path, bool added);
ObjectWatch *object_watch_free(ObjectWatch *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(ObjectWatch *, object_watch_free);
