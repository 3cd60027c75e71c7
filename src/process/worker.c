/* worker.c -- a worker process: accept, serve, drain, exit.
 *
 * Forked by the master with the cycle (config and listening sockets)
 * already built. Everything libevent-related is created here, after the
 * fork: the master's event_base belongs to the master and is never
 * touched (freeing it here would delete the master's epoll registrations,
 * which the two processes share).
 */
#include "process/worker.h"
#include "process/channel.h"
#include "process/signals.h"
#include "core/log.h"
#include "core/module.h"
#include "core/stats.h"
#include "net/conn.h"
#include "net/conn_member.h"
#include "net/pending.h"
#include "engine/engine.h"
#include "engine/local.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

wsh_worker_t wsh_worker;

static void worker_conn_gone(void);

/* What the connections tell the layers above them. */
static const wsh_conn_handler_t worker_conn_handler = {
    wsh_engine_conn_closed,
    worker_conn_gone
};

/* What the engine may do with connections (engine.h). */
static const wsh_engine_conn_ops_t worker_engine_conns = {
    .frame = wsh_shared_frame_new,
    .frame_hold = wsh_shared_frame_hold,
    .frame_release = wsh_shared_frame_release,
    .deliver = wsh_conn_deliver,
    .open = wsh_conn_is_open,
    .closed = wsh_conn_is_closed,
    .module = wsh_conn_module,
    .topics = wsh_conn_topics,
    .acks = wsh_conn_acks,
    .find = wsh_conn_find,
};

static struct bufferevent *worker_chan;     /* to the master */
static struct evconnlistener **worker_listeners;
static size_t worker_nlisteners;
static struct event *worker_exit_timer;
static bool worker_exiting;
static unsigned worker_accept_failures;    /* since the last success */

static void
worker_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int len, void *arg)
{
    (void) l;
    if (worker_accept_failures != 0) {
        wsh_log(WSH_LOG_NOTICE, "accept() works again after %u failed "
                "attempts", worker_accept_failures);
        worker_accept_failures = 0;
    }
    wsh_conn_accept(fd, sa, (socklen_t) len, arg);
}

static void
worker_resume_accept(evutil_socket_t fd, short what, void *arg)
{
    evconnlistener_enable(arg);
}

/* accept() failed: out of descriptors most likely. Pause this listener
 * for a moment instead of spinning on a socket that stays readable. */
static void
worker_accept_error_cb(struct evconnlistener *l, void *arg)
{
    struct timeval tv = { 0, 200 * 1000 };
    int err = EVUTIL_SOCKET_ERROR();

    /* Logged once per episode: the retries every 200ms would otherwise
     * fill the log for as long as descriptors stay short. */
    if (worker_accept_failures++ == 0) {
        wsh_log(WSH_LOG_CRIT, "accept() failed: %s, pausing accept for "
                "200ms at a time until it works",
                evutil_socket_error_to_string(err));
    }
    evconnlistener_disable(l);
    event_base_once(wsh_worker.base, -1, EV_TIMEOUT, worker_resume_accept, l,
                    &tv);
}

static void
worker_close_listeners(void)
{
    size_t i;

    for (i = 0; i < worker_nlisteners; i++) {
        if (worker_listeners[i] != NULL) {
            evconnlistener_free(worker_listeners[i]);
            worker_listeners[i] = NULL;
        }
    }
}

static void
worker_exit_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    wsh_log(WSH_LOG_NOTICE, "shutdown_timeout expired with %u connections "
            "left, closing them", wsh_worker.nconns);
    wsh_conn_terminate_all();
    worker_exiting = true;
}

void
wsh_worker_drain(int code)
{
    struct timeval tv;

    if (wsh_worker.draining) {
        return;
    }
    wsh_log(WSH_LOG_NOTICE, "draining %u connections (close %d)",
            wsh_worker.nconns, code);
    wsh_worker.draining = true;
    wsh_worker.drain_code = code;
    /* On a reload the new generation takes the new connections at once.
     * On a stop nobody will: keep accepting until the last WebSocket is
     * gone, answering upgrades and /health with 503, so load balancers
     * see "draining" rather than a silent backlog. */
    if (code == WSH_CLOSE_RESTART) {
        worker_close_listeners();
    }
    wsh_conn_drain_all(code);
    tv.tv_sec = (time_t) (wsh_worker.conf->shutdown_timeout / 1000);
    tv.tv_usec = (suseconds_t) (wsh_worker.conf->shutdown_timeout % 1000)
                 * 1000;
    evtimer_add(worker_exit_timer, &tv);
    worker_conn_gone();
}

