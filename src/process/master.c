/* master.c -- spawn, watch and signal the worker processes.
 *
 * nginx's process cycle on a libevent loop: signal handlers are libevent
 * evsignals (no work in async-signal context), each worker has a channel,
 * and every child is tracked with its generation so a reload can start
 * new workers on the new cycle and drain the old ones, while a crashed
 * worker of the current generation is replaced (with back-off if it
 * keeps crashing). The master itself never serves a client.
 */
#include "process/master.h"
#include "process/channel.h"
#include "process/cycle.h"
#include "process/notify.h"
#include "process/signals.h"
#include "process/upgrade.h"
#include "process/worker.h"
#include "core/log.h"
#include "core/module.h"
#include "core/stats.h"
#include "core/shm.h"
#include "engine/relay.h"
#include "engine/wire.h"
#include "net/limit.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#define MASTER_RESPAWN_MIN_MS   100
#define MASTER_RESPAWN_MAX_MS   30000
#define MASTER_STABLE_MS        10000   /* lived this long: not crash-looping */
#define MASTER_KILL_GRACE_MS    5000
#define MASTER_CHANNEL_MAX      ((size_t) 64 << 20)

typedef struct {
    pid_t       pid;            /* 0: free entry */
    int         slot;
    int         stats;          /* its counter slot, -1: none */
    unsigned    generation;
    struct bufferevent *chan;   /* our end of its channel */
    wsh_msec_t  started;
    bool        exiting;        /* told to quit: do not respawn */
    bool        overflow;       /* its channel is over the limit */
    uint64_t    dropped[3];     /* frames dropped in this overflow, by
                                 * master_drop_kind */
} master_proc_t;

typedef struct {
    unsigned    failures;       /* consecutive short-lived exits */
    struct event *timer;        /* pending respawn */
} master_slot_t;

static struct event_base *master_base;
static wsh_cycle_t *master_cycle;
static unsigned master_generation;
static master_proc_t *master_procs;
static size_t master_nprocs;
static master_slot_t *master_slots;
static size_t master_nslots;
static bool master_stopping;
static int master_exit_status;
static struct event *master_kill_timer;

/* Binary upgrade (SIGUSR2): the new master is our child until we exit. */
static const char *master_binary;
static char **master_argv;
static char *master_pid_file;       /* NULL: none */
static bool master_oldbin;          /* renamed to .oldbin */
static pid_t master_new_pid;

static void master_spawn(int slot);
static int master_send(size_t proc, uint32_t cmd, const struct iovec *iov,
    int n);

/* The services the master runs for its workers (core/service.h): each
 * gets every frame of the workers' channels. */
static const wsh_service_t *const master_services[] = {
    &wsh_relay_service,
    NULL
};

/* Tell the services the configuration now in force: WSH_ERROR when one
 * refused it (it logged why). */
static int
master_services_configure(const wsh_conf_t *cf)
{
    size_t i;
    int rc = WSH_OK;

    for (i = 0; master_services[i] != NULL; i++) {
        if (master_services[i]->configure(master_base, cf, master_send)
            != WSH_OK)
        {
            rc = WSH_ERROR;
        }
    }
    return rc;
}

/* Frames from a worker (the local engine's), for the services. */
static void
master_channel_read_cb(struct bufferevent *bev, void *arg)
{
    size_t proc = (size_t) (intptr_t) arg, i;
    wsh_channel_msg_t msg;
    u_char *payload;
    int rc;

    while ((rc = wsh_channel_next(bev, &msg, &payload)) == WSH_OK) {
        for (i = 0; master_services[i] != NULL; i++) {
            master_services[i]->message(proc, msg.cmd, payload, msg.len);
        }
        wsh_channel_consume(bev, &msg);
    }
    if (rc == WSH_ERROR) {
        wsh_log(WSH_LOG_ALERT, "malformed frame from worker %d, pid %d",
                master_procs[proc].slot, (int) master_procs[proc].pid);
        bufferevent_disable(bev, EV_READ);
    }
}

/* A worker whose messages were dropped has read half of its backlog:
 * what it missed is not silent (its members of rooms with history are
 * told to rejoin from where they are, engine.h GAP). */
