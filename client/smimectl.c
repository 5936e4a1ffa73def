/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "format-util.h"
#include "json-writer.h"
#include "macro.h"
#include "smimectl.h"
#include "smimed-bus-names.h"
#include "strv.h"
#include "pager.h"
#include "terminal-util.h"

bool arg_json = false;
bool arg_json_pretty = false;
bool arg_legend = true;
bool arg_force = false;
static bool arg_pager = true;
bool arg_trust = false;
const char *arg_address = NULL;
const char *arg_from = NULL;
char **arg_to = NULL;
const char *arg_passphrase_file = NULL;
const char *arg_key_type = NULL;
const char *arg_subject = NULL;
const char *arg_output = NULL;
bool arg_der = false;
bool arg_opaque = false;
const char *arg_digest = NULL;
bool arg_pss = false;
const char *arg_sign_as = NULL;
const char *arg_sender = NULL;
const char *arg_cipher = NULL;
bool arg_oaep = false;
bool arg_no_verify = false;
const char *arg_key = NULL;
uint32_t arg_limit = 0;
uint64_t arg_offset = 0;
const char *arg_status = NULL;
int64_t arg_expiring_days = -1;
static bool arg_ask_password = true;

/* Options that only some verbs take. */
typedef enum VerbOption {
        OPTION_JSON = 1 << 0,
        OPTION_TRUST = 1 << 1,
        OPTION_ADDRESS = 1 << 2,
        OPTION_FROM = 1 << 3,
        OPTION_TO = 1 << 4,
        OPTION_PASSPHRASE_FILE = 1 << 5,
        OPTION_TYPE = 1 << 6,
        OPTION_SUBJECT = 1 << 7,
        OPTION_OUTPUT = 1 << 8,
        OPTION_OPAQUE = 1 << 9,
        OPTION_DIGEST = 1 << 10,
        OPTION_PSS = 1 << 11,
        OPTION_SIGN_AS = 1 << 12,
        OPTION_SENDER = 1 << 13,
        OPTION_CIPHER = 1 << 14,
        OPTION_OAEP = 1 << 15,
        OPTION_NO_VERIFY = 1 << 16,
        OPTION_KEY = 1 << 17,
        OPTION_LIMIT = 1 << 18,
        OPTION_OFFSET = 1 << 19,
        OPTION_STATUS = 1 << 20,
        OPTION_EXPIRING = 1 << 21,
        OPTION_FORCE = 1 << 22,
        OPTION_DER = 1 << 23,
} VerbOption;

/* Indexed by the bit number of each VerbOption. */
static const char *const option_names[] = {
        "--json",      "--trust",  "--address", "--from",   "--to",      "--passphrase-file", "--type",   "--subject",
        "-o",          "--opaque", "--digest",  "--pss",    "--sign-as", "--sender",          "--cipher", "--oaep",
        "--no-verify", "--key",    "--limit",   "--offset", "--status",  "--expiring",        "--force",  "--der",
};
static unsigned arg_options = 0; /* VerbOption bits given on the command line */

typedef struct Verb {
        const char *name;
        int min_args;
        int max_args;
        unsigned options;     /* VerbOption bits the verb takes */
        unsigned needs_one_of; /* VerbOption bits of which at least one must be given */
        int (*run)(smimed *s, int argc, char *argv[]);
        const char *usage;
        const char *summary;
        int (*check)(int argc, char *argv[]); /* usage rules of its own: 0, or -EINVAL after saying why */
} Verb;

DEFINE_TRIVIAL_CLEANUP_FUNC(smimed *, smimed_close);

/* ": <message> (<D-Bus error name>)" and the newline. */
static void print_error_tail(int r, const smimed_error *error) {
        fprintf(stderr, ": %s", error && error->message ? error->message : strerror(-r));
        if (error && error->name)
                fprintf(stderr, " (%s)", error->name);
        fputc('\n', stderr);
}