void
wsh_server_info(wsh_server_info_t *info)
{
    info->version = WSH_VERSION;
    info->engine = wsh_engine_name();
    info->engine_up = wsh_engine_up();
    info->draining = wsh_worker.draining;
    info->worker = wsh_worker.id;
    info->workers = wsh_worker.conf->worker_processes;
    info->connections = wsh_worker.nwebsockets;
    info->uptime_ms = wsh_monotonic_msec() - wsh_worker.started;
    wsh_engine_info(info);
}

/* A connection is gone: exit if draining and none are left. */
static void
worker_conn_gone(void)
{
    if (!wsh_worker.draining && !worker_exiting) {
        return;
    }
    if (wsh_worker.nwebsockets == 0 && !worker_exiting
        && wsh_worker.drain_code != WSH_CLOSE_RESTART)
    {
        /* Stop: the last WebSocket is gone, so is the reason to answer
         * anyone: no more accepting, idle HTTP connections closed. A
         * request under way is answered first (its publish may be
         * acknowledged already), within handshake_timeout. */
        worker_exiting = true;
        worker_close_listeners();
        wsh_conn_close_idle(true);  /* back here when they are freed */
    }
    if (wsh_worker.nconns == 0) {
        event_base_loopbreak(wsh_worker.base);
    }
}

static void
worker_terminate(void)
{
    worker_close_listeners();
    wsh_conn_terminate_all();
    worker_exiting = true;
    wsh_worker.draining = true;
    worker_conn_gone();
}

static void
worker_command(uint32_t cmd)
{
    switch (cmd) {
    case WSH_CMD_QUIT:
        wsh_worker_drain(WSH_CLOSE_GOING_AWAY);
        break;
    case WSH_CMD_RESTART:
        wsh_worker_drain(WSH_CLOSE_RESTART);
        break;
    case WSH_CMD_TERMINATE:
        worker_terminate();
        break;
    case WSH_CMD_REOPEN:
        wsh_log_reopen();
        break;
    default:
        wsh_log(WSH_LOG_ALERT, "unknown channel command %u", cmd);
        break;
    }
}

/* The local engine's frames to the master (engine/local.h). */
static int
worker_to_master(uint32_t cmd, const struct iovec *iov, int n)
{
    return wsh_channel_write(worker_chan, cmd, iov, n);
}

static void
worker_channel_read_cb(struct bufferevent *bev, void *arg)
{
    wsh_channel_msg_t msg;
    u_char *payload;
    int rc;

    while ((rc = wsh_channel_next(bev, &msg, &payload)) == WSH_OK) {
        if (msg.cmd < WSH_ENG_FIRST) {
            worker_command(msg.cmd);
        } else {
            wsh_local_message(msg.cmd, payload, msg.len);
        }
        wsh_channel_consume(bev, &msg);
    }
    if (rc == WSH_ERROR) {
        wsh_log(WSH_LOG_ALERT, "malformed frame on the master channel");
        bufferevent_disable(bev, EV_READ);
    }
}

static void
worker_channel_event_cb(struct bufferevent *bev, short what, void *arg)
{
    /* EOF or error: the master died. Serve what we have politely, then
     * go. */
    wsh_log(WSH_LOG_ALERT, "the master process is gone, draining");
    bufferevent_disable(bev, EV_READ | EV_WRITE);
    wsh_worker_drain(WSH_CLOSE_GOING_AWAY);
}

static void
worker_signal_cb(int sig)
{
    switch (sig) {
    case SIGTERM:
    case SIGINT:
        worker_terminate();
        break;
    case SIGQUIT:
        wsh_worker_drain(WSH_CLOSE_GOING_AWAY);
        break;
    case SIGUSR1:
        wsh_log_reopen();
        break;
    }
}

static void
worker_dead_cb(evutil_socket_t fd, short what, void *arg)
{
    wsh_conn_free_dead();
}

/* Signals stay blocked from before the fork until the worker's own
 * handlers are in place, so none reaches the master's inherited setup.
 * The master-only ones are ignored after wsh_signals_init(), which
 * resets the master's to their defaults: a HUP sent to every process of
 * the service (systemctl kill -s HUP) must not kill the workers. */
