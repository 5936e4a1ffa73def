/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What smimectl writes depends on where it goes, as systemctl's output
 * does: on a terminal (script(1) gives it one) cut fingerprints, colour,
 * emoji and a pager; into a pipe whole fingerprints and no escapes or
 * emoji; ASCII under LC_ALL=C. And the options for scripts: --no-legend,
 * -j, --json=pretty|short|off, exit status 3 from coverage for a no. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <systemd/sd-bus.h>

#include "harness.h"
#include "json-parse.h"
#include "macro.h"
#include "pki.h"
#include "smimed-bus-names.h"

static Harness *harness;
static sd_bus *bus;
static PkiCert *root, *alice, *expired;
static char alice_fp[65];

typedef struct Run {
        int status;
        char *out, *err;
} Run;

static void run_done(Run *r) {
        free(r->out);
        free(r->err);
}

static Run run_argv(char *const *argv) {
        Run r = {};

        r.status = harness_run(harness, argv, false, &r.out, &r.err);
        assert_true(r.status >= 0);
        assert_non_null(r.out);
        assert_non_null(r.err);
        return r;
}

/* smimectl ARGS with the environment ENV ("A=b C=d"), into pipes. */
#define PIPED(env, ...)                                                                                               \
        run_argv((char *[]){(char *) "env", (char *) "-i", (char *) bus_env, (char *) "LC_ALL=C.UTF-8",               \
                            (char *) "TERM=xterm", (char *) "PATH=/usr/bin:/bin", (char *) env,                       \
                            (char *) SMIMECTL_BINARY, __VA_ARGS__, NULL})

static char *bus_env;

/* The shell command line, on a terminal of its own (script(1) makes a
 * pseudo-terminal); its output with "\r\n" made "\n". */
static Run on_terminal(const char *command) {
        _cleanup_free_ char *line = NULL;
        Run r;
        char *w;

        assert_true(asprintf(&line, "env -i %s TERM=xterm PATH=/usr/bin:/bin %s", bus_env, command) > 0);
        r = run_argv((char *[]){(char *) "script", (char *) "-qec", line, (char *) "/dev/null", NULL});
        w = r.out;
        for (const char *p = r.out; *p; p++)
                if (!(p[0] == '\r' && p[1] == '\n'))
                        *w++ = *p;
        *w = '\0';
        return r;
}

static void expect_status(const Run *r, int status, const char *what) {
        if (r->status != status)
                fail_msg("%s: exit status %d, expected %d\n--- stdout\n%s--- stderr\n%s", what, r->status, status,
                         r->out, r->err);
}

static bool has_non_ascii(const char *s) {
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if (*p >= 0x80)
                        return true;
        return false;
}

static PkiCert *leaf(const char *cn, const char *email, int not_after_days) {
        const char *sans[] = {email, NULL};
        PkiCertOptions o;
        PkiCert *c;

        pki_cert_options_init(&o);
        o.common_name = cn;
        o.san_emails = sans;
        o.key = pki_key_ec();
        o.not_before_days = not_after_days < 0 ? not_after_days - 30 : -1;
        o.not_after_days = not_after_days;
        c = pki_cert_new(&o, root);
        EVP_PKEY_free(o.key);
        return c;
}

static void import_cert(const PkiCert *c, bool trust) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *pem = pki_cert_pem(c);

        assert_non_null(pem);
        assert_true(sd_bus_message_new_method_call(bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                   SMIMED_MANAGER_INTERFACE, "ImportCertificates") >= 0);
        assert_true(sd_bus_message_append_array(m, 'y', pem, strlen(pem)) >= 0);
        assert_true(sd_bus_message_append(m, "a{sv}", 1, "trust", "b", trust) >= 0);
        if (sd_bus_call(bus, m, 0, &e, NULL) < 0)
                fail_msg("ImportCertificates: %s: %s", e.name, e.message);
}