static int report_error_va(int r, const smimed_error *error, const char *format, va_list ap) {
        if (smimed_error_is_unreachable(error)) {
                fprintf(stderr, "smimectl: smimed is not reachable: %s\n",
                        error->message ? error->message : SMIMED_BUS_NAME " is not on the system bus");
                return 1;
        }
        fputs("smimectl: ", stderr);
        vfprintf(stderr, format, ap);
        print_error_tail(r, error);
        return 1;
}

int report_error(int r, const smimed_error *error, const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        r = report_error_va(r, error, format, ap);
        va_end(ap);
        return r;
}

int report_error_about(int r, const smimed_error *error, const char *subject, const char *format, ...) {
        va_list ap;

        /* "Cannot sign as carol@…: …" from smimed already says what could
         * not be done: then only what it was done to. */
        if (error && error->message && strncmp(error->message, "Cannot ", 7) == 0 &&
            !smimed_error_is_unreachable(error))
                return report_error(r, error, "%s", subject);

        va_start(ap, format);
        r = report_error_va(r, error, format, ap);
        va_end(ap);
        return r;
}

int fail(const char *format, ...) {
        va_list ap;

        fputs("smimectl: ", stderr);
        va_start(ap, format);
        vfprintf(stderr, format, ap);
        va_end(ap);
        fputc('\n', stderr);
        return 1;
}

