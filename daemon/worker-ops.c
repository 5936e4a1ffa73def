/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>

#include "work-open.h"
#include "work-requests.h"
#include "work-smime.h"
#include "worker-ops.h"

/* WORKER_PING: the string back. */
static int handle_ping(WorkerSession *s, WorkerMessage *request, WorkerMessage *reply) {
        _cleanup_free_ char *text = NULL;
        int r;

        r = worker_message_get_string(request, &text);
        if (r < 0)
                return r;
        worker_message_put_string(reply, text);
        return 0;
}

const WorkerOp worker_ops[] = {
        { WORKER_PING, handle_ping },
        { WORK_OPEN_LAYER, work_open_layer },
        { WORK_OPEN_DECRYPT, work_open_decrypt },
        { WORK_OPEN_ASSEMBLE, work_open_assemble },
        { WORK_SMIME_OUT, work_smime_out },
};

const size_t worker_ops_count = ELEMENTSOF(worker_ops);
