/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>

#include "certificate.h"
#include "message.h"
#include "store-copy.h"

typedef struct Copy {
        Store *to;
        StoreCopied copied;
} Copy;

static int copy_certificate(X509 *x509, bool trusted, void *userdata) {
        _cleanup_(cert_info_freep) CertInfo *info = NULL;
        Copy *c = userdata;
        bool added, was_trusted = false;
        int r;

        r = cert_info_new(x509, &info);
        if (r < 0)
                return r;
        if (trusted)
                (void) store_get_certificate(c->to, info->fingerprint, NULL, &was_trusted);
        r = store_add_certificate(c->to, info, trusted, &added);
        if (r < 0)
                return r;
        c->copied.certificates += added;
        c->copied.trusted += trusted && !was_trusted;
        return 0;
}

static int copy_crl(X509_CRL *crl, void *userdata) {
        Copy *c = userdata;
        bool stored;
        int r;

        r = store_put_crl(c->to, crl, &stored);
        if (r < 0)
                return r;
        c->copied.crls += stored;
        return 0;
}

int store_copy(Store *from, Store *to, StoreCopied *ret, char **ret_message) {
        Copy c = {.to = to};
        int r;

        r = store_begin(to);
        if (r < 0)
                return message_fail(ret_message, r, "The certificate store %s cannot be written: %m", store_name(to));
        r = store_foreach_certificate(from, copy_certificate, &c);
        if (r >= 0)
                r = store_foreach_crl(from, copy_crl, &c);
        if (r < 0) {
                store_rollback(to);
                return message_fail(ret_message, r, "Copying %s into %s failed, nothing was copied: %m",
                                    store_name(from), store_name(to));
        }
        r = store_commit(to);
        if (r < 0) {
                store_rollback(to);
                return message_fail(ret_message, r, "The certificate store %s cannot be written: %m", store_name(to));
        }
        *ret = c.copied;
        return 0;
}