static int verb_status(smimed *s, int argc, char *argv[]) {
        _cleanup_(smimed_error_done) smimed_error error = {};
        _cleanup_(smimed_status_info_done) smimed_status_info info = {};
        uint64_t expiring = 0;
        int r;

        (void) argc, (void) argv;

        r = smimed_status(s, &info, &error);
        if (r < 0)
                return report_error(r, &error, "Cannot read the status");
        r = smimed_get_expiring_certificates(s, &expiring, &error);
        if (r < 0)
                return report_error(r, &error, "Cannot read the status");

        if (arg_json) {
                _cleanup_(json_writer_done) JsonWriter w = {.f = stdout, .pretty = arg_json_pretty};

                json_begin_object(&w);
                json_key_string(&w, "version", info.version);
                json_key_bool(&w, "enabled", info.enabled);
                json_key_string(&w, "token_state", info.token_state);
                json_key_string(&w, "token_state_reason", info.token_state_reason);
                json_key_string(&w, "token_label", info.token_label);
                json_key_uint(&w, "certificate_count", info.certificate_count);
                json_key_uint(&w, "key_count", info.key_count);
                json_key_uint(&w, "expiring_count", expiring);
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
        if (expiring > 0)
                printf("    Expiring: %s%" PRIu64 " certificate(s) soon%s (smimectl list --expiring DAYS)\n",
                       color_on(stdout, COLOR_WARN), expiring, color_off(stdout));
        else
                printf("    Expiring: none soon\n");
        return 0;
}

static int verb_reload(smimed *s, int argc, char *argv[]) {
        _cleanup_(smimed_error_done) smimed_error error = {};
        int r;

        (void) argc, (void) argv;

        r = smimed_reload(s, &error);
        if (r < 0)
                return report_error(r, &error, "Reload failed");
        return 0;
}

static const Verb verbs[] = {
        {"status", 0, 0, OPTION_JSON, 0, verb_status, "status [--json]",
         "Show the version, the token's state and the number of certificates and keys"},
        {"reload", 0, 0, 0, 0, verb_reload, "reload", "Make smimed re-read its configuration"},
        {"list", 0, 0, OPTION_ADDRESS | OPTION_JSON | OPTION_LIMIT | OPTION_OFFSET | OPTION_STATUS | OPTION_EXPIRING,
         0, verb_list, "list [--address PREFIX] [--status WORD] [--expiring DAYS] [--limit N] [--offset N] [--json]",
         "List the certificates in the store (by expiry), or a page of those that match"},
        {"show", 1, 1, OPTION_JSON, 0, verb_show, "show FINGERPRINT|ADDRESS [--json]",
         "Show a certificate, or all of an address, with status and chain"},
        {"import", 0, INT_MAX, OPTION_TRUST, 0, verb_import, "import [--trust] [FILE…]",
         "Add certificates (PEM, DER, PKCS#7) from files or stdin"},
        {"import-crl", 0, INT_MAX, 0, 0, verb_import_crl, "import-crl [FILE…]",
         "Add certificate revocation lists from files or stdin"},
        {"fetch-crls", 0, 0, 0, 0, verb_fetch_crls, "fetch-crls",
         "Fetch the CRLs of the stored certificates from their distribution points now"},
        {"remove", 1, 1, 0, 0, verb_remove, "remove FINGERPRINT", "Remove a certificate from the store"},
        {"export", 1, 1, OPTION_DER | OPTION_OUTPUT, 0, verb_export, "export FINGERPRINT|ADDRESS [--der] [-o FILE]",
         "Write a certificate (or all of an address) as PEM, or one as DER"},
        {"trust", 1, 1, 0, 0, verb_trust, "trust FINGERPRINT", "Make a certificate a trust anchor"},
        {"untrust", 1, 1, 0, 0, verb_untrust, "untrust FINGERPRINT", "Make a certificate no longer a trust anchor"},
        {"coverage", 0, 0, OPTION_FROM | OPTION_TO | OPTION_JSON, OPTION_FROM | OPTION_TO, verb_coverage,
         "coverage [--from ADDR] [--to ADDR…] [--json]", "Can ADDR sign, and can each recipient be encrypted to?"},
        {"keys", 0, 0, OPTION_JSON, 0, verb_keys, "keys [--json]", "List the private keys in the token"},
        {"import-key", 1, 1, OPTION_PASSPHRASE_FILE, 0, verb_import_key, "import-key FILE.p12 [--passphrase-file F]",
         "Enroll a key and its certificates from a PKCS#12 file"},
        {"generate-key", 1, 1, OPTION_TYPE | OPTION_SUBJECT | OPTION_OUTPUT, 0, verb_generate_key,
         "generate-key ADDRESS [--type T] [--subject DN] [-o CSR]",
         "Make a key in the token and write a certificate request for it"},
        {"renew", 1, 1, OPTION_TYPE | OPTION_OUTPUT, 0, verb_renew, "renew ADDRESS [--type T] [-o CSR]",
         "Make a new key and a request with the subject and addresses of ADDRESS's certificate"},
        {"remove-key", 1, 1, OPTION_FORCE, 0, verb_remove_key, "remove-key ID [--force]",
         "Destroy a key in the token (--force: also the key of a current certificate)"},
        {"sign", 0, 1, OPTION_FROM | OPTION_OPAQUE | OPTION_DIGEST | OPTION_PSS | OPTION_OUTPUT, OPTION_FROM,
         verb_sign, "sign --from ADDR [--opaque] [--digest D] [--pss] [IN] [-o OUT]", "Sign a message as ADDR",
         check_message_usage},
        {"encrypt", 0, 1,
         OPTION_TO | OPTION_SIGN_AS | OPTION_SENDER | OPTION_CIPHER | OPTION_OAEP | OPTION_OPAQUE | OPTION_DIGEST |
                 OPTION_PSS | OPTION_OUTPUT,
         OPTION_TO, verb_encrypt,
         "encrypt --to ADDR… [--sign-as ADDR] [--sender ADDR] [--cipher C] [--oaep] [--opaque] [--digest D] [--pss] "
         "[IN] [-o OUT]",
         "Encrypt a message to the recipients (signed first with --sign-as)", check_encrypt_usage},
        {"decrypt", 0, 1, OPTION_OUTPUT | OPTION_JSON | OPTION_NO_VERIFY | OPTION_KEY, 0, verb_decrypt,
         "decrypt [IN] [-o OUT] [--json] [--no-verify] [--key ID|ADDR]",
         "Open any incoming message: decrypt, verify; the status on stderr", check_open_usage},
        {"verify", 0, 1, OPTION_OUTPUT | OPTION_JSON, 0, verb_verify, "verify [IN] [-o OUT] [--json]",
         "Verify a signed message; exit 0 only when the signature is valid", check_open_usage},
};

#define HELP_USAGE_WIDTH 22

static void help(void) {
        printf("Usage: smimectl [OPTIONS] COMMAND ...\n"
               "\n"
               "Query and control smimed, the S/MIME key service on the system bus.\n"
               "\n"
               "Commands:\n");
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++) {
                fputs("  ", stdout);
                if (text_width(verbs[i].usage) > HELP_USAGE_WIDTH)
                        printf("%s\n  %*s", verbs[i].usage, HELP_USAGE_WIDTH, "");
                else
                        print_padded(stdout, verbs[i].usage, HELP_USAGE_WIDTH);
                printf(" %s\n", verbs[i].summary);
        }
        printf("\n"
               "Options:\n"
               "  --json=MODE            Print JSON instead of a table: pretty, short (one\n"
               "                         line) or off; --json alone is short (decrypt,\n"
               "                         verify: the status on stdout, with -o OUT)\n"
               "  -j                     --json=pretty on a terminal, else --json=short\n"
               "  --no-legend            Leave out the tables' headers and footers\n"
               "  --no-pager             Do not pipe list, show and keys into a pager\n"
               "  --trust                import: make the CA certificates trust anchors\n"
               "  --address PREFIX       list: only certificates with an address starting with\n"
               "                         PREFIX (any case)\n"
               "  --status WORD          list: only valid, expired, not-yet-valid, revoked,\n"
               "                         untrusted, wrong-usage or weak certificates\n"
               "  --expiring DAYS        list: only those whose validity ends within DAYS days\n"
               "  --limit N              list: one page of at most N (1-1000), with \"N of TOTAL\"\n"
               "  --offset N             list: skip the first N\n"
               "  --from ADDR            coverage: the sender; sign: sign as ADDR\n"
               "  --to ADDR[,ADDR…]      coverage, encrypt: recipients (may be repeated)\n"
               "  --passphrase-file F    import-key: the passphrase is the first line of F\n"
               "                         (else asked on the terminal, or read from stdin)\n"
               "  --type T               generate-key: rsa-2048, rsa-3072 (default), rsa-4096,\n"
               "                         ec-p256 or ec-p384\n"
               "  --subject DN           generate-key: the request's subject (default CN=ADDRESS)\n"
               "  -o --output FILE       Write the request, the message or the certificate to\n"
               "                         FILE, not stdout\n"
               "  --der                  export: DER, not PEM (one certificate)\n"
               "  --opaque               sign, encrypt: opaque signed-data, not multipart/signed\n"
               "  --digest D             sign, encrypt: sha-256, sha-384 or sha-512\n"
               "  --pss                  sign, encrypt: RSA-PSS signatures\n"
               "  --sign-as ADDR         encrypt: sign as ADDR first\n"
               "  --sender ADDR          encrypt: also encrypt to ADDR, for the sent copy\n"
               "  --cipher C             encrypt: aes-256-cbc, aes-128-cbc, aes-256-gcm or\n"
               "                         aes-128-gcm (default: smimed's policy)\n"
               "  --oaep                 encrypt: RSA-OAEP for RSA recipients\n"
               "  --no-verify            decrypt: do not verify signatures\n"
               "  --key ID|ADDR          decrypt: only with this key (its id, as in keys, or\n"
               "                         the address of its certificate)\n"
               "  --force                remove-key: also the key of a current certificate\n"
               "  --no-ask-password      Do not let polkit ask for a password\n"
               "  -h --help              Show this help\n"
               "     --version           Show the version\n"
               "\n"
               "smimectl talks to the system bus; set DBUS_SYSTEM_BUS_ADDRESS to use another.\n"
               "Exit status: 0 when what was asked for fully happened, 1 otherwise,\n"
               "2 for a usage error, 3 when coverage answered that not everything is\n"
               "possible. See smimectl(1).\n");
}

