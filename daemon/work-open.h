/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "worker-ops.h"

/* The smimed-worker side of Decrypt and Verify (work-requests.h): reading a
 * layer, checking a signature's integrity, decrypting with a key smimed
 * holds, and putting the result together. Trust in the signer and the
 * choice of key are smimed's business. */

int work_open_layer(WorkerSession *s, WorkerMessage *request, WorkerMessage *reply);
int work_open_decrypt(WorkerSession *s, WorkerMessage *request, WorkerMessage *reply);
int work_open_assemble(WorkerSession *s, WorkerMessage *request, WorkerMessage *reply);
