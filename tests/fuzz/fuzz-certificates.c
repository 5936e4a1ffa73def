/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Certificate and CRL import: what ImportCertificates and ImportCRL parse,
 * and every field smimed reads from a certificate. */
#include <stdlib.h>

#include "certificate-parse.h"
#include "certificate.h"
#include "fuzz-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        STACK_OF(X509) *certs = NULL;
        STACK_OF(X509_CRL) *crls = NULL;
        char *message = NULL;

        if (certificates_parse(data, size, &certs, &message) >= 0) {
                for (int i = 0; i < sk_X509_num(certs); i++) {
                        CertInfo *info = NULL;

                        if (cert_info_new(sk_X509_value(certs, i), &info) >= 0)
                                free(cert_info_summary(info));
                        cert_info_free(info);
                }
                sk_X509_pop_free(certs, X509_free);
        }
        free(message);
        message = NULL;

        if (crls_parse(data, size, &crls, &message) >= 0)
                sk_X509_CRL_pop_free(crls, X509_CRL_free);
        free(message);
        return 0;
}
