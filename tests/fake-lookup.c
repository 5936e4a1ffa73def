/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <sys/types.h>

#include "certificate.h"
#include "fake-lookup.h"
#include "strv.h"

FakeLookup *fake_lookup_new(void) {
        return calloc(1, sizeof(FakeLookup));
}

FakeLookup *fake_lookup_free(FakeLookup *f) {
        if (!f)
                return NULL;
        for (size_t i = 0; i < f->n_certificates; i++)
                X509_free(f->certificates[i]);
        for (size_t i = 0; i < f->n_crls; i++)
                X509_CRL_free(f->crls[i]);
        free(f->certificates);
        free(f->trusted);
        free(f->crls);
        return mfree(f);
}

static ssize_t find(FakeLookup *f, X509 *x509) {
        for (size_t i = 0; i < f->n_certificates; i++)
                if (X509_cmp(f->certificates[i], x509) == 0)
                        return (ssize_t) i;
        return -1;
}

int fake_lookup_add(FakeLookup *f, X509 *x509, bool trusted) {
        ssize_t i = find(f, x509);
        X509 **c;
        bool *t;

        f->generation++;
        if (i >= 0) {
                f->trusted[i] = trusted;
                return 0;
        }
        c = realloc(f->certificates, (f->n_certificates + 1) * sizeof(X509 *));
        if (!c)
                return -ENOMEM;
        f->certificates = c;
        t = realloc(f->trusted, (f->n_certificates + 1) * sizeof(bool));
        if (!t)
                return -ENOMEM;
        f->trusted = t;
        if (!X509_up_ref(x509))
                return -ENOMEM;
        f->certificates[f->n_certificates] = x509;
        f->trusted[f->n_certificates] = trusted;
        f->n_certificates++;
        return 0;
}

int fake_lookup_remove(FakeLookup *f, X509 *x509) {
        ssize_t i = find(f, x509);

        if (i < 0)
                return -ENOENT;
        f->generation++;
        X509_free(f->certificates[i]);
        f->n_certificates--;
        f->certificates[i] = f->certificates[f->n_certificates];
        f->trusted[i] = f->trusted[f->n_certificates];
        return 0;
}

int fake_lookup_add_crl(FakeLookup *f, X509_CRL *crl) {
        X509_CRL **c;

        if (!X509_CRL_up_ref(crl))
                return -ENOMEM;
        f->generation++;
        for (size_t i = 0; i < f->n_crls; i++)
                if (X509_NAME_cmp(X509_CRL_get_issuer(f->crls[i]), X509_CRL_get_issuer(crl)) == 0) {
                        X509_CRL_free(f->crls[i]);
                        f->crls[i] = crl;
                        return 0;
                }
        c = realloc(f->crls, (f->n_crls + 1) * sizeof(X509_CRL *));
        if (!c) {
                X509_CRL_free(crl);
                return -ENOMEM;
        }
        f->crls = c;
        f->crls[f->n_crls++] = crl;
        return 0;
}

static int foreach_issuer(void *userdata, X509 *x509, ValidationCandidateCallback cb, void *cb_userdata) {
        FakeLookup *f = userdata;
        int r;

        f->n_calls++;
        if (f->fail < 0)
                return f->fail;
        for (size_t i = 0; i < f->n_certificates; i++) {
                if (X509_NAME_cmp(X509_get_subject_name(f->certificates[i]), X509_get_issuer_name(x509)) != 0)
                        continue;
                r = cb(f->certificates[i], f->trusted[i], cb_userdata);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int get_crl(void *userdata, X509 *issuer, X509_CRL **ret) {
        FakeLookup *f = userdata;

        f->n_calls++;
        if (f->fail < 0)
                return f->fail;
        for (size_t i = 0; i < f->n_crls; i++)
                if (X509_NAME_cmp(X509_CRL_get_issuer(f->crls[i]), X509_get_subject_name(issuer)) == 0) {
                        if (!X509_CRL_up_ref(f->crls[i]))
                                return -ENOMEM;
                        *ret = f->crls[i];
                        return 0;
                }
        return -ENOENT;
}

static int is_trust_anchor(void *userdata, X509 *x509, bool *ret) {
        FakeLookup *f = userdata;
        ssize_t i;

        f->n_calls++;
        if (f->fail < 0)
                return f->fail;
        i = find(f, x509);
        *ret = i >= 0 && f->trusted[i];
        return 0;
}

static uint64_t generation(void *userdata) {
        return ((FakeLookup *) userdata)->generation;
}

ValidationLookup fake_lookup_validation(FakeLookup *f) {
        return (ValidationLookup) {
                .foreach_issuer = foreach_issuer,
                .get_crl = get_crl,
                .is_trust_anchor = is_trust_anchor,
                .generation = generation,
                .userdata = f,
        };
}

typedef struct Match {
        time_t not_before;
        char fingerprint[SHA256_HEX_SIZE];
} Match;

static int match_compare(const void *a, const void *b) {
        const Match *x = a, *y = b;

        if (x->not_before != y->not_before)
                return x->not_before > y->not_before ? -1 : 1;
        return strcmp(x->fingerprint, y->fingerprint);
}

static int find_by_address(void *userdata, const char *address, char ***ret) {
        _cleanup_free_ Match *matches = NULL;
        _cleanup_(strv_freep) char **l = NULL;
        FakeLookup *f = userdata;
        size_t n = 0;
        int r;

        f->n_calls++;
        if (f->fail < 0)
                return f->fail;
        matches = calloc(f->n_certificates + 1, sizeof(Match));
        if (!matches)
                return -ENOMEM;
        for (size_t i = 0; i < f->n_certificates; i++) {
                _cleanup_(strv_freep) char **addresses = NULL;

                if (address && address[0]) {
                        r = certificate_addresses(f->certificates[i], &addresses);
                        if (r < 0)
                                return r;
                        if (!strv_contains(addresses, address))
                                continue;
                }
                r = x509_fingerprint(f->certificates[i], matches[n].fingerprint);
                if (r < 0)
                        return r;
                r = asn1_time_to_time_t(X509_get0_notBefore(f->certificates[i]), &matches[n].not_before);
                if (r < 0)
                        return r;
                n++;
        }
        qsort(matches, n, sizeof(Match), match_compare);

        l = calloc(1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                r = strv_extend(&l, matches[i].fingerprint);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

static int get_certificate(void *userdata, const char *fingerprint, X509 **ret) {
        FakeLookup *f = userdata;
        char fp[SHA256_HEX_SIZE];
        int r;

        f->n_calls++;
        if (f->fail < 0)
                return f->fail;
        for (size_t i = 0; i < f->n_certificates; i++) {
                r = x509_fingerprint(f->certificates[i], fp);
                if (r < 0)
                        return r;
                if (streq(fp, fingerprint)) {
                        if (!X509_up_ref(f->certificates[i]))
                                return -ENOMEM;
                        *ret = f->certificates[i];
                        return 0;
                }
        }
        return -ENOENT;
}

CapabilityLookup fake_lookup_capability(FakeLookup *f) {
        return (CapabilityLookup){
                .find_by_address = find_by_address,
                .get_certificate = get_certificate,
                .generation = generation,
                .userdata = f,
        };
}
