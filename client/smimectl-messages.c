/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format-util.h"
#include "json-writer.h"
#include "macro.h"
#include "output-file.h"
#include "smimectl.h"
#include "terminal-util.h"

/* A new -o file: as a shell redirection makes it, but the plain text of
 * encrypted mail is for its owner only. */
#define OUTPUT_MODE 0666
#define DECRYPTED_OUTPUT_MODE 0600

typedef struct Input {
        int fd;
        int owned_fd;
        const char *name; /* for messages */
} Input;

static void input_done(Input *in) {
        closep(&in->owned_fd);
}

static bool input_is_stdin(int argc, char *argv[]) {
        return argc == 0 || streq(argv[0], "-");
}

int check_message_usage(int argc, char *argv[]) {
        /* smimed takes no terminal: it could wait for ever for a message to be typed. */
        if (input_is_stdin(argc, argv) && isatty(STDIN_FILENO)) {
                fprintf(stderr, "smimectl: the message comes from standard input, which is a terminal; "
                                "name a file or use a pipe.\n");
                return -EINVAL;
        }
        return 0;
}

int check_encrypt_usage(int argc, char *argv[]) {
        if (!arg_sign_as && (arg_opaque || arg_digest || arg_pss)) {
                fprintf(stderr, "smimectl: --opaque, --digest and --pss are about signing; encrypt signs only "
                                "with --sign-as.\n");
                return -EINVAL;
        }
        return check_message_usage(argc, argv);
}

int check_open_usage(int argc, char *argv[]) {
        if (arg_json && (!arg_output || streq(arg_output, "-"))) {
                fprintf(stderr, "smimectl: --json needs -o OUT: standard output is for the message.\n");
                return -EINVAL;
        }
        return check_message_usage(argc, argv);
}

/* IN, or standard input without one and for "-". smimed reads the fd
 * itself. Returns 0, or the exit status after saying why. */