static void
master_channel_write_cb(struct bufferevent *bev, void *arg)
{
    master_proc_t *p = &master_procs[(size_t) (intptr_t) arg];
    wsh_eng_hdr_t h;
    struct iovec gap[4];

    if (!p->overflow) {
        return;
    }
    p->overflow = false;
    bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
    wsh_eng_pack(&h, gap, 0, 0, NULL, 0, NULL, 0, 0, NULL, 0);
    (void) wsh_channel_write(bev, WSH_ENG_GAP, gap, 4);
    wsh_log(WSH_LOG_NOTICE, "worker %d, pid %d, reads its channel again: "
            "told of the messages it missed (%llu deliveries, %llu join "
            "and leave events, %llu others were dropped)", p->slot,
            (int) p->pid, (unsigned long long) p->dropped[0],
            (unsigned long long) p->dropped[1],
            (unsigned long long) p->dropped[2]);
    memset(p->dropped, 0, sizeof(p->dropped));
}

/* Which counter a dropped engine frame CMD goes to: 0 a delivery, 1 a
 * join or leave event, 2 anything else (answers to joins, acks...). */
static int
master_drop_kind(uint32_t cmd)
{
    switch (cmd) {
    case WSH_ENG_DELIVER:
    case WSH_ENG_SEQ:
        return 0;
    case WSH_ENG_PRESENCE:
        return 1;
    default:
        return 2;
    }
}

static void
master_dropped(master_proc_t *p, uint32_t cmd)
{
    static const int stat[3] = { WSH_STAT_RELAY_DROPPED_MESSAGE,
                                 WSH_STAT_RELAY_DROPPED_PRESENCE,
                                 WSH_STAT_RELAY_DROPPED_OTHER };
    int kind = master_drop_kind(cmd);

    p->dropped[kind]++;
    wsh_stats_master_add(stat[kind], 1);
}

/* Queue a channel frame to the worker tracked as process entry PROC
 * (the services' send function); WSH_ERROR if it is gone or dropping. */
static int
master_send(size_t proc, uint32_t cmd, const struct iovec *iov, int n)
{
    master_proc_t *p;
    size_t queued;

    if (proc >= master_nprocs || master_procs[proc].pid == 0) {
        return WSH_ERROR;
    }
    p = &master_procs[proc];
    /* A stopped or wedged worker must not make the master grow: past
     * the limit its engine traffic is dropped (commands still go). */
    queued = evbuffer_get_length(bufferevent_get_output(p->chan));
    /* Join and leave events are shed first, from half the limit: a
     * member that misses one can ask for the list (room_members);
     * one that misses a message cannot. They are counted, not told. */
    if (cmd == WSH_ENG_PRESENCE && queued > MASTER_CHANNEL_MAX / 2) {
        master_dropped(p, cmd);
        return WSH_ERROR;
    }
    if (queued > MASTER_CHANNEL_MAX) {
        if (!p->overflow) {
            wsh_log(WSH_LOG_ALERT, "worker %d, pid %d, is not reading its "
                    "channel (%zu bytes queued): dropping its messages",
                    p->slot, (int) p->pid, queued);
            /* Told when half of it has gone (master_channel_write_cb). */
            bufferevent_setwatermark(p->chan, EV_WRITE,
                                     MASTER_CHANNEL_MAX / 2, 0);
        }
        p->overflow = true;
        master_dropped(p, cmd);
        return WSH_ERROR;
    }
    return wsh_channel_write(p->chan, cmd, iov, n);
}

static master_proc_t *
master_proc_alloc(void)
{
    master_proc_t *p;
    size_t i;

    for (i = 0; i < master_nprocs; i++) {
        if (master_procs[i].pid == 0) {
            return &master_procs[i];
        }
    }
    p = realloc(master_procs, (master_nprocs + 8) * sizeof(*p));
    if (p == NULL) {
        return NULL;
    }
    memset(p + master_nprocs, 0, 8 * sizeof(*p));
    master_procs = p;
    master_nprocs += 8;
    return &master_procs[master_nprocs - 8];
}

