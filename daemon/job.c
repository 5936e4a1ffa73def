/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>

#include "fd-reader.h"
#include "fd-util.h"
#include "fd-writer.h"
#include "job.h"
#include "log.h"
#include "manager.h"
#include "message.h"
#include "spool.h"
#include "worker-pool.h"

int job_io_fail(Manager *m, int error, bool input, SmimedError *ret_error_code, char **ret_message) {
        uint64_t usec = m->config->io_timeout_usec;

        if (error == -ETIMEDOUT) {
                *ret_error_code = SMIMED_ERR_TIMEOUT;
                return message_fail(ret_message, error,
                                    input ? "The input did not reach its end within [Policy] IOTimeoutSec=%llu.%06llu."
                                          : "The output was not taken within [Policy] IOTimeoutSec=%llu.%06llu.",
                                    (unsigned long long) (usec / 1000000ULL),
                                    (unsigned long long) (usec % 1000000ULL));
        }
        *ret_error_code = SMIMED_ERR_INVALID_ARGUMENT;
        return message_fail(ret_message, error,
                            input ? "The input cannot be read: %m" : "The output cannot be written: %m");
}

void job_done(Job *job) {
        if (!job->type) /* job_start() never ran: nothing of it to free */
                return;
        job->reader = fd_reader_free(job->reader);
        job->writer = fd_writer_free(job->writer);
        client_charge_done(&job->charge);
        job->spool_dir = mfree(job->spool_dir);
        closep(&job->output);
        job_close_spool(job, TAKE_FD(job->input));
        job_close_spool(job, TAKE_FD(job->result));
}

void job_close_spool(Job *job, int fd) {
        worker_pool_close_later(job->manager ? job->manager->workers : NULL, fd);
}

static void job_unlink(Job *job) {
        for (Job **i = &job->manager->jobs; *i; i = &(*i)->next)
                if (*i == job) {
                        *i = job->next;
                        return;
                }
}

void job_finish(Job *job, int error, SmimedError error_code, const char *message) {
        Manager *m = job->manager;

        job_unlink(job);
        job->type->finished(job, error, error_code, message);
        job->type->free(job);
        manager_job_ended(m);
}

void jobs_free(Manager *m) {
        while (m->jobs) {
                Job *job = m->jobs;

                m->jobs = job->next;
                job->type->free(job);
        }
}

unsigned jobs_cancel_sender(Manager *m, const char *sender) {
        unsigned n = 0;

        for (Job *job = m->jobs, *next; job; job = next) {
                next = job->next;
                if (!streq(job->caller.sender, sender))
                        continue;
                n++;
                if (job->on_worker)
                        job->client_gone = true; /* a worker holds it: job_abandoned() finishes it */
                else
                        job_finish(job, -ECONNRESET, 0, "The client went away.");
        }
        return n;
}

/* ---- the steps on worker threads ---- */

/* A caller's sealed memfd (job_start()) becomes the job's own file on its
 * first step here: opened again read-only, with an offset of its own, or,
 * where /proc cannot do that, copied into a spool file. */
static int job_own_input(Job *job) {
        _cleanup_(closep) int fd = -1;
        int r;

        if (!job->input_shared)
                return 0;
        fd = fd_reopen_read_only(job->input);
        if (fd < 0) {
                fd = spool_tmpfile_sized(job->spool_dir, fd_size_hint(job->input));
                if (fd < 0)
                        return fd;
                r = fd_copy_all(job->input, fd);
                if (r < 0)
                        return r;
        }
        closep(&job->input);
        job->input = TAKE_FD(fd);
        job->input_shared = false;
        return 0;
}

static int job_work(void *userdata) {
        Job *job = userdata;
        int r;

        r = job_own_input(job);
        if (r < 0)
                return r;
        return job->type->work(job);
}

static void job_worked(int r, void *userdata) {
        Job *job = userdata;

        job->on_worker = false;
        job->type->worked(job, r);
}

void job_submit(Job *job) {
        Manager *m = job->manager;
        int r;

        job->on_worker = true;
        r = worker_pool_submit(m->workers, client_id(m->clients, job->caller.sender), job_work, job_worked, job);
        if (r < 0) {
                _cleanup_free_ char *message = NULL;

                job->on_worker = false;
                (void) message_fail(&message, r, "Cannot hand the message to a worker: %m");
                job_finish(job, r, 0, message);
        }
}

