/* cycle.c -- build and free the configuration cycle (master only).
 *
 * Listening sockets are looked up in the previous cycle by address first,
 * so a reload never closes and rebinds a socket that stays configured:
 * connections queued in its backlog are not lost.
 */
#include "core/cycle.h"
#include "core/log.h"
#include "process/listen.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

wsh_cycle_t *
wsh_cycle_create(const char *file, wsh_cycle_t *old)
{
    char err[WSH_CONF_ERR_MAX];
    wsh_cycle_t *cycle;
    size_t i, j;
    int fd;

    cycle = calloc(1, sizeof(*cycle));
    if (cycle == NULL) {
        return NULL;
    }
    cycle->conf = wsh_conf_load(file, err, sizeof(err));
    if (cycle->conf == NULL) {
        wsh_log(WSH_LOG_EMERG, "%s", err);
        free(cycle);
        return NULL;
    }
    cycle->listening = calloc(cycle->conf->nlisten,
                              sizeof(*cycle->listening));
    if (cycle->listening == NULL) {
        goto failed;
    }
    for (i = 0; i < cycle->conf->nlisten; i++) {
        cycle->listening[i].addr = cycle->conf->listen[i];
        cycle->listening[i].fd = -1;
        cycle->nlistening++;
        for (j = 0; old != NULL && j < old->nlistening; j++) {
            if (old->listening[j].fd != -1
                && strcmp(old->listening[j].addr.text,
                          cycle->conf->listen[i].text) == 0)
            {
                cycle->listening[i].fd = old->listening[j].fd;
                old->listening[j].fd = -1;      /* taken over */
                break;
            }
        }
        if (cycle->listening[i].fd != -1) {
            continue;
        }
        fd = wsh_listen_open(&cycle->conf->listen[i], cycle->conf->backlog);
        if (fd == -1) {
            goto failed;
        }
        cycle->listening[i].fd = fd;
        wsh_log(WSH_LOG_NOTICE, "listening on %s", cycle->conf->listen[i].text);
    }
    return cycle;

failed:
    /* Hand taken-over sockets back so the old cycle stays whole. */
    for (i = 0; old != NULL && i < cycle->nlistening; i++) {
        for (j = 0; j < old->nlistening; j++) {
            if (old->listening[j].fd == -1
                && strcmp(old->listening[j].addr.text,
                          cycle->listening[i].addr.text) == 0)
            {
                old->listening[j].fd = cycle->listening[i].fd;
                cycle->listening[i].fd = -1;
            }
        }
    }
    wsh_cycle_free(cycle);
    return NULL;
}

void
wsh_cycle_free(wsh_cycle_t *cycle)
{
    size_t i;

    if (cycle == NULL) {
        return;
    }
    for (i = 0; i < cycle->nlistening; i++) {
        if (cycle->listening[i].fd != -1) {
            close(cycle->listening[i].fd);
        }
    }
    free(cycle->listening);
    wsh_conf_free(cycle->conf);
    free(cycle);
}