static size_t
master_live(void)
{
    size_t i, n = 0;

    for (i = 0; i < master_nprocs; i++) {
        n += master_procs[i].pid != 0;
    }
    return n;
}

static void
master_respawn_cb(evutil_socket_t fd, short what, void *arg)
{
    int slot = (int) (intptr_t) arg;

    if (!master_stopping && (size_t) slot < master_nslots) {
        master_spawn(slot);
    }
}

static void
master_spawn(int slot)
{
    master_proc_t *p;
    sigset_t all, old;
    int fds[2];
    size_t i;
    pid_t pid;
    int stats;

    p = master_proc_alloc();
    if (p == NULL || wsh_channel_open(fds) != WSH_OK) {
        wsh_log(WSH_LOG_ALERT, "cannot spawn worker %d: out of resources",
                slot);
        return;
    }
    stats = wsh_stats_acquire(slot, master_generation);

    /* No signal may reach libevent's handler in the child before the
     * worker resets the handlers. */
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid = fork();
    if (pid == 0) {
        for (i = 0; i < master_nprocs; i++) {
            if (master_procs[i].pid != 0) {
                close(bufferevent_getfd(master_procs[i].chan));
            }
        }
        close(fds[0]);
        wsh_stats_attach(stats);
        wsh_limit_set_slot((int) (p - master_procs));
        wsh_worker_run(master_cycle, slot, fds[1]);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(fds[1]);
    if (pid == -1) {
        wsh_log(WSH_LOG_ALERT, "fork() failed: %s", strerror(errno));
        close(fds[0]);
        wsh_stats_release(stats);
        return;
    }
    wsh_stats_started(stats, pid);
    p->stats = stats;
    p->chan = bufferevent_socket_new(master_base, fds[0],
                                     BEV_OPT_CLOSE_ON_FREE);
    if (p->chan == NULL) {
        wsh_log(WSH_LOG_ALERT, "bufferevent_socket_new() failed");
        close(fds[0]);
        kill(pid, SIGKILL);     /* reaped as an unknown child */
        wsh_stats_release(stats);
        return;
    }
    bufferevent_setcb(p->chan, master_channel_read_cb,
                      master_channel_write_cb, NULL,
                      (void *) (intptr_t) (p - master_procs));
    bufferevent_enable(p->chan, EV_READ | EV_WRITE);
    p->pid = pid;
    p->slot = slot;
    p->generation = master_generation;
    p->started = wsh_monotonic_msec();
    p->exiting = false;
    p->overflow = false;
    memset(p->dropped, 0, sizeof(p->dropped));
    wsh_log(WSH_LOG_NOTICE, "started worker %d, pid %d (generation %u)",
            slot, (int) pid, master_generation);
}

static void
master_signal_generation(unsigned generation, uint32_t cmd)
{
    size_t i;

    for (i = 0; i < master_nprocs; i++) {
        if (master_procs[i].pid != 0
            && master_procs[i].generation <= generation)
        {
            if (cmd != WSH_CMD_REOPEN) {
                master_procs[i].exiting = true;
            }
            (void) wsh_channel_write(master_procs[i].chan, cmd, NULL, 0);
        }
    }
}

/* A worker ended: say how, and replace it if it was not meant to end. */
static void
master_reaped(master_proc_t *p, int status)
{
    master_slot_t *s;
    wsh_msec_t lived = wsh_monotonic_msec() - p->started, delay;
    struct timeval tv;
    bool crashed = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    int slot = p->slot;
    size_t left, i;

    if (WIFSIGNALED(status)) {
        wsh_log(p->exiting ? WSH_LOG_NOTICE : WSH_LOG_ALERT,
                "worker %d, pid %d, exited on signal %d%s", slot, (int) p->pid,
                WTERMSIG(status), WCOREDUMP(status) ? " (core dumped)" : "");
    } else {
        wsh_log(crashed && !p->exiting ? WSH_LOG_ALERT : WSH_LOG_NOTICE,
                "worker %d, pid %d, exited with code %d", slot, (int) p->pid,
                WEXITSTATUS(status));
    }
    /* What it wrote before it died is still in the socket (libevent
     * reads 4 KB per callback): relay every frame before letting go,
     * the publishes it acknowledged among them. */
    left = wsh_channel_read_rest(p->chan, master_channel_read_cb,
                                 (void *) (intptr_t) (p - master_procs));
    if (left > 0) {
        wsh_log(WSH_LOG_ALERT, "worker %d, pid %d, left an incomplete "
                "frame of %zu bytes on its channel", slot, (int) p->pid,
                left);
    }
    bufferevent_free(p->chan);
    p->chan = NULL;
    /* Its shared-limit counts go with it, however it ended. */
    wsh_limit_proc_gone((int) (p - master_procs), p->pid);
    p->pid = 0;
    wsh_stats_release(p->stats);
    for (i = 0; master_services[i] != NULL; i++) {
        master_services[i]->proc_gone((size_t) (p - master_procs));
    }

    if (p->exiting || master_stopping || p->generation != master_generation
        || (size_t) slot >= master_nslots)
    {
        return;
    }
    s = &master_slots[slot];
    s->failures = lived >= MASTER_STABLE_MS ? 0 : s->failures + 1;
    if (s->failures <= 1) {
        master_spawn(slot);
        return;
    }
    delay = MASTER_RESPAWN_MIN_MS << (s->failures < 12 ? s->failures - 2 : 10);
    if (delay > MASTER_RESPAWN_MAX_MS) {
        delay = MASTER_RESPAWN_MAX_MS;
    }
    wsh_log(WSH_LOG_ALERT, "worker %d keeps exiting (%u times in a row "
            "within %ds of starting), respawning in %llums", slot, s->failures,
            MASTER_STABLE_MS / 1000, (unsigned long long) delay);
    tv.tv_sec = (time_t) (delay / 1000);
    tv.tv_usec = (suseconds_t) (delay % 1000) * 1000;
    evtimer_add(s->timer, &tv);
}

/* Rename the pid file to or from .oldbin. */
static void
master_pid_oldbin(bool old)
{
    char path[4096];

    if (master_pid_file == NULL || master_oldbin == old) {
        return;
    }
    snprintf(path, sizeof(path), "%s.oldbin", master_pid_file);
    if (rename(old ? master_pid_file : path, old ? path : master_pid_file)
        == -1)
    {
        wsh_log(WSH_LOG_ALERT, "rename() of the pid file %s failed: %s",
                master_pid_file, strerror(errno));
        return;
    }
    master_oldbin = old;
}

/* SIGUSR2: start the binary installed at our path as a new master that
 * inherits the listening sockets; we go on serving until told. */
static void
master_upgrade(void)
{
    if (master_new_pid != 0) {
        wsh_log(WSH_LOG_WARN, "SIGUSR2 ignored: the new binary started "
                "earlier (pid %d) is still running", (int) master_new_pid);
        return;
    }
    if (master_oldbin) {
        wsh_log(WSH_LOG_WARN, "SIGUSR2 ignored: this is the old master of "
                "an upgrade");
        return;
    }
    wsh_log(WSH_LOG_NOTICE, "SIGUSR2 received, starting %s with the "
            "listening sockets", master_binary);
    master_pid_oldbin(true);
    master_new_pid = wsh_upgrade_exec(master_binary, master_argv,
                                      master_cycle);
    if (master_new_pid == -1) {
        master_new_pid = 0;
        master_pid_oldbin(false);
    }
}

static void
master_reap(void)
{
    int status;
    size_t i;
    pid_t pid;

    for ( ;; ) {
        pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0) {
            break;
        }
        if (pid == master_new_pid) {
            /* The new binary failed, or was stopped for a rollback. */
            wsh_log(WSH_LOG_ALERT, "the new binary, pid %d, exited (status "
                    "%d): this master goes on serving", (int) pid, status);
            master_new_pid = 0;
            master_pid_oldbin(false);
            wsh_notify_ready();     /* systemd follows us again */
            continue;
        }
        for (i = 0; i < master_nprocs; i++) {
            if (master_procs[i].pid == pid) {
                master_reaped(&master_procs[i], status);
                break;
            }
        }
    }
    if (master_stopping && master_live() == 0) {
        event_base_loopbreak(master_base);
    }
}

