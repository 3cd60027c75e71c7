/* signals.c -- the self-pipe trick, per process.
 *
 * libevent's evsignal keeps process-global state tied to one event_base,
 * which a forked worker inherits from the master and cannot cleanly drop.
 * This is the same mechanism made per process: the async-signal-safe
 * handler writes the signal number into a pipe; the loop reads it and
 * calls the handler. A worker simply closes the master's pipe and makes
 * its own after fork.
 */
#include "process/signals.h"
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static int signal_pipe[2] = { -1, -1 };
static struct event *signal_event;
static wsh_signal_handler_pt signal_handler;
static int signal_list[16];
static size_t signal_count;

static void
signals_on_signal(int signo)
{
    int saved = errno;
    u_char b = (u_char) signo;

    /* A full pipe loses only a duplicate of a pending signal. */
    (void) !write(signal_pipe[1], &b, 1);
    errno = saved;
}

static void
signals_read_cb(evutil_socket_t fd, short what, void *arg)
{
    u_char buf[64];
    ssize_t n, i;

    n = read(fd, buf, sizeof(buf));
    for (i = 0; i < n; i++) {
        signal_handler(buf[i]);
    }
}

void
wsh_signals_done(void)
{
    struct sigaction sa;
    size_t i;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    for (i = 0; i < signal_count; i++) {
        sigaction(signal_list[i], &sa, NULL);
    }
    signal_count = 0;
    if (signal_event != NULL) {
        event_free(signal_event);
        signal_event = NULL;
    }
    if (signal_pipe[0] != -1) {
        close(signal_pipe[0]);
        close(signal_pipe[1]);
        signal_pipe[0] = signal_pipe[1] = -1;
    }
}

int
wsh_signals_init(struct event_base *base, const int *sigs, size_t n,
    wsh_signal_handler_pt handler)
{
    struct sigaction sa;
    size_t i;

    /* Inherited from the master: forget, but never event_free() there. */
    signal_event = NULL;
    wsh_signals_done();
    if (n > wsh_nelems(signal_list)
        || pipe2(signal_pipe, O_NONBLOCK | O_CLOEXEC) == -1)
    {
        wsh_log(WSH_LOG_EMERG, "pipe2() failed: %s", strerror(errno));
        return WSH_ERROR;
    }
    signal_handler = handler;
    signal_event = event_new(base, signal_pipe[0], EV_READ | EV_PERSIST,
                             signals_read_cb, NULL);
    if (signal_event == NULL || event_add(signal_event, NULL) != 0) {
        wsh_log(WSH_LOG_EMERG, "event_new() for signals failed");
        return WSH_ERROR;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = signals_on_signal;
    sa.sa_flags = SA_RESTART;
    sigfillset(&sa.sa_mask);
    for (i = 0; i < n; i++) {
        if (sigaction(sigs[i], &sa, NULL) == -1) {
            wsh_log(WSH_LOG_EMERG, "sigaction(%d) failed: %s", sigs[i],
                    strerror(errno));
            return WSH_ERROR;
        }
        signal_list[signal_count++] = sigs[i];
    }
    return WSH_OK;
}
