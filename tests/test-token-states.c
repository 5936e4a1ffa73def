/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* TokenState as a daemon sees it: absent, locked, error, ready, and the
 * transitions between them. Each test runs its own smimed on one bus. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "harness.h"
#include "smimed.h"

static Harness *harness;

static int setup(void **state) {
        int r;

        (void) state;
        r = harness_new(&harness);
        if (r < 0)
                return r;
        return harness_start_bus(harness);
}

static int teardown(void **state) {
        (void) state;
        harness = harness_free(harness);
        return 0;
}

static int stop_smimed(void **state) {
        (void) state;
        if (harness->smimed_pid > 0)
                assert_int_equal(harness_stop_smimed(harness), 0);
        return 0;
}

/* Starts smimed on the harness config with its [Token] section replaced. */
static char *start_with_token_section(const char *name, const char *token_section, char *const *env) {
        _cleanup_free_ char *text = NULL;
        char *path;

        assert_true(asprintf(&text,
                             "[Token]\n%s"
                             "[Store]\nPath=%s/store.db\n",
                             token_section, harness->state_dir) > 0);
        path = harness_write_file(harness, name, text, 0644);
        assert_non_null(path);
        assert_int_equal(harness_start_smimed(harness, path, env), 0);
        return path;
}

static void expect_status(const char *state, const char *reason_part) {
        smimed_status_info info = {};
        smimed_error error = {};
        smimed *s = NULL;

        assert_int_equal(smimed_connect(&s, &error), 0);
        assert_int_equal(smimed_status(s, &info, &error), 0);
        assert_string_equal(info.token_state, state);
        if (reason_part && !strstr(info.token_state_reason, reason_part))
                fail_msg("TokenStateReason \"%s\" does not mention \"%s\"", info.token_state_reason, reason_part);
        if (!streq(state, "ready"))
                assert_int_equal(info.key_count, 0);
        smimed_status_info_done(&info);
        smimed_close(s);
}

static void test_absent_token_is_found_later(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(property_watch_freep) PropertyWatch *watch = NULL;
        _cleanup_free_ char *section = NULL, *config = NULL, *out = NULL, *label = NULL, *err = NULL;
        int r;
        char *const status[] = { SMIMECTL_BINARY, "status", NULL };
        char *const init[] = { "softhsm2-util", "--init-token", "--free", "--label", "late-token",
                               "--pin", harness->pin, "--so-pin", "so-pin-12345", NULL };

        (void) state;
        assert_true(asprintf(&section,
                             "Module=/usr/lib/softhsm/libsofthsm2.so\nURI=pkcs11:token=late-token\n"
                             "PINFile=%s\nRescanIntervalSec=0.1\n",
                             harness->pin_file) > 0);
        config = start_with_token_section("absent.conf", section, NULL);

        /* The daemon serves without its token. */
        expect_status("absent", "pkcs11:token=late-token");
        assert_int_equal(harness_run(harness, status, false, &out, NULL), 0);
        assert_non_null(strstr(out, "Token: absent"));

        /* The token shows up: smimed finds it and says so with PropertiesChanged. */
        assert_int_equal(harness_bus_open(&bus), 0);
        assert_int_equal(harness_watch_manager_property(bus, "TokenState", &watch), 0);
        /* By smimed's user: SoftHSM2 makes a token's directory for its creator alone (0700). */
        r = harness_run_as(harness, init, HARNESS_USER_SMIMED, NULL, &err);
        if (r != 0)
                fail_msg("softhsm2-util exited with %d: %s", r, err);
        assert_int_equal(harness_watch_wait(watch, "ready"), 0);
        assert_int_equal(harness_get_manager_property(bus, "TokenLabel", &label), 0);
        assert_string_equal(label, "late-token");
        expect_status("ready", NULL);
}

static void test_wrong_pin_is_locked_until_reload(void **state) {
        _cleanup_free_ char *section = NULL, *config = NULL, *pin_file = NULL, *right = NULL;
        smimed_error error = {};
        smimed *s = NULL;

        (void) state;
        pin_file = harness_write_smimed_file(harness, "changing-pin", "wrong-pin\n", 0600);
        assert_non_null(pin_file);
        assert_true(asprintf(&section,
                             "Module=/usr/lib/softhsm/libsofthsm2.so\nURI=pkcs11:token=" HARNESS_TOKEN_LABEL "\n"
                             "PINFile=%s\nRescanIntervalSec=0.1\n",
                             pin_file) > 0);
        config = start_with_token_section("wrong-pin.conf", section, NULL);
        expect_status("locked", "refused the PIN");

        /* Fixing the file is not enough: a refused PIN is not retried on its own. */
        assert_true(asprintf(&right, "%s\n", harness->pin) > 0);
        free(harness_write_smimed_file(harness, "changing-pin", right, 0600));
        expect_status("locked", "refused the PIN");

        /* Reload is the admin's "try again". */
        assert_int_equal(smimed_connect(&s, &error), 0);
        assert_int_equal(smimed_reload(s, &error), 0);
        smimed_close(s);
        expect_status("ready", NULL);
}

