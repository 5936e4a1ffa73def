/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "json-writer.h"
#include "macro.h"
#include "smimed.h"

static bool arg_json = false;
static bool arg_ask_password = true;

typedef struct Verb {
        const char *name;
        int min_args;
        int max_args;
        int (*run)(smimed *s, int argc, char *argv[]);
        const char *usage;
        const char *summary;
} Verb;

DEFINE_TRIVIAL_CLEANUP_FUNC(smimed *, smimed_close);

/* Prints the daemon's error in one line and returns the exit status. */
static int report_error(const char *what, int r, const smimed_error *error) {
        if (smimed_error_is_unreachable(error)) {
                fprintf(stderr, "smimectl: smimed is not reachable: %s\n",
                        error->message ? error->message : "org.smimed1 is not on the system bus");
                return 1;
        }
        if (error && error->name)
                fprintf(stderr, "smimectl: %s: %s (%s)\n", what, error->message ? error->message : strerror(-r),
                        error->name);
        else
                fprintf(stderr, "smimectl: %s: %s\n", what,
                        error && error->message ? error->message : strerror(-r));
        return 1;
}

static int verb_status(smimed *s, int argc, char *argv[]) {
        _cleanup_(smimed_error_done) smimed_error error = {};
        _cleanup_(smimed_status_info_done) smimed_status_info info = {};
        int r;

        (void) argc, (void) argv;

        r = smimed_status(s, &info, &error);
        if (r < 0)
                return report_error("Cannot read the status", r, &error);

        if (arg_json) {
                JsonWriter w = { .f = stdout };

                json_begin_object(&w);
                json_key_string(&w, "version", info.version);
                json_key_bool(&w, "enabled", info.enabled);
                json_key_string(&w, "token_state", info.token_state);
                json_key_string(&w, "token_state_reason", info.token_state_reason);
                json_key_string(&w, "token_label", info.token_label);
                json_key_uint(&w, "certificate_count", info.certificate_count);
                json_key_uint(&w, "key_count", info.key_count);
                json_end_object(&w);
                return 0;
        }

        printf("     Version: %s\n", info.version);
        printf("     Enabled: %s\n", info.enabled ? "yes" : "no (policy has turned S/MIME off)");
        printf("       Token: %s", info.token_state);
        if (info.token_label && info.token_label[0])
                printf(" (\"%s\")", info.token_label);
        putchar('\n');
        if (info.token_state_reason && info.token_state_reason[0])
                printf("      Reason: %s\n", info.token_state_reason);
        printf("Certificates: %" PRIu64 "\n", info.certificate_count);
        printf("        Keys: %" PRIu64 "\n", info.key_count);
        return 0;
}

static int verb_reload(smimed *s, int argc, char *argv[]) {
        _cleanup_(smimed_error_done) smimed_error error = {};
        int r;

        (void) argc, (void) argv;

        r = smimed_reload(s, &error);
        if (r < 0)
                return report_error("Reload failed", r, &error);
        return 0;
}

static const Verb verbs[] = {
        { "status", 0, 0, verb_status, "status [--json]",
          "Show the version, the token's state and the number of certificates and keys" },
        { "reload", 0, 0, verb_reload, "reload", "Make smimed re-read its configuration" },
};

static void help(void) {
        printf("Usage: smimectl [OPTIONS] COMMAND ...\n"
               "\n"
               "Query and control smimed, the S/MIME key service on the system bus.\n"
               "\n"
               "Commands:\n");
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                printf("  %-22s %s\n", verbs[i].usage, verbs[i].summary);
        printf("\n"
               "Options:\n"
               "  --json                 Print JSON instead of a table\n"
               "  --no-ask-password      Do not let polkit ask for a password\n"
               "  -h --help              Show this help\n"
               "     --version           Show the version\n"
               "\n"
               "smimectl talks to the system bus; set DBUS_SYSTEM_BUS_ADDRESS to use another.\n"
               "Exit status: 0 when what was asked for fully happened, 1 otherwise,\n"
               "2 for a usage error. See smimectl(1).\n");
}

enum {
        ARG_JSON = 0x100,
        ARG_NO_ASK_PASSWORD,
        ARG_VERSION,
};

static int parse_argv(int argc, char *argv[]) {
        static const struct option options[] = {
                { "json", no_argument, NULL, ARG_JSON },
                { "no-ask-password", no_argument, NULL, ARG_NO_ASK_PASSWORD },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case ARG_JSON:
                        arg_json = true;
                        break;
                case ARG_NO_ASK_PASSWORD:
                        arg_ask_password = false;
                        break;
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("smimectl %s\n", SMIMED_VERSION);
                        return 0;
                default:
                        return -EINVAL;
                }
        }
        return 1;
}

int main(int argc, char *argv[]) {
        _cleanup_(smimed_error_done) smimed_error error = {};
        _cleanup_(smimed_closep) smimed *s = NULL;
        const Verb *verb = NULL;
        int r, nargs;

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? 2 : 0;

        if (optind >= argc) {
                fprintf(stderr, "smimectl: no command given; see smimectl --help.\n");
                return 2;
        }
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(verbs[i].name, argv[optind]))
                        verb = &verbs[i];
        if (!verb) {
                fprintf(stderr, "smimectl: unknown command \"%s\"; see smimectl --help.\n", argv[optind]);
                return 2;
        }
        nargs = argc - optind - 1;
        if (nargs < verb->min_args || nargs > verb->max_args) {
                fprintf(stderr, "smimectl: usage: smimectl %s\n", verb->usage);
                return 2;
        }

        r = smimed_open(&s, &error);
        if (r < 0)
                return report_error("Cannot connect", r, &error);

        /* Like systemctl: a person at a terminal may be asked to authenticate. */
        (void) smimed_set_allow_interactive_authorization(s, arg_ask_password && isatty(STDIN_FILENO));

        return verb->run(s, nargs, argv + optind + 1);
}
