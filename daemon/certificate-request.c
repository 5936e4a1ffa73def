/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "certificate-request.h"
#include "macro.h"
#include "openssl-util.h"

/* One RDN after another: "CN=Alice,O=Example" (RFC 4514 order is ignored:
 * entries are taken as written) or "/CN=Alice/O=Example". A backslash quotes
 * the next character. */
int parse_distinguished_name(const char *s, X509_NAME **ret) {
        _cleanup_(X509_NAME_freep) X509_NAME *name = X509_NAME_new();
        _cleanup_free_ char *buf = NULL;
        char separator = ',';
        const char *p = s;

        if (!name)
                return -ENOMEM;
        if (*p == '/') {
                separator = '/';
                p++;
        }
        buf = malloc(strlen(s) + 1);
        if (!buf)
                return -ENOMEM;

        while (*p) {
                char *type, *value, *eq, *end;
                size_t n = 0;

                while (isspace((unsigned char) *p))
                        p++;
                for (; *p && *p != separator; p++) {
                        if (*p == '\\' && p[1])
                                p++;
                        buf[n++] = *p;
                }
                buf[n] = '\0';
                if (*p == separator)
                        p++;

                eq = strchr(buf, '=');
                if (!eq || eq == buf)
                        return -EINVAL;
                *eq = '\0';
                type = buf;
                value = eq + 1;
                for (end = eq; end > type && isspace((unsigned char) end[-1]); end--)
                        end[-1] = '\0';
                if (value[0] == '\0' || OBJ_txt2nid(type) == NID_undef)
                        return -EINVAL;
                if (!X509_NAME_add_entry_by_txt(name, type, MBSTRING_UTF8, (const unsigned char *) value, -1, -1, 0))
                        return -EINVAL;
        }
        if (X509_NAME_entry_count(name) == 0)
                return -EINVAL;

        *ret = TAKE_PTR(name);
        return 0;
}

static int add_extension(X509V3_CTX *ctx, STACK_OF(X509_EXTENSION) *exts, int nid, const char *value) {
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);

        if (!ext || !sk_X509_EXTENSION_push(exts, ext)) {
                X509_EXTENSION_free(ext);
                return -ENOMEM;
        }
        return 0;
}

/* "email:a,email:b": the value of a subjectAltName of rfc822Names. */
static char *san_emails(const char *const *addresses) {
        char *s = strdup("");

        for (const char *const *a = addresses; s && a && *a; a++) {
                char *t = NULL;

                if (asprintf(&t, "%s%semail:%s", s, s[0] ? "," : "", *a) < 0)
                        t = NULL;
                free(s);
                s = t;
        }
        return s;
}

int certificate_request_pem(EVP_PKEY *key, const char *const *addresses, X509_NAME *subject, char **ret_pem) {
        _cleanup_(X509_REQ_freep) X509_REQ *req = X509_REQ_new();
        STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
        _cleanup_free_ char *san = NULL;
        X509V3_CTX ctx;
        BIO *bio = NULL;
        char *data;
        long len;
        int r = 0;

        if (!req || !exts || !(san = san_emails(addresses))) {
                sk_X509_EXTENSION_free(exts);
                return -ENOMEM;
        }

        X509V3_set_ctx(&ctx, NULL, NULL, req, NULL, 0);
        r = add_extension(&ctx, exts, NID_subject_alt_name, san);
        if (r >= 0)
                r = add_extension(&ctx, exts, NID_key_usage,
                                  EVP_PKEY_get_base_id(key) == EVP_PKEY_EC
                                          ? "critical,digitalSignature,nonRepudiation,keyAgreement"
                                          : "critical,digitalSignature,nonRepudiation,keyEncipherment");
        if (r >= 0)
                r = add_extension(&ctx, exts, NID_ext_key_usage, "emailProtection");

        if (r >= 0 && (!X509_REQ_set_version(req, X509_REQ_VERSION_1) || !X509_REQ_set_subject_name(req, subject) ||
                       !X509_REQ_set_pubkey(req, key) || !X509_REQ_add_extensions(req, exts)))
                r = -ENOMEM;
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        if (r < 0)
                return r;

        /* The private-key operation runs in the token. */
        if (X509_REQ_sign(req, key, EVP_sha256()) <= 0)
                return -EIO;

        bio = BIO_new(BIO_s_mem());
        if (!bio || !PEM_write_bio_X509_REQ(bio, req)) {
                BIO_free(bio);
                return -ENOMEM;
        }
        len = BIO_get_mem_data(bio, &data);
        *ret_pem = strndup(data, (size_t) len);
        BIO_free(bio);
        return *ret_pem ? 0 : -ENOMEM;
}