static void
master_kill_cb(evutil_socket_t fd, short what, void *arg)
{
    size_t i;

    for (i = 0; i < master_nprocs; i++) {
        if (master_procs[i].pid != 0) {
            wsh_log(WSH_LOG_ALERT, "worker %d, pid %d, did not exit in time, "
                    "sending SIGKILL", master_procs[i].slot,
                    (int) master_procs[i].pid);
            kill(master_procs[i].pid, SIGKILL);
        }
    }
}

static void
master_stop(uint32_t cmd, wsh_msec_t grace)
{
    struct timeval tv;
    size_t i;

    /* Not the old master of an upgrade: the service goes on in the new
     * one, which systemd now follows. */
    if (!master_stopping && !master_oldbin) {
        wsh_notify_stopping();
    }
    master_stopping = true;
    for (i = 0; i < master_nslots; i++) {
        evtimer_del(master_slots[i].timer);
    }
    master_signal_generation(UINT32_MAX, cmd);
    tv.tv_sec = (time_t) (grace / 1000);
    tv.tv_usec = (suseconds_t) (grace % 1000) * 1000;
    evtimer_add(master_kill_timer, &tv);
    if (master_live() == 0) {
        event_base_loopbreak(master_base);
    }
}

static int
master_set_slots(size_t n)
{
    master_slot_t *s;
    size_t i;

    for (i = n; i < master_nslots; i++) {
        event_free(master_slots[i].timer);
    }
    if (n > master_nslots) {
        s = realloc(master_slots, n * sizeof(*s));
        if (s == NULL) {
            return WSH_ERROR;
        }
        master_slots = s;
        for (i = master_nslots; i < n; i++) {
            master_slots[i].failures = 0;
            master_slots[i].timer = evtimer_new(master_base, master_respawn_cb,
                                                (void *) (intptr_t) i);
            if (master_slots[i].timer == NULL) {
                master_nslots = i;
                return WSH_ERROR;
            }
        }
    }
    master_nslots = n;
    for (i = 0; i < n; i++) {
        evtimer_del(master_slots[i].timer);
        master_slots[i].failures = 0;
    }
    return WSH_OK;
}

