/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Certificate and CRL import: what ImportCertificates and ImportCRL parse,
 * every field smimed reads from a certificate (its CRL distribution points
 * and OCSP responders too), and a CRL as a distribution point serves it (DER). */
#include <stdlib.h>

#include "certificate-parse.h"
#include "certificate.h"
#include "crl-fetch.h"
#include "ocsp-check.h"
#include "fuzz-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        STACK_OF(X509) *certs = NULL;
        STACK_OF(X509_CRL) *crls = NULL;
        char *message = NULL;

        if (certificates_parse(data, size, &certs, &message) >= 0) {
                for (int i = 0; i < sk_X509_num(certs); i++) {
                        CertInfo *info = NULL;

                        char **uris = NULL;

                        if (cert_info_new(sk_X509_value(certs, i), &info) >= 0)
                                free(cert_info_summary(info));
                        cert_info_free(info);
                        if (crl_distribution_points(sk_X509_value(certs, i), &uris) >= 0)
                                for (char **u = uris; u && *u; u++)
                                        free(*u);
                        free(uris);
                        uris = NULL;
                        if (ocsp_responder_uris(sk_X509_value(certs, i), &uris) >= 0)
                                for (char **u = uris; u && *u; u++)
                                        free(*u);
                        free(uris);
                }
                sk_X509_pop_free(certs, X509_free);
        }
        free(message);
        message = NULL;

        if (crls_parse(data, size, &crls, &message) >= 0)
                sk_X509_CRL_pop_free(crls, X509_CRL_free);
        free(message);

        {
                const unsigned char *p = data;
                X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long) size);

                X509_CRL_free(crl);
        }
        return 0;
}