static int setup(void **state) {
        _cleanup_free_ char *text = NULL, *config = NULL;
        int r;

        (void) state;
        r = harness_new(&harness);
        if (r >= 0)
                r = harness_start_bus(harness);
        if (r < 0)
                return r;
        text = harness_config_text(harness, NULL);
        config = harness_write_file(harness, "smimed.conf", text, 0644);
        if (!config)
                return -1;
        r = harness_start_smimed(harness, config, NULL);
        if (r >= 0)
                r = harness_bus_open(&bus);
        if (r < 0)
                return r;
        if (asprintf(&bus_env, "DBUS_SYSTEM_BUS_ADDRESS=%s", harness->bus_address) < 0)
                return -1;

        root = pki_root_ca("Output Root");
        if (!root)
                return -1;
        alice = leaf("Alice", "alice@example.com", 300);
        expired = leaf("Expired Person", "expired.person@example.com", -3);
        if (!alice || !expired || pki_cert_fingerprint(alice, alice_fp) < 0)
                return -1;
        import_cert(root, true);
        import_cert(alice, false);
        import_cert(expired, false);
        return 0;
}

static int teardown(void **state) {
        (void) state;
        sd_bus_flush_close_unref(bus);
        pki_cert_free(root);
        pki_cert_free(alice);
        pki_cert_free(expired);
        free(bus_env);
        harness_free(harness);
        return 0;
}

/* Into a pipe: whole fingerprints, no escape sequences, no emoji, exit 3
 * for a no from coverage and 1 when smimed cannot be asked. */
static void test_piped(void **state) {
        _cleanup_(run_done) Run l = {}, c = {}, yes = {}, gone = {};

        (void) state;
        l = PIPED("A=1", "list");
        expect_status(&l, 0, "smimectl list");
        if (!strstr(l.out, alice_fp) || strstr(l.out, "…") || strchr(l.out, '\x1b'))
                fail_msg("smimectl list into a pipe: expected whole fingerprints, no escapes:\n%s", l.out);

        c = PIPED("A=1", "coverage", "--to", "alice@example.com", "--to", "expired.person@example.com");
        expect_status(&c, 3, "smimectl coverage with an expired recipient");
        if (!strstr(c.out, "yes encrypt  alice@example.com           ") ||
            !strstr(c.out, "no  encrypt  expired.person@example.com  expired: ") || strstr(c.out, "✅") ||
            strstr(c.out, "❌") || strchr(c.out, '\x1b'))
                fail_msg("coverage into a pipe: expected yes/no and padded addresses:\n%s", c.out);

        yes = PIPED("A=1", "coverage", "--to", "alice@example.com");
        expect_status(&yes, 0, "smimectl coverage, all possible");

        gone = run_argv((char *[]){(char *) "env", (char *) "DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent",
                                   (char *) SMIMECTL_BINARY, (char *) "coverage", (char *) "--to",
                                   (char *) "alice@example.com", NULL});
        expect_status(&gone, 1, "smimectl coverage without smimed");
}

/* LC_ALL=C: nothing but ASCII, even in smimed's summaries. */
static void test_c_locale(void **state) {
        _cleanup_(run_done) Run s = {}, ss = {}, t = {};
        _cleanup_free_ char *command = NULL, *pem = NULL, *file = NULL;

        (void) state;
        /* import prints smimed's summary ("… · issued by … · SHA-256 01:02:…") */
        pem = pki_cert_pem(alice);
        file = harness_write_file(harness, "alice.pem", pem, 0644);
        s = PIPED("LC_ALL=C", "import", file);
        expect_status(&s, 0, "smimectl import under LC_ALL=C");
        if (has_non_ascii(s.out) || !strstr(s.out, " - issued by ") || !strstr(s.out, "..."))
                fail_msg("smimectl import under LC_ALL=C is not ASCII:\n%s", s.out);
        ss = PIPED("LC_ALL=C", "show", alice_fp);
        expect_status(&ss, 0, "smimectl show under LC_ALL=C");
        if (has_non_ascii(ss.out) || !strstr(ss.out, "Status: valid - "))
                fail_msg("smimectl show under LC_ALL=C is not ASCII:\n%s", ss.out);

        /* and on a terminal too: no emoji, "..." for cut fingerprints */
        assert_true(asprintf(&command, "LC_ALL=C %s --no-pager list", SMIMECTL_BINARY) > 0);
        t = on_terminal(command);
        expect_status(&t, 0, "smimectl list on a terminal under LC_ALL=C");
        if (has_non_ascii(t.out) || !strstr(t.out, "..."))
                fail_msg("smimectl list on a terminal under LC_ALL=C is not ASCII:\n%s", t.out);
}

