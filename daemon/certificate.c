/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "certificate.h"
#include "hexdecoct.h"
#include "smime-limits.h"
#include "strv.h"

#define ADDRESS_MAX 254

void sha256_hex(const void *data, size_t size, char out[SHA256_HEX_SIZE]) {
        unsigned char md[32];
        unsigned int len = 0;

        EVP_Digest(data, size, md, &len, EVP_sha256(), NULL);
        hex_encode(md, sizeof(md), out);
}

int x509_fingerprint(X509 *x509, char out[SHA256_HEX_SIZE]) {
        unsigned char *der = NULL;
        int len = i2d_X509(x509, &der);

        if (len <= 0)
                return -EINVAL;
        sha256_hex(der, (size_t) len, out);
        OPENSSL_free(der);
        return 0;
}

void format_date(time_t t, char out[11]) {
        struct tm tm;

        if (!gmtime_r(&t, &tm) || strftime(out, 11, "%Y-%m-%d", &tm) == 0)
                strcpy(out, "?");
}

int asn1_time_to_time_t(const ASN1_TIME *t, time_t *ret) {
        struct tm tm = {};

        if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
                return -EINVAL;
        *ret = timegm(&tm);
        return 0;
}

int address_normalize(const char *s, char **ret) {
        const char *at;
        size_t len;
        char *copy;

        if (!s)
                return -EINVAL;
        len = strlen(s);
        at = strchr(s, '@');
        if (len < 3 || len > ADDRESS_MAX || !at || at == s || at[1] == '\0' || strchr(at + 1, '@') ||
            (size_t) (at - s) > 64)
                return -EINVAL;
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if (*p <= ' ' || *p == 0x7f || strchr("<>()[],;:\"\\", *p))
                        return -EINVAL;
        if (at[1] == '.' || s[len - 1] == '.')
                return -EINVAL;

        copy = strdup(s);
        if (!copy)
                return -ENOMEM;
        for (char *p = copy; *p; p++)
                *p = (char) tolower((unsigned char) *p);
        *ret = copy;
        return 0;
}

/* Appends the address value holds, when it is a well-formed one, to l. */
static int add_address(char **l, size_t *n, const ASN1_STRING *value) {
        _cleanup_free_ char *raw = NULL;
        int len = ASN1_STRING_length(value);

        if (len <= 0)
                return 0;
        raw = strndup((const char *) ASN1_STRING_get0_data(value), (size_t) len);
        if (!raw)
                return -ENOMEM;
        if (strlen(raw) != (size_t) len) /* an embedded NUL: not an address */
                return 0;
        if (address_normalize(raw, &l[*n]) < 0)
                return 0;
        (*n)++;
        return 0;
}

/* By address, then by position: equal ones sort in the order they came. */
static int compare_slots(const void *a, const void *b) {
        char *const *x = *(char *const *const *) a, *const *y = *(char *const *const *) b;
        int c = strcmp(*x, *y);

        return c != 0 ? c : (x > y) - (x < y);
}

/* Drops repeated addresses of l[0..n), keeping the first of each where it
 * was; sorts pointers to the slots, so O(n log n). Returns the new n. */
static size_t uniq_addresses(char **l, size_t n) {
        _cleanup_free_ char ***slots = NULL;
        const char *kept = NULL;
        size_t k = 0;

        if (n < 2)
                return n;
        slots = calloc(n, sizeof(char **));
        if (!slots)
                return SIZE_MAX;
        for (size_t i = 0; i < n; i++)
                slots[i] = &l[i];
        qsort(slots, n, sizeof(char **), compare_slots);
        for (size_t i = 0; i < n; i++) {
                if (kept && streq(*slots[i], kept)) {
                        free(*slots[i]);
                        *slots[i] = NULL;
                } else
                        kept = *slots[i];
        }
        for (size_t i = 0; i < n; i++)
                if (l[i])
                        l[k++] = l[i];
        l[k] = NULL;
        return k;
}

