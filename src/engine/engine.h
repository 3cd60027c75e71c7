/* engine.h -- pub/sub and presence across workers: the core's interface.
 *
 * Modules use the topic functions of src/wshub.h (wsh_topic_join,
 * wsh_publish, ...). Behind them each worker keeps its own topic index
 * (topic.h) and delivers to local members directly; the engine carries
 * what other workers need: with the local engine, frames to the master
 * (relay.c), which fans them out over the channels and keeps presence.
 */
#ifndef WSH_ENGINE_H
#define WSH_ENGINE_H

#include "core/core.h"
#include "engine/wire.h"
#include "wshub.h"

#include <sys/uio.h>

/* Worker side (local.c). */
int  wsh_engine_init_worker(void);
void wsh_engine_exit_worker(void);

/* A connection is being freed: leave every topic it joined. */
void wsh_engine_conn_closed(wsh_conn_t *c);

/* A frame from the master for the engine. */
void wsh_engine_channel_message(uint32_t cmd, const u_char *p, size_t len);

/* Master side (relay.c). PROC identifies a worker process entry. */
void wsh_relay_message(size_t proc, uint32_t cmd, const u_char *p,
    size_t len);

/* The worker PROC exited: drop its subscriptions and presence, telling
 * the remaining members of its rooms who left. */
void wsh_relay_proc_gone(size_t proc);

void wsh_relay_free(void);

#endif /* WSH_ENGINE_H */
