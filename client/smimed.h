/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef SMIMED_H
#define SMIMED_H

/* libsmimed: the client side of smimed, the S/MIME key service on the D-Bus
 * system bus (org.smimed1).
 *
 * Every function returns 0 (or a positive count) on success and a negative
 * errno on failure. When the daemon answered with a D-Bus error, the
 * smimed_error passed in (if any) holds its name, e.g.
 * "org.smimed1.Error.TokenUnavailable" (see smimed-errors.h), and a message
 * that can be shown to a person; free it with smimed_error_done().
 * Arguments the library can check itself (NULL pointers, empty data, a
 * malformed fingerprint) fail with -EINVAL and a message, without a name.
 *
 * Lists of strings are NULL-terminated; free them with smimed_strv_free().
 * Fingerprints are SHA-256 of the DER certificate, 64 lower-case hex digits.
 *
 * A connection is used from one thread at a time. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smimed-errors.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct smimed smimed;

typedef struct smimed_error {
        char *name;      /* D-Bus error name, NULL when none */
        char *message;   /* for people, NULL when none */
} smimed_error;

void smimed_error_done(smimed_error *error);

/* Connects to the system bus (honours DBUS_SYSTEM_BUS_ADDRESS). */
int smimed_connect(smimed **ret, smimed_error *error);
/* Connects to the bus at a D-Bus address such as "unix:path=/run/x". */
int smimed_connect_address(const char *address, smimed **ret, smimed_error *error);
smimed *smimed_close(smimed *s);

/* Whether smimed may ask polkit to authenticate the user interactively
 * (through an agent) when a call needs it. Off by default; without it such
 * calls fail with org.freedesktop.DBus.Error.InteractiveAuthorizationRequired. */
int smimed_set_allow_interactive_authorization(smimed *s, bool allow);

/* smimed_status(): the manager's properties in one call. */
typedef struct smimed_status_info {
        char *version;
        bool enabled;              /* false: policy turned S/MIME off */
        char *token_state;         /* "ready", "locked", "absent" or "error" */
        char *token_state_reason;  /* why it is not ready, "" when it is */
        char *token_label;
        uint64_t certificate_count;
        uint64_t key_count;
} smimed_status_info;

int smimed_status(smimed *s, smimed_status_info *ret, smimed_error *error);
void smimed_status_info_done(smimed_status_info *info);
/* Certificates (not CAs) that expire within smimed's [Policy]
 * ExpiryWarningDays= and have not expired: the Manager's
 * ExpiringCertificates, which smimed_subscribe_changes() reports as a
 * SMIMED_CHANGE_STATE of that name. */
int smimed_get_expiring_certificates(smimed *s, uint64_t *ret, smimed_error *error);

/* Asks smimed to re-read its configuration (polkit action
 * org.smimed1.manage-certificates). */
int smimed_reload(smimed *s, smimed_error *error);

/* True when the error means smimed is not on the bus at all. */
bool smimed_error_is_unreachable(const smimed_error *error);

/* Frees a NULL-terminated list of strings returned by this library. */
void smimed_strv_free(char **l);

/* Certificates (org.smimed1.Certificate objects). */

typedef struct smimed_chain_entry {
        char *fingerprint;
        char *subject;
} smimed_chain_entry;

/* Strings are NULL only when the daemon does not know the property. */
typedef struct smimed_certificate {
        char *path;                        /* D-Bus object path */
        char *fingerprint, *subject, *issuer, *common_name, *serial;  /* DNs as RFC 2253; serial in upper-case hex */
        char **addresses;                  /* NULL-terminated, lower-case */
        uint64_t not_before, not_after;    /* µs since the epoch */
        char *key_algorithm;               /* "rsa", "ec", "ed25519", … */
        uint32_t key_bits;
        bool is_ca, trusted, has_private_key, can_sign, can_encrypt;
        char *status;                      /* "valid", "expired", "not-yet-valid", "revoked", "untrusted",
                                            * "wrong-usage", "weak", "revocation-unknown" */
        char *status_text;                 /* why, for a person */
        char *summary;                     /* one line for a hover */
        smimed_chain_entry *chain;         /* this certificate first, up to its trust anchor */
        size_t n_chain;
        void *der;
        size_t der_size;
} smimed_certificate;

