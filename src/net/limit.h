/* limit.h -- abuse limits shared by all workers: per-IP and total caps.
 *
 * One shared zone (core/shm.h) holds the number of WebSockets open in
 * every worker process, and a fixed-size open-addressing table of client
 * addresses, each with its open WebSockets and a handshake-rate bucket.
 * Counts are kept per worker process slot so that the master, which
 * sees a worker die, can take a crashed worker's connections back out.
 * The zone outlives reloads: old draining workers still count.
 */
#ifndef WSH_LIMIT_H
#define WSH_LIMIT_H

#include "core/core.h"
#include "core/conf.h"

#include <sys/socket.h>

#define WSH_LIMIT_SLOTS     64      /* worker processes alive at once */
#define WSH_LIMIT_IPS       8192    /* client addresses tracked at once */
#define WSH_LIMIT_PROBES    128     /* entries looked at for one address */

/* A connection keeps its entry in an int16_t (net/conn.h). */
_Static_assert(WSH_LIMIT_IPS <= INT16_MAX, "entry index must fit int16_t");

typedef struct wsh_limit_zone_s wsh_limit_zone_t;

/* The connection caps count the workers of WSH_LIMIT_SLOTS process
 * slots, and a reload runs two generations at once: WSH_ERROR (ERR says
 * why and what to do) when CF's caps could not count them all. For
 * wshubd -t, start and reload. */
int wsh_limit_check(const wsh_conf_t *cf, char *err, size_t len);

/* Bytes a zone with NIPS address entries takes. */
size_t wsh_limit_zone_size(unsigned nips);

/* Prepare zero-filled memory of wsh_limit_zone_size(NIPS) bytes. */
void wsh_limit_zone_init(wsh_limit_zone_t *z, unsigned nips);

/* The table key of a socket address: IPv4 as its v4-mapped IPv6 form,
 * so 192.0.2.1 and ::ffff:192.0.2.1 are one client. */
void wsh_limit_key(const struct sockaddr *sa, uint8_t key[16]);

/* Admit one WebSocket from KEY for worker slot SLOT under the limits L
 * at NOW_US (CLOCK_MONOTONIC microseconds). Returns
 *   WSH_OK  admitted: *entry is the address entry to release with
 *           (-1 when untracked: per-IP limits off, or the table full,
 *           where we fail open);
 *   429     over per_ip_handshake_rate or per_ip_connections, with
 *           *retry_after in seconds and *why;
 *   503     over max_connections_total, *retry_after and *why set.
 * Safe from any number of processes at once. */
int wsh_limit_zone_admit(wsh_limit_zone_t *z, int slot, const uint8_t key[16],
    const wsh_conf_limits_t *l, uint64_t now_us, int *entry,
    unsigned *retry_after, const char **why);

/* One WebSocket admitted with ENTRY on SLOT is gone. */
void wsh_limit_zone_release(wsh_limit_zone_t *z, int slot, int entry);

/* Worker slot SLOT (process PID) is gone: forget its connections, and
 * free the table lock if it died holding it. Master only. */
void wsh_limit_zone_slot_gone(wsh_limit_zone_t *z, int slot, pid_t pid);

/* Open WebSockets of KEY, and of all workers (for tests and metrics). */
unsigned wsh_limit_zone_ip_count(wsh_limit_zone_t *z, const uint8_t key[16]);
unsigned wsh_limit_zone_total(wsh_limit_zone_t *z);

/* The process-wide zone. wsh_limit_init_master() makes it (master,
 * before the first fork; kept across reloads). */
int wsh_limit_init_master(void);

/* In a new worker: its slot (the master's process table index). */
void wsh_limit_set_slot(int slot);

/* wsh_limit_zone_slot_gone() on the process-wide zone (master). */
void wsh_limit_proc_gone(int slot, pid_t pid);

/* wsh_limit_zone_admit() for a peer address in this worker, with
 * rate-limited logging of refusals. */
int wsh_limit_admit(const struct sockaddr *sa, const wsh_conf_limits_t *l,
    int *entry, unsigned *retry_after, const char **why);

/* wsh_limit_zone_release() for this worker. */
void wsh_limit_release(int entry);

/* May a refusal be logged now? At most one line a second per worker;
 * *suppressed is the number of refusals not logged since the last. */
bool wsh_limit_log_ok(unsigned *suppressed);

#endif /* WSH_LIMIT_H */
