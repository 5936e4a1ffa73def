/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* D-Bus error names of org.smimed1. Part of the public API: installed with
 * smimed.h. Each has its own errno, given beside it, which libsmimed
 * returns (negative) when smimed answers with that name, so C callers can
 * branch on the return value and still show the message to a person. */

#define SMIMED_ERROR_PREFIX "org.smimed1.Error."

#define SMIMED_ERROR_NO_PRIVATE_KEY "org.smimed1.Error.NoPrivateKey" /* -ENOKEY */
#define SMIMED_ERROR_NO_CERTIFICATE "org.smimed1.Error.NoCertificate" /* -ENOENT */
#define SMIMED_ERROR_CERTIFICATE_INVALID "org.smimed1.Error.CertificateInvalid" /* -EKEYREJECTED */
#define SMIMED_ERROR_TOKEN_UNAVAILABLE "org.smimed1.Error.TokenUnavailable" /* -ENODEV */
#define SMIMED_ERROR_INVALID_MESSAGE "org.smimed1.Error.InvalidMessage" /* -EBADMSG */
#define SMIMED_ERROR_POLICY_VIOLATION "org.smimed1.Error.PolicyViolation" /* -EPERM */
#define SMIMED_ERROR_DISABLED "org.smimed1.Error.Disabled" /* -ESHUTDOWN */
#define SMIMED_ERROR_INVALID_CONFIG "org.smimed1.Error.InvalidConfig" /* -EUCLEAN */
#define SMIMED_ERROR_INVALID_ARGUMENT "org.smimed1.Error.InvalidArgument" /* -EINVAL */
#define SMIMED_ERROR_INVALID_FORMAT "org.smimed1.Error.InvalidFormat" /* -EMEDIUMTYPE */
#define SMIMED_ERROR_STORE_FAILED "org.smimed1.Error.StoreFailed" /* -EIO */
#define SMIMED_ERROR_BAD_PASSPHRASE "org.smimed1.Error.BadPassphrase" /* -EBADE */
#define SMIMED_ERROR_TIMEOUT "org.smimed1.Error.Timeout" /* -ETIMEDOUT */
/* A per-client or overall limit of smimed was reached ([Policy] MaxCallsPerClient=,
 * SpoolQuota=, …): that client only; others go on. */
#define SMIMED_ERROR_LIMITS_EXCEEDED "org.smimed1.Error.LimitsExceeded" /* -EUSERS */
/* The sandboxed process doing a message's work crashed, was killed at a
 * resource limit, or did not answer in time: that call only; try again, or
 * report the message (smimed logged its SHA-256). */
#define SMIMED_ERROR_WORKER_FAILED "org.smimed1.Error.WorkerFailed" /* -ECHILD */
/* The certificate store's server (PostgreSQL) cannot be reached: nothing was
 * changed; smimed connects again by itself, try later. */
#define SMIMED_ERROR_STORE_UNAVAILABLE "org.smimed1.Error.StoreUnavailable" /* -ENOTCONN */
