/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* org.smimed1.Manager on a real bus: properties, introspection, Reload under
 * polkit, smimectl status. One smimed for the whole file. */
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "harness.h"
#include "smimed-bus-names.h"
#include "smimed.h"
#include "xml-tags.h"

static Harness *harness;
static char *config_path;

static void write_config(const char *extra) {
        _cleanup_free_ char *text = harness_config_text(harness, extra);

        assert_non_null(text);
        free(config_path);
        config_path = NULL;
        /* The same path every time: Reload re-reads the file smimed started with. */
        config_path = harness_write_file(harness, "smimed.conf", text, 0644);
        assert_non_null(config_path);
}

static int setup(void **state) {
        _cleanup_free_ char *text = NULL;
        int r;

        (void) state;
        r = harness_new(&harness);
        if (r < 0)
                return r;
        r = harness_start_bus(harness);
        if (r < 0)
                return r;

        text = harness_config_text(harness, NULL);
        config_path = harness_write_file(harness, "smimed.conf", text, 0644);
        if (!config_path)
                return -1;
        return harness_start_smimed(harness, config_path, NULL);
}

static int teardown(void **state) {
        (void) state;
        harness = harness_free(harness);
        config_path = mfree(config_path);
        return 0;
}

static smimed *connect_smimed(void) {
        smimed_error error = {};
        smimed *s = NULL;

        assert_int_equal(smimed_connect(&s, &error), 0);
        assert_null(error.name);
        return s;
}

static void test_status_properties(void **state) {
        smimed_status_info info = {};
        smimed_error error = {};
        smimed *s = connect_smimed();

        (void) state;
        assert_int_equal(smimed_status(s, &info, &error), 0);
        assert_string_equal(info.version, SMIMED_VERSION);
        assert_true(info.enabled);
        assert_string_equal(info.token_state, "ready");
        assert_string_equal(info.token_state_reason, "");
        assert_string_equal(info.token_label, HARNESS_TOKEN_LABEL);
        assert_int_equal(info.key_count, 1);
        assert_int_equal(info.certificate_count, 0);

        smimed_status_info_done(&info);
        smimed_close(s);
}

static void test_introspection_matches_xml(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *file = NULL, *want = NULL, *have = NULL;
        const char *xml;

        (void) state;
        assert_int_equal(harness_bus_open(&bus), 0);
        assert_int_equal(sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                            "org.freedesktop.DBus.Introspectable", "Introspect", NULL, &reply, NULL),
                         1);
        assert_int_equal(sd_bus_message_read(reply, "s", &xml), 1);

        file = harness_read_file(SMIMED_SOURCE_ROOT "/dbus/org.smimed1.Manager.xml");
        assert_non_null(file);
        want = xml_canonical_element(file, "interface", SMIMED_MANAGER_INTERFACE);
        have = xml_canonical_element(xml, "interface", SMIMED_MANAGER_INTERFACE);
        assert_non_null(want);
        assert_non_null(have);
        if (!streq(want, have))
                fail_msg("dbus/org.smimed1.Manager.xml does not match what smimed serves.\n"
                         "--- file ---\n%s--- served ---\n%s", want, have);

        /* The manager is also the ObjectManager. */
        assert_non_null(strstr(xml, "<interface name=\"org.freedesktop.DBus.ObjectManager\">"));
}

static void test_object_manager_answers(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;

        (void) state;
        assert_int_equal(harness_bus_open(&bus), 0);
        assert_true(sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, "org.freedesktop.DBus.ObjectManager",
                                       "GetManagedObjects", NULL, &reply, NULL) >= 0);
        assert_true(sd_bus_message_has_signature(reply, "a{oa{sa{sv}}}"));
}

/* Reloads with the Enabled= value given and waits for the PropertiesChanged
 * signal that must carry it. */
static void reload_and_expect_enabled(bool enabled) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(property_watch_freep) PropertyWatch *watch = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

        write_config(enabled ? "Enabled=yes\n" : "Enabled=no\n");

        assert_int_equal(harness_bus_open(&bus), 0);
        assert_int_equal(harness_watch_manager_property(bus, "Enabled", &watch), 0);
        assert_true(sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE, "Reload",
                                       &e, NULL, NULL) >= 0);
        assert_int_equal(harness_watch_wait(watch, enabled ? "true" : "false"), 0);
}