int certificate_addresses(X509 *x509, char ***ret) {
        _cleanup_(strv_freep) char **l = NULL;
        GENERAL_NAMES *names;
        size_t n = 0, considered = 0;
        char **shrunk;
        int r = 0;

        l = calloc(SMIME_MAX_CERTIFICATE_ADDRESSES + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;

        /* The first SMIME_MAX_CERTIFICATE_ADDRESSES rfc822Names count, the
         * rest are ignored. */
        names = X509_get_ext_d2i(x509, NID_subject_alt_name, NULL, NULL);
        for (int i = 0; r >= 0 && names && i < sk_GENERAL_NAME_num(names) &&
                        considered < SMIME_MAX_CERTIFICATE_ADDRESSES;
             i++) {
                const GENERAL_NAME *name = sk_GENERAL_NAME_value(names, i);

                if (name->type != GEN_EMAIL)
                        continue;
                considered++;
                r = add_address(l, &n, name->d.rfc822Name);
        }
        GENERAL_NAMES_free(names);
        if (r < 0)
                return r;

        /* Only without rfc822Names in subjectAltName does the subject's
         * emailAddress count (RFC 8550, section 3); as many of those. */
        if (n == 0) {
                const X509_NAME *subject = X509_get_subject_name(x509);

                considered = 0;
                for (int i = -1; considered < SMIME_MAX_CERTIFICATE_ADDRESSES &&
                                 (i = X509_NAME_get_index_by_NID(subject, NID_pkcs9_emailAddress, i)) >= 0;) {
                        considered++;
                        r = add_address(l, &n, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i)));
                        if (r < 0)
                                return r;
                }
        }

        n = uniq_addresses(l, n);
        if (n == SIZE_MAX)
                return -ENOMEM;
        shrunk = realloc(l, (n + 1) * sizeof(char *));
        if (shrunk)
                l = shrunk;
        *ret = TAKE_PTR(l);
        return 0;
}

char *x509_name_to_string(const X509_NAME *name) {
        BIO *bio = BIO_new(BIO_s_mem());
        char *data, *s = NULL;
        long len;

        if (!bio)
                return NULL;
        if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
                len = BIO_get_mem_data(bio, &data);
                s = strndup(data, (size_t) len);
        }
        BIO_free(bio);
        return s;
}

static char *name_entry(const X509_NAME *name, int nid) {
        unsigned char *utf8 = NULL;
        char *s;
        int i, len;

        i = X509_NAME_get_index_by_NID(name, nid, -1);
        if (i < 0)
                return NULL;
        len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
        if (len < 0)
                return NULL;
        s = strndup((const char *) utf8, (size_t) len);
        OPENSSL_free(utf8);
        return s;
}

static const char *key_algorithm_name(const EVP_PKEY *pkey) {
        switch (EVP_PKEY_get_base_id(pkey)) {
        case EVP_PKEY_RSA:
        case EVP_PKEY_RSA_PSS:
                return "rsa";
        case EVP_PKEY_EC:
                return "ec";
        case EVP_PKEY_ED25519:
                return "ed25519";
        case EVP_PKEY_ED448:
                return "ed448";
        case EVP_PKEY_DSA:
                return "dsa";
        default:
                return "unknown";
        }
}

static char *serial_to_hex(const ASN1_INTEGER *serial) {
        BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
        char *hex, *s;

        if (!bn)
                return NULL;
        hex = BN_bn2hex(bn);
        BN_free(bn);
        if (!hex)
                return NULL;
        s = strdup(hex[0] == '-' ? hex + 1 : hex);
        OPENSSL_free(hex);
        return s;
}

static int name_der(const X509_NAME *name, unsigned char **ret, size_t *ret_size) {
        unsigned char *der = NULL;
        int len = i2d_X509_NAME(name, &der);

        if (len <= 0)
                return -EINVAL;
        *ret = der;
        *ret_size = (size_t) len;
        return 0;
}