enum {
        ARG_JSON = 0x100,
        ARG_NO_LEGEND,
        ARG_FORCE,
        ARG_NO_PAGER,
        ARG_NO_ASK_PASSWORD,
        ARG_VERSION,
        ARG_TRUST,
        ARG_ADDRESS,
        ARG_FROM,
        ARG_TO,
        ARG_PASSPHRASE_FILE,
        ARG_TYPE,
        ARG_SUBJECT,
        ARG_OPAQUE,
        ARG_DIGEST,
        ARG_PSS,
        ARG_SIGN_AS,
        ARG_SENDER,
        ARG_CIPHER,
        ARG_OAEP,
        ARG_NO_VERIFY,
        ARG_KEY,
        ARG_LIMIT,
        ARG_OFFSET,
        ARG_STATUS,
        ARG_EXPIRING,
        ARG_DER,
};

/* A decimal number from 0 to max, all of s. */
static int parse_number(const char *option, const char *s, uint64_t max, uint64_t *ret) {
        char *end;
        unsigned long long v;

        errno = 0;
        v = strtoull(s, &end, 10);
        if (!s[0] || *end || errno != 0 || s[0] == '-' || v > max) {
                fprintf(stderr, "smimectl: %s needs a number from 0 to %llu.\n", option, (unsigned long long) max);
                return -EINVAL;
        }
        *ret = v;
        return 0;
}