static void test_reload_as_root_applies_config(void **state) {
        smimed_status_info info = {};
        smimed_error error = {};
        smimed *s = connect_smimed();

        (void) state;
        reload_and_expect_enabled(false);
        assert_int_equal(smimed_status(s, &info, &error), 0);
        assert_false(info.enabled);
        assert_string_equal(info.token_state, "ready"); /* the token was not touched */
        smimed_status_info_done(&info);

        reload_and_expect_enabled(true);
        assert_int_equal(smimed_status(s, &info, &error), 0);
        assert_true(info.enabled);
        smimed_status_info_done(&info);
        smimed_close(s);
}

/* SIGHUP, as systemctl reload sends it: the configuration is read again;
 * a bad one is refused and smimed goes on with the running one. */
static void sighup_and_expect_enabled(const char *extra, const char *want) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(property_watch_freep) PropertyWatch *watch = NULL;

        write_config(extra);
        assert_int_equal(harness_bus_open(&bus), 0);
        assert_int_equal(harness_watch_manager_property(bus, "Enabled", &watch), 0);
        assert_int_equal(kill(harness->smimed_pid, SIGHUP), 0);
        assert_int_equal(harness_watch_wait(watch, want), 0);
}

static void test_reload_on_sighup(void **state) {
        smimed_status_info info = {};
        smimed_error error = {};
        smimed *s = connect_smimed();

        (void) state;
        sighup_and_expect_enabled("Enabled=no\n", "false");

        /* Refused: said in the log, Enabled=yes is not applied, smimed
         * still answers. */
        {
                size_t from = harness_smimed_log_size(harness);

                write_config("Enabled=yes\nColour=blue\n");
                assert_int_equal(kill(harness->smimed_pid, SIGHUP), 0);
                assert_int_equal(harness_wait_smimed_log(harness, from, "Reload refused"), 0);
                assert_int_equal(smimed_status(s, &info, &error), 0);
                assert_false(info.enabled);
                smimed_status_info_done(&info);
        }

        sighup_and_expect_enabled(NULL, "true");
        smimed_close(s);
}

/* smimed --config FILE reads the *.conf files in FILE.d after FILE, at start and on reload. */
static void test_reload_reads_dropins(void **state) {
        _cleanup_free_ char *dir = NULL, *dropin = NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        smimed *s = connect_smimed();
        smimed_error error = {};

        (void) state;
        write_config(NULL);
        assert_true(asprintf(&dir, "%s.d", config_path) > 0);
        assert_true(asprintf(&dropin, "%s/50-off.conf", dir) > 0);
        assert_int_equal(mkdir(dir, 0755), 0);
        free(harness_write_file(harness, "smimed.conf.d/50-off.conf", "[Policy]\nEnabled=no\n", 0644));
        assert_int_equal(harness_bus_open(&bus), 0);
        {
                _cleanup_(property_watch_freep) PropertyWatch *watch = NULL;

                assert_int_equal(harness_watch_manager_property(bus, "Enabled", &watch), 0);
                assert_int_equal(smimed_reload(s, &error), 0);
                assert_int_equal(harness_watch_wait(watch, "false"), 0);
        }
        assert_int_equal(unlink(dropin), 0);
        assert_int_equal(rmdir(dir), 0);
        {
                _cleanup_(property_watch_freep) PropertyWatch *watch = NULL;

                assert_int_equal(harness_watch_manager_property(bus, "Enabled", &watch), 0);
                assert_int_equal(smimed_reload(s, &error), 0);
                assert_int_equal(harness_watch_wait(watch, "true"), 0);
        }
        smimed_close(s);
}

