/* channel.h -- master <-> worker control channel (a socketpair).
 *
 * Fixed-size command messages now; the local engine's frames will share
 * the channel later, which is why it is a stream with a length field.
 */
#ifndef WSH_CHANNEL_H
#define WSH_CHANNEL_H

#include "core/core.h"

enum {
    WSH_CMD_QUIT = 1,       /* drain with 1001, then exit (stop, QUIT) */
    WSH_CMD_RESTART,        /* drain with 1012, then exit (reload) */
    WSH_CMD_TERMINATE,      /* close everything now, exit */
    WSH_CMD_REOPEN          /* reopen log files */
};

typedef struct {
    uint32_t cmd;
    uint32_t len;           /* payload bytes following (0 for commands) */
} wsh_channel_msg_t;

/* A socketpair for one worker: fds[0] stays in the master, fds[1] goes
 * to the worker. Both close-on-exec. */
int wsh_channel_open(int fds[2]);

/* Send a command (blocking write of a few bytes: never stalls). */
int wsh_channel_send(int fd, uint32_t cmd);

#endif /* WSH_CHANNEL_H */
