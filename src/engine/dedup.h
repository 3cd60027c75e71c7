/* dedup.h -- idempotency keys: a publish retried within a window is
 * answered with its first result instead of being published again.
 *
 * The sequencer (the master's relay for the local engine) keeps, for
 * every idempotency key seen within the window, what the first publish
 * with it came to: its offset and epoch in a room with history, or
 * whether it reached anybody. Keys are scoped by topic (kind and name),
 * so two backends' keys for different rooms never collide. Memory is
 * bounded: past WSH_DEDUP_MAX keys the oldest are forgotten early (and
 * counted). Pure: no process or socket, the clock is the caller's.
 */
#ifndef WSH_DEDUP_H
#define WSH_DEDUP_H

#include "core/core.h"

#define WSH_DEDUP_MAX       100000  /* keys held at most */
#define WSH_DEDUP_KEY_MAX   128     /* bytes of one key */
#define WSH_DEDUP_EPOCH_MAX 32

typedef struct {
    uint64_t offset;                /* 0: not numbered */
    char     epoch[WSH_DEDUP_EPOCH_MAX + 1];
    uint8_t  flags;                 /* the engine's (wire.h F_FOUND) */
} wsh_dedup_result_t;

typedef struct wsh_dedup_s wsh_dedup_t;

wsh_dedup_t *wsh_dedup_new(void);
void wsh_dedup_free(wsh_dedup_t *d);

/* The first result of KEY on topic KIND/NAME if seen within the window
 * (at NOW), else NULL. */
const wsh_dedup_result_t *wsh_dedup_find(wsh_dedup_t *d, int kind,
    const char *name, size_t nlen, const char *key, size_t klen,
    wsh_msec_t now);

/* Remember RESULT for KEY until NOW + WINDOW. WSH_ERROR on ENOMEM (the
 * key is then not protected: logged by the caller). */
int wsh_dedup_add(wsh_dedup_t *d, int kind, const char *name, size_t nlen,
    const char *key, size_t klen, const wsh_dedup_result_t *result,
    wsh_msec_t now, wsh_msec_t window);

/* Forget the keys whose window has passed at NOW. */
void wsh_dedup_expire(wsh_dedup_t *d, wsh_msec_t now);

size_t wsh_dedup_count(const wsh_dedup_t *d);
/* Keys forgotten before their window ended (over WSH_DEDUP_MAX). */
uint64_t wsh_dedup_evicted(const wsh_dedup_t *d);

#endif /* WSH_DEDUP_H */
