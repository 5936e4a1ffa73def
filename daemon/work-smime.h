/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "worker-ops.h"

/* The smimed-worker side of Sign and Encrypt (work-requests.h): the input
 * split into outer fields and entity, the entity made canonical, signed
 * with a key smimed holds and/or encrypted, the outer fields put back in
 * front. Which certificates and key is smimed's business. */

int work_smime_out(WorkerSession *s, WorkerMessage *request, WorkerMessage *reply);
