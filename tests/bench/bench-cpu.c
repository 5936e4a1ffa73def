/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench-cpu.h"

/* CPU time, in clock ticks. */

/* utime+stime of /proc/PID/stat (or /proc/PID/task/TID/stat); its parent in
 * *ret_ppid. Negative when it is gone. */
static long long stat_ticks(const char *path, pid_t *ret_ppid) {
        char buf[1024], *p;
        unsigned long long utime, stime;
        int ppid;
        size_t n;
        FILE *f = fopen(path, "re");

        if (!f)
                return -1;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        /* After the command's ")": state, ppid, then utime and stime are the 12th and 13th. */
        p = strrchr(buf, ')');
        if (!p || sscanf(p + 1, " %*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ppid, &utime, &stime) != 3)
                return -1;
        if (ret_ppid)
                *ret_ppid = ppid;
        return (long long) (utime + stime);
}

static long long pid_ticks(pid_t pid) {
        char path[64];

        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        return stat_ticks(path, NULL);
}

static long long thread_ticks(pid_t pid, pid_t tid) {
        char path[96];

        snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int) pid, (int) tid);
        return stat_ticks(path, NULL);
}

typedef struct Proc {
        pid_t pid, ppid;
        long long ticks;
} Proc;

typedef struct ProcTable {
        Proc *procs;
        size_t n;
} ProcTable;

static void proc_table_read(ProcTable *t) {
        DIR *d = opendir("/proc");
        struct dirent *de;

        t->n = 0;
        if (!d)
                return;
        while ((de = readdir(d))) {
                char path[300];
                pid_t ppid = 0;
                long long ticks;

                if (!isdigit((unsigned char) de->d_name[0]))
                        continue;
                snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
                ticks = stat_ticks(path, &ppid);
                if (ticks < 0)
                        continue;
                if (t->n % 256 == 0) {
                        Proc *procs = realloc(t->procs, (t->n + 256) * sizeof(Proc));

                        if (!procs)
                                break;
                        t->procs = procs;
                }
                t->procs[t->n++] = (Proc){.pid = (pid_t) atoi(de->d_name), .ppid = ppid, .ticks = ticks};
        }
        closedir(d);
}

static bool descends_from(const ProcTable *t, pid_t pid, pid_t root) {
        for (unsigned depth = 0; depth < 64 && pid > 1; depth++) {
                bool found = false;

                if (pid == root)
                        return true;
                for (size_t i = 0; i < t->n && !found; i++)
                        if (t->procs[i].pid == pid) {
                                pid = t->procs[i].ppid;
                                found = true;
                        }
                if (!found)
                        return false;
        }
        return pid == root;
}

static const Proc *proc_find(const ProcTable *t, pid_t pid) {
        for (size_t i = 0; i < t->n; i++)
                if (t->procs[i].pid == pid)
                        return &t->procs[i];
        return NULL;
}

/* What the processes below root (not root itself) spent between the two
 * tables: those that started meanwhile count whole, those gone are lost. */
static long long descendants_ticks(const ProcTable *before, const ProcTable *after, pid_t root) {
        long long sum = 0;

        for (size_t i = 0; i < after->n; i++) {
                const Proc *p = &after->procs[i], *q;

                if (p->pid == root || !descends_from(after, p->pid, root))
                        continue;
                q = proc_find(before, p->pid);
                sum += p->ticks - (q ? q->ticks : 0);
        }
        return sum;
}

/* Busy and total jiffies of all CPUs, from /proc/stat. */
static void machine_ticks(long long *ret_busy, long long *ret_total) {
        unsigned long long v[8] = {};
        FILE *f = fopen("/proc/stat", "re");

        *ret_busy = *ret_total = 0;
        if (!f)
                return;
        if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
                   &v[7]) == 8) {
                for (size_t i = 0; i < 8; i++)
                        *ret_total += (long long) v[i];
                *ret_busy = *ret_total - (long long) (v[3] + v[4]); /* less idle and iowait */
        }
        fclose(f);
}

