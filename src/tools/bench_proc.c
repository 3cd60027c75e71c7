/* bench_proc.c -- wshub-bench's processes (--processes N).
 *
 * One process may hold only as many connections as it may open files
 * (20,000 on some hosts, whatever root does), so a run of 100,000 is
 * shared by N child processes. The parent forks them after the
 * connections are built, then only drives the phases and reports: it
 * runs no connection itself.
 *
 * The children report through two paths, as wshubd's workers do. Their
 * live counters and histograms are the bench_thread_t of their threads,
 * in memory shared before fork (bench_shm_alloc), so the parent sums and
 * merges every thread of every process exactly as it does its own
 * threads', once a second for the progress line and at the end; the
 * phase it sets there reaches every thread. And each child has a pipe to
 * the parent: at its end it writes one fixed-size record (its CPU times
 * over the phases) and exits 0. A pipe that closes without the record,
 * or a child that exits otherwise, is a failure named in the report.
 */
#include "tools/bench.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define BENCH_PROC_MAGIC    0x77736270u     /* "wsbp" */
#define BENCH_REAP_MSEC     3000            /* children's last words */

/* What a child writes on its pipe before it exits: under PIPE_BUF, so
 * one write() delivers it whole. */
typedef struct {
    uint32_t            magic;
    bool                run;        /* ru_run is set */
    struct rusage       ru_start, ru_run, ru_end;
} bench_proc_rec_t;

typedef struct {
    pid_t               pid;
    int                 fd;         /* read end, -1 once closed */
    size_t              got;        /* bytes of rec read */
    bench_proc_rec_t    rec;
    bool                gone;       /* reaped */
    bool                failed;
    int                 status;     /* from waitpid() */
    int                 phase;      /* the run's phase when it ended */
} bench_proc_t;

static bench_proc_t        *procs;
static int                  nprocs;

/* Zeroed memory that the processes forked later share. Fatal when it
 * cannot be had. */
void *
bench_shm_alloc(size_t size)
{
    void *p;

    p = mmap(NULL, size ? size : 1, PROT_READ | PROT_WRITE,
             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        bench_fatal("mmap(%zu) failed: %s", size, strerror(errno));
    }
    return p;
}

static void
sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

/* The life of child K: run threads K*j to K*j+j-1 until they have all
 * exited, note the CPU time at the phases the parent sets, write the
 * record on FD and exit. Never returns. */
static void
proc_child(int k, int fd, pid_t parent)
{
    bench_proc_rec_t rec;
    bench_thread_t *t;
    size_t first = (size_t) k * (size_t) bench_opt.threads, i, n;
    size_t last = first + (size_t) bench_opt.threads;
    bool ended = false;
    int ph;

    /* Control-C reaches the whole process group: the parent alone
     * decides what it means, and tells the threads through the phase. */
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);

    memset(&rec, 0, sizeof(rec));
    rec.magic = BENCH_PROC_MAGIC;
    getrusage(RUSAGE_SELF, &rec.ru_start);
    for (i = first; i < last; i++) {
        t = &bench_threads[i];
        if (pthread_create(&t->tid, NULL, bench_thread_main, t) != 0) {
            bench_fatal("process %d: pthread_create() failed: %s", k,
                        strerror(errno));
        }
    }

    for (;;) {
        sleep_ms(10);
        ph = bench_phase();
        if (ph >= PH_RUN && !rec.run) {
            getrusage(RUSAGE_SELF, &rec.ru_run);
            rec.run = true;
        }
        if (ph > PH_RUN && !ended) {
            getrusage(RUSAGE_SELF, &rec.ru_end);
            ended = true;
        }
        if (getppid() != parent) {
            /* The parent is gone: nobody will read the results. */
            atomic_store(&bench_run->phase, PH_EXIT);
        }
        for (n = 0, i = first; i < last; i++) {
            n += ctr_get(&bench_threads[i].exited);
        }
        if (n == last - first) {
            break;
        }
    }
    for (i = first; i < last; i++) {
        pthread_join(bench_threads[i].tid, NULL);
    }
    if (!ended) {
        getrusage(RUSAGE_SELF, &rec.ru_end);
    }
    if (write(fd, &rec, sizeof(rec)) != (ssize_t) sizeof(rec)) {
        _exit(1);
    }
    /* _exit: the parent's stdio buffers and atexit handlers are its own. */
    _exit(0);
}

/* Fork bench_opt.procs children, each running its share of the threads
 * (bench_threads, built by setup()). Called by the parent before it
 * starts any thread; fatal when a child cannot be made. */
void
bench_proc_start(void)
{
    pid_t parent = getpid(), pid;
    int k, j, fds[2];

    nprocs = bench_opt.procs;
    procs = calloc((size_t) nprocs, sizeof(bench_proc_t));
    if (procs == NULL) {
        bench_fatal("out of memory");
    }
    fflush(stdout);
    fflush(stderr);
    for (k = 0; k < nprocs; k++) {
        if (pipe(fds) != 0) {
            bench_proc_kill();
            bench_fatal("pipe() failed: %s", strerror(errno));
        }
        pid = fork();
        if (pid < 0) {
            bench_proc_kill();
            bench_fatal("fork() failed: %s", strerror(errno));
        }
        if (pid == 0) {
            close(fds[0]);
            for (j = 0; j < k; j++) {
                close(procs[j].fd);
            }
            proc_child(k, fds[1], parent);
        }
        close(fds[1]);
        fcntl(fds[0], F_SETFL, O_NONBLOCK);
        fcntl(fds[0], F_SETFD, FD_CLOEXEC);
        procs[k].pid = pid;
        procs[k].fd = fds[0];
    }
}

