/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "macro.h"
#include "smimed.h"

/* What the smimectl verbs share. Verbs return the exit status: 0 when what
 * was asked for fully happened, 1 otherwise, 2 for a usage error. */

/* coverage: smimed answered, and not everything asked about is possible. */
#define EXIT_NOT_POSSIBLE 3

extern bool arg_json;
extern bool arg_json_pretty; /* --json=pretty, or -j on a terminal */
extern bool arg_legend;      /* not --no-legend */
extern bool arg_force;
extern bool arg_trust;
extern const char *arg_address;
extern const char *arg_from;
extern char **arg_to;
extern const char *arg_passphrase_file;
extern const char *arg_key_type;
extern const char *arg_subject;
extern const char *arg_output;
extern bool arg_der;
extern bool arg_opaque;
extern const char *arg_digest;
extern bool arg_pss;
extern const char *arg_sign_as;
extern const char *arg_sender;
extern const char *arg_cipher;
extern bool arg_oaep;
extern bool arg_no_verify;
extern const char *arg_key;
extern uint32_t arg_limit; /* 0: every certificate */
extern uint64_t arg_offset;
extern const char *arg_status;
extern int64_t arg_expiring_days; /* < 0: none */

DEFINE_TRIVIAL_CLEANUP_FUNC(char **, smimed_strv_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(smimed_options *, smimed_options_free);

/* "smimectl: <what>: <message> (<D-Bus error name>)" on stderr; returns 1. */
_printf_(3, 4) int report_error(int r, const smimed_error *error, const char *format, ...);
/* As report_error(), but when smimed's message already says what could not
 * be done ("Cannot sign as …: …") only "smimectl: <subject>: <message>". */
_printf_(4, 5) int report_error_about(int r, const smimed_error *error, const char *subject, const char *format, ...);
/* "smimectl: <message>" on stderr; returns 1. */
_printf_(1, 2) int fail(const char *format, ...);

int verb_import(smimed *s, int argc, char *argv[]);
int verb_import_crl(smimed *s, int argc, char *argv[]);
int verb_fetch_crls(smimed *s, int argc, char *argv[]);
int verb_list(smimed *s, int argc, char *argv[]);
int verb_show(smimed *s, int argc, char *argv[]);
int verb_remove(smimed *s, int argc, char *argv[]);
int verb_trust(smimed *s, int argc, char *argv[]);
int verb_untrust(smimed *s, int argc, char *argv[]);
int verb_export(smimed *s, int argc, char *argv[]);
int verb_coverage(smimed *s, int argc, char *argv[]);
int verb_keys(smimed *s, int argc, char *argv[]);
int verb_import_key(smimed *s, int argc, char *argv[]);
int verb_generate_key(smimed *s, int argc, char *argv[]);
int verb_remove_key(smimed *s, int argc, char *argv[]);
int verb_renew(smimed *s, int argc, char *argv[]);
/* Usage rules of the message verbs, checked before smimed is asked. */
int check_message_usage(int argc, char *argv[]);
int check_encrypt_usage(int argc, char *argv[]);
int check_open_usage(int argc, char *argv[]);
int verb_sign(smimed *s, int argc, char *argv[]);
int verb_encrypt(smimed *s, int argc, char *argv[]);
int verb_decrypt(smimed *s, int argc, char *argv[]);
int verb_verify(smimed *s, int argc, char *argv[]);

/* A full fingerprint, or the one certificate in the store whose fingerprint
 * starts with a prefix of at least 8 digits, into *ret (lower-case). A
 * prefix cut short as list prints it ("…"), ambiguous or matching nothing
 * is refused; or_address says that an address would have done. Returns 0,
 * or the exit status after saying why. */
int fingerprint_resolve(smimed *s, const char *arg, bool or_address, char **ret);
/* An argument with "@" is a mail address. */
bool is_address(const char *arg);
/* The certificates FINGERPRINT|ADDRESS names: the one of a fingerprint, or
 * every certificate of an address (usable ones first; none is an error).
 * Returns 0, or the exit status after saying why. */
int certificates_resolve(smimed *s, const char *arg, char ***ret);

/* One "<fingerprint>  <summary>" line for each certificate; returns the
 * exit status (1 when one cannot be read). */
int print_imported(smimed *s, char **fingerprints);