/* Adds the certificates in data (PEM blocks, one DER certificate or a DER
 * PKCS#7 bundle) to the store; all or nothing. trust makes the CA
 * certificates in data trust anchors. *ret_fingerprints (may be NULL) gets the
 * fingerprint of every certificate in data, in input order. polkit action
 * org.smimed1.manage-certificates. */
int smimed_import_certificates(smimed *s, const void *data, size_t size, bool trust, char ***ret_fingerprints,
                               smimed_error *error);
/* Adds certificate revocation lists (PEM blocks or one DER CRL); all or
 * nothing. *ret_count (may be NULL) gets how many were stored. */
int smimed_import_crl(smimed *s, const void *data, size_t size, unsigned *ret_count, smimed_error *error);
/* Has smimed fetch now the CRLs of the certificates in the store from their
 * http:// CRL distribution points, and waits until every download ended.
 * *ret_fetched (may be NULL) gets how many came and were stored. Fails
 * (SMIMED_ERROR_TIMEOUT, _INVALID_FORMAT, _CERTIFICATE_INVALID) when one
 * did not; the others are stored all the same. polkit action
 * org.smimed1.manage-certificates. */
int smimed_fetch_crls(smimed *s, unsigned *ret_fetched, smimed_error *error);
/* Fingerprints of the certificates for a mail address (NULL or "": every
 * certificate in the store). purpose: NULL or "any", "sign", "encrypt";
 * usable_only keeps only certificates valid for it. Usable ones come first. */
int smimed_lookup_certificates(smimed *s, const char *address, const char *purpose, bool usable_only,
                               char ***ret_fingerprints, smimed_error *error);
/* A page of the certificate store, for a table (ListCertificates): ordered
 * by NotAfter, then fingerprint. The filter is opaque; NULL lists from the
 * start with the daemon's default limit (100). Each setter returns 0 or
 * -EINVAL/-ENOMEM. */
typedef struct smimed_list_filter smimed_list_filter;

smimed_list_filter *smimed_list_filter_new(void);
smimed_list_filter *smimed_list_filter_free(smimed_list_filter *f);
/* Rows to skip, and at most how many to return (1…1000; 0: the default). */
int smimed_list_filter_set_offset(smimed_list_filter *f, uint64_t offset);
int smimed_list_filter_set_limit(smimed_list_filter *f, uint32_t limit);
/* Only this status: "valid", "expired", "not-yet-valid", "revoked",
 * "untrusted", "wrong-usage" or "weak" (NULL: any). */
int smimed_list_filter_set_status(smimed_list_filter *f, const char *status);
/* Only certificates with an address starting with prefix, any case (NULL: any). */
int smimed_list_filter_set_address(smimed_list_filter *f, const char *prefix);
/* Only NotAfter before usec (µs since the epoch; 0: any). */
int smimed_list_filter_set_expiring_before(smimed_list_filter *f, uint64_t usec);
/* 1: only CA certificates, 0: only the others, -1: any. */
int smimed_list_filter_set_ca(smimed_list_filter *f, int ca);

/* One row. The library allocates rows; new fields may be appended. */
typedef struct smimed_certificate_row {
        char *fingerprint; /* SHA-256, lower-case hex */
        char **addresses;
        char *subject;
        char *issuer;
        uint64_t not_after; /* µs since the epoch */
        char *status;       /* as smimed_list_filter_set_status() names them */
        bool trusted;
        bool is_ca;
        bool has_private_key;
} smimed_certificate_row;

/* *ret_rows: a NULL-terminated array of rows, freed with
 * smimed_certificate_rows_free(); *ret_total (may be NULL): how many
 * certificates pass the filter, whatever its offset and limit. A bad
 * filter (unknown status, limit over 1000) is org.smimed1.Error.InvalidArgument. */
int smimed_list_certificates(smimed *s, const smimed_list_filter *filter, smimed_certificate_row ***ret_rows,
                             uint64_t *ret_total, smimed_error *error);
void smimed_certificate_rows_free(smimed_certificate_row **rows);