int cert_info_new(X509 *x509, CertInfo **ret) {
        _cleanup_(cert_info_freep) CertInfo *info = NULL;
        unsigned char *spki = NULL;
        EVP_PKEY *pkey;
        int len, r;

        info = calloc(1, sizeof(CertInfo));
        if (!info)
                return -ENOMEM;
        info->n_ref = 1;
        if (!X509_up_ref(x509))
                return -EIO;
        info->x509 = x509;

        len = i2d_X509(x509, &info->der);
        if (len <= 0)
                return -EINVAL;
        info->der_size = (size_t) len;
        sha256_hex(info->der, info->der_size, info->fingerprint);

        len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x509), &spki);
        if (len <= 0)
                return -EINVAL;
        sha256_hex(spki, (size_t) len, info->spki_sha256);
        OPENSSL_free(spki);

        info->subject = x509_name_to_string(X509_get_subject_name(x509));
        info->issuer = x509_name_to_string(X509_get_issuer_name(x509));
        info->common_name = name_entry(X509_get_subject_name(x509), NID_commonName);
        if (!info->common_name)
                info->common_name = strdup("");
        info->issuer_display = name_entry(X509_get_issuer_name(x509), NID_commonName);
        if (!info->issuer_display)
                info->issuer_display = name_entry(X509_get_issuer_name(x509), NID_organizationName);
        if (!info->issuer_display)
                info->issuer_display = info->issuer ? strdup(info->issuer) : NULL;
        info->serial = serial_to_hex(X509_get0_serialNumber(x509));
        if (!info->subject || !info->issuer || !info->common_name || !info->issuer_display || !info->serial)
                return -ENOMEM;

        r = certificate_addresses(x509, &info->addresses);
        if (r < 0)
                return r;

        if (asn1_time_to_time_t(X509_get0_notBefore(x509), &info->not_before) < 0 ||
            asn1_time_to_time_t(X509_get0_notAfter(x509), &info->not_after) < 0)
                return -EINVAL;

        pkey = X509_get0_pubkey(x509);
        if (!pkey)
                return -EINVAL;
        info->key_algorithm = strdup(key_algorithm_name(pkey));
        if (!info->key_algorithm)
                return -ENOMEM;
        info->key_bits = (unsigned) EVP_PKEY_get_bits(pkey);
        info->is_ca = X509_check_ca(x509) > 0;

        r = name_der(X509_get_subject_name(x509), &info->subject_name_der, &info->subject_name_der_size);
        if (r < 0)
                return r;
        r = name_der(X509_get_issuer_name(x509), &info->issuer_name_der, &info->issuer_name_der_size);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(info);
        return 0;
}

CertInfo *cert_info_ref(CertInfo *info) {
        if (info)
                __atomic_add_fetch(&info->n_ref, 1, __ATOMIC_RELAXED);
        return info;
}

CertInfo *cert_info_free(CertInfo *info) {
        if (!info || __atomic_sub_fetch(&info->n_ref, 1, __ATOMIC_ACQ_REL) > 0)
                return NULL;
        X509_free(info->x509);
        free(info->subject);
        free(info->issuer);
        free(info->common_name);
        free(info->issuer_display);
        free(info->serial);
        strv_free(info->addresses);
        free(info->key_algorithm);
        OPENSSL_free(info->der);
        OPENSSL_free(info->subject_name_der);
        OPENSSL_free(info->issuer_name_der);
        return mfree(info);
}

char *cert_info_summary(const CertInfo *info) {
        const char *name = info->common_name[0] ? info->common_name : NULL;
        const char *address = info->addresses[0];
        char date[11], *s = NULL, *who = NULL;
        int r;

        format_date(info->not_after, date);

        if (name && address)
                r = asprintf(&who, "%s <%s>", name, address);
        else
                r = asprintf(&who, "%s", name ? name : address ? address : info->subject);
        if (r < 0)
                return NULL;

        r = asprintf(&s, "%s · issued by %s · valid until %s · SHA-256 %.2s:%.2s:%.2s:%.2s:…", who,
                     info->issuer_display, date, info->fingerprint, info->fingerprint + 2, info->fingerprint + 4,
                     info->fingerprint + 6);
        free(who);
        if (r < 0)
                return NULL;
        for (char *p = strstr(s, "SHA-256 ") + 8; *p; p++)
                *p = (char) toupper((unsigned char) *p);
        return s;
}
