/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The parsed-certificate cache the worker protocol reads certificates
 * through: a hit is the same certificate, only exact DER hits, what is not
 * one certificate is refused as d2i_X509 would, and the oldest entry goes
 * when it is full. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "macro.h"
#include "pki.h"
#include "x509-cache.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(X509 *, X509_free);

typedef struct Der {
        uint8_t *bytes;
        size_t size;
} Der;

static Der der_of(const PkiCert *c) {
        unsigned char *p = NULL;
        int n = i2d_X509(c->x509, &p);

        assert_true(n > 0);
        return (Der) {.bytes = p, .size = (size_t) n};
}

/* Self-signed, all with one EC key: RSA key generation would take most
 * of the test's time (minutes under valgrind). */
static EVP_PKEY *shared_key;

static PkiCert *cert_named(const char *name) {
        PkiCertOptions o;

        if (!shared_key)
                shared_key = pki_key_ec();
        assert_non_null(shared_key);
        pki_cert_options_init(&o);
        o.common_name = name;
        o.key = shared_key;
        return pki_cert_new(&o, NULL);
}

static void der_done(Der *d) {
        OPENSSL_free(d->bytes);
}

static int clear(void **state) {
        (void) state;
        x509_cache_clear();
        return 0;
}

static void test_hit_is_the_same_certificate(void **state) {
        _cleanup_(pki_cert_freep) PkiCert *a = cert_named("Cache A"), *b = cert_named("Cache B");
        _cleanup_(der_done) Der da = der_of(a), db = der_of(b);
        _cleanup_(X509_freep) X509 *x1 = NULL, *x2 = NULL, *y = NULL;
        uint64_t hits = x509_cache_hits();

        (void) state;
        x1 = x509_cache_parse(da.bytes, da.size);
        assert_non_null(x1);
        assert_int_equal(X509_cmp(x1, a->x509), 0);
        assert_int_equal(x509_cache_hits(), hits);

        x2 = x509_cache_parse(da.bytes, da.size);
        assert_ptr_equal(x2, x1);
        assert_int_equal(x509_cache_hits(), hits + 1);

        y = x509_cache_parse(db.bytes, db.size);
        assert_non_null(y);
        assert_ptr_not_equal(y, x1);
        assert_int_equal(X509_cmp(y, b->x509), 0);
}

/* A copy with one byte changed is not the cached one (here: not a valid
 * certificate at all, or another one), and the cached one stays as it was. */
static void test_only_exact_der_hits(void **state) {
        _cleanup_(pki_cert_freep) PkiCert *a = cert_named("Cache exact");
        _cleanup_(der_done) Der da = der_of(a);
        _cleanup_(X509_freep) X509 *x = NULL, *again = NULL;
        _cleanup_free_ uint8_t *longer = malloc(da.size + 1), *changed = malloc(da.size);

        (void) state;
        assert_non_null(longer);
        assert_non_null(changed);
        x = x509_cache_parse(da.bytes, da.size);
        assert_non_null(x);

        /* Trailing bytes: d2i_X509 would stop before them; refused. */
        memcpy(longer, da.bytes, da.size);
        longer[da.size] = 0;
        assert_null(x509_cache_parse(longer, da.size + 1));
        /* Cut short. */
        assert_null(x509_cache_parse(da.bytes, da.size - 1));
        assert_null(x509_cache_parse(da.bytes, 0));
        /* The last byte of the signature changed: parses, but is not the cached object. */
        memcpy(changed, da.bytes, da.size);
        changed[da.size - 1] ^= 0x01;
        again = x509_cache_parse(changed, da.size);
        assert_non_null(again);
        assert_ptr_not_equal(again, x);
        assert_int_not_equal(X509_cmp(again, x), 0);
}

