/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* An incoming message as Decrypt and Verify open it, without a token or a
 * store: classify each layer, read the S/MIME structure, check a signature
 * (content written out whatever it says), ask whether a certificate is a
 * recipient, and go on with the content, a few layers deep. */
#include <stdlib.h>
#include <sys/mman.h>

#include <openssl/x509.h>

#include "fuzz-util.h"
#include "mime.h"
#include "smime-open.h"

#define LAYERS 4

static X509 *some_certificate(void) {
        static X509 *x = NULL;

        if (!x) {
                EVP_PKEY *key = EVP_EC_gen("P-256");

                x = X509_new();
                X509_set_version(x, X509_VERSION_3);
                ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
                X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                           (const unsigned char *) "fuzz", -1, -1, 0);
                X509_set_issuer_name(x, X509_get_subject_name(x));
                X509_gmtime_adj(X509_getm_notBefore(x), 0);
                X509_gmtime_adj(X509_getm_notAfter(x), 3600);
                X509_set_pubkey(x, key);
                X509_sign(x, key, EVP_sha256());
                EVP_PKEY_free(key);
        }
        return x;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        int current = fuzz_memfd(data, size);

        for (int depth = 0; current >= 0 && depth < LAYERS; depth++) {
                LineReader *reader = malloc(sizeof(LineReader));
                MimeHeaders headers = {};
                CMS_ContentInfo *cms = NULL;
                BIO *content = NULL;
                SignatureCheck check = {};
                SmimeLayer layer = SMIME_LAYER_NONE;
                char *message = NULL;
                int next = -1, r;

                line_reader_init(reader, current);
                r = mime_headers_read(reader, &headers, &message);
                if (r >= 0)
                        r = smime_classify(&headers, &layer, &message);
                if (r >= 0 && layer != SMIME_LAYER_NONE)
                        r = smime_read(current, &cms, &content, &message);
                if (r >= 0 && layer == SMIME_LAYER_CMS)
                        r = smime_cms_layer(cms, &layer, &message);
                if (r >= 0 && layer == SMIME_LAYER_ENVELOPED)
                        (void) smime_is_recipient(cms, some_certificate());
                if (r >= 0 && layer == SMIME_LAYER_SIGNED) {
                        next = memfd_create("fuzz-layer", MFD_CLOEXEC);
                        if (next >= 0 && smime_verify(cms, content, NULL, NULL, next, &check, &message) < 0) {
                                close(next);
                                next = -1;
                        }
                }

                signature_check_done(&check);
                CMS_ContentInfo_free(cms);
                BIO_free(content);
                mime_headers_done(&headers);
                free(message);
                free(reader);
                close(current);
                current = next;
        }
        if (current >= 0)
                close(current);
        return 0;
}
