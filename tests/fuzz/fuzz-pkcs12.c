/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* PKCS#12 files as ImportPKCS12 reads them. The first byte picks one of a
 * few passphrases (the corpus files use "fuzz"). */
#include <stdlib.h>

#include "certificate-parse.h"
#include "fuzz-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const char *const passphrases[] = { "fuzz", "", "secret", "p12 secret" };
        EVP_PKEY *key = NULL;
        X509 *cert = NULL;
        STACK_OF(X509) *chain = NULL;
        char *message = NULL;

        if (size < 1)
                return 0;
        (void) pkcs12_parse(data + 1, size - 1, passphrases[data[0] % 4], &key, &cert, &chain, &message);
        EVP_PKEY_free(key);
        X509_free(cert);
        sk_X509_pop_free(chain, X509_free);
        free(message);
        return 0;
}
