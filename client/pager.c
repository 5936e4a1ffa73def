/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "pager.h"

static pid_t pager_pid = 0;

static const char *pager_command(void) {
        const char *p = getenv("SMIMECTL_PAGER");

        if (!p)
                p = getenv("PAGER");
        return p;
}

/* In the child: the pager, or a copy of its input when none runs. */
__attribute__((noreturn)) static void run_pager(const char *command) {
        char buf[4096];
        ssize_t n;

        (void) setenv("LESS", "FRXMK", 0);
        if (command)
                execl("/bin/sh", "sh", "-c", command, (char *) NULL);
        else {
                execlp("less", "less", (char *) NULL);
                execlp("more", "more", (char *) NULL);
        }
        while ((n = read(STDIN_FILENO, buf, sizeof(buf))) > 0)
                if (write(STDOUT_FILENO, buf, (size_t) n) != n)
                        break;
        _exit(EXIT_SUCCESS);
}

void pager_open(void) {
        const char *command = pager_command();
        int fds[2];
        pid_t pid;

        if (pager_pid > 0 || !isatty(STDOUT_FILENO))
                return;
        if (command && (!command[0] || streq(command, "cat")))
                return;
        if (pipe2(fds, 0) < 0)
                return;

        fflush(stdout);
        pid = fork();
        if (pid < 0) {
                close(fds[0]);
                close(fds[1]);
                return;
        }
        if (pid == 0) {
                if (dup2(fds[0], STDIN_FILENO) < 0)
                        _exit(EXIT_FAILURE);
                close(fds[0]);
                close(fds[1]);
                run_pager(command);
        }

        /* The terminal is the pager's now; what smimectl writes goes to it.
         * stderr stays on the terminal, as systemctl's does. */
        if (dup2(fds[1], STDOUT_FILENO) < 0) {
                close(fds[0]);
                close(fds[1]);
                kill(pid, SIGTERM);
                (void) waitpid(pid, NULL, 0);
                return;
        }
        close(fds[0]);
        close(fds[1]);
        pager_pid = pid;
        atexit(pager_close);
}

void pager_close(void) {
        if (pager_pid <= 0)
                return;
        fflush(stdout);
        /* The pager sees the end of its input. */
        (void) fclose(stdout);
        while (waitpid(pager_pid, NULL, 0) < 0 && errno == EINTR)
                ;
        pager_pid = 0;
}
