/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "bench-util.h"

/* What the harness's processes spent while a rate was measured (from
 * utime+stime in /proc, so to the clock tick): smimed (all its threads and
 * its smimed-worker processes), of that its loop thread and its worker
 * processes, the bus daemon (dbus-daemon, or dbus-broker-launch and
 * dbus-broker), the clients (this process), and the whole machine. In % of
 * one CPU, as top(1) shows it; machine: the busy share of all CPUs. */
typedef struct BenchCpu {
        double smimed, loop, workers, bus, clients, machine;
} BenchCpu;

/* bench_rate_window() with the CPU of the measured seconds in *ret. */
double bench_rate_cpu(const BenchOps *ops, void *arg, unsigned threads, double warmup, double seconds,
                      const Harness *h, BenchCpu *ret);

/* CPU an op in µs, from percent % of one CPU at rate ops/s (0 at no rate). */
double bench_cpu_us_per_op(double percent, double rate);

/* One line: the time of one op at rate (1 client: the time a call takes)
 * and the CPU each process spent on it, with their sum. With one client a
 * sum near the whole time says the call is a chain of work handed from
 * process to process, not waiting: only less work makes it faster. */
void bench_print_time_per_op(const char *what, double rate, const BenchCpu *c);