/* Reads all properties of one certificate (fingerprint in any case). An
 * unknown fingerprint fails with org.freedesktop.DBus.Error.UnknownObject.
 * Free *ret with smimed_certificate_done(). */
int smimed_get_certificate(smimed *s, const char *fingerprint, smimed_certificate *ret, smimed_error *error);
void smimed_certificate_done(smimed_certificate *c);
/* The certificate's Revocation property: where the answer about its
 * revocation came from and when ("good by OCSP (URL) at …, next update …",
 * "revoked by the CRL of "CA" issued …"); "" when none was had. Apart from
 * smimed_certificate, whose size callers compiled against an older
 * smimed.h know. Free *ret with free(). */
int smimed_get_certificate_revocation(smimed *s, const char *fingerprint, char **ret, smimed_error *error);
/* Deletes a certificate from the store, or makes it a trust anchor (or not).
 * polkit action org.smimed1.manage-certificates. */
int smimed_remove_certificate(smimed *s, const char *fingerprint, smimed_error *error);
int smimed_set_certificate_trusted(smimed *s, const char *fingerprint, bool trusted, smimed_error *error);

/* Private keys in the token (org.smimed1.Key objects). Key ids are the
 * token's CKA_ID in lower-case hex (the SHA-1 of the public key for keys
 * smimed enrolled); functions that take one accept any case. */

typedef struct smimed_key {
        char *path;           /* D-Bus object path */
        char *id;             /* CKA_ID, lower-case hex */
        char *label;          /* CKA_LABEL: the mail address for keys smimed enrolled */
        char *algorithm;      /* "rsa" or "ec" */
        char *uri;            /* RFC 7512 pkcs11: URI of the private key */
        uint32_t bits;
        char **certificates;  /* fingerprints of the certificates in the store for this key; never NULL */
} smimed_key;

/* The keys in the token, sorted by label, then id; none while the token is
 * not ready. Free *ret with smimed_keys_free(*ret, *ret_n). Needs no
 * authorization. */
int smimed_list_keys(smimed *s, smimed_key **ret, size_t *ret_n, smimed_error *error);
void smimed_keys_free(smimed_key *keys, size_t n);

/* Enrolls the private key, its certificate and chain from a PKCS#12 file
 * (.p12/.pfx): the key goes into the token, the certificates into the store;
 * all or nothing. The file is read by smimed from fd, from its current
 * offset to its end (at most 1 MiB, within smimed's [Policy] IOTimeoutSec=,
 * else SMIMED_ERROR_TIMEOUT): a regular file, a memfd or a pipe, opened for
 * reading (not O_PATH, not a terminal: -EBADF, -EOPNOTSUPP), used as it is
 * (its flags stay as they are). fd stays the caller's, open (its offset
 * moves when it is shared).
 * passphrase NULL is "". *ret_key_id and *ret_fingerprints (each may be
 * NULL) get the key's id and the fingerprints of the certificates in the
 * file. Errors: SMIMED_ERROR_BAD_PASSPHRASE, _INVALID_FORMAT (not PKCS#12),
 * _NO_PRIVATE_KEY, _NO_CERTIFICATE, _CERTIFICATE_INVALID (key and certificate
 * do not match), _TOKEN_UNAVAILABLE. polkit action org.smimed1.manage-keys. */
int smimed_import_pkcs12_fd(smimed *s, int fd, const char *passphrase, char **ret_key_id,
                            char ***ret_fingerprints, smimed_error *error);
/* The same from memory (passed as a sealed memfd). */
int smimed_import_pkcs12(smimed *s, const void *data, size_t size, const char *passphrase, char **ret_key_id,
                         char ***ret_fingerprints, smimed_error *error);
/* Generates a key pair in the token for address and returns a PKCS#10
 * request for it (PEM) to send to a CA; import the certificate it issues with
 * smimed_import_certificates(). type: NULL (smimed's default, rsa-3072),
 * "rsa-2048", "rsa-3072", "rsa-4096", "ec-p256", "ec-p384"; subject: NULL
 * ("CN=<address>") or a DN such as "CN=Alice,O=Example". Waits up to 5
 * minutes: large RSA keys take a while in software tokens. Either result
 * pointer may be NULL. polkit action org.smimed1.manage-keys. */