/* On a terminal: cut fingerprints, colour, emoji, the pager, and what
 * turns each off. */
static void test_terminal(void **state) {
        _cleanup_(run_done) Run l = {}, np = {}, nc = {}, c = {};
        _cleanup_free_ char *cmd_pager = NULL, *cmd_no_pager = NULL, *cmd_no_color = NULL, *cmd_cov = NULL,
                            *cut = NULL;

        (void) state;
        assert_true(asprintf(&cut, "%.16s…", alice_fp) > 0);
        assert_true(asprintf(&cmd_pager, "LC_ALL=C.UTF-8 SMIMECTL_PAGER='sed s/^/paged:/' %s list", SMIMECTL_BINARY) >
                    0);
        l = on_terminal(cmd_pager);
        expect_status(&l, 0, "smimectl list on a terminal");
        if (strncmp(l.out, "paged:FINGERPRINT", strlen("paged:FINGERPRINT")) != 0 || !strstr(l.out, cut) ||
            strstr(l.out, alice_fp) || !strstr(l.out, "\x1b[0;32mvalid") || !strstr(l.out, "\x1b[0;1;31mexpired"))
                fail_msg("smimectl list on a terminal: expected it paged, cut, in colour:\n%s", l.out);

        assert_true(asprintf(&cmd_no_pager, "LC_ALL=C.UTF-8 SMIMECTL_PAGER='sed s/^/paged:/' %s --no-pager list",
                             SMIMECTL_BINARY) > 0);
        np = on_terminal(cmd_no_pager);
        expect_status(&np, 0, "smimectl --no-pager list");
        if (strstr(np.out, "paged:") || !strstr(np.out, cut))
                fail_msg("smimectl --no-pager list on a terminal:\n%s", np.out);

        assert_true(asprintf(&cmd_no_color, "LC_ALL=C.UTF-8 NO_COLOR=1 %s --no-pager list", SMIMECTL_BINARY) > 0);
        nc = on_terminal(cmd_no_color);
        expect_status(&nc, 0, "NO_COLOR=1 smimectl list");
        if (strchr(nc.out, '\x1b'))
                fail_msg("NO_COLOR=1 smimectl list wrote escape sequences:\n%s", nc.out);

        assert_true(asprintf(&cmd_cov,
                             "LC_ALL=C.UTF-8 NO_COLOR=1 %s coverage --to alice@example.com --to "
                             "expired.person@example.com",
                             SMIMECTL_BINARY) > 0);
        c = on_terminal(cmd_cov);
        expect_status(&c, 3, "smimectl coverage on a terminal");
        if (!strstr(c.out, "✅ encrypt  alice@example.com ") || !strstr(c.out, "❌ encrypt  expired.person@example.com"))
                fail_msg("smimectl coverage on a terminal: expected emoji:\n%s", c.out);
}