/* The measured window's CPU, filled in by bench_rate_window(). */
typedef struct CpuWindow {
        pid_t smimed, bus;
        uint64_t start_usec, end_usec;
        long long smimed_ticks[2], loop_ticks[2], bus_ticks[2], self_ticks[2], busy[2], total[2];
        ProcTable procs[2];
} CpuWindow;

static void cpu_window_at(void *userdata, bool end) {
        CpuWindow *w = userdata;
        int i = end ? 1 : 0;

        /* The whole machine's counters first and last: they frame the rest. */
        if (!end)
                machine_ticks(&w->busy[0], &w->total[0]);
        w->self_ticks[i] = pid_ticks(getpid());
        if (w->smimed > 0) {
                w->smimed_ticks[i] = pid_ticks(w->smimed);
                w->loop_ticks[i] = thread_ticks(w->smimed, w->smimed);
        }
        if (w->bus > 0)
                w->bus_ticks[i] = pid_ticks(w->bus);
        proc_table_read(&w->procs[i]);
        if (i == 0)
                w->start_usec = bench_now_usec();
        else {
                w->end_usec = bench_now_usec();
                machine_ticks(&w->busy[1], &w->total[1]);
        }
}

static BenchCpu cpu_window_figures(const CpuWindow *w) {
        double hz = (double) sysconf(_SC_CLK_TCK), seconds = (double) (w->end_usec - w->start_usec) / 1e6;
        double k = seconds > 0 ? 100.0 / (hz * seconds) : 0;
        BenchCpu c = {};
        long long workers = 0, bus = 0;

        if (w->smimed > 0)
                workers = descendants_ticks(&w->procs[0], &w->procs[1], w->smimed);
        if (w->bus > 0)
                bus = w->bus_ticks[1] - w->bus_ticks[0] + descendants_ticks(&w->procs[0], &w->procs[1], w->bus);
        c.smimed = (double) (w->smimed_ticks[1] - w->smimed_ticks[0] + workers) * k;
        c.loop = (double) (w->loop_ticks[1] - w->loop_ticks[0]) * k;
        c.workers = (double) workers * k;
        c.bus = (double) bus * k;
        c.clients = (double) (w->self_ticks[1] - w->self_ticks[0]) * k;
        c.machine = w->total[1] > w->total[0]
                            ? 100.0 * (double) (w->busy[1] - w->busy[0]) / (double) (w->total[1] - w->total[0])
                            : 0;
        return c;
}

static void cpu_window_free(CpuWindow *w) {
        free(w->procs[0].procs);
        free(w->procs[1].procs);
}

double bench_rate_cpu(const BenchOps *ops, void *arg, unsigned threads, double warmup, double seconds,
                      const Harness *h, BenchCpu *ret) {
        CpuWindow w = {.smimed = h->smimed_pid, .bus = h->dbus_pid};
        double rate = bench_rate_window(ops, arg, threads, warmup, seconds, cpu_window_at, &w);

        *ret = cpu_window_figures(&w);
        cpu_window_free(&w);
        return rate;
}

double bench_cpu_us_per_op(double percent, double rate) {
        return rate > 0 ? percent * 1e4 / rate : 0;
}

void bench_print_time_per_op(const char *what, double rate, const BenchCpu *c) {
        double per_op = rate > 0 ? 1e6 / rate : 0;
        double threads = c->smimed - c->loop - c->workers;
        double sum = bench_cpu_us_per_op(c->smimed + c->bus + c->clients, rate);

        printf("%s: %.0f us a call; CPU a call: smimed %.0f us (its loop %.0f, its threads %.0f, its worker "
               "processes %.0f), the bus %.0f, the client %.0f; together %.0f us, %.0f %% of the call\n",
               what, per_op, bench_cpu_us_per_op(c->smimed, rate), bench_cpu_us_per_op(c->loop, rate),
               bench_cpu_us_per_op(threads > 0 ? threads : 0, rate), bench_cpu_us_per_op(c->workers, rate),
               bench_cpu_us_per_op(c->bus, rate), bench_cpu_us_per_op(c->clients, rate), sum,
               per_op > 0 ? 100.0 * sum / per_op : 0);
}