static int
worker_init_signals(void)
{
    static const int sigs[] = { SIGTERM, SIGINT, SIGQUIT, SIGUSR1 };
    static const int ignored[] = { SIGHUP, SIGPIPE, SIGUSR2, SIGWINCH };
    struct sigaction sa;
    sigset_t set;
    size_t i;

    if (wsh_signals_init(wsh_worker.base, sigs, wsh_nelems(sigs),
                         worker_signal_cb) != WSH_OK)
    {
        return WSH_ERROR;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    for (i = 0; i < wsh_nelems(ignored); i++) {
        sigaction(ignored[i], &sa, NULL);
    }
    sa.sa_handler = SIG_DFL;
    sigaction(SIGCHLD, &sa, NULL);
    sigemptyset(&set);
    sigprocmask(SIG_SETMASK, &set, NULL);
    return WSH_OK;
}

static int
worker_init(wsh_cycle_t *cycle, int id, int channel)
{
    struct evconnlistener *l;
    size_t i;

    wsh_worker.cycle = cycle;
    wsh_worker.conf = cycle->conf;
    wsh_conf_use(cycle->conf);
    wsh_worker.started = wsh_monotonic_msec();
    wsh_worker.id = id;
    wsh_queue_init(&wsh_worker.conns);
    wsh_queue_init(&wsh_worker.handshakes);
    wsh_queue_init(&wsh_worker.pings);
    wsh_queue_init(&wsh_worker.drains);
    wsh_queue_init(&wsh_worker.closes);
    wsh_queue_init(&wsh_worker.dead);

    wsh_worker.base = event_base_new();
    if (wsh_worker.base == NULL) {
        wsh_log(WSH_LOG_EMERG, "event_base_new() failed");
        return WSH_ERROR;
    }
    wsh_worker.handshake_timer = evtimer_new(wsh_worker.base,
                                             wsh_conn_handshake_timer, NULL);
    wsh_worker.ping_timer = evtimer_new(wsh_worker.base, wsh_conn_ping_timer,
                                        NULL);
    wsh_worker.drain_timer = evtimer_new(wsh_worker.base,
                                         wsh_conn_drain_timer, NULL);
    wsh_worker.close_timer = evtimer_new(wsh_worker.base,
                                         wsh_conn_close_timer, NULL);
    wsh_worker.dead_event = event_new(wsh_worker.base, -1, 0, worker_dead_cb,
                                      NULL);
    worker_exit_timer = evtimer_new(wsh_worker.base, worker_exit_timer_cb,
                                    NULL);
    worker_chan = bufferevent_socket_new(wsh_worker.base, channel,
                                         BEV_OPT_CLOSE_ON_FREE);
    if (wsh_worker.handshake_timer == NULL || wsh_worker.ping_timer == NULL
        || wsh_worker.drain_timer == NULL || wsh_worker.close_timer == NULL
        || wsh_worker.dead_event == NULL || worker_exit_timer == NULL
        || worker_chan == NULL)
    {
        wsh_log(WSH_LOG_EMERG, "event_new() failed");
        return WSH_ERROR;
    }
    bufferevent_setcb(worker_chan, worker_channel_read_cb, NULL,
                      worker_channel_event_cb, NULL);
    bufferevent_enable(worker_chan, EV_READ | EV_WRITE);
    wsh_local_init_worker(worker_to_master);
    if (wsh_conn_init_worker(&worker_conn_handler) != WSH_OK) {
        wsh_log(WSH_LOG_EMERG, "epoll_create1() or malloc() failed: %s",
                strerror(errno));
        return WSH_ERROR;
    }
    if (worker_init_signals() != WSH_OK
        || wsh_engine_init_worker(&worker_engine_conns) != WSH_OK)
    {
        return WSH_ERROR;
    }

    worker_listeners = calloc(cycle->nlistening, sizeof(*worker_listeners));
    if (worker_listeners == NULL) {
        return WSH_ERROR;
    }
    for (i = 0; i < cycle->nlistening; i++) {
        if (cycle->listening[i].shard != -1
            && cycle->listening[i].shard != id)
        {
            /* Another worker's reuseport socket: holding it would keep
             * it in the kernel's group after its slot is gone. */
            close(cycle->listening[i].fd);
            cycle->listening[i].fd = -1;
            continue;
        }
        /* Close on free: this process's copy of the descriptor only; the
         * master keeps its own for the next generation. Backlog 0: the
         * socket already listens with the configured backlog (-1 would
         * have libevent call listen() again with 128, silently overriding
         * it; 8,000 connections at once then lost SYNs and waited 1 s). */
        l = evconnlistener_new(wsh_worker.base, worker_accept_cb,
                               &cycle->listening[i],
                               LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
                               0, cycle->listening[i].fd);
        if (l == NULL) {
            wsh_log(WSH_LOG_EMERG, "evconnlistener_new() failed for %s",
                    cycle->listening[i].addr.text);
            return WSH_ERROR;
        }
        evconnlistener_set_error_cb(l, worker_accept_error_cb);
        worker_listeners[worker_nlisteners++] = l;
    }
    return wsh_modules_init_worker();
}

/* The channel may still hold publishes this worker acknowledged (under
 * load, hundreds of KB): the master gets them before we go, however
 * long it takes it to read, up to shutdown_timeout. */
static void
worker_flush_channel(void)
{
    struct evbuffer *out = bufferevent_get_output(worker_chan);
    wsh_msec_t timeout = wsh_worker.conf->shutdown_timeout;
    size_t queued = evbuffer_get_length(out), left;

    if (queued == 0) {
        return;
    }
    left = wsh_channel_flush(worker_chan, timeout);
    if (left > 0) {
        wsh_log(WSH_LOG_ALERT, "exiting with %zu of %zu bytes for the "
                "master unsent (it exited, or did not read for %llums): "
                "messages of this worker's last clients are lost", left,
                queued, (unsigned long long) timeout);
    } else {
        wsh_log(WSH_LOG_INFO, "handed the master its last %zu bytes",
                queued);
    }
}

static void
worker_cleanup(void)
{
    wsh_modules_exit_worker();
    wsh_stats_exit_worker();
    worker_close_listeners();
    free(worker_listeners);
    wsh_signals_done();
    wsh_engine_exit_worker();
    worker_flush_channel();
    bufferevent_free(worker_chan);
    event_free(wsh_worker.handshake_timer);
    event_free(wsh_worker.ping_timer);
    event_free(wsh_worker.drain_timer);
    event_free(wsh_worker.close_timer);
    wsh_io_exit_worker();
    wsh_pending_free();
    event_free(wsh_worker.dead_event);
    event_free(worker_exit_timer);
    event_base_free(wsh_worker.base);
}

/* Set the worker's descriptor limit, then become the configured user:
 * the master may be root (to bind low ports), a worker never needs to. */
static int
worker_privileges(const wsh_conf_t *cf)
{
    struct rlimit rl;

    if (cf->worker_rlimit_nofile != 0) {
        rl.rlim_cur = rl.rlim_max = cf->worker_rlimit_nofile;
        if (setrlimit(RLIMIT_NOFILE, &rl) == -1) {
            wsh_log(WSH_LOG_ALERT, "setrlimit(RLIMIT_NOFILE, %u) failed: %s",
                    cf->worker_rlimit_nofile, strerror(errno));
        }
    }
    if (cf->user == NULL || geteuid() != 0 || cf->uid == 0) {
        return WSH_OK;
    }
    if (initgroups(cf->user, cf->gid) == -1 || setgid(cf->gid) == -1
        || setuid(cf->uid) == -1)
    {
        wsh_log(WSH_LOG_EMERG, "cannot switch to user \"%s\" (uid %d, gid "
                "%d): %s", cf->user, (int) cf->uid, (int) cf->gid,
                strerror(errno));
        return WSH_ERROR;
    }
    return WSH_OK;
}

void
wsh_worker_run(wsh_cycle_t *cycle, int id, int channel)
{
    wsh_log_set_worker(id);
    prctl(PR_SET_NAME, "wshubd: worker", 0, 0, 0);

    if (worker_privileges(cycle->conf) != WSH_OK
        || worker_init(cycle, id, channel) != WSH_OK)
    {
        exit(2);                /* the master backs off before respawning */
    }
    wsh_log(WSH_LOG_INFO, "worker %d started", id);

    event_base_dispatch(wsh_worker.base);

    /* The loop ends when a drain or stop has closed every connection. */
    wsh_conn_terminate_all();
    wsh_conn_free_dead();
    wsh_log(WSH_LOG_INFO, "worker %d exiting", id);
    worker_cleanup();
    exit(0);
}