bool job_abandoned(Job *job) {
        if (!job->client_gone)
                return false;
        job_finish(job, -ECONNRESET, 0, "The client went away before the result was written.");
        return true;
}

/* ---- output ---- */

static void on_written(FdWriter *writer, int error, void *userdata) {
        Job *job = userdata;
        _cleanup_free_ char *message = NULL;
        SmimedError error_code = 0;

        (void) writer;
        if (error < 0) {
                job_io_fail(job->manager, error, false, &error_code, &message);
                job_finish(job, error, error_code, message);
                return;
        }
        job_finish(job, 0, 0, NULL);
}

void job_write_result(Job *job) {
        Manager *m = job->manager;
        int r;

        if (job->output < 0) {
                job_finish(job, 0, 0, NULL);
                return;
        }
        r = fd_writer_new(m->event, job->result, TAKE_FD(job->output), m->config->io_timeout_usec, on_written, job,
                          &job->writer);
        if (r < 0) {
                _cleanup_free_ char *message = NULL;

                (void) message_fail(&message, r, "The output cannot be written: %m");
                job_finish(job, r, SMIMED_ERR_INVALID_ARGUMENT, message);
        }
}

/* ---- input ---- */

static int charge_input(size_t n, void *userdata) {
        Job *job = userdata;

        return client_charge_add(&job->charge, n);
}

static void on_spooled(FdReader *reader, int error, void *userdata) {
        Job *job = userdata;
        _cleanup_free_ char *message = NULL;
        SmimedError error_code = 0;

        if (error == 0)
                log_debug("%s for %s: %zu bytes read.", job->type->name, job->caller.sender, fd_reader_size(reader));
        job->reader = fd_reader_free(job->reader);
        if (error == -EFBIG) {
                (void) message_fail(&message, error,
                                    "The message is larger than [Policy] MaxMessageSize= (%llu bytes).",
                                    (unsigned long long) job->manager->config->max_message_size);
                job_finish(job, error, SMIMED_ERR_INVALID_MESSAGE, message);
                return;
        }
        if (error == -EDQUOT) {
                job_finish(job, error, SMIMED_ERR_LIMITS_EXCEEDED, job->charge.message);
                return;
        }
        if (error < 0) {
                job_io_fail(job->manager, error, true, &error_code, &message);
                job_finish(job, error, error_code, message);
                return;
        }
        job->type->spooled(job);
}

int job_start(Job *job, Manager *m, const JobType *type, const AuditCaller *caller, int input_fd, int output_fd) {
        uint64_t size;
        int r;

        *job = (Job){
                .manager = m,
                .type = type,
                .caller = *caller,
                .input = -1,
                .output = -1,
                .result = -1,
        };
        job->spool_dir = spool_dir_for(m->config->store_path);
        if (!job->spool_dir)
                return -ENOMEM;
        if (output_fd >= 0) {
                job->output = fcntl(output_fd, F_DUPFD_CLOEXEC, 3);
                if (job->output < 0)
                        return -errno;
        }
        r = client_charge_init(&job->charge, m->clients, job->caller.sender);
        if (r < 0)
                return r;
        /* A sealed memfd (libsmimed's, a *Data call's) cannot change: the
         * worker reads it as it is, nothing is copied. Anything else is
         * spooled. */
        job->input = fd_take_sealed(input_fd, &size);
        if (job->input >= 0) {
                job->input_shared = true; /* until job_own_input() */
                log_debug("%s for %s: a sealed memfd of %" PRIu64 " bytes, not copied.", type->name, caller->sender,
                          size);
                r = fd_reader_new_whole(m->event, size, m->config->max_message_size, charge_input, on_spooled, job,
                                        &job->reader);
        } else {
                job->input = spool_tmpfile_sized(job->spool_dir, fd_size_hint(input_fd));
                if (job->input < 0)
                        return job->input;
                r = fd_reader_new_to_file(m->event, input_fd, job->input, m->config->max_message_size,
                                          m->config->io_timeout_usec, charge_input, on_spooled, job, &job->reader);
        }
        if (r < 0)
                return r;

        job->next = m->jobs;
        m->jobs = job;
        manager_job_started(m);
        return 0;
}