static void test_reload_refuses_bad_config(void **state) {
        _cleanup_free_ char *where = NULL;
        smimed_status_info info = {};
        smimed_error error = {};
        smimed *s = connect_smimed();

        (void) state;
        /* The last two lines, after what harness_config_text() writes. */
        {
                _cleanup_free_ char *base = harness_config_text(harness, NULL);
                unsigned lines = 0;

                assert_non_null(base);
                for (const char *c = base; *c; c++)
                        lines += *c == '\n';
                write_config("Enabled=no\nColour=blue\n");
                assert_true(asprintf(&where, "%s:%u: [Policy] Colour=: unknown key", config_path, lines + 2) > 0);
        }
        assert_int_equal(smimed_reload(s, &error), -EUCLEAN); /* InvalidConfig's own errno */
        assert_string_equal(error.name, SMIMED_ERROR_INVALID_CONFIG);
        if (!strstr(error.message, where))
                fail_msg("expected \"%s\" in \"%s\"", where, error.message);
        smimed_error_done(&error);

        /* The running configuration stays: Enabled=no was not applied. */
        assert_int_equal(smimed_status(s, &info, &error), 0);
        assert_true(info.enabled);
        assert_string_equal(info.token_state, "ready");
        smimed_status_info_done(&info);

        write_config(NULL);
        assert_int_equal(smimed_reload(s, &error), 0);
        smimed_close(s);
}

static int reload_as_test_user(char *out, size_t size, void *userdata) {
        smimed_error error = {};
        smimed *s = NULL;
        int r;

        (void) userdata;
        if (smimed_connect(&s, &error) < 0) {
                snprintf(out, size, "connect failed: %s", error.message);
                return 2;
        }
        r = smimed_reload(s, &error);
        snprintf(out, size, "%s|%s", error.name ? error.name : "", error.message ? error.message : "");
        smimed_close(s);
        return r == -EACCES ? 0 : 1;
}

static void test_reload_denied_for_unprivileged_user(void **state) {
        _cleanup_free_ char *out = NULL, *err = NULL, *sout = NULL;
        char *const reload[] = { SMIMECTL_BINARY, "reload", NULL };
        char *const status[] = { SMIMECTL_BINARY, "status", NULL };

        (void) state;
        assert_int_equal(harness_run_as_test_user(harness, reload_as_test_user, NULL, &out), 0);
        if (!strstr(out, "org.freedesktop.DBus.Error.AccessDenied|"))
                fail_msg("expected AccessDenied, got \"%s\"", out);
        assert_non_null(strstr(out, "org.smimed1.manage-certificates"));

        /* smimectl says it in one line and exits 1. */
        assert_int_equal(harness_run(harness, reload, true, NULL, &err), 1);
        assert_non_null(strstr(err, "org.freedesktop.DBus.Error.AccessDenied"));
        assert_non_null(strchr(err, '\n'));
        assert_string_equal(strchr(err, '\n'), "\n");

        /* Reading the status needs no privilege. */
        assert_int_equal(harness_run(harness, status, true, &sout, NULL), 0);
        assert_non_null(strstr(sout, "Token: ready"));
}

static void test_smimectl_status(void **state) {
        _cleanup_free_ char *text = NULL, *json = NULL, *expected = NULL;
        char *const human[] = { SMIMECTL_BINARY, "status", NULL };
        char *const machine[] = { SMIMECTL_BINARY, "status", "--json", NULL };

        (void) state;
        assert_int_equal(harness_run(harness, human, false, &text, NULL), 0);
        assert_non_null(strstr(text, "Version: " SMIMED_VERSION "\n"));
        assert_non_null(strstr(text, "Token: ready (\"" HARNESS_TOKEN_LABEL "\")\n"));
        assert_non_null(strstr(text, "Keys: 1\n"));
        assert_non_null(strstr(text, "Certificates: 0\n"));

        assert_int_equal(harness_run(harness, machine, false, &json, NULL), 0);
        assert_true(asprintf(&expected,
                             "{\"version\":\"%s\",\"enabled\":true,\"token_state\":\"ready\",\"token_state_reason\":\"\","
                             "\"token_label\":\"%s\",\"certificate_count\":0,\"key_count\":1,\"expiring_count\":0}\n",
                             SMIMED_VERSION, HARNESS_TOKEN_LABEL) > 0);
        assert_string_equal(json, expected);
}