/* SIGHUP: a new cycle and a new generation, or nothing at all. */
static void
master_reload(void)
{
    wsh_cycle_t *cycle, *old = master_cycle;
    const wsh_conf_t *cf;
    unsigned old_generation = master_generation;
    int i;

    wsh_log(WSH_LOG_NOTICE, "reloading the configuration from %s",
            old->conf->file);
    cycle = wsh_cycle_create(old->conf->file, old);
    if (cycle == NULL) {
        wsh_log(WSH_LOG_ERR, "reload failed, still running with the previous "
                "configuration");
        return;
    }
    cf = cycle->conf;
    if (geteuid() == 0 && cf->user == NULL) {
        wsh_log(WSH_LOG_ERR, "%s sets no \"user\" while running as root: "
                "reload refused, still running with the previous "
                "configuration", cf->file);
        wsh_cycle_abandon(cycle, old);
        return;
    }
    if (geteuid() == 0 && cf->uid != 0) {
        wsh_log_set_owner(cf->uid, cf->gid);
    }
    if (wsh_log_open(cf->error_log, cf->access_log, cf->log_level)
        != WSH_OK || master_set_slots((size_t) cf->worker_processes)
        != WSH_OK)
    {
        wsh_log(WSH_LOG_ERR, "reload failed, still running with the previous "
                "configuration");
        wsh_cycle_abandon(cycle, old);
        return;
    }
    master_cycle = cycle;
    wsh_conf_use(cycle->conf);
    master_generation++;
    (void) master_services_configure(cf);
    /* Close the listeners no longer used before forking, or the new
     * workers would inherit them and keep them (and their share of new
     * connections) alive with nobody accepting. The old workers have
     * their own copies until they drain. */
    wsh_cycle_free(old);
    for (i = 0; i < cf->worker_processes; i++) {
        master_spawn(i);
    }
    master_signal_generation(old_generation, WSH_CMD_RESTART);
    wsh_stats_reloaded();
    wsh_log(WSH_LOG_NOTICE, "reload done: generation %u with %d workers",
            master_generation, cf->worker_processes);
}