static int input_open(int argc, char *argv[], Input *ret) {
        struct stat st;

        *ret = (Input) { .fd = -1, .owned_fd = -1 };
        if (input_is_stdin(argc, argv)) {
                ret->fd = STDIN_FILENO;
                ret->name = "standard input";
        } else {
                ret->fd = ret->owned_fd = open(argv[0], O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (ret->fd < 0)
                        return fail("Cannot open %s: %s", argv[0], strerror(errno));
                ret->name = argv[0];
        }
        if (fstat(ret->fd, &st) < 0)
                return fail("Cannot read %s: %s", ret->name, strerror(errno));
        if (S_ISDIR(st.st_mode))
                return fail("Cannot read %s: %s", ret->name, strerror(EISDIR));
        return 0;
}

static const char *output_name(void) {
        return arg_output && !streq(arg_output, "-") ? arg_output : "standard output";
}

static int output_open(OutputFile *out, mode_t mode) {
        int r = output_file_open(out, arg_output, mode);

        if (r < 0)
                return fail("Cannot write to %s: %s", output_name(), strerror(-r));
        return 0;
}

static int output_commit(OutputFile *out) {
        int r = output_file_commit(out);

        if (r < 0)
                return fail("Cannot write to %s: %s", output_name(), strerror(-r));
        return 0;
}

int verb_sign(smimed *s, int argc, char *argv[]) {
        _cleanup_(smimed_error_done) smimed_error error = {};
        _cleanup_(output_file_done) OutputFile out = OUTPUT_FILE_NULL;
        _cleanup_(input_done) Input in = { .owned_fd = -1 };
        const smimed_sign_options o = { .opaque = arg_opaque, .digest = arg_digest, .pss = arg_pss };
        int r;

        r = input_open(argc, argv, &in);
        if (r != 0)
                return r;
        r = output_open(&out, OUTPUT_MODE);
        if (r != 0)
                return r;

        r = smimed_sign_fd(s, arg_from, in.fd, out.fd, &o, NULL, &error);
        if (r < 0)
                return report_error_about(r, &error, in.name, "Cannot sign %s as %s", in.name, arg_from);
        return output_commit(&out);
}

int verb_encrypt(smimed *s, int argc, char *argv[]) {
        _cleanup_(smimed_error_done) smimed_error error = {};
        _cleanup_(output_file_done) OutputFile out = OUTPUT_FILE_NULL;
        _cleanup_(input_done) Input in = { .owned_fd = -1 };
        const smimed_encrypt_options o = {
                .cipher = arg_cipher,
                .oaep = arg_oaep,
                .sign_as = arg_sign_as,
                .sender = arg_sender,
                .opaque = arg_opaque,
                .digest = arg_digest,
                .pss = arg_pss,
        };
        int r;

        r = input_open(argc, argv, &in);
        if (r != 0)
                return r;
        r = output_open(&out, OUTPUT_MODE);
        if (r != 0)
                return r;

        r = smimed_encrypt_fd(s, (const char *const *) arg_to, in.fd, out.fd, &o, NULL, &error);
        if (r < 0)
                return report_error_about(r, &error, in.name, "Cannot encrypt %s", in.name);
        return output_commit(&out);
}

/* The daemon's sentences start with the field's name; the lines here say
 * it already. */
static const char *without_prefix(const char *message, const char *prefix) {
        size_t n = strlen(prefix);

        return strncmp(message, prefix, n) == 0 ? message + n : message;
}

/* One line, the way a mail app shows it. */
static void print_encryption(const smimed_message_status *st) {
        if (streq(st->encryption, "encrypted")) {
                print_emoji(stderr, GLYPH_LOCKED);
                fputs("Encrypted for you", stderr);
                if (st->key) {
                        fputs(" (key ", stderr);
                        print_text(stderr, st->key);
                        fputc(')', stderr);
                }
        } else if (streq(st->encryption, "not-encrypted")) {
                print_emoji(stderr, GLYPH_UNLOCKED);
                fputs("Not encrypted", stderr);
        } else if (streq(st->encryption, "no-private-key")) {
                print_emoji(stderr, GLYPH_LOCKED);
                fputs("Encryption: ", stderr);
                print_text(stderr, st->encryption_message[0]
                                           ? without_prefix(st->encryption_message, "Encryption: ")
                                           : "Unable to find private key to decrypt");
        } else if (streq(st->encryption, "failed")) {
                print_emoji(stderr, GLYPH_LOCKED);
                fputs("Encryption: failed", stderr);
                fputs(glyph(stderr, GLYPH_DASH), stderr);
                print_text(stderr, without_prefix(st->encryption_message, "Encryption: "));
        } else { /* a word newer than smimectl */
                print_emoji(stderr, GLYPH_LOCKED);
                fputs("Encryption: ", stderr);
                print_text(stderr, st->encryption);
                fputs(glyph(stderr, GLYPH_DASH), stderr);
                print_text(stderr, without_prefix(st->encryption_message, "Encryption: "));
        }
        fputc('\n', stderr);
}

static void print_signature(const smimed_message_status *st) {
        /* With --no-verify smimed says not-verified (or not-signed when there
         * was no signed layer). */
        if (arg_no_verify) {
                print_emoji(stderr, GLYPH_UNCHECKED);
                fputs("Signature not checked (--no-verify)", stderr);
        } else if (streq(st->signature, "valid")) {
                print_emoji(stderr, GLYPH_YES);
                fputs("Signature valid: ", stderr);
                print_text(stderr, st->have_signer && st->signer.summary[0] ? st->signer.summary
                                                                            : st->signature_message);
        } else if (streq(st->signature, "not-signed") && st->content) {
                print_emoji(stderr, GLYPH_UNCHECKED);
                fputs("Not signed", stderr);
        } else if (streq(st->signature, "not-signed")) { /* not known: no content */
                print_emoji(stderr, GLYPH_UNCHECKED);
                fputs("Signature: ", stderr);
                print_text(stderr, st->signature_message);
        } else {
                print_emoji(stderr, GLYPH_NO);
                fputs("Signature ", stderr);
                print_text(stderr, st->signature);
                fputs(": ", stderr);
                print_text(stderr, without_prefix(st->signature_message, "Sign: "));
        }
        fputc('\n', stderr);
}

static void json_status(const smimed_message_status *st) {
        _cleanup_(json_writer_done) JsonWriter w = {.f = stdout, .pretty = arg_json_pretty};
        char buf[FORMAT_TIME_MAX];

        json_begin_object(&w);
        json_key_string(&w, "encryption", st->encryption);
        json_key_string(&w, "signature", st->signature);
        json_key_string(&w, "encryption_message", st->encryption_message);
        json_key_string(&w, "signature_message", st->signature_message);
        json_key_bool(&w, "content", st->content);
        json_key_uint(&w, "size", st->size);
        if (st->key)
                json_key_string(&w, "key", st->key);
        if (st->key_certificate)
                json_key_string(&w, "key_certificate", st->key_certificate);
        json_key(&w, "signer");
        if (st->have_signer) {
                json_begin_object(&w);
                json_key_string(&w, "fingerprint", st->signer.fingerprint);
                json_key_string(&w, "subject", st->signer.subject);
                json_key_string(&w, "issuer", st->signer.issuer);
                json_key_string(&w, "address", st->signer.address);
                json_key_string(&w, "not_before", format_iso8601(buf, st->signer.not_before));
                json_key_string(&w, "not_after", format_iso8601(buf, st->signer.not_after));
                json_key_string(&w, "summary", st->signer.summary);
                json_end_object(&w);
        } else
                json_null(&w);
        json_end_object(&w);
}

/* decrypt: the content came back and no signature is wrong (with
 * --no-verify: the content came back); verify: the signature is valid. */
static bool fully_opened(const smimed_message_status *st, bool decrypt) {
        if (!decrypt)
                return streq(st->signature, "valid");
        if (!st->content)
                return false;
        return arg_no_verify || streq(st->signature, "valid") || streq(st->signature, "not-signed");
}

static int open_message(smimed *s, bool decrypt, int argc, char *argv[]) {
        _cleanup_(smimed_message_status_done) smimed_message_status st = {};
        _cleanup_(smimed_error_done) smimed_error error = {};
        _cleanup_(output_file_done) OutputFile out = OUTPUT_FILE_NULL;
        _cleanup_(input_done) Input in = { .owned_fd = -1 };
        const char *verb = decrypt ? "decrypt" : "verify";
        int r;

        r = input_open(argc, argv, &in);
        if (r != 0)
                return r;
        r = output_open(&out, decrypt ? DECRYPTED_OUTPUT_MODE : OUTPUT_MODE);
        if (r != 0)
                return r;

        if (decrypt) {
                _cleanup_(smimed_options_freep) smimed_options *o = smimed_options_new();

                if (!o)
                        return fail("Out of memory.");
                r = smimed_options_set_verify(o, !arg_no_verify);
                if (r >= 0 && arg_key)
                        r = smimed_options_set_key(o, arg_key);
                if (r < 0)
                        return fail("Invalid --key \"%s\".", arg_key);
                r = smimed_decrypt_fd_with_options(s, in.fd, out.fd, o, &st, &error);
        } else
                r = smimed_verify_fd(s, in.fd, out.fd, &st, &error);
        if (r < 0)
                return report_error_about(r, &error, in.name, "Cannot %s %s", verb, in.name);

        /* Without content an -o file stays as it was. */
        if (st.content) {
                r = output_commit(&out);
                if (r != 0)
                        return r;
        }

        if (arg_json)
                json_status(&st);
        else {
                print_encryption(&st);
                print_signature(&st);
        }
        return fully_opened(&st, decrypt) ? 0 : 1;
}

int verb_decrypt(smimed *s, int argc, char *argv[]) {
        return open_message(s, true, argc, argv);
}

int verb_verify(smimed *s, int argc, char *argv[]) {
        return open_message(s, false, argc, argv);
}
