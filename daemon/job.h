/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include "audit.h"
#include "client.h"
#include "smimed-error.h"

typedef struct FdReader FdReader;
typedef struct FdWriter FdWriter;
typedef struct Manager Manager;
typedef struct Job Job;

/* The one path of a message operation (Sign, Encrypt, Decrypt, Verify):
 * the caller's input is spooled on the loop (within [Policy]
 * IOTimeoutSec=, MaxMessageSize= and the client's spool quota), each step
 * of the work runs on a worker thread, whose worker process does the
 * message work, and comes back to the loop, the result is written to the
 * caller's output fd; a client that leaves cancels its jobs; a job ends
 * exactly once. The operations are JobTypes; each embeds a Job as its
 * first member. */

typedef struct JobType {
        const char *name; /* "Sign", "Decrypt", …: for the log */
        /* The input is in job->input: plan, then job_submit() (or job_finish()). */
        void (*spooled)(Job *job);
        /* On a worker thread: the step job_submit() asked for. */
        int (*work)(Job *job);
        /* Back on the loop with what work() returned: first job_abandoned(),
         * then the next step, job_write_result() or job_finish(). */
        void (*worked)(Job *job, int r);
        /* The job ends (error < 0: failed, with error_code and message): the
         * audit record and the caller's answer. Called once. */
        void (*finished)(Job *job, int error, SmimedError error_code, const char *message);
        /* Frees the operation's struct, calling job_done() for the Job in it. */
        void (*free)(Job *job);
} JobType;

struct Job {
        Manager *manager;
        const JobType *type;
        AuditCaller caller; /* its sender names the client: limits, turns, cancellation */
        char *spool_dir;
        int input;           /* the spooled message */
        bool input_shared;   /* input is a duplicate of the caller's sealed memfd, sharing its offset: the
                              * first step on a thread makes it the job's own (the loop only reads its size) */
        int output;          /* the caller's output fd (a duplicate), or -1: none */
        int result;          /* what job_write_result() writes to output (from its start to its end) */
        ClientCharge charge; /* the input's bytes, against the spool quotas */
        FdReader *reader;
        FdWriter *writer;
        bool on_worker;   /* a worker thread has it, or will */
        bool client_gone; /* finish when the worker is done, without the output */
        Job *next;
};

/* Spools input_fd and keeps a duplicate of output_fd; type->spooled() runs
 * when the input is in. output_fd -1: the caller takes the result from
 * job->result in type->finished() (the *Data methods put it in their reply)
 * and nothing is written. On success the job is the manager's (its list,
 * its count of jobs); on failure nothing is started and the caller frees
 * it. */
int job_start(Job *job, Manager *m, const JobType *type, const AuditCaller *caller, int input_fd, int output_fd);

/* Hands the job to a worker thread for type->work(); when that cannot be
 * done, finishes it. */
void job_submit(Job *job);

/* For type->worked(): a job whose client left finishes here (true). */
bool job_abandoned(Job *job);

/* Writes job->result to the caller's output; the job finishes when it is
 * written or cannot be (at once when there is no output fd). */
void job_write_result(Job *job);

/* Ends the job: type->finished(), then it is freed. */
void job_finish(Job *job, int error, SmimedError error_code, const char *message);

/* The Job's own part of type->free(). */
void job_done(Job *job);
/* Takes fd, a spool file of the job's that it is done with, and closes it
 * (worker_pool_close_later(): off the loop when a worker thread runs). */
void job_close_spool(Job *job, int fd);

/* The client sender went away: its jobs finish with -ECONNRESET (one on a
 * worker when that returns) and write no output. Returns how many. */
unsigned jobs_cancel_sender(Manager *m, const char *sender);
/* At exit: every job freed, without an answer. */
void jobs_free(Manager *m);

/* The error and message of an fd the caller gave that failed: its input
 * (input true) or output. -ETIMEDOUT is Timeout naming IOTimeoutSec=; the
 * rest InvalidArgument. Returns error. */
int job_io_fail(Manager *m, int error, bool input, SmimedError *ret_error_code, char **ret_message);
