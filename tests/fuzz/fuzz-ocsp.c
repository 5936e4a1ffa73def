/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What smimed makes of an OCSP responder's answer (ocsp-check.c): the DER
 * parsed, its status, the signature checked against the issuer or a
 * delegated responder, the nonce compared with a request's, the times and
 * the certificate's status read. The input is the HTTP body a responder
 * sent; the subject and issuer are fixed (a P-256 CA and a leaf, serial
 * 0x1234, with an OCSP URI), and the seeds are `openssl ocsp` answers for
 * them, good and revoked. */
#include <stdlib.h>

#include <openssl/pem.h>

#include "fuzz-util.h"
#include "ocsp-check.h"

static const char issuer_pem[] = "-----BEGIN CERTIFICATE-----\n"
                                 "MIIBiTCCAS6gAwIBAgIUVTt0vUybWJYhgaU8fsy2dNYXBzYwCgYIKoZIzj0EAwIw\n"
                                 "EjEQMA4GA1UEAwwHRnV6eiBDQTAgFw0yNjEyMDYyMTAzMzNaGA8yMTI2MTExMjIx\n"
                                 "MDMzM1owEjEQMA4GA1UEAwwHRnV6eiBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEH\n"
                                 "A0IABAOn/XnUEX32DGVBDDhz53VfLDJCHIphfPD7RDYGDTZMikI/bKjoiC7yuqqZ\n"
                                 "Fcc74WUeo2qDMIMZ8iXE1sT5L9yjYDBeMB0GA1UdDgQWBBSt4uwN5jNlvPUZzgo5\n"
                                 "1CQYoZQeojAfBgNVHSMEGDAWgBSt4uwN5jNlvPUZzgo51CQYoZQeojAPBgNVHRMB\n"
                                 "Af8EBTADAQH/MAsGA1UdDwQEAwIBBjAKBggqhkjOPQQDAgNJADBGAiEAiVVwcnJD\n"
                                 "ooD7o3Y47hkNRXJNwh68rqOneM6hUjxM6TsCIQCRWOhAuGSMZJopgibFfs9S/fhy\n"
                                 "5csH/T5kyWmy1s1onA==\n"
                                 "-----END CERTIFICATE-----\n";

static const char subject_pem[] = "-----BEGIN CERTIFICATE-----\n"
                                  "MIIB2TCCAYCgAwIBAgICEjQwCgYIKoZIzj0EAwIwEjEQMA4GA1UEAwwHRnV6eiBD\n"
                                  "QTAgFw0yNjEyMDYyMTAzMzNaGA8yMTI2MTExMjIxMDMzM1owDzENMAsGA1UEAwwE\n"
                                  "ZnV6ejBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABPpLW8VmHDp3ZaASvkZT5ajB\n"
                                  "CT4Rrwl+GDFu1Xio5WMs5zAmU36VdvO/Ps0UEkFgDAf/3epG8X4iZbrqNMKrvMaj\n"
                                  "gcYwgcMwDAYDVR0TAQH/BAIwADALBgNVHQ8EBAMCBaAwEwYDVR0lBAwwCgYIKwYB\n"
                                  "BQUHAwQwNAYIKwYBBQUHAQEEKDAmMCQGCCsGAQUFBzABhhhodHRwOi8vb2NzcC5l\n"
                                  "eGFtcGxlLmNvbS8wGwYDVR0RBBQwEoEQZnV6ekBleGFtcGxlLmNvbTAdBgNVHQ4E\n"
                                  "FgQUV8dJRYS1xxlnc5LAbqF1Z6ELib4wHwYDVR0jBBgwFoAUreLsDeYzZbz1Gc4K\n"
                                  "OdQkGKGUHqIwCgYIKoZIzj0EAwIDRwAwRAIgdiPO5EIMwBj2PV47+ZCJQdHzCGLl\n"
                                  "TnWIb0FXpD/r3DUCIBCKw6DeDczL6rvu7F7YcRjXMmTW1DkYkpaZbH53DTU3\n"
                                  "-----END CERTIFICATE-----\n";

static X509 *pem_to_x509(const char *pem) {
        BIO *bio = BIO_new_mem_buf(pem, -1);
        X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;

        BIO_free(bio);
        if (!x)
                abort();
        return x;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static X509 *issuer, *subject;
        static OCSP_REQUEST *request;
        OcspAnswer answer = {};
        char *message = NULL;

        if (!issuer) {
                issuer = pem_to_x509(issuer_pem);
                subject = pem_to_x509(subject_pem);
                if (ocsp_request_new(subject, issuer, &request) < 0)
                        abort();
        }

        /* As the daemon checks it (with the nonce of its request), and as a
         * response made in advance would be (none to compare). */
        if (ocsp_response_check(data, size, request, subject, issuer, time(NULL), &answer, &message) >= 0)
                ocsp_answer_done(&answer);
        free(message);
        message = NULL;
        if (ocsp_response_check(data, size, NULL, subject, issuer, time(NULL), &answer, &message) >= 0)
                ocsp_answer_done(&answer);
        free(message);
        return 0;
}
