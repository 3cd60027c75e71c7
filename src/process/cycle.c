/* cycle.c -- build and free the configuration cycle (master only).
 *
 * Listening sockets are looked up in the previous cycle by address first,
 * so a reload never closes and rebinds a socket that stays configured:
 * connections queued in its backlog are not lost.
 */
#include "process/cycle.h"
#include "core/log.h"
#include "net/limit.h"
#include "net/tls.h"
#include "process/listen.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool
cycle_same(const wsh_listening_t *a, const wsh_listening_t *b)
{
    return a->shard == b->shard && strcmp(a->addr.text, b->addr.text) == 0;
}

/* Does OLD (the running cycle, or the sockets inherited in a binary
 * upgrade) listen on ADDR? *REUSEPORT: whether with a socket per worker. */
static bool
cycle_holds(const wsh_cycle_t *old, const wsh_listen_addr_t *addr,
    bool *reuseport)
{
    size_t j;

    for (j = 0; old != NULL && j < old->nlistening; j++) {
        if (strcmp(old->listening[j].addr.text, addr->text) == 0) {
            *reuseport = old->listening[j].shard != -1;
            return true;
        }
    }
    return false;
}

wsh_cycle_t *
wsh_cycle_create(const char *file, wsh_cycle_t *old)
{
    char err[WSH_CONF_ERR_MAX];
    wsh_cycle_t *cycle;
    wsh_listening_t *ls;
    size_t i, j, n, shards;
    bool held, reuseport;
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
    /* Before any socket: a bad certificate fails a reload cleanly. */
    if (wsh_cycle_check(cycle->conf, &cycle->tls_ctx, &cycle->redis_tls_ctx,
                        err, sizeof(err)) != WSH_OK)
    {
        wsh_log(WSH_LOG_EMERG, "%s", err);
        goto failed;
    }
    shards = cycle->conf->reuseport ? (size_t) cycle->conf->worker_processes
                                    : 1;
    n = cycle->conf->nlisten * shards;
    cycle->listening = calloc(n, sizeof(*cycle->listening));
    if (cycle->listening == NULL) {
        goto failed;
    }
    for (i = 0; i < n; i++) {
        ls = &cycle->listening[cycle->nlistening++];
        ls->addr = cycle->conf->listen[i / shards];
        ls->index = (unsigned) (i / shards);
        ls->shard = cycle->conf->reuseport ? (int) (i % shards) : -1;
        ls->fd = -1;
        for (j = 0; old != NULL && j < old->nlistening; j++) {
            if (old->listening[j].fd != -1
                && cycle_same(&old->listening[j], ls))
            {
                ls->fd = old->listening[j].fd;
                old->listening[j].fd = -1;      /* taken over */
                break;
            }
        }
        if (ls->fd != -1) {
            continue;
        }
        held = cycle_holds(old, &ls->addr, &reuseport);
        if (held && reuseport != cycle->conf->reuseport) {
            /* Our own sockets stay open across a reload or an upgrade:
             * a bind in the other mode would fail on them. */
            wsh_log(WSH_LOG_EMERG, "reuseport changed to %s for %s: the "
                    "listening sockets are kept open across reloads and "
                    "upgrades, so this change needs a restart (wshubd -s "
                    "stop, then start it)", cycle->conf->reuseport ? "on"
                    : "off", ls->addr.text);
            goto failed;
        }
        if (ls->shard == 0 && !held && wsh_listen_probe(&ls->addr) != WSH_OK)
        {
            goto failed;
        }
        fd = wsh_listen_open(&ls->addr, cycle->conf->backlog,
                             cycle->conf->reuseport);
        if (fd == -1) {
            goto failed;
        }
        ls->fd = fd;
        if (ls->shard <= 0) {
            wsh_log(WSH_LOG_NOTICE, "listening on %s%s", ls->addr.text,
                    ls->shard == 0 ? " (reuseport: a socket per worker)"
                                   : "");
        }
    }
    return cycle;

failed:
    wsh_cycle_abandon(cycle, old);
    return NULL;
}

void
wsh_cycle_abandon(wsh_cycle_t *cycle, wsh_cycle_t *old)
{
    size_t i, j;

    /* Hand taken-over sockets back so the old cycle stays whole. */
    for (i = 0; old != NULL && i < cycle->nlistening; i++) {
        for (j = 0; j < old->nlistening; j++) {
            if (old->listening[j].fd == -1
                && cycle_same(&old->listening[j], &cycle->listening[i]))
            {
                old->listening[j].fd = cycle->listening[i].fd;
                cycle->listening[i].fd = -1;
            }
        }
    }
    wsh_cycle_free(cycle);
}

int
wsh_cycle_check(const wsh_conf_t *cf, SSL_CTX **tls, SSL_CTX **redis_tls,
    char *err, size_t errlen)
{
    *tls = NULL;
    *redis_tls = NULL;
    if (wsh_limit_check(cf, err, errlen) != WSH_OK
        || wsh_tls_create(cf, tls, err, errlen) != WSH_OK)
    {
        return WSH_ERROR;
    }
    if (cf->engine.redis && cf->engine.tls.on
        && wsh_tls_client_create(cf, "engine.redis.tls", &cf->engine.tls,
                                 redis_tls, err, errlen) != WSH_OK)
    {
        SSL_CTX_free(*tls);
        *tls = NULL;
        return WSH_ERROR;
    }
    return WSH_OK;
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
    SSL_CTX_free(cycle->tls_ctx);
    SSL_CTX_free(cycle->redis_tls_ctx);
    wsh_conf_free(cycle->conf);
    free(cycle);
}