static void test_smimectl_help_lists_verbs(void **state) {
        _cleanup_free_ char *out = NULL, *err = NULL;
        char *const help[] = { SMIMECTL_BINARY, "--help", NULL };
        char *const bogus[] = { SMIMECTL_BINARY, "frobnicate", NULL };

        (void) state;
        assert_int_equal(harness_run(harness, help, false, &out, NULL), 0);
        assert_non_null(strstr(out, "status [--json]"));
        assert_non_null(strstr(out, "reload"));
        assert_int_equal(harness_run(harness, bogus, false, NULL, &err), 2);
        assert_non_null(strstr(err, "unknown command \"frobnicate\""));
}

static void test_pin_never_leaves_the_daemon(void **state) {
        _cleanup_free_ char *log = NULL, *cmdline_path = NULL, *json = NULL;
        char *const machine[] = { SMIMECTL_BINARY, "status", "--json", NULL };
        size_t pin_len = strlen(harness->pin);
        char cmdline[8192];
        ssize_t n;
        FILE *f;

        (void) state;
        log = harness_read_file(harness->smimed_log);
        assert_non_null(log);
        assert_non_null(strstr(log, "is ready")); /* the log is the daemon's */
        assert_null(strstr(log, harness->pin));

        assert_true(asprintf(&cmdline_path, "/proc/%d/cmdline", (int) harness->smimed_pid) > 0);
        f = fopen(cmdline_path, "re");
        assert_non_null(f);
        n = (ssize_t) fread(cmdline, 1, sizeof(cmdline), f);
        fclose(f);
        assert_true(n > 0);
        assert_non_null(memmem(cmdline, (size_t) n, "--config", 8));
        assert_null(memmem(cmdline, (size_t) n, harness->pin, pin_len));

        assert_int_equal(harness_run(harness, machine, false, &json, NULL), 0);
        assert_null(strstr(json, harness->pin));
}

/* The value of "Name:\t…" in /proc/PID/status, up to the end of its line. */
static char *proc_status_field(pid_t pid, const char *name) {
        _cleanup_free_ char *path = NULL, *text = NULL, *key = NULL;
        const char *p;

        assert_true(asprintf(&path, "/proc/%d/status", (int) pid) > 0);
        text = harness_read_file(path);
        assert_non_null(text);
        assert_true(asprintf(&key, "\n%s:\t", name) > 0);
        p = strstr(text, key);
        if (!p)
                fail_msg("no %s in %s", name, path);
        p += strlen(key);
        return strndup(p, strcspn(p, "\n"));
}

/* smimed runs as its unit would run it: as the user smimed (real, effective,
 * saved and file system ids), with no capabilities. And a root caller may
 * still do what needs privilege: smimed asks polkitd about a subject of
 * another user, which polkitd answers only for root or the action's owner
 * (org.freedesktop.policykit.owner in policy/org.smimed1.policy); without
 * that, Reload fails with polkit's "Only trusted callers …". */
static void test_runs_as_its_own_user(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *uids = NULL, *gids = NULL, *caps = NULL, *want_uids = NULL, *want_gids = NULL;
        unsigned u = (unsigned) harness->smimed_uid, g = (unsigned) harness->smimed_gid;

        (void) state;
        assert_true(harness->smimed_uid != 0);
        assert_true(asprintf(&want_uids, "%u\t%u\t%u\t%u", u, u, u, u) > 0);
        assert_true(asprintf(&want_gids, "%u\t%u\t%u\t%u", g, g, g, g) > 0);
        uids = proc_status_field(harness->smimed_pid, "Uid");
        gids = proc_status_field(harness->smimed_pid, "Gid");
        caps = proc_status_field(harness->smimed_pid, "CapEff");
        assert_string_equal(uids, want_uids);
        assert_string_equal(gids, want_gids);
        assert_string_equal(caps, "0000000000000000");

        assert_int_equal(harness_bus_open(&bus), 0);
        if (sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE, "Reload", &e, NULL,
                               NULL) < 0)
                fail_msg("Reload by root failed: %s: %s", e.name, e.message);
}

/* smimed's own user reloads it without polkit, as the unit's ExecReload=
 * (smimectl reload, User=smimed) does; any other user is still asked about,
 * and the test user is refused. */