int smimed_generate_key(smimed *s, const char *address, const char *type, const char *subject, char **ret_key_id,
                        char **ret_csr_pem, smimed_error *error);
/* Renewal: a new key in the token and a request with the subject and all
 * the addresses of the certificate fingerprint (one of address), and its
 * key's type unless type says another. Once the CA's certificate for it is
 * imported, signing as address uses it (the newest usable); the old key
 * stays for decrypting old mail. GenerateKey's "renew" option. */
int smimed_renew_key(smimed *s, const char *address, const char *fingerprint, const char *type, char **ret_key_id,
                     char **ret_csr_pem, smimed_error *error);
/* Destroys a key in the token (its certificates stay in the store). An
 * unknown id fails with org.freedesktop.DBus.Error.UnknownObject. polkit
 * action org.smimed1.manage-keys. */
int smimed_remove_key(smimed *s, const char *key_id, smimed_error *error);

/* What a composer asks before it enables Sign and Encrypt. */

typedef struct smimed_capability {
        char *address;
        bool possible;
        char *reason;       /* "" when possible, else "no-certificate", "no-private-key", "expired", … */
        char *message;      /* for the user, with what to do */
        char *fingerprint, *subject, *issuer, *summary;  /* NULL when no certificate was considered */
        uint64_t not_after; /* µs since the epoch, 0 when no certificate was considered */
} smimed_capability;

typedef struct smimed_capabilities {
        bool have_sign;                 /* a sender was asked about: sign is filled in */
        smimed_capability sign;
        smimed_capability *encrypt;     /* one per recipient, in order */
        size_t n_encrypt;
} smimed_capabilities;

/* Can sender (NULL or "": none) sign, and can each recipient (NULL-terminated,
 * may be NULL) be encrypted to? A malformed address fails with
 * org.smimed1.Error.InvalidArgument. Free *ret with smimed_capabilities_done(). */
int smimed_get_capabilities(smimed *s, const char *sender, const char *const *recipients, smimed_capabilities *ret,
                            smimed_error *error);
void smimed_capabilities_done(smimed_capabilities *c);
/* Whether the certificate of c->encrypt[i] was found in smimed's [Directory]
 * (LDAP) and is cached in its store, for a composer to say so: 1, with
 * *ret_fetched (may be NULL) set to when it was last fetched (µs since the
 * epoch); 0 when not, or i is out of range. */
int smimed_capabilities_from_directory(const smimed_capabilities *c, size_t i, uint64_t *ret_fetched);

/* Messages. A message is a whole RFC 5322 message (or a bare MIME entity).
 * The _fd functions take the caller's file descriptors and do not close
 * them: smimed reads the input from its current offset to its end (a
 * regular file, a memfd, a pipe or a socket) and writes the result to the
 * output from its current offset; the call returns once the output is
 * written. smimed uses them as they were opened and never reopens one: the
 * input must be open for reading and the output for writing, an O_PATH
 * descriptor fails (-EBADF). Their flags stay as they are: a blocking pipe
 * stays blocking, O_NONBLOCK is never set or cleared. smimed takes no
 * terminal or other device but /dev/null, /dev/zero and /dev/full: an input
 * that is a terminal fails (-EOPNOTSUPP), and an output that is a terminal
 * or another character device goes through a memfd that these functions
 * copy to it once the call succeeded. Nor does smimed take a file on FUSE
 * (its server could keep smimed waiting): these functions read such an
 * input into a sealed memfd themselves and write such an output through a
 * memfd. The functions without _fd take the
 * message from memory (passed as a sealed memfd) and return the result in
 * *ret_output, malloc'd and NUL-terminated (not counted in *ret_size); each
 * ret_ pointer may be NULL. A call waits up to 10 minutes: messages may be large (at most
 * [Policy] MaxMessageSize= of smimed.conf(5)).
 *
 * The pipe trap: smimed writes the output during the call and replies after
 * the last byte. An output pipe whose read end the caller reads only after
 * the call returned blocks smimed once it holds 64 KiB, and the call never
 * returns (smimed fails it with SMIMED_ERROR_TIMEOUT after IOTimeoutSec=).
 * Pass a file or memfd, read the pipe from another thread or process while
 * the call runs, or use the functions without _fd or the async ones: they
 * give smimed memfds, never pipes. */