/* Adds the comma-separated addresses of one --to to arg_to. */
static int parse_to(const char *value) {
        _cleanup_free_ char *copy = strdup(value);
        bool any = false;
        char *state = NULL;
        int r;

        if (!copy)
                return -ENOMEM;
        for (char *a = strtok_r(copy, ",", &state); a; a = strtok_r(NULL, ",", &state)) {
                size_t n;

                a += strspn(a, " \t");
                n = strlen(a);
                while (n > 0 && strchr(" \t", a[n - 1]))
                        a[--n] = '\0';
                if (n == 0)
                        continue;
                r = strv_extend(&arg_to, a);
                if (r < 0)
                        return r;
                any = true;
        }
        return any ? 0 : -EINVAL;
}

static int usage_needs_value(const char *option, const char *what) {
        fprintf(stderr, "smimectl: %s needs %s.\n", option, what);
        return -EINVAL;
}

static int parse_argv(int argc, char *argv[]) {
        static const struct option options[] = {
                {"json", optional_argument, NULL, ARG_JSON},
                {"no-legend", no_argument, NULL, ARG_NO_LEGEND},
                {"force", no_argument, NULL, ARG_FORCE},
                {"no-pager", no_argument, NULL, ARG_NO_PAGER},
                {"trust", no_argument, NULL, ARG_TRUST},
                {"address", required_argument, NULL, ARG_ADDRESS},
                {"from", required_argument, NULL, ARG_FROM},
                {"to", required_argument, NULL, ARG_TO},
                {"passphrase-file", required_argument, NULL, ARG_PASSPHRASE_FILE},
                {"type", required_argument, NULL, ARG_TYPE},
                {"subject", required_argument, NULL, ARG_SUBJECT},
                {"output", required_argument, NULL, 'o'},
                {"opaque", no_argument, NULL, ARG_OPAQUE},
                {"digest", required_argument, NULL, ARG_DIGEST},
                {"pss", no_argument, NULL, ARG_PSS},
                {"sign-as", required_argument, NULL, ARG_SIGN_AS},
                {"sender", required_argument, NULL, ARG_SENDER},
                {"cipher", required_argument, NULL, ARG_CIPHER},
                {"oaep", no_argument, NULL, ARG_OAEP},
                {"no-verify", no_argument, NULL, ARG_NO_VERIFY},
                {"key", required_argument, NULL, ARG_KEY},
                {"limit", required_argument, NULL, ARG_LIMIT},
                {"offset", required_argument, NULL, ARG_OFFSET},
                {"status", required_argument, NULL, ARG_STATUS},
                {"expiring", required_argument, NULL, ARG_EXPIRING},
                {"der", no_argument, NULL, ARG_DER},
                {"no-ask-password", no_argument, NULL, ARG_NO_ASK_PASSWORD},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, ARG_VERSION},
                {},
        };
        uint64_t number;
        int c, r;

        /* getopt's messages name argv[0]: "smimectl", however it was run. */
        argv[0] = (char *) "smimectl";
        while ((c = getopt_long(argc, argv, "hjo:", options, NULL)) >= 0) {
                switch (c) {
                case ARG_JSON:
                        if (optarg && streq(optarg, "off")) {
                                arg_json = false;
                                arg_options &= ~OPTION_JSON;
                                break;
                        }
                        if (optarg && !streq(optarg, "pretty") && !streq(optarg, "short")) {
                                fprintf(stderr, "smimectl: --json takes pretty, short or off, not \"%s\".\n", optarg);
                                return -EINVAL;
                        }
                        arg_json = true;
                        arg_json_pretty = optarg && streq(optarg, "pretty");
                        arg_options |= OPTION_JSON;
                        break;
                case 'j':
                        arg_json = true;
                        arg_json_pretty = terminal_is_tty(stdout);
                        arg_options |= OPTION_JSON;
                        break;
                case ARG_NO_LEGEND:
                        arg_legend = false;
                        break;
                case ARG_FORCE:
                        arg_force = true;
                        arg_options |= OPTION_FORCE;
                        break;
                case ARG_NO_PAGER:
                        arg_pager = false;
                        break;
                case ARG_TRUST:
                        arg_trust = true;
                        arg_options |= OPTION_TRUST;
                        break;
                case ARG_ADDRESS:
                        arg_address = optarg;
                        arg_options |= OPTION_ADDRESS;
                        break;
                case ARG_LIMIT:
                        r = parse_number("--limit", optarg, 1000, &number);
                        if (r < 0)
                                return r;
                        if (number == 0) {
                                fprintf(stderr, "smimectl: --limit needs a number from 1 to 1000.\n");
                                return -EINVAL;
                        }
                        arg_limit = (uint32_t) number;
                        arg_options |= OPTION_LIMIT;
                        break;
                case ARG_OFFSET:
                        r = parse_number("--offset", optarg, UINT64_MAX, &arg_offset);
                        if (r < 0)
                                return r;
                        arg_options |= OPTION_OFFSET;
                        break;
                case ARG_STATUS:
                        if (!optarg[0])
                                return usage_needs_value("--status", "a status word");
                        arg_status = optarg;
                        arg_options |= OPTION_STATUS;
                        break;
                case ARG_EXPIRING:
                        r = parse_number("--expiring", optarg, 100000, &number);
                        if (r < 0)
                                return r;
                        arg_expiring_days = (int64_t) number;
                        arg_options |= OPTION_EXPIRING;
                        break;
                case ARG_FROM:
                        if (!optarg[0]) {
                                fprintf(stderr, "smimectl: --from needs an address.\n");
                                return -EINVAL;
                        }
                        arg_from = optarg;
                        arg_options |= OPTION_FROM;
                        break;
                case ARG_TO:
                        r = parse_to(optarg);
                        if (r == -ENOMEM) {
                                fprintf(stderr, "smimectl: %s\n", strerror(ENOMEM));
                                return r;
                        }
                        if (r < 0) {
                                fprintf(stderr, "smimectl: --to needs at least one address.\n");
                                return r;
                        }
                        arg_options |= OPTION_TO;
                        break;
                case ARG_PASSPHRASE_FILE:
                        if (!optarg[0])
                                return usage_needs_value("--passphrase-file", "a file name");
                        arg_passphrase_file = optarg;
                        arg_options |= OPTION_PASSPHRASE_FILE;
                        break;
                case ARG_TYPE:
                        if (!optarg[0])
                                return usage_needs_value("--type", "a key type");
                        arg_key_type = optarg;
                        arg_options |= OPTION_TYPE;
                        break;
                case ARG_SUBJECT:
                        if (!optarg[0])
                                return usage_needs_value("--subject", "a distinguished name");
                        arg_subject = optarg;
                        arg_options |= OPTION_SUBJECT;
                        break;
                case 'o':
                        if (!optarg[0])
                                return usage_needs_value("-o", "a file name");
                        arg_output = optarg;
                        arg_options |= OPTION_OUTPUT;
                        break;
                case ARG_OPAQUE:
                        arg_opaque = true;
                        arg_options |= OPTION_OPAQUE;
                        break;
                case ARG_DIGEST:
                        if (!optarg[0])
                                return usage_needs_value("--digest", "a digest");
                        arg_digest = optarg;
                        arg_options |= OPTION_DIGEST;
                        break;
                case ARG_PSS:
                        arg_pss = true;
                        arg_options |= OPTION_PSS;
                        break;
                case ARG_SIGN_AS:
                        if (!optarg[0])
                                return usage_needs_value("--sign-as", "an address");
                        arg_sign_as = optarg;
                        arg_options |= OPTION_SIGN_AS;
                        break;
                case ARG_SENDER:
                        if (!optarg[0])
                                return usage_needs_value("--sender", "an address");
                        arg_sender = optarg;
                        arg_options |= OPTION_SENDER;
                        break;
                case ARG_CIPHER:
                        if (!optarg[0])
                                return usage_needs_value("--cipher", "a cipher");
                        arg_cipher = optarg;
                        arg_options |= OPTION_CIPHER;
                        break;
                case ARG_OAEP:
                        arg_oaep = true;
                        arg_options |= OPTION_OAEP;
                        break;
                case ARG_DER:
                        arg_der = true;
                        arg_options |= OPTION_DER;
                        break;
                case ARG_NO_VERIFY:
                        arg_no_verify = true;
                        arg_options |= OPTION_NO_VERIFY;
                        break;
                case ARG_KEY:
                        if (optarg[0] == '\0' ||
                            (!strchr(optarg, '@') && optarg[strspn(optarg, "0123456789abcdefABCDEF")] != '\0'))
                                return usage_needs_value("--key", "a key id (hex) or an address");
                        arg_key = optarg;
                        arg_options |= OPTION_KEY;
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

/* An option given to a verb that does not take it is a usage error. */
static int check_options(const Verb *verb) {
        unsigned extra = arg_options & ~verb->options;

        for (size_t i = 0; i < ELEMENTSOF(option_names); i++)
                if (extra & (1u << i)) {
                        fprintf(stderr, "smimectl: %s does not take %s; see smimectl --help.\n", verb->name,
                                option_names[i]);
                        return -EINVAL;
                }
        if (verb->needs_one_of && !(arg_options & verb->needs_one_of)) {
                fprintf(stderr, "smimectl: usage: smimectl %s\n", verb->usage);
                return -EINVAL;
        }
        return 0;
}

/* The verbs whose output can be long. */
static bool verb_pages(const Verb *verb) {
        return streq(verb->name, "list") || streq(verb->name, "show") || streq(verb->name, "keys");
}

static int run(int argc, char *argv[]) {
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
        if (check_options(verb) < 0)
                return 2;
        if (verb->check && verb->check(nargs, argv + optind + 1) < 0)
                return 2;

        r = smimed_connect(&s, &error);
        if (r < 0)
                return report_error(r, &error, "Cannot connect");

        /* A person at a terminal may be asked to authenticate; stdin alone does
         * not tell, it may be the message in a pipe. */
        (void) smimed_set_allow_interactive_authorization(
                s, arg_ask_password && (isatty(STDIN_FILENO) || isatty(STDERR_FILENO)));

        if (arg_pager && verb_pages(verb))
                pager_open();
        r = verb->run(s, nargs, argv + optind + 1);
        if (fflush(stdout) != 0 && r == 0)
                r = fail("Cannot write the output: %s", strerror(errno));
        return r;
}

/* A closed standard fd would be reused by the next open(), e.g. the bus
 * socket, which sign or decrypt would then hand smimed as the message. */
static void fill_closed_stdio(void) {
        for (int fd = STDIN_FILENO; fd <= STDERR_FILENO; fd++)
                if (fcntl(fd, F_GETFD) < 0 && errno == EBADF)
                        /* the lowest free fd is this one: the lower ones are filled already */
                        (void) open("/dev/null", fd == STDIN_FILENO ? O_RDONLY : O_WRONLY);
}

int main(int argc, char *argv[]) {
        int r;

        fill_closed_stdio();
        terminal_setup();
        r = run(argc, argv);

        strv_free(arg_to);
        return r;
}