static void test_reload_by_own_user(void **state) {
        char *const argv[] = {(char *) SMIMECTL_BINARY, (char *) "reload", NULL};
        _cleanup_free_ char *out = NULL, *err = NULL, *out2 = NULL, *err2 = NULL;
        size_t from = harness_smimed_log_size(harness);

        (void) state;
        if (harness_run_as(harness, argv, HARNESS_USER_SMIMED, &out, &err) != 0)
                fail_msg("smimectl reload as smimed's user failed: %s", strempty(err));
        assert_int_equal(harness_wait_smimed_log(harness, from, "Configuration reloaded"), 0);

        assert_int_equal(harness_run_as(harness, argv, HARNESS_USER_TEST, &out2, &err2), 1);
        if (!strstr(err2, "Not authorized") || !strstr(err2, "AccessDenied"))
                fail_msg("smimectl reload as the test user: %s", err2);
}

/* A plain message through Verify, in the caller's pipes: as it came. */
static int verify_through_pipes(char *out, size_t size, void *userdata) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        const char *message = userdata;
        char buf[4096];
        ssize_t n = 0, k;
        int in[2], o[2];

        if (pipe2(in, O_CLOEXEC) < 0 || pipe2(o, O_CLOEXEC) < 0 ||
            write(in[1], message, strlen(message)) != (ssize_t) strlen(message) || close(in[1]) < 0) {
                snprintf(out, size, "pipes: %m");
                return 2;
        }
        if (harness_bus_open(&bus) < 0 ||
            sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE, "Verify", &e,
                               &reply, "hha{sv}", in[0], o[1], 0) < 0) {
                snprintf(out, size, "%s: %s", strempty(e.name), strempty(e.message));
                return 1;
        }
        close(o[1]);
        while (n < (ssize_t) sizeof(buf) - 1 && (k = read(o[0], buf + n, sizeof(buf) - 1 - (size_t) n)) > 0)
                n += k;
        buf[n] = '\0';
        snprintf(out, size, "%s", buf);
        return 0;
}

/* A client's pipes are its own (mode 0600 for their creator), and smimed is
 * not root under its unit: it must read and write them all the same, as a
 * mail app of any user passes them. */
static void test_pipes_of_another_user(void **state) {
        static const char message[] = "From: a@example.com\r\nTo: b@example.com\r\nSubject: plain\r\n\r\nHello.\r\n";
        char *out = NULL, copy[4096];
        int r;

        (void) state;
        r = harness_run_as_test_user(harness, verify_through_pipes, (void *) message, &out);
        assert_non_null(out);
        /* Freed before any assertion: a failed one longjmps past _cleanup_. */
        snprintf(copy, sizeof(copy), "%s", out);
        free(out);
        if (r != 0)
                fail_msg("Verify of a plain message through the pipes of " HARNESS_TEST_USER " failed: %s", copy);
        assert_string_equal(copy, message);
}

/* Last: a clean stop (exit 0), and under SMIMED_TEST_WRAPPER a clean
 * valgrind report for the whole run. */
static void test_clean_stop(void **state) {
        int status;

        (void) state;
        status = harness_stop_smimed(harness);
        if (status != 0)
                fail_msg("smimed exited with %d, see %s", status, harness->smimed_log);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_status_properties),
                cmocka_unit_test(test_runs_as_its_own_user),
                cmocka_unit_test(test_reload_by_own_user),
                cmocka_unit_test(test_pipes_of_another_user),
                cmocka_unit_test(test_introspection_matches_xml),
                cmocka_unit_test(test_object_manager_answers),
                cmocka_unit_test(test_reload_as_root_applies_config),
                cmocka_unit_test(test_reload_refuses_bad_config),
                cmocka_unit_test(test_reload_on_sighup),
                cmocka_unit_test(test_reload_reads_dropins),
                cmocka_unit_test(test_reload_denied_for_unprivileged_user),
                cmocka_unit_test(test_smimectl_status),
                cmocka_unit_test(test_smimectl_help_lists_verbs),
                cmocka_unit_test(test_pin_never_leaves_the_daemon),
                cmocka_unit_test(test_clean_stop),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