/* The options for scripts. */
static void test_script_options(void **state) {
        _cleanup_(run_done) Run nl = {}, j = {}, pretty = {}, off = {}, bad = {}, unknown = {};
        _cleanup_(json_value_freep) JsonValue *v = NULL, *w = NULL;

        (void) state;
        nl = PIPED("A=1", "--no-legend", "list");
        expect_status(&nl, 0, "smimectl --no-legend list");
        if (strstr(nl.out, "FINGERPRINT") || !strstr(nl.out, alice_fp))
                fail_msg("smimectl --no-legend list:\n%s", nl.out);

        /* -j into a pipe: one line */
        j = PIPED("A=1", "-j", "show", alice_fp);
        expect_status(&j, 0, "smimectl -j show");
        assert_non_null(strchr(j.out, '\n'));
        assert_string_equal(strchr(j.out, '\n'), "\n");
        v = json_parse(j.out, NULL);
        assert_non_null(v);

        pretty = PIPED("A=1", "--json=pretty", "show", alice_fp);
        expect_status(&pretty, 0, "smimectl --json=pretty show");
        if (!strstr(pretty.out, "\n  ") || strchr(pretty.out, '\n') == pretty.out + strlen(pretty.out) - 1)
                fail_msg("smimectl --json=pretty is not indented:\n%s", pretty.out);
        w = json_parse(pretty.out, NULL);
        assert_non_null(w);

        off = PIPED("A=1", "--json=off", "list");
        expect_status(&off, 0, "smimectl --json=off list");
        assert_non_null(strstr(off.out, "FINGERPRINT"));

        bad = PIPED("A=1", "--json=yaml", "list");
        expect_status(&bad, 2, "smimectl --json=yaml");
        assert_non_null(strstr(bad.err, "pretty, short or off"));

        /* getopt's message names smimectl, not the path it was run by */
        unknown = PIPED("A=1", "--bogus", "list");
        expect_status(&unknown, 2, "smimectl --bogus");
        if (strncmp(unknown.err, "smimectl: unrecognized option", strlen("smimectl: unrecognized option")) != 0)
                fail_msg("smimectl --bogus: %s", unknown.err);
}

/* The bash completion, as bash runs it for "smimectl WORDS…<TAB>": what it
 * offers, one a line. smimectl is the one built, smimed the harness's. */
static char *complete(const char *words) {
        _cleanup_free_ char *script = NULL, *path = NULL, *dir = strdup(SMIMECTL_BINARY);
        char *out = NULL, *err = NULL;
        int r;

        assert_non_null(dir);
        *strrchr(dir, '/') = '\0';
        assert_true(asprintf(&path, "PATH=%s:/usr/bin:/bin", dir) > 0);
        assert_true(asprintf(&script,
                             ". %s/shell-completion/smimectl; COMP_WORDS=(%s); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); "
                             "_smimectl; printf '%%s\\n' \"${COMPREPLY[@]}\"",
                             SMIMED_SOURCE_ROOT, words) > 0);
        r = harness_run(
                harness,
                (char *[]){(char *) "env", (char *) "-i", bus_env, path, (char *) "bash", (char *) "-c", script, NULL},
                false, &out, &err);
        if (r != 0)
                fail_msg("completion of %s: exit %d: %s", words, r, err);
        free(err);
        return out;
}

static void test_bash_completion(void **state) {
        _cleanup_free_ char *fps = NULL, *to = NULL, *keys = NULL, *verbs = NULL, *opts = NULL, *fp_line = NULL;

        (void) state;
        assert_true(asprintf(&fp_line, "%s\n", alice_fp) > 0);
        fps = complete("smimectl show ''");
        if (!strstr(fps, fp_line) || !strstr(fps, "alice@example.com\n"))
                fail_msg("smimectl show <TAB>: no fingerprint or address of the store:\n%s", fps);
        to = complete("smimectl coverage --to ali");
        assert_string_equal(to, "alice@example.com\n");
        keys = complete("smimectl remove-key ''");
        assert_string_equal(keys, HARNESS_KEY_ID_HEX "\n");
        verbs = complete("smimectl li");
        assert_string_equal(verbs, "list\n");
        opts = complete("smimectl list --no-l");
        assert_string_equal(opts, "--no-legend\n");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_piped),           cmocka_unit_test(test_c_locale),
                cmocka_unit_test(test_terminal),        cmocka_unit_test(test_script_options),
                cmocka_unit_test(test_bash_completion),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