/* Legacy option structs, kept for existing callers: they cannot grow
 * without breaking the ABI. New code uses smimed_options and the
 * *_with_options() and *_async() functions below.
 * NULL options are smimed's defaults. digest: NULL (the first of sha-256,
 * sha-384, sha-512 the policy allows), "sha-256", "sha-384" or "sha-512". */
typedef struct smimed_sign_options {
        bool opaque;            /* application/pkcs7-mime signed-data instead of multipart/signed */
        const char *digest;
        bool pss;               /* RSA-PSS instead of PKCS#1 v1.5 (RSA keys only) */
} smimed_sign_options;

typedef struct smimed_encrypt_options {
        const char *cipher;     /* NULL ([Policy] DefaultCipher=), "aes-256-cbc", "aes-128-cbc", "aes-256-gcm", "aes-128-gcm" */
        bool oaep;              /* RSA-OAEP for RSA recipients (EC recipients use ECDH) */
        const char *sign_as;    /* NULL, or sign first as this sender (polkit action org.smimed1.sign) */
        const char *sender;     /* NULL, or also encrypt to this address (sign_as implies it) */
        bool opaque;            /* for sign_as: as in smimed_sign_options */
        const char *digest;
        bool pss;
} smimed_encrypt_options;

/* What smimed_sign*() and smimed_encrypt*() did. Free with smimed_result_done(). */
typedef struct smimed_result {
        char *signer;           /* fingerprint of the signer's certificate; NULL when not signed */
        char **recipients;      /* encrypt: fingerprints of the recipients' certificates (the sender's
                                 * included); NULL for sign */
        bool sender_included;   /* encrypt: the sender can read the sent copy */
        uint64_t size;          /* bytes written to the output */
} smimed_result;

void smimed_result_done(smimed_result *r);

/* Signs as sender (a mail address): multipart/signed, or opaque signed-data.
 * Errors: SMIMED_ERROR_NO_CERTIFICATE, _NO_PRIVATE_KEY, _CERTIFICATE_INVALID,
 * _TOKEN_UNAVAILABLE, _POLICY_VIOLATION, _DISABLED, _INVALID_MESSAGE (not a
 * message, empty, too large), _INVALID_ARGUMENT (a malformed address, an fd
 * smimed cannot read or write), _TIMEOUT (an fd that did not reach its end,
 * or was not drained, within smimed's [Policy] IOTimeoutSec=). polkit action
 * org.smimed1.sign. */
int smimed_sign_fd(smimed *s, const char *sender, int input_fd, int output_fd, const smimed_sign_options *o,
                   smimed_result *ret, smimed_error *error);
int smimed_sign(smimed *s, const char *sender, const void *input, size_t size, const smimed_sign_options *o,
                void **ret_output, size_t *ret_size, smimed_result *ret, smimed_error *error);
/* Encrypts to every recipient (NULL-terminated, at least one); the first
 * that cannot be encrypted to fails the call, naming it and why. Needs no
 * authorization, unless o->sign_as. */
int smimed_encrypt_fd(smimed *s, const char *const *recipients, int input_fd, int output_fd,
                      const smimed_encrypt_options *o, smimed_result *ret, smimed_error *error);
int smimed_encrypt(smimed *s, const char *const *recipients, const void *input, size_t size,
                   const smimed_encrypt_options *o, void **ret_output, size_t *ret_size, smimed_result *ret,
                   smimed_error *error);

/* The signer's certificate of an incoming message. Strings never NULL. */
typedef struct smimed_signer {
        char *fingerprint, *subject, *issuer;
        char *address;          /* its first mail address, "" when none */
        char *summary;          /* one line for a hover */
        uint64_t not_before, not_after;  /* µs since the epoch */
} smimed_signer;

/* What a mail app shows next to an incoming message: "valid" only when
 * every check passed. Strings are never NULL, except key and
 * key_certificate. Free with smimed_message_status_done(). */