static void test_pin_file_readable_by_others_is_refused(void **state) {
        _cleanup_free_ char *section = NULL, *config = NULL, *pin_file = NULL, *text = NULL, *log = NULL;

        (void) state;
        assert_true(asprintf(&text, "%s\n", harness->pin) > 0);
        /* smimed's own file: only its mode is wrong. */
        pin_file = harness_write_smimed_file(harness, "open-pin", text, 0644);
        assert_non_null(pin_file);
        assert_true(asprintf(&section,
                             "Module=/usr/lib/softhsm/libsofthsm2.so\nURI=pkcs11:token=" HARNESS_TOKEN_LABEL "\n"
                             "PINFile=%s\n",
                             pin_file) > 0);
        config = start_with_token_section("open-pin.conf", section, NULL);
        expect_status("locked", "Refusing the PIN file");

        log = harness_read_file(harness->smimed_log);
        assert_non_null(strstr(log, "mode 0644 lets group or others access it"));
}

static void test_pin_from_credentials_directory(void **state) {
        _cleanup_free_ char *creds = NULL, *pin_path = NULL, *text = NULL, *config = NULL, *env = NULL;
        char *extra_env[2];

        (void) state;
        /* As systemd 252 leaves LoadCredential= on ramfs: the directory 0500 and the file
         * 0400, both owned by the service's user. */
        assert_true(asprintf(&creds, "%s/credentials", harness->dir) > 0);
        assert_int_equal(mkdir(creds, 0500), 0);
        assert_int_equal(chown(creds, harness->smimed_uid, harness->smimed_gid), 0);
        assert_true(asprintf(&pin_path, "credentials/token-pin") > 0);
        assert_true(asprintf(&text, "%s", harness->pin) > 0);
        free(harness_write_smimed_file(harness, pin_path, text, 0400));
        assert_true(asprintf(&env, "CREDENTIALS_DIRECTORY=%s", creds) > 0);
        extra_env[0] = env;
        extra_env[1] = NULL;

        config = start_with_token_section("credential.conf",
                                          "Module=/usr/lib/softhsm/libsofthsm2.so\n"
                                          "URI=pkcs11:token=" HARNESS_TOKEN_LABEL "\n",
                                          extra_env);
        expect_status("ready", NULL);
}

static void test_no_pin_at_all_is_locked(void **state) {
        _cleanup_free_ char *config = NULL;

        (void) state;
        config = start_with_token_section("no-pin.conf",
                                          "Module=/usr/lib/softhsm/libsofthsm2.so\n"
                                          "URI=pkcs11:token=" HARNESS_TOKEN_LABEL "\n",
                                          NULL);
        expect_status("locked", "token-pin");
}

static void test_missing_module_is_error(void **state) {
        _cleanup_free_ char *config = NULL;

        (void) state;
        config = start_with_token_section("no-module.conf", "Module=/nonexistent/libpkcs11.so\n", NULL);
        expect_status("error", "/nonexistent/libpkcs11.so");
}

static void test_sigterm_stops_cleanly(void **state) {
        _cleanup_free_ char *text = harness_config_text(harness, NULL), *path = NULL, *log = NULL;

        (void) state;
        path = harness_write_file(harness, "sigterm.conf", text, 0644);
        assert_int_equal(harness_start_smimed(harness, path, NULL), 0);
        expect_status("ready", NULL);
        assert_int_equal(harness_stop_smimed(harness), 0);
        log = harness_read_file(harness->smimed_log);
        assert_non_null(strstr(log, "smimed stopping."));
}

static void test_smimectl_when_smimed_is_not_running(void **state) {
        _cleanup_free_ char *out = NULL, *err = NULL;
        char *const status[] = { SMIMECTL_BINARY, "status", NULL };

        (void) state;
        assert_true(harness->smimed_pid <= 0);
        assert_int_equal(harness_run(harness, status, false, &out, &err), 1);
        assert_string_equal(out, "");
        assert_non_null(strstr(err, "smimed is not reachable"));
        assert_string_equal(strchr(err, '\n'), "\n"); /* one line */
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(test_absent_token_is_found_later, stop_smimed),
                cmocka_unit_test_teardown(test_wrong_pin_is_locked_until_reload, stop_smimed),
                cmocka_unit_test_teardown(test_pin_file_readable_by_others_is_refused, stop_smimed),
                cmocka_unit_test_teardown(test_pin_from_credentials_directory, stop_smimed),
                cmocka_unit_test_teardown(test_no_pin_at_all_is_locked, stop_smimed),
                cmocka_unit_test_teardown(test_missing_module_is_error, stop_smimed),
                cmocka_unit_test(test_sigterm_stops_cleanly),
                cmocka_unit_test(test_smimectl_when_smimed_is_not_running),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
