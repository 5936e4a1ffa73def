/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "macro.h"
#include "passphrase.h"

/* Reads the first line of fd. Reads in blocks (the rest of the input is not
 * wanted) into one buffer, which is wiped behind the line. */
static int read_first_line(int fd, bool need_line, char **ret) {
        const size_t size = PASSPHRASE_MAX + 2; /* the line, "\n" or one byte too many, NUL */
        char *buf, *newline = NULL;
        size_t n = 0;
        int r = 0;

        buf = calloc(1, size);
        if (!buf)
                return -ENOMEM;

        while (n < size - 1) {
                ssize_t k = read(fd, buf + n, size - 1 - n);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        r = -errno;
                        break;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
                newline = memchr(buf, '\n', n);
                if (newline)
                        break;
        }

        if (r >= 0) {
                size_t line = newline ? (size_t) (newline - buf) : n;

                if (line > 0 && buf[line - 1] == '\r')
                        line--;
                if (n == 0 && need_line)
                        r = -ENODATA;
                else if (line > PASSPHRASE_MAX)
                        r = -E2BIG;
                else if (memchr(buf, '\0', line))
                        r = -EBADMSG;
                explicit_bzero(buf + line, size - line);
        }
        if (r < 0) {
                explicit_bzero(buf, size);
                free(buf);
                return r;
        }
        *ret = buf;
        return 0;
}

int passphrase_from_file(const char *path, char **ret) {
        _cleanup_(closep) int fd = -1;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        return read_first_line(fd, false, ret);
}

int passphrase_from_stdin(char **ret) {
        return read_first_line(STDIN_FILENO, true, ret);
}

/* What the signal handlers need to put the terminal back. */
static int prompt_fd = -1;
static struct termios prompt_saved, prompt_quiet;
static const char *prompt_text;
static struct sigaction prompt_action;

static const int prompt_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP, SIGCONT };

/* Echo back on, then the signal's default action: end, or stop. */
static void on_signal(int sig) {
        int saved_errno = errno;

        (void) tcsetattr(prompt_fd, TCSANOW, &prompt_saved);
        if (sig == SIGCONT) {
                /* Back in the foreground after a stop: quiet again, and ask again. */
                (void) tcsetattr(prompt_fd, TCSANOW, &prompt_quiet);
                (void) !write(prompt_fd, prompt_text, strlen(prompt_text));
        } else if (sig == SIGTSTP) {
                sigset_t set;

                (void) signal(SIGTSTP, SIG_DFL);
                sigemptyset(&set);
                sigaddset(&set, SIGTSTP);
                (void) raise(SIGTSTP);
                (void) sigprocmask(SIG_UNBLOCK, &set, NULL); /* stops here until SIGCONT */
                (void) sigprocmask(SIG_BLOCK, &set, NULL);
                (void) sigaction(SIGTSTP, &prompt_action, NULL);
        } else {
                (void) signal(sig, SIG_DFL);
                (void) raise(sig); /* delivered when the handler returns */
        }
        errno = saved_errno;
}

static void prompt_signals_set(struct sigaction *old, bool install) {
        prompt_action = (struct sigaction) { .sa_handler = on_signal, .sa_flags = SA_RESTART };
        sigemptyset(&prompt_action.sa_mask);
        for (size_t i = 0; i < ELEMENTSOF(prompt_signals); i++)
                sigaddset(&prompt_action.sa_mask, prompt_signals[i]);

        for (size_t i = 0; i < ELEMENTSOF(prompt_signals); i++)
                (void) sigaction(prompt_signals[i], install ? &prompt_action : &old[i], install ? &old[i] : NULL);
}

int passphrase_prompt(const char *prompt, char **ret) {
        struct sigaction old[ELEMENTSOF(prompt_signals)];
        _cleanup_(closep) int fd = -1;
        int r;

        fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        if (tcgetattr(fd, &prompt_saved) < 0)
                return -errno;
        prompt_quiet = prompt_saved;
        prompt_quiet.c_lflag &= ~(tcflag_t) (ECHO | ECHOE | ECHOK | ECHONL);
        prompt_quiet.c_lflag |= ICANON;
        prompt_fd = fd;
        prompt_text = prompt;

        prompt_signals_set(old, true);
        if (write(fd, prompt, strlen(prompt)) < 0 || tcsetattr(fd, TCSAFLUSH, &prompt_quiet) < 0)
                r = -errno;
        else
                r = read_first_line(fd, false, ret);
        /* TCSAFLUSH: what was typed beyond the line must not reach the shell. */
        (void) tcsetattr(fd, TCSAFLUSH, &prompt_saved);
        prompt_signals_set(old, false);
        prompt_fd = -1;

        (void) !write(fd, "\n", 1); /* the user's Enter was not echoed */
        return r;
}