typedef struct smimed_message_status {
        char *encryption;          /* "encrypted", "not-encrypted", "no-private-key", "failed" */
        char *encryption_message;  /* a sentence to show */
        char *signature;           /* "valid", "not-signed", "no-certificate", "invalid", "untrusted", "expired",
                                    * "not-yet-valid", "revoked", "sender-mismatch", "weak-algorithm",
                                    * "revocation-unknown" ([Revocation] Unknown=hard: no current CRL),
                                    * "not-verified" (a signed layer left unchecked: verify=false) */
        char *signature_message;
        char *key;                 /* id of the token key that decrypted it, NULL when none */
        char *key_certificate;     /* fingerprint of that key's certificate, NULL when none */
        bool content;              /* the output holds the content (false after no-private-key or failed) */
        uint64_t size;             /* bytes written to the output */
        bool have_signer;          /* signer is filled in */
        smimed_signer signer;
} smimed_message_status;

void smimed_message_status_done(smimed_message_status *st);

/* Opens an incoming message layer by layer: decrypts with a key in the
 * token and, unless verify is false, verifies every signature. A message
 * that is not encrypted is only verified (encryption "not-encrypted"), one
 * that is not S/MIME comes back as it is. Whatever the status, the content
 * comes back when it can be had; the status tells what to show. Errors (no
 * status at all): SMIMED_ERROR_INVALID_MESSAGE (garbage, truncated, empty,
 * too large, nested too deep), _INVALID_ARGUMENT, _TOKEN_UNAVAILABLE (an encrypted
 * layer while the token is not ready or fails), _TIMEOUT, _DISABLED;
 * polkit action org.smimed1.decrypt, asked only when a key is needed. */
int smimed_decrypt_fd(smimed *s, int input_fd, int output_fd, bool verify, smimed_message_status *ret,
                      smimed_error *error);
int smimed_decrypt(smimed *s, const void *input, size_t size, bool verify, void **ret_output, size_t *ret_size,
                   smimed_message_status *ret, smimed_error *error);
/* The same for a message that is signed and not encrypted (an encrypted one
 * fails with SMIMED_ERROR_INVALID_MESSAGE). Needs no authorization. */
int smimed_verify_fd(smimed *s, int input_fd, int output_fd, smimed_message_status *ret, smimed_error *error);
int smimed_verify(smimed *s, const void *input, size_t size, void **ret_output, size_t *ret_size,
                  smimed_message_status *ret, smimed_error *error);
/* One status for any incoming message, encrypted, signed, both or neither:
 * smimed_decrypt() with verify. */
int smimed_open(smimed *s, const void *input, size_t size, void **ret_output, size_t *ret_size,
                smimed_message_status *ret, smimed_error *error);
int smimed_open_fd(smimed *s, int input_fd, int output_fd, smimed_message_status *ret, smimed_error *error);

/* ---- Options ----
 *
 * An opaque set of options for one or more calls: new options come as new
 * setters, so that a program built against this version keeps working with
 * later ones. An option not set is smimed's default. Setters return 0, or
 * -EINVAL for a value smimed cannot take (nothing is changed then); a
 * string setter given NULL unsets the option. A call given an option its
 * method does not take fails with -EINVAL and says which, before anything
 * is sent; call options (interactive, timeout) and the generic ones apply
 * to every call. */
typedef struct smimed_options smimed_options;

smimed_options *smimed_options_new(void);
smimed_options *smimed_options_free(smimed_options *o);

/* Sign, and Encrypt with sign_as: application/pkcs7-mime signed-data
 * instead of multipart/signed (detached); the digest ("sha-256", "sha-384",
 * "sha-512"); RSA-PSS instead of PKCS#1 v1.5. */
int smimed_options_set_opaque(smimed_options *o, bool opaque);
int smimed_options_set_digest(smimed_options *o, const char *digest);
int smimed_options_set_pss(smimed_options *o, bool pss);
/* Encrypt: the cipher ("aes-256-cbc", "aes-128-cbc", "aes-256-gcm",
 * "aes-128-gcm"); RSA-OAEP; sign first as this address (polkit action
 * org.smimed1.sign); also encrypt to this address (the sent copy). */
int smimed_options_set_cipher(smimed_options *o, const char *cipher);
int smimed_options_set_oaep(smimed_options *o, bool oaep);
int smimed_options_set_sign_as(smimed_options *o, const char *address);
int smimed_options_set_sender(smimed_options *o, const char *address);
/* Decrypt: verify inner signatures (default true); use only this key (a
 * key id, hex, or an address: the keys whose certificate names it). */