/* The pipe of child K closed: reap it, judge it, and count its threads
 * as exited so that the parent does not wait for them. */
static void
proc_gone(bench_proc_t *p, int k)
{
    size_t i, first = (size_t) k * (size_t) bench_opt.threads;

    close(p->fd);
    p->fd = -1;
    while (waitpid(p->pid, &p->status, 0) < 0 && errno == EINTR) {
        /* again */
    }
    p->gone = true;
    p->phase = bench_phase();
    p->failed = !(WIFEXITED(p->status) && WEXITSTATUS(p->status) == 0
                  && p->got == sizeof(p->rec)
                  && p->rec.magic == BENCH_PROC_MAGIC);
    for (i = first; i < first + (size_t) bench_opt.threads; i++) {
        ctr_set(&bench_threads[i].exited, 1);
    }
}

/* Wait up to MS milliseconds, reading the children's pipes meanwhile.
 * Returns how many children failed (died, or ended without their
 * record) during the call; 0 in a run without --processes, which only
 * sleeps. Parent only. */
int
bench_proc_wait(int ms)
{
    struct pollfd pfd[BENCH_PROCS_MAX];
    bench_proc_t *p;
    int k, n, failed = 0, idx[BENCH_PROCS_MAX];
    ssize_t r;

    if (nprocs == 0) {
        sleep_ms(ms);
        return 0;
    }
    for (n = 0, k = 0; k < nprocs; k++) {
        if (procs[k].fd >= 0) {
            pfd[n].fd = procs[k].fd;
            pfd[n].events = POLLIN;
            idx[n++] = k;
        }
    }
    if (n == 0) {
        sleep_ms(ms);
        return 0;
    }
    if (poll(pfd, (nfds_t) n, ms) <= 0) {
        return 0;       /* time is up, or a signal for control() */
    }
    for (k = 0; k < n; k++) {
        if (pfd[k].revents == 0) {
            continue;
        }
        p = &procs[idx[k]];
        for (;;) {
            if (p->got < sizeof(p->rec)) {
                r = read(p->fd, (char *) &p->rec + p->got,
                         sizeof(p->rec) - p->got);
            } else {
                char junk[64];

                r = read(p->fd, junk, sizeof(junk));
            }
            if (r > 0) {
                if (p->got < sizeof(p->rec)) {
                    p->got += (size_t) r;
                }
                continue;
            }
            if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
                break;
            }
            proc_gone(p, idx[k]);
            failed += p->failed;
            break;
        }
    }
    return failed;
}

/* SIGKILL every child still there (their pipes then close). */
void
bench_proc_kill(void)
{
    int k;

    for (k = 0; k < nprocs; k++) {
        if (!procs[k].gone && procs[k].pid > 0) {
            kill(procs[k].pid, SIGKILL);
        }
    }
}

/* After the run: wait for every child's record and exit, killing those
 * that take longer than BENCH_REAP_MSEC. Parent only. */
void
bench_proc_reap(void)
{
    int k, waited = 0;
    bool left;

    for (;;) {
        for (left = false, k = 0; k < nprocs; k++) {
            left |= !procs[k].gone;
        }
        if (!left) {
            return;
        }
        if (waited == BENCH_REAP_MSEC) {
            bench_proc_kill();
        }
        bench_proc_wait(50);
        waited += 50;
    }
}

/* Append to ERRORS one line per child that failed. */
void
bench_proc_errors(json_t *errors)
{
    bench_proc_t *p;
    char buf[160];
    int k;

    for (k = 0; k < nprocs; k++) {
        p = &procs[k];
        if (!p->gone || !p->failed) {
            continue;
        }
        if (WIFSIGNALED(p->status)) {
            snprintf(buf, sizeof(buf), "process %d (pid %d) killed by "
                     "signal %d in phase %s", k, (int) p->pid,
                     WTERMSIG(p->status), bench_phase_names[p->phase]);
        } else if (WIFEXITED(p->status) && WEXITSTATUS(p->status) != 0) {
            snprintf(buf, sizeof(buf), "process %d (pid %d) exited with "
                     "status %d in phase %s", k, (int) p->pid,
                     WEXITSTATUS(p->status), bench_phase_names[p->phase]);
        } else {
            snprintf(buf, sizeof(buf), "process %d (pid %d) ended without "
                     "its report in phase %s", k, (int) p->pid,
                     bench_phase_names[p->phase]);
        }
        json_array_append_new(errors, json_string(buf));
    }
}

static double
tv_sec(struct timeval tv)
{
    return (double) tv.tv_sec + (double) tv.tv_usec / 1e6;
}

/* The children's CPU time summed, over the run, or for CONNECT over the
 * connecting (up to the run, or to the end without one). Returns false
 * without --processes: the caller uses its own getrusage(). */
bool
bench_proc_cpu(bool connect, double *user, double *sys)
{
    const struct rusage *r0, *r1;
    bench_proc_rec_t *rec;
    int k;

    if (nprocs == 0) {
        return false;
    }
    *user = *sys = 0;
    for (k = 0; k < nprocs; k++) {
        rec = &procs[k].rec;
        if (procs[k].got != sizeof(*rec)) {
            continue;
        }
        if (connect) {
            r0 = &rec->ru_start;
            r1 = rec->run ? &rec->ru_run : &rec->ru_end;
        } else if (rec->run) {
            r0 = &rec->ru_run;
            r1 = &rec->ru_end;
        } else {
            continue;
        }
        *user += tv_sec(r1->ru_utime) - tv_sec(r0->ru_utime);
        *sys += tv_sec(r1->ru_stime) - tv_sec(r0->ru_stime);
    }
    return true;
}
