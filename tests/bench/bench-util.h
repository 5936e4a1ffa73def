/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>
#include <systemd/sd-bus.h>

#include "harness.h"
#include "pki.h"

/* What the benchmarks share: a started harness with a signer whose key is
 * the harness token's RSA key, bus calls that print the D-Bus error when they
 * fail, a rate runner for 1..N threads, and raw PKCS#11 on the same token.
 * Every function that fails has printed why; callers only exit non-zero. */

#define BENCH_SOFTHSM_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define BENCH_ADDRESS "bench@example.com"
#define BENCH_EC_ADDRESS "bench-ec@example.com"
#define BENCH_MESSAGE_SIZE 4096
#define BENCH_MAX_THREADS 1024

uint64_t bench_now_usec(void);

/* Seconds each figure is measured for: argv[1] when given, else 3. */
double bench_seconds_from_args(int argc, char **argv);

typedef struct Bench {
        Harness *harness;
        sd_bus *bus;
        PkiCert *root;          /* a trust anchor in the store */
        PkiCert *leaf;          /* BENCH_ADDRESS, for the harness token's RSA key */
} Bench;

/* The harness, smimed on the default config, the root and the RSA leaf
 * imported so that Sign, Encrypt and Decrypt work for BENCH_ADDRESS. */
int bench_new(Bench **ret);
/* The same, with extra_config appended to the harness's config (later keys win). */
int bench_new_full(Bench **ret, const char *extra_config);
Bench *bench_free(Bench *b);
DEFINE_TRIVIAL_CLEANUP_FUNC(Bench *, bench_free);

int bench_import_pem(sd_bus *bus, const char *pem, bool trust);
/* A leaf for address and pub issued by b->root, imported. */
int bench_issue_leaf(Bench *b, const char *address, EVP_PKEY *pub, PkiCert **ret);
/* GenerateKey(address, type) in the token: the key's CKA_ID (bytes) and the
 * public key of the CSR it returns. */
int bench_generate_key(sd_bus *bus, const char *address, const char *type, unsigned char *ret_id, size_t *ret_id_len,
                       EVP_PKEY **ret_pub);

/* A memfd holding a plain-text message of size bytes from/to address. */
int bench_message_memfd(const char *address, size_t size);
/* A new memfd with the whole content of fd (its offset is left at 0). */
int bench_memfd_copy(int fd);
/* The same, sealed against any change, as libsmimed passes a message (smimed
 * then reads it where it is, rather than a copy). */
int bench_memfd_copy_sealed(int fd);

/* One call each, input read from offset 0, result checked: Sign's result
 * names a signer, Decrypt's says "encrypted". */
int bench_sign(sd_bus *bus, const char *sender, int input, int output);
/* SignData: the message as bytes in the call, the result in the reply. */
int bench_sign_data(sd_bus *bus, const char *sender, const void *data, size_t size);
int bench_encrypt(sd_bus *bus, const char *recipient, int input, int output);
int bench_decrypt(sd_bus *bus, int input, int output);
/* org.freedesktop.DBus.Peer.Ping of smimed: one round trip through
 * dbus-daemon that smimed answers without doing anything. */
int bench_ping(sd_bus *bus);

/* Runs op in threads threads for seconds after warmup seconds; each thread
 * gets its own state from setup (called in that thread: sd_bus connections
 * and PKCS#11 sessions stay in it). Returns the summed rate in ops/s, or a
 * negative errno when a setup or an op failed. */
typedef struct BenchOps {
        int (*setup)(void *arg, unsigned index, void **ret_state);
        int (*op)(void *state);
        void (*teardown)(void *state);
} BenchOps;

double bench_rate(const BenchOps *ops, void *arg, unsigned threads, double warmup, double seconds);
/* The same; window (when not NULL) is called in the calling thread as the
 * measured seconds start (end false) and as they end (end true), e.g. to
 * read what CPU time other processes spent in them. */
double bench_rate_window(const BenchOps *ops, void *arg, unsigned threads, double warmup, double seconds,
                         void (*window)(void *userdata, bool end), void *userdata);

/* Sign and Decrypt clients over the bus: each thread its own connection,
 * its own copy of the input in a memfd, output to /dev/null. */
typedef struct BenchBusClient {
        const char *method;     /* "Sign", "SignData", "Decrypt" or "Ping" */
        const char *sender;     /* Sign and SignData only */
        int input;              /* copied per thread */
} BenchBusClient;

extern const BenchOps bench_bus_client_ops;
/* Measures Peer.Ping round trips to smimed (1 client) and prints the ratio
 * to raw_rate that a message costing the token's time plus one such round
 * trip would reach: the best any service behind dbus-daemon can do. Returns
 * the Ping rate, or a negative errno. */
double bench_print_bus_ceiling(const char *what, double raw_rate, double warmup, double seconds);

/* Raw PKCS#11: the SoftHSM2 module dlopen()ed in this process, initialized
 * with CKF_OS_LOCKING_OK, logged in as user. */
typedef struct BenchToken {
        void *dl;
        CK_FUNCTION_LIST *f;
        CK_SLOT_ID slot;
        CK_SESSION_HANDLE login_session;
} BenchToken;

int bench_token_open(const char *module, const char *label, const char *pin, BenchToken **ret);
BenchToken *bench_token_close(BenchToken *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(BenchToken *, bench_token_close);
/* A new session and the private key with CKA_ID id in it. */
int bench_token_session_key(BenchToken *t, const unsigned char *id, size_t id_len, CK_SESSION_HANDLE *ret_session,
                            CK_OBJECT_HANDLE *ret_key);

/* C_SignInit+C_Sign (or C_DecryptInit+C_Decrypt) of data with mechanism
 * on key, each thread with its own session. */
typedef struct BenchRawOp {
        BenchToken *token;
        const unsigned char *id;
        size_t id_len;
        CK_MECHANISM_TYPE mechanism;
        bool decrypt;
        const unsigned char *data;
        size_t data_len;
        const unsigned char *expect;    /* decrypt: the plaintext to get back */
        size_t expect_len;
} BenchRawOp;

extern const BenchOps bench_raw_ops;

/* One raw signature with the token key, checked with OpenSSL against pub:
 * that the key found by CKA_ID is the key the figures are about. */
int bench_raw_check_signature(const BenchRawOp *raw, EVP_PKEY *pub);

/* "CKR_PIN_INCORRECT" and the like. */
const char *bench_ck_rv_name(CK_RV rv);