int smimed_options_set_verify(smimed_options *o, bool verify);
int smimed_options_set_key(smimed_options *o, const char *key_id);
/* Every call: let polkit ask the user through an agent (overrides
 * smimed_set_allow_interactive_authorization() for this call); how long to
 * wait for the reply, in µs (0: the call's default). */
int smimed_options_set_interactive(smimed_options *o, bool allow);
int smimed_options_set_timeout(smimed_options *o, uint64_t usec);
/* An option of a smimed newer than this library, passed as it is to
 * every call (smimed refuses names it does not know with
 * SMIMED_ERROR_INVALID_ARGUMENT). name: [a-z0-9_]+, and not one of the
 * options above (-EINVAL: use its setter). */
int smimed_options_set_string(smimed_options *o, const char *name, const char *value);
int smimed_options_set_bool(smimed_options *o, const char *name, bool value);

/* The message calls with an options object (NULL: the defaults); otherwise
 * as the functions above. */
int smimed_sign_with_options(smimed *s, const char *sender, const void *input, size_t size, const smimed_options *o,
                             void **ret_output, size_t *ret_size, smimed_result *ret, smimed_error *error);
int smimed_sign_fd_with_options(smimed *s, const char *sender, int input_fd, int output_fd, const smimed_options *o,
                                smimed_result *ret, smimed_error *error);
int smimed_encrypt_with_options(smimed *s, const char *const *recipients, const void *input, size_t size,
                                const smimed_options *o, void **ret_output, size_t *ret_size, smimed_result *ret,
                                smimed_error *error);
int smimed_encrypt_fd_with_options(smimed *s, const char *const *recipients, int input_fd, int output_fd,
                                   const smimed_options *o, smimed_result *ret, smimed_error *error);
int smimed_decrypt_with_options(smimed *s, const void *input, size_t size, const smimed_options *o, void **ret_output,
                                size_t *ret_size, smimed_message_status *ret, smimed_error *error);
int smimed_decrypt_fd_with_options(smimed *s, int input_fd, int output_fd, const smimed_options *o,
                                   smimed_message_status *ret, smimed_error *error);
int smimed_verify_with_options(smimed *s, const void *input, size_t size, const smimed_options *o, void **ret_output,
                               size_t *ret_size, smimed_message_status *ret, smimed_error *error);
int smimed_verify_fd_with_options(smimed *s, int input_fd, int output_fd, const smimed_options *o,
                                  smimed_message_status *ret, smimed_error *error);

/* ---- Asynchronous calls ----
 *
 * A connection runs its asynchronous calls and change notifications from
 * an event loop: either an sd-event loop it is attached to, or any other
 * main loop that polls smimed_get_fd() for smimed_get_events() until
 * smimed_get_timeout() (CLOCK_MONOTONIC, µs; UINT64_MAX: none) and then
 * calls smimed_process() until it returns 0. These mirror sd_bus's
 * functions of the same names; blocking calls still work on the same
 * connection meanwhile. */
struct sd_event; /* sd_event of <systemd/sd-event.h> */

/* event NULL: the thread's default sd-event loop. */
int smimed_attach_event(smimed *s, struct sd_event *event, int priority);
int smimed_detach_event(smimed *s);
int smimed_get_fd(smimed *s);
int smimed_get_events(smimed *s);
int smimed_get_timeout(smimed *s, uint64_t *ret_usec);
/* Dispatches at most one event; > 0 when it did something (call again). */
int smimed_process(smimed *s);
/* Waits for something to process, at most timeout_usec (UINT64_MAX: no limit). */
int smimed_wait(smimed *s, uint64_t timeout_usec);

