/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>

#include "store-lookup.h"

static int name_der(const X509_NAME *name, unsigned char **ret, size_t *ret_size) {
        unsigned char *der = NULL;
        int len = i2d_X509_NAME(name, &der);

        if (len <= 0)
                return -EINVAL;
        *ret = der;
        *ret_size = (size_t) len;
        return 0;
}

static int lookup_foreach_issuer(void *userdata, X509 *x509, ValidationCandidateCallback cb, void *cb_userdata) {
        unsigned char *name;
        size_t size;
        int r;

        r = name_der(X509_get_issuer_name(x509), &name, &size);
        if (r < 0)
                return r;
        r = store_foreach_by_subject(userdata, name, size, cb, cb_userdata);
        OPENSSL_free(name);
        return r;
}

static int lookup_get_crl(void *userdata, X509 *issuer, X509_CRL **ret) {
        unsigned char *name;
        size_t size;
        int r;

        r = name_der(X509_get_subject_name(issuer), &name, &size);
        if (r < 0)
                return r;
        r = store_get_crl(userdata, name, size, ret);
        OPENSSL_free(name);
        return r;
}

static int lookup_is_trust_anchor(void *userdata, X509 *x509, bool *ret) {
        char fingerprint[SHA256_HEX_SIZE];
        bool trusted = false;
        int r;

        r = x509_fingerprint(x509, fingerprint);
        if (r < 0)
                return r;
        r = store_get_certificate(userdata, fingerprint, NULL, &trusted);
        if (r < 0 && r != -ENOENT)
                return r;
        *ret = r >= 0 && trusted;
        return 0;
}

static int lookup_get_ocsp(void *userdata, X509 *x509, OcspAnswer *ret) {
        char fingerprint[SHA256_HEX_SIZE];
        int r;

        r = x509_fingerprint(x509, fingerprint);
        if (r < 0)
                return r;
        return store_get_ocsp(userdata, fingerprint, ret);
}

static uint64_t lookup_generation(void *userdata) {
        return store_generation(userdata);
}

ValidationLookup store_validation_lookup(Store *store) {
        return (ValidationLookup){
                .foreach_issuer = lookup_foreach_issuer,
                .get_crl = lookup_get_crl,
                .get_ocsp = lookup_get_ocsp,
                .is_trust_anchor = lookup_is_trust_anchor,
                .generation = lookup_generation,
                .userdata = store,
        };
}

static int lookup_find_by_address(void *userdata, const char *address, char ***ret) {
        return store_find_by_address(userdata, address, ret);
}

static int lookup_get_certificate(void *userdata, const char *fingerprint, X509 **ret) {
        return store_get_certificate(userdata, fingerprint, ret, NULL);
}

CapabilityLookup store_capability_lookup(Store *store) {
        return (CapabilityLookup){
                .find_by_address = lookup_find_by_address,
                .get_certificate = lookup_get_certificate,
                .generation = lookup_generation,
                .userdata = store,
        };
}