static void
master_signal_cb(int sig)
{
    switch (sig) {
    case SIGCHLD:
        master_reap();
        break;
    case SIGTERM:
    case SIGINT:
        if (!master_stopping) {
            wsh_log(WSH_LOG_NOTICE, "signal %d received, stopping now",
                    (int) sig);
        }
        master_stop(WSH_CMD_TERMINATE, MASTER_KILL_GRACE_MS);
        break;
    case SIGQUIT:
        wsh_log(WSH_LOG_NOTICE, "SIGQUIT received, draining and stopping");
        master_stop(WSH_CMD_QUIT,
                    master_cycle->conf->shutdown_timeout + MASTER_KILL_GRACE_MS);
        break;
    case SIGHUP:
        if (!master_stopping) {
            wsh_notify_reloading();
            master_reload();
            wsh_notify_ready();
        }
        break;
    case SIGUSR2:
        if (!master_stopping) {
            master_upgrade();
        }
        break;
    case SIGWINCH:
        /* After an upgrade: the old workers drain, the sockets stay (a
         * HUP brings workers back for a rollback). The new master's
         * workers accept on the same sockets, so this is a restart, not
         * a stop: listeners close at once, handshakes under way are
         * completed, clients get 1012 and come back to the new ones. */
        wsh_log(WSH_LOG_NOTICE, "SIGWINCH received, draining the workers");
        master_signal_generation(UINT32_MAX, WSH_CMD_RESTART);
        break;
    case SIGUSR1:
        wsh_log(WSH_LOG_NOTICE, "SIGUSR1 received, reopening logs");
        wsh_log_reopen();
        master_signal_generation(UINT32_MAX, WSH_CMD_REOPEN);
        break;
    }
}

int
wsh_master_run(wsh_cycle_t *cycle, const char *binary, char **argv,
    char *pid_file)
{
    static const int sigs[] = { SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP,
                                SIGUSR1, SIGUSR2, SIGWINCH };
    struct sigaction sa;
    int n;

    master_cycle = cycle;
    wsh_conf_use(cycle->conf);
    master_binary = binary;
    master_argv = argv;
    master_pid_file = pid_file;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    master_base = event_base_new();
    master_kill_timer = master_base ? evtimer_new(master_base, master_kill_cb,
                                                  NULL) : NULL;
    if (master_kill_timer == NULL) {
        wsh_log(WSH_LOG_EMERG, "event_base_new() failed");
        return 1;
    }
    if (wsh_signals_init(master_base, sigs, wsh_nelems(sigs),
                         master_signal_cb) != WSH_OK)
    {
        return 1;
    }
    if (wsh_stats_init() != WSH_OK || wsh_limit_init_master() != WSH_OK
        || wsh_modules_init_master() != WSH_OK
        || master_set_slots((size_t) cycle->conf->worker_processes) != WSH_OK
        || master_services_configure(cycle->conf) != WSH_OK)
    {
        return 1;
    }
    for (n = 0; n < cycle->conf->worker_processes; n++) {
        master_spawn(n);
    }
    /* Children that exited before the evsignal was armed are reaped here. */
    master_reap();
    wsh_notify_ready();

    event_base_dispatch(master_base);

    wsh_log(WSH_LOG_NOTICE, "exiting");
    wsh_signals_done();
    master_set_slots(0);
    free(master_slots);
    free(master_procs);
    event_free(master_kill_timer);
    for (n = 0; master_services[n] != NULL; n++) {
        master_services[n]->free();
    }
    event_base_free(master_base);
    wsh_cycle_free(master_cycle);
    wsh_shm_free_all();
    if (master_pid_file != NULL) {
        char path[4096];

        snprintf(path, sizeof(path), "%s%s", master_pid_file,
                 master_oldbin ? ".oldbin" : "");
        unlink(path);
        free(master_pid_file);
    }
    return master_exit_status;
}