/* One call in progress. Its handler is called once, from smimed_process()
 * (or the event loop): r is 0, or a negative errno with error saying why
 * (then the result is NULL). The output of sign, encrypt, decrypt and
 * verify is passed in memory, NUL-terminated (not counted in size), valid
 * until the handler returns. Messages and results travel in memfds, never
 * pipes: nothing has to be read while the call is in progress. A handler
 * may start and cancel calls; it must not smimed_close() the connection
 * that is dispatching it (quit the loop, then close).
 *
 * smimed_call_cancel() drops the call: its handler is never called after
 * cancel returns (smimed still finishes the work; its reply is ignored).
 * Calls are reference counted; dropping the last reference of a call in
 * progress cancels it. With ret_call NULL the call is "floating": it runs
 * to its end on its own. smimed_close() cancels the calls in progress. */
typedef struct smimed_call smimed_call;

typedef void (*smimed_capabilities_handler)(smimed *s, int r, const smimed_error *error,
                                            const smimed_capabilities *caps, void *userdata);
typedef void (*smimed_result_handler)(smimed *s, int r, const smimed_error *error, const smimed_result *result,
                                      const void *output, size_t size, void *userdata);
typedef void (*smimed_status_handler)(smimed *s, int r, const smimed_error *error, const smimed_message_status *status,
                                      const void *output, size_t size, void *userdata);

/* Each returns 0 once the call is sent, or fails at once (with error
 * filled in, the handler never called) for arguments it can check. */
int smimed_get_capabilities_async(smimed *s, const char *sender, const char *const *recipients,
                                  const smimed_options *o, smimed_capabilities_handler handler, void *userdata,
                                  smimed_call **ret_call, smimed_error *error);
int smimed_sign_async(smimed *s, const char *sender, const void *input, size_t size, const smimed_options *o,
                      smimed_result_handler handler, void *userdata, smimed_call **ret_call, smimed_error *error);
int smimed_encrypt_async(smimed *s, const char *const *recipients, const void *input, size_t size,
                         const smimed_options *o, smimed_result_handler handler, void *userdata,
                         smimed_call **ret_call, smimed_error *error);
int smimed_decrypt_async(smimed *s, const void *input, size_t size, const smimed_options *o,
                         smimed_status_handler handler, void *userdata, smimed_call **ret_call, smimed_error *error);
int smimed_verify_async(smimed *s, const void *input, size_t size, const smimed_options *o,
                        smimed_status_handler handler, void *userdata, smimed_call **ret_call, smimed_error *error);

smimed_call *smimed_call_ref(smimed_call *c);
smimed_call *smimed_call_unref(smimed_call *c);
/* 1 when the call was in progress and is now cancelled, 0 when it had
 * already ended (or was cancelled). */
int smimed_call_cancel(smimed_call *c);
bool smimed_call_is_pending(const smimed_call *c);

/* ---- Change notifications ----
 *
 * What makes a composer look at its Sign and Encrypt buttons again, from
 * the signals smimed sends (no polling). Handlers run from
 * smimed_process() (or the event loop). id is the certificate's
 * fingerprint, the key's id, or for SMIMED_CHANGE_STATE the manager
 * property that changed ("Enabled", "TokenState", …; NULL when smimed
 * started, restarted or left the bus). Treat a kind this list does not
 * know as "something changed". */
typedef enum smimed_change {
        SMIMED_CHANGE_CERTIFICATE_ADDED = 1,
        SMIMED_CHANGE_CERTIFICATE_REMOVED,
        SMIMED_CHANGE_TRUST, /* a certificate became a trust anchor, or stopped being one */
        SMIMED_CHANGE_KEY_ADDED,
        SMIMED_CHANGE_KEY_REMOVED,
        SMIMED_CHANGE_STATE, /* smimed's state: enabled, token state, … */
        SMIMED_CHANGE_CRL,   /* a newer CRL was stored: any certificate may be revoked now (id NULL) */
} smimed_change;

typedef void (*smimed_change_handler)(smimed *s, smimed_change kind, const char *id, void *userdata);

/* A subscription; smimed_slot_unref() ends it. Returns once the bus has
 * the match rules, so no change after the return is missed. With ret_slot
 * NULL it lasts as long as the connection. */
typedef struct smimed_slot smimed_slot;

int smimed_subscribe_changes(smimed *s, smimed_change_handler handler, void *userdata, smimed_slot **ret_slot,
                             smimed_error *error);
smimed_slot *smimed_slot_unref(smimed_slot *slot);

#ifdef __cplusplus
}
#endif

#endif
