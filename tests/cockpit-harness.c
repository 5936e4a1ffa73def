/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The real components for tests/test-cockpit.py, which drives a browser and
 * cannot use the C harness itself: a SoftHSM2 token, a private dbus-daemon
 * with a real polkitd, and the built smimed, as every integration test has
 * them. Writes a test PKI to the directory given as argument, prints
 * "bus ADDRESS" and "ready" on stdout, then waits until stdin reaches its
 * end (the test is done, or died) and tears everything down; exits 0 only
 * if smimed then exits 0 on SIGTERM.
 *
 * The files, all made with tests/pki.c:
 *   ca.pem            a root CA, to import as a trust anchor
 *   leaves.pem        valid@, expired@, revoked@, untrusted@ (issued by a
 *                     second root, which is not in the store) and signer@
 *                     (issued for the token's key: it can sign)
 *   signer.pem        signer@ alone, to compare a renewal's request with
 *   crl.pem           the root's CRL revoking revoked@
 *   enroll.p12        enroll@example.com, key and certificate, passphrase
 *                     in enroll.pass
 *   bulk.pem          30 more valid leaves, bulk-00@ … bulk-29@ (EC keys: quick
 *                     to make), for paging
 *   fingerprints      "NAME FINGERPRINT" lines for the certificates above
 *
 * Commands on stdin, one a line, each answered with "done" (or "failed"):
 *   lock      restarts smimed on a PIN file with a wrong PIN: TokenState
 *             "locked" (the store stays)
 *   fix-pin   writes the right PIN into that file; smimed tries it on
 *             Reload, as an admin would have it do */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/pkcs12.h>

#include "harness.h"
#include "pki.h"

#define ENROLL_PASSPHRASE "correct horse battery staple"
#define SOFTHSM_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define CHANGING_PIN_FILE "changing-pin"

static PkiCert *leaf(const char *address, int not_before, int not_after, EVP_PKEY *key, uint64_t serial,
                     const PkiCert *issuer) {
        const char *sans[] = { address, NULL };
        PkiCertOptions o;

        pki_cert_options_init(&o);
        o.common_name = address;
        o.san_emails = sans;
        o.not_before_days = not_before;
        o.not_after_days = not_after;
        o.key = key;
        o.serial = serial;
        return pki_cert_new(&o, issuer);
}

static int write_text(const char *dir, const char *name, const char *text) {
        _cleanup_free_ char *path = NULL;

        if (!text || asprintf(&path, "%s/%s", dir, name) < 0)
                return -ENOMEM;
        return pki_write_file(path, text, strlen(text));
}

static int write_p12(const char *dir, const char *name, const PkiCert *c) {
        _cleanup_free_ char *path = NULL;
        _cleanup_free_ unsigned char *der = NULL;
        unsigned char *p;
        PKCS12 *p12;
        int len, r;

        p12 = PKCS12_create(ENROLL_PASSPHRASE, "enroll", c->key, c->x509, NULL, 0, 0, 0, 0, 0);
        if (!p12)
                return -EIO;
        len = i2d_PKCS12(p12, NULL);
        der = len > 0 ? malloc(len) : NULL;
        p = der;
        if (!der || i2d_PKCS12(p12, &p) != len) {
                PKCS12_free(p12);
                return -EIO;
        }
        PKCS12_free(p12);
        if (asprintf(&path, "%s/%s", dir, name) < 0)
                return -ENOMEM;
        r = pki_write_file(path, der, len);
        if (r < 0)
                return r;
        return write_text(dir, "enroll.pass", ENROLL_PASSPHRASE);
}

#define N_BULK 30

static int write_bulk(const char *dir, const PkiCert *ca) {
        PkiCert *certs[N_BULK] = {};
        _cleanup_free_ char *pem = NULL;
        int r = -EIO;

        for (size_t i = 0; i < N_BULK; i++) {
                _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = pki_key_ec();
                char address[64];

                snprintf(address, sizeof(address), "bulk-%02zu@example.com", i);
                certs[i] = key ? leaf(address, -1, 365, key, 0, ca) : NULL;
                if (!certs[i])
                        goto finish;
        }
        pem = pki_certs_pem((const PkiCert *const *) certs, N_BULK);
        r = pem ? write_text(dir, "bulk.pem", pem) : -EIO;
finish:
        for (size_t i = 0; i < N_BULK; i++)
                pki_cert_free(certs[i]);
        return r;
}

static int write_pki(Harness *h, const char *dir) {
        _cleanup_(pki_cert_freep) PkiCert *ca = pki_root_ca("smimed Test CA"),
                                          *other = pki_root_ca("Other CA");
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *token_key = pki_public_key_from_pem_file(h->key_pem);
        _cleanup_(pki_cert_freep) PkiCert *valid = NULL, *expired = NULL, *revoked = NULL, *untrusted = NULL,
                                          *signer = NULL, *enroll = NULL;
        _cleanup_(X509_CRL_freep) X509_CRL *crl = NULL;
        _cleanup_free_ char *ca_pem = NULL, *leaves_pem = NULL, *signer_pem = NULL, *crl_pem = NULL, *list = NULL;
        const uint64_t revoked_serial = 4242;
        char fp[6][65];
        int r;

        if (!ca || !other || !token_key)
                return -EIO;
        valid = leaf("valid@example.com", -1, 365, NULL, 0, ca);
        expired = leaf("expired@example.com", -400, -30, NULL, 0, ca);
        revoked = leaf("revoked@example.com", -1, 365, NULL, revoked_serial, ca);
        untrusted = leaf("untrusted@example.com", -1, 365, NULL, 0, other);
        /* expires in 20 days: the overview lists it as expiring soon */
        signer = leaf("signer@example.com", -1, 20, token_key, 0, ca);
        enroll = leaf("enroll@example.com", -1, 365, NULL, 0, ca);
        if (!valid || !expired || !revoked || !untrusted || !signer || !enroll)
                return -EIO;

        const PkiCert *leaves[] = { valid, expired, revoked, untrusted, signer };
        PkiCrlOptions co;
        pki_crl_options_init(&co);
        crl = pki_crl_new(ca, &revoked_serial, 1, &co);
        ca_pem = pki_cert_pem(ca);
        leaves_pem = pki_certs_pem(leaves, ELEMENTSOF(leaves));
        signer_pem = pki_cert_pem(signer);
        crl_pem = crl ? pki_crl_pem(crl) : NULL;
        if (!ca_pem || !leaves_pem || !signer_pem || !crl_pem)
                return -EIO;

        const PkiCert *named[] = { ca, valid, expired, revoked, untrusted, signer };
        for (size_t i = 0; i < ELEMENTSOF(named); i++)
                if (pki_cert_fingerprint(named[i], fp[i]) < 0)
                        return -EIO;
        if (asprintf(&list, "ca %s\nvalid %s\nexpired %s\nrevoked %s\nuntrusted %s\nsigner %s\n", fp[0], fp[1],
                     fp[2], fp[3], fp[4], fp[5]) < 0)
                return -ENOMEM;

        if ((r = write_text(dir, "ca.pem", ca_pem)) < 0 || (r = write_text(dir, "leaves.pem", leaves_pem)) < 0 ||
            (r = write_text(dir, "signer.pem", signer_pem)) < 0 ||
            (r = write_text(dir, "crl.pem", crl_pem)) < 0 || (r = write_text(dir, "fingerprints", list)) < 0 ||
            (r = write_p12(dir, "enroll.p12", enroll)) < 0 || (r = write_bulk(dir, ca)) < 0)
                return r;
        return 0;
}

/* smimed again, on the harness token with the PIN from a file that has
 * the wrong one for now. */
static int restart_locked(Harness *h) {
        _cleanup_free_ char *pin_file = NULL, *store = NULL, *text = NULL, *config = NULL;
        int r;

        pin_file = harness_write_smimed_file(h, CHANGING_PIN_FILE, "wrong-pin\n", 0600);
        store = harness_store_section(h);
        if (!pin_file || !store)
                return -ENOMEM;
        if (asprintf(&text,
                     "[Token]\nModule=" SOFTHSM_MODULE "\nURI=pkcs11:token=" HARNESS_TOKEN_LABEL "\nPINFile=%s\n"
                     "%s[Policy]\nEnabled=yes\n",
                     pin_file, store) < 0)
                return -ENOMEM;
        config = harness_write_file(h, "locked.conf", text, 0644);
        if (!config)
                return -ENOMEM;
        r = harness_stop_smimed(h);
        if (r != 0) {
                fprintf(stderr, "cockpit-harness: smimed exited with status %d, see %s\n", r, h->smimed_log);
                return -EIO;
        }
        return harness_start_smimed(h, config, NULL);
}

static int fix_pin(Harness *h) {
        _cleanup_free_ char *right = NULL, *path = NULL;

        if (asprintf(&right, "%s\n", h->pin) < 0)
                return -ENOMEM;
        path = harness_write_smimed_file(h, CHANGING_PIN_FILE, right, 0600);
        return path ? 0 : -EIO;
}

int main(int argc, char *argv[]) {
        _cleanup_(harness_freep) Harness *h = NULL;
        _cleanup_free_ char *text = NULL, *config = NULL;
        char line[256];
        int r;

        if (argc != 2) {
                fprintf(stderr, "usage: %s PKI-DIRECTORY\n", argv[0]);
                return 2;
        }

        r = harness_new(&h);
        if (r < 0)
                return 1;
        r = write_pki(h, argv[1]);
        if (r < 0) {
                fprintf(stderr, "cockpit-harness: cannot write the test PKI: %s\n", strerror(-r));
                return 1;
        }
        r = harness_start_bus(h);
        if (r < 0)
                return 1;
        text = harness_config_text(h, NULL);
        config = text ? harness_write_file(h, "smimed.conf", text, 0644) : NULL;
        if (!config)
                return 1;
        r = harness_start_smimed(h, config, NULL);
        if (r < 0) {
                fprintf(stderr, "cockpit-harness: smimed did not start: %s, see %s\n", strerror(-r), h->smimed_log);
                return 1;
        }

        printf("bus %s\nlog %s\nready\n", h->bus_address, h->smimed_log);
        fflush(stdout);

        while (fgets(line, sizeof(line), stdin)) {
                if (streq(line, "lock\n"))
                        r = restart_locked(h);
                else if (streq(line, "fix-pin\n"))
                        r = fix_pin(h);
                else
                        r = -EINVAL;
                if (r < 0)
                        fprintf(stderr, "cockpit-harness: %s: %s\n", strtok(line, "\n"), strerror(-r));
                printf("%s\n", r < 0 ? "failed" : "done");
                fflush(stdout);
        }

        /* Under valgrind (SMIMED_TEST_WRAPPER) a memory error or leak is smimed's exit status. */
        r = harness_stop_smimed(h);
        if (r != 0) {
                fprintf(stderr, "cockpit-harness: smimed exited with status %d, see %s\n", r, h->smimed_log);
                return 1;
        }
        return 0;
}