/* Full: the entry used longest ago goes, the one just used stays. */
static void test_oldest_goes_first(void **state) {
        PkiCert *certs[X509_CACHE_ENTRIES + 1];
        Der ders[X509_CACHE_ENTRIES + 1];
        X509 *first = NULL, *second = NULL, *x;
        uint64_t hits;

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(certs); i++) {
                char name[32];

                snprintf(name, sizeof(name), "Cache %zu", i);
                certs[i] = cert_named(name);
                assert_non_null(certs[i]);
                ders[i] = der_of(certs[i]);
        }
        first = x509_cache_parse(ders[0].bytes, ders[0].size);
        second = x509_cache_parse(ders[1].bytes, ders[1].size);
        for (size_t i = 2; i < X509_CACHE_ENTRIES; i++)
                X509_free(x509_cache_parse(ders[i].bytes, ders[i].size));
        /* The first is used again: now the second is the oldest. */
        x = x509_cache_parse(ders[0].bytes, ders[0].size);
        assert_ptr_equal(x, first);
        X509_free(x);
        /* One more than fits. */
        X509_free(x509_cache_parse(ders[X509_CACHE_ENTRIES].bytes, ders[X509_CACHE_ENTRIES].size));

        hits = x509_cache_hits();
        x = x509_cache_parse(ders[0].bytes, ders[0].size);
        assert_ptr_equal(x, first);
        assert_int_equal(x509_cache_hits(), hits + 1);
        X509_free(x);
        x = x509_cache_parse(ders[1].bytes, ders[1].size);
        assert_ptr_not_equal(x, second);
        assert_int_equal(x509_cache_hits(), hits + 1);
        assert_int_equal(X509_cmp(x, certs[1]->x509), 0);
        X509_free(x);

        X509_free(first);
        X509_free(second);
        for (size_t i = 0; i < ELEMENTSOF(certs); i++) {
                der_done(&ders[i]);
                pki_cert_free(certs[i]);
        }
}

/* A certificate handed out stays valid after the cache let it go. */
static void test_reference_outlives_the_entry(void **state) {
        _cleanup_(pki_cert_freep) PkiCert *a = cert_named("Cache kept");
        _cleanup_(der_done) Der da = der_of(a);
        _cleanup_(X509_freep) X509 *x = NULL;

        (void) state;
        x = x509_cache_parse(da.bytes, da.size);
        assert_non_null(x);
        x509_cache_clear();
        assert_int_equal(X509_cmp(x, a->x509), 0);
        assert_non_null(X509_get_subject_name(x));
}

typedef struct Hammer {
        const Der *ders;
        size_t n;
        const X509 *const *expected;
        unsigned wrong;
} Hammer;

static void *hammer(void *userdata) {
        Hammer *h = userdata;

        for (unsigned round = 0; round < 2000; round++) {
                size_t i = round % h->n;
                X509 *x = x509_cache_parse(h->ders[i].bytes, h->ders[i].size);

                if (!x || X509_cmp(x, h->expected[i]) != 0)
                        h->wrong++;
                X509_free(x);
        }
        return NULL;
}

/* Four threads parse the same few certificates at once: each gets the right one. */
static void test_threads(void **state) {
        PkiCert *certs[8];
        Der ders[ELEMENTSOF(certs)];
        const X509 *expected[ELEMENTSOF(certs)];
        pthread_t threads[4];
        Hammer h[ELEMENTSOF(threads)];

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(certs); i++) {
                char name[32];

                snprintf(name, sizeof(name), "Cache thread %zu", i);
                certs[i] = cert_named(name);
                ders[i] = der_of(certs[i]);
                expected[i] = certs[i]->x509;
        }
        for (size_t t = 0; t < ELEMENTSOF(threads); t++) {
                h[t] = (Hammer) {.ders = ders, .n = ELEMENTSOF(ders), .expected = expected};
                assert_int_equal(pthread_create(&threads[t], NULL, hammer, &h[t]), 0);
        }
        for (size_t t = 0; t < ELEMENTSOF(threads); t++) {
                assert_int_equal(pthread_join(threads[t], NULL), 0);
                assert_int_equal(h[t].wrong, 0);
        }
        for (size_t i = 0; i < ELEMENTSOF(certs); i++) {
                der_done(&ders[i]);
                pki_cert_free(certs[i]);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup(test_hit_is_the_same_certificate, clear),
                cmocka_unit_test_setup(test_only_exact_der_hits, clear),
                cmocka_unit_test_setup(test_oldest_goes_first, clear),
                cmocka_unit_test_setup(test_reference_outlives_the_entry, clear),
                cmocka_unit_test_setup(test_threads, clear),
        };

        int r = cmocka_run_group_tests(tests, NULL, NULL);

        EVP_PKEY_free(shared_key);
        return r;
}
