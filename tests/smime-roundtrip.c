/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/cms.h>
#include <openssl/err.h>

#include "macro.h"
#include "smime-open.h"
#include "smime-roundtrip.h"
#include "smime-out.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(CMS_ContentInfo *, CMS_ContentInfo_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(BIO *, BIO_free);

const char smime_roundtrip_entity[] = "Content-Type: text/plain; charset=utf-8\r\n"
                                      "\r\n"
                                      "The remote key signs and decrypts this.\r\n";

int memfd_with(const void *data, size_t n) {
        int fd = memfd_create("test", MFD_CLOEXEC);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, n), (ssize_t) n);
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        return fd;
}

int memfd_empty(void) {
        int fd = memfd_create("test", MFD_CLOEXEC);

        assert_true(fd >= 0);
        return fd;
}

char *read_all(int fd, size_t *ret_size) {
        off_t size = lseek(fd, 0, SEEK_END);
        char *buf = malloc((size_t) size + 1);

        assert_non_null(buf);
        assert_int_equal(pread(fd, buf, (size_t) size, 0), size);
        buf[size] = 0;
        *ret_size = (size_t) size;
        return buf;
}

STACK_OF(X509) *x509_stack(X509 *a, X509 *b, X509 *c) {
        STACK_OF(X509) *s = sk_X509_new_null();

        assert_non_null(s);
        assert_true(sk_X509_push(s, a) > 0);
        if (b)
                assert_true(sk_X509_push(s, b) > 0);
        if (c)
                assert_true(sk_X509_push(s, c) > 0);
        return s;
}

void smime_roundtrip_sign(X509 *signer, EVP_PKEY *key, const EVP_MD *md, bool pss, bool opaque) {
        const char *entity = smime_roundtrip_entity;
        _cleanup_(closep) int in = memfd_with(entity, strlen(entity)), out = memfd_empty();
        _cleanup_(CMS_ContentInfo_freep) CMS_ContentInfo *cms = NULL;
        _cleanup_(BIO_freep) BIO *content = NULL, *tampered = NULL;
        _cleanup_free_ char *message = NULL;
        SignOptions o = { .digest = md, .pss = pss, .opaque = opaque };
        STACK_OF(X509) *certs = x509_stack(signer, NULL, NULL);
        STACK_OF(CMS_SignerInfo) *infos;
        X509_ALGOR *sig_alg = NULL;
        int r;

        r = smime_sign(in, out, signer, key, NULL, &o, &message);
        if (r < 0)
                print_error("smime_sign: %s\n", strempty(message));
        assert_int_equal(r, 0);
        assert_int_equal(smime_read(out, &cms, &content, &message), 0);
        assert_true(opaque ? !content : !!content);

        ERR_clear_error();
        assert_int_equal(CMS_verify(cms, certs, NULL, content, NULL, CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY), 1);
        infos = CMS_get0_SignerInfos(cms);
        assert_int_equal(sk_CMS_SignerInfo_num(infos), 1);
        CMS_SignerInfo_get0_algs(sk_CMS_SignerInfo_value(infos, 0), NULL, NULL, NULL, &sig_alg);
        if (pss)
                assert_int_equal(OBJ_obj2nid(sig_alg->algorithm), NID_rsassaPss);

        if (!opaque) {
                /* The same signature over other bytes: OpenSSL refuses it. */
                tampered = BIO_new_mem_buf("Content-Type: text/plain; charset=utf-8\r\n\r\nThe remote key signs "
                                           "and decrypts thus.\r\n",
                                           -1);
                assert_non_null(tampered);
                assert_int_equal(CMS_verify(cms, certs, NULL, tampered, NULL,
                                            CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY),
                                 0);
                ERR_clear_error();
        }
        sk_X509_free(certs);
}

int smime_roundtrip_decrypt(STACK_OF(X509) *recipients, const EVP_CIPHER *cipher, bool oaep, X509 *certificate,
                            EVP_PKEY *key) {
        const char *entity = smime_roundtrip_entity;
        _cleanup_(closep) int in = memfd_with(entity, strlen(entity)), out = memfd_empty(), plain = memfd_empty();
        _cleanup_(CMS_ContentInfo_freep) CMS_ContentInfo *cms = NULL;
        _cleanup_(BIO_freep) BIO *content = NULL;
        _cleanup_free_ char *message = NULL, *got = NULL;
        size_t n;
        int r;

        r = smime_encrypt(in, out, recipients, cipher, oaep, &message);
        if (r < 0)
                print_error("smime_encrypt: %s\n", strempty(message));
        assert_int_equal(r, 0);
        assert_int_equal(smime_read(out, &cms, &content, &message), 0);
        assert_null(content);
        r = smime_decrypt(cms, key, certificate, plain, &message);
        if (r < 0)
                return r;
        got = read_all(plain, &n);
        return n == strlen(entity) && memcmp(got, entity, n) == 0 ? 0 : -EBADMSG;
}
