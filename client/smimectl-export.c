/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/pem.h>

#include "io-util.h"
#include "macro.h"
#include "openssl-util.h"
#include "output-file.h"
#include "smimectl.h"

#define EXPORT_MODE 0644 /* a certificate is public */

static const char *output_name(void) {
        return arg_output && !streq(arg_output, "-") ? arg_output : "standard output";
}

/* Appends the certificate of fingerprint to out: its DER as it is, or a
 * PEM block of it. Returns 0, or the exit status after saying why. */
static int export_one(smimed *s, const char *fingerprint, BIO *out) {
        _cleanup_(smimed_certificate_done) smimed_certificate c = {};
        _cleanup_(smimed_error_done) smimed_error error = {};
        int r;

        r = smimed_get_certificate(s, fingerprint, &c, &error);
        if (r < 0)
                return report_error(r, &error, "Cannot export certificate %s", fingerprint);
        if (!c.der || c.der_size == 0 || c.der_size > INT_MAX)
                return fail("Cannot export certificate %s: smimed sent no DER for it.", fingerprint);

        /* The DER smimed holds, byte for byte: not decoded and encoded again. */
        if (arg_der)
                r = BIO_write(out, c.der, (int) c.der_size) == (int) c.der_size;
        else
                r = PEM_write_bio(out, PEM_STRING_X509, "", c.der, (long) c.der_size) > 0;
        if (!r)
                return fail("%s", strerror(ENOMEM));
        return 0;
}

int verb_export(smimed *s, int argc, char *argv[]) {
        _cleanup_(smimed_strv_freep) char **fingerprints = NULL;
        _cleanup_(output_file_done) OutputFile out = OUTPUT_FILE_NULL;
        _cleanup_(BIO_freep) BIO *mem = NULL;
        size_t n = 0;
        char *data;
        long size;
        int r;

        (void) argc;

        r = certificates_resolve(s, argv[0], &fingerprints);
        if (r != 0)
                return r;
        while (fingerprints[n])
                n++;
        if (arg_der && n > 1)
                return fail("%s has %zu certificates and DER holds one: export one by its fingerprint (see smimectl "
                            "list --address %s), or all of them as PEM.",
                            argv[0], n, argv[0]);

        /* All of it in memory first: a failure writes nothing. */
        mem = BIO_new(BIO_s_mem());
        if (!mem)
                return fail("%s", strerror(ENOMEM));
        for (char **f = fingerprints; *f; f++) {
                r = export_one(s, *f, mem);
                if (r != 0)
                        return r;
        }
        size = BIO_get_mem_data(mem, &data);
        if (size <= 0)
                return fail("%s", strerror(ENOMEM));

        r = output_file_open(&out, arg_output, EXPORT_MODE);
        if (r >= 0)
                r = fd_write_all(out.fd, data, (size_t) size);
        if (r >= 0)
                r = output_file_commit(&out);
        if (r < 0)
                return fail("Cannot write to %s: %s", output_name(), strerror(-r));
        return 0;
}
