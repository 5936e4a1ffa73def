/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The spool files a request needs come with it (a worker asks for more
 * only in rare cases): each is a round trip less. */

/* The requests smimed's worker threads send to a smimed-worker process for
 * the message work of a job, and the fields of each (in this order, with
 * worker-protocol.h's put/get functions). Every request is stateless: all it
 * needs travels with it. The replies start with the status of
 * worker_reply_init(); their fields follow only when it is 0. */

/* How many S/MIME layers a Decrypt or Verify opens, at most. */
#define WORK_OPEN_MAX_LAYERS 8U

/* Decrypt and Verify: what one layer is, and for a signed layer the check
 * of its signature (the content goes to a spool file).
 *   request: bool verify, bool decrypt, u32 depth,
 *            x509 stored_signer (the store's, for a signer the message lacks; or NULL),
 *            x509_stack recipients (the certificates of the token's keys; NULL without decrypt),
 *            fd 0: the layer, fd 1: a spool file for the content,
 *            below the top (depth > 0): fd 2: the whole input, fd 3: a spool file for the result
 *   reply:   u32 answer (below), then when WORK_OPEN_ANSWERED: u32 layer (SmimeLayer),
 *            strv from, bool from_unreadable, string message_id (depth 0 only, else empty, false, NULL),
 *            u32 n, then n × u32: the indices of recipients the message is encrypted to,
 *            u32 integrity (SignatureIntegrity), x509 signer, x509_stack certificates, u32 digest_nid,
 *            blob signer_issuer, string signer_serial (a signer the message lacks: look in the store),
 *            bool has_next, fd 0: the content of a signed layer when has_next,
 *            bool assembled, then u64 size, fd (after the content's): the result, as
 *            WORK_OPEN_ASSEMBLE makes it, when the layer is the innermost content (not S/MIME,
 *            or signed and not verified) and the request carried the input
 * An enveloped layer that is for some of the token's keys goes to smimed
 * first, with a WORKER_CALL_CHOOSE_KEY (worker-protocol.h) that carries
 * those fields: when polkit's recent yes for the key smimed would pick is
 * remembered, smimed picks it there, and the worker decrypts in the same
 * request, as WORK_OPEN_DECRYPT would (a round trip to the loop and a second
 * parse less). */
#define WORK_OPEN_LAYER 101U
/* WORK_OPEN_LAYER's answer: */
#define WORK_OPEN_ANSWERED 0U         /* the layer's fields follow */
#define WORK_OPEN_ANSWERED_IN_CALL 1U /* they went with WORKER_CALL_CHOOSE_KEY; smimed chose no key */
#define WORK_OPEN_DECRYPTED 2U        /* smimed chose one: WORK_OPEN_DECRYPT's reply fields follow */

/* Decrypt: the enveloped layer with the key of certificate (its private
 * operation asked of smimed), the digest of the whole input for the audit
 * trail, and then what WORK_OPEN_LAYER would answer of the decrypted
 * content (one layer deeper), with a status of its own: a round trip less.
 *   request: x509 certificate, bool verify, u32 depth (the enveloped layer's),
 *            x509_stack recipients (as WORK_OPEN_LAYER's),
 *            fd 0: the layer, fd 1: the whole input, fd 2: a spool file for the content,
 *            fd 3: one for a signed content's content, fd 4: one for the result
 *   reply:   string input_sha256, fd 0: the content,
 *            i32 error, i32 error_code, string message (the content's layer: 0, or why it
 *            cannot be read), then when 0 WORK_OPEN_LAYER's reply fields, their fds after fd 0 */
#define WORK_OPEN_DECRYPT 102U

/* Decrypt and Verify: the result, the outer header fields of the input
 * before the innermost content.
 *   request: fd 0: the whole input, fd 1: the innermost content, fd 2: a spool file
 *   reply:   u64 size, fd 0: the result */
#define WORK_OPEN_ASSEMBLE 103U

/* Sign and Encrypt: the input split, made canonical, signed (the signature
 * asked of smimed) and/or encrypted.
 *   request: bool sign, bool opaque, string digest, bool pss, x509 signer, x509_stack extras,
 *            strv signer_addresses (From: and Sender: may name only these),
 *            bool encrypt, x509_stack recipients, string cipher, bool oaep,
 *            fd 0: the input, fds 1, 2 (and 3 to sign and encrypt): spool files,
 *            then a spare one for a re-encoded body (the worker asks for
 *            more with WORKER_CALL_SPOOL, or for it when it is missing)
 *   reply:   u64 size, string input_sha256, fd 0: the result */
#define WORK_SMIME_OUT 104U
