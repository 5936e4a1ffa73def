/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

/* What GenerateKey hands an admin for their CA: a subject name parsed from
 * text and a PKCS#10 request for a key in the token. No bus, no token of
 * its own: key is the engine's, so the signature is made in the token. */

/* One RDN after another: "CN=Alice,O=Example" or "/CN=Alice/O=Example"; a
 * backslash quotes the next character. -EINVAL when it is not one. */
int parse_distinguished_name(const char *s, X509_NAME **ret);

/* A PEM certificate request for key, for the S/MIME use of address:
 * subjectAltName email, keyUsage for the key's kind, emailProtection. */
int certificate_request_pem(EVP_PKEY *key, const char *const *addresses, X509_NAME *subject, char **ret_pem);
