/* local.h -- the local engine's end of the worker's channel.
 *
 * With the local engine a worker reaches the others through the master:
 * local.c writes its frames (wire.h) to the master's relay (relay.h)
 * and decodes what the master sends back. The channel itself is the
 * worker's (process/channel.c): the worker says how to write to it and
 * hands over each engine frame it reads, so the engine knows nothing
 * of processes.
 */
#ifndef WSH_LOCAL_H
#define WSH_LOCAL_H

#include "core/core.h"

#include <sys/uio.h>

/* Queue a frame CMD whose payload is the N iovecs on the channel to the
 * master: WSH_OK, or WSH_ERROR when it cannot be queued. */
typedef int (*wsh_local_send_pt)(uint32_t cmd, const struct iovec *iov,
    int n);

/* Worker start, before the engine's: how to reach the master. */
void wsh_local_init_worker(wsh_local_send_pt send);

/* An engine frame from the master (CMD >= WSH_ENG_FIRST). Worker. */
void wsh_local_message(uint32_t cmd, const u_char *p, size_t len);

#endif /* WSH_LOCAL_H */
