/* conf_redis.c -- the keys of engine.redis: the server, found at
 * host/port, at a UNIX socket or through Sentinel, or the shards, and
 * the connection's timers.
 *
 * Whatever the form, the engine gets a list of servers (e->servers):
 * the one of engine.redis's own keys, or engine.redis.shards in their
 * order, each a host and port, a UNIX socket or a Sentinel master, with
 * user, password and db defaulting to engine.redis's. The two forms do
 * not mix: a key of one with the other is refused where it is written,
 * since it would only be read by mistake. With engine.redis.cluster the
 * engine finds the servers itself (CLUSTER SLOTS, redis_cluster.c): the
 * one server here holds the user and password of every node.
 */
#include "core/conf.h"
#include "core/conf_value.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

static const cyaml_schema_field_t conf_sentinel_fields[] = {
    CONF_STR("master", conf_raw_sentinel_t, master, CYAML_FLAG_DEFAULT),
    CYAML_FIELD_SEQUENCE("addresses", CYAML_FLAG_POINTER, conf_raw_sentinel_t,
                         addresses, &wsh_conf_string_schema, 1, 64),
    CONF_STR("password", conf_raw_sentinel_t, password, CYAML_FLAG_OPTIONAL),
    CYAML_FIELD_END
};

/* The keys naming a server, in engine.redis and in each shard. */
#define SERVER_FIELDS(type, m)                                          \
    CONF_STR("host", type, m host, CYAML_FLAG_OPTIONAL),                     \
    CONF_STR("port", type, m port, CYAML_FLAG_OPTIONAL),                     \
    CONF_STR("unix_socket", type, m unix_socket, CYAML_FLAG_OPTIONAL),       \
    CONF_STR("user", type, m user, CYAML_FLAG_OPTIONAL),                     \
    CONF_STR("password", type, m password, CYAML_FLAG_OPTIONAL),             \
    CONF_STR("db", type, m db, CYAML_FLAG_OPTIONAL),                         \
    CYAML_FIELD_MAPPING_PTR("sentinel", CYAML_FLAG_OPTIONAL, type,           \
                            m sentinel, conf_sentinel_fields)

static const cyaml_schema_field_t conf_shard_fields[] = {
    SERVER_FIELDS(conf_raw_server_t, ),
    CYAML_FIELD_END
};

static const cyaml_schema_value_t conf_shard_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, conf_raw_server_t,
                        conf_shard_fields),
};

static const cyaml_schema_field_t conf_tls_client_fields[] = {
    CONF_STR("ca_file", conf_raw_tls_client_t, ca_file, CYAML_FLAG_OPTIONAL),
    CONF_STR("cert_file", conf_raw_tls_client_t, cert_file,
             CYAML_FLAG_OPTIONAL),
    CONF_STR("key_file", conf_raw_tls_client_t, key_file, CYAML_FLAG_OPTIONAL),
    CONF_STR("server_name", conf_raw_tls_client_t, server_name,
             CYAML_FLAG_OPTIONAL),
    CYAML_FIELD_END
};

#define CONF_REDIS(key) \
    CONF_STR(#key, conf_raw_redis_t, key, CYAML_FLAG_OPTIONAL)

const cyaml_schema_field_t wsh_conf_redis_fields[] = {
    SERVER_FIELDS(conf_raw_redis_t, server.),
    CONF_REDIS(prefix),
    CONF_REDIS(connect_timeout),
    CONF_REDIS(command_timeout),
    CONF_REDIS(reconnect_min),
    CONF_REDIS(reconnect_max),
    CONF_REDIS(presence_ttl),
    CONF_REDIS(breaker_failures),
    CONF_REDIS(breaker_open),
    CYAML_FIELD_SEQUENCE("shards", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
                         conf_raw_redis_t, shards, &conf_shard_schema, 1,
                         WSH_REDIS_SHARDS_MAX),
    CYAML_FIELD_SEQUENCE("cluster", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
                         conf_raw_redis_t, cluster, &wsh_conf_string_schema,
                         1, 64),
    CYAML_FIELD_MAPPING_PTR("tls", CYAML_FLAG_OPTIONAL, conf_raw_redis_t, tls,
                            conf_tls_client_fields),
    CYAML_FIELD_END
};

/* A sentinel's "HOST:PORT" or "[IPV6]:PORT" into S (host allocated). */
static int
conf_sentinel_address(const char *text, wsh_conf_sentinel_t *s)
{
    const char *colon = strrchr(text, ':'), *host = text;
    unsigned long port;
    size_t hlen;
    char *end;

    if (colon == NULL || !isdigit((unsigned char) colon[1])) {
        return WSH_ERROR;
    }
    hlen = (size_t) (colon - text);
    if (text[0] == '[') {
        if (hlen < 3 || text[hlen - 1] != ']') {
            return WSH_ERROR;
        }
        host++;
        hlen -= 2;
    } else if (memchr(text, ':', hlen) != NULL) {
        return WSH_ERROR;       /* an IPv6 address without brackets */
    }
    errno = 0;
    port = strtoul(colon + 1, &end, 10);
    if (hlen == 0 || strcspn(host, " \t[]") < hlen || *end != '\0'
        || errno != 0 || port < 1 || port > 65535)
    {
        return WSH_ERROR;
    }
    s->host = strndup(host, hlen);
    s->port = (unsigned) port;
    return s->host != NULL ? WSH_OK : WSH_ERROR;
}

/* The list of HOST:PORT TEXTS (COUNT) at PATH into *OUT, *N of them
 * (hosts allocated, freed by wsh_conf_redis_free even on failure). */
static int
conf_addresses(wsh_conf_ctx_t *ctx, const char *path, char **texts,
    unsigned count, wsh_conf_sentinel_t **out, size_t *n)
{
    char key[112];
    size_t i;

    *out = calloc(count, sizeof(**out));
    if (*out == NULL) {
        wsh_conf_error(ctx, 1, 1, "out of memory");
        return WSH_ERROR;
    }
    for (i = 0; i < count; i++) {
        if (conf_sentinel_address(texts[i], &(*out)[i]) != WSH_OK) {
            snprintf(key, sizeof(key), "%s[%zu]", path, i);
            wsh_conf_value_error(ctx, key, "invalid address \"%s\" (use "
                                 "HOST:PORT or [IPv6]:PORT)", texts[i]);
            return WSH_ERROR;
        }
        (*n)++;
    }
    return WSH_OK;
}

/* PATH.sentinel (PATH: "engine.redis" or a shard's): the sentinels name
 * the server, so host, port and unix_socket would only be read by
 * mistake. */
static void
conf_sentinel(wsh_conf_ctx_t *ctx, const char *path, conf_raw_server_t *r,
    wsh_conf_redis_server_t *v)
{
    conf_raw_sentinel_t *s = r->sentinel;
    char key[96];

    if (wsh_conf_is_set(r->host) || wsh_conf_is_set(r->port)
        || wsh_conf_is_set(r->unix_socket))
    {
        snprintf(key, sizeof(key), "%s.%s", path,
                 wsh_conf_is_set(r->unix_socket) ? "unix_socket"
                 : wsh_conf_is_set(r->host) ? "host" : "port");
        wsh_conf_value_error(ctx, key, "not used with sentinel, which names "
                             "the master: remove it");
        return;
    }
    if (!wsh_conf_is_set(s->master)) {
        snprintf(key, sizeof(key), "%s.sentinel.master", path);
        wsh_conf_value_error(ctx, key, "the name of the master the "
                             "sentinels monitor is missing");
        return;
    }
    snprintf(key, sizeof(key), "%s.sentinel.addresses", path);
    if (conf_addresses(ctx, key, s->addresses, s->addresses_count,
                       &v->sentinels, &v->nsentinels) != WSH_OK)
    {
        return;
    }
    v->sentinel_master = wsh_conf_strdup(ctx, s->master);
    v->sentinel_password = wsh_conf_strdup_or(ctx, s->password, NULL);
}

/* The server R at PATH into V; user, password and db default to
 * DEF's, as written (engine.redis's for a shard; NULL: none). */
static void
conf_server(wsh_conf_ctx_t *ctx, const char *path, conf_raw_server_t *r,
    const conf_raw_server_t *def, wsh_conf_redis_server_t *v)
{
    const char *user = NULL, *password = NULL;
    unsigned db = 0;
    char key[96];

    if (def != NULL) {
        wsh_conf_uint(ctx, "engine.redis.db", def->db, 0, 0, 1000000, &db);
        user = wsh_conf_is_set(def->user) ? def->user : NULL;
        password = wsh_conf_is_set(def->password) ? def->password : NULL;
    }
    v->host = wsh_conf_strdup_or(ctx, r->host, "127.0.0.1");
    snprintf(key, sizeof(key), "%s.port", path);
    wsh_conf_uint(ctx, key, r->port, 6379, 1, 65535, &v->port);
    v->unix_socket = wsh_conf_strdup_or(ctx, r->unix_socket, NULL);
    v->user = wsh_conf_strdup_or(ctx, r->user, user);
    v->password = wsh_conf_strdup_or(ctx, r->password, password);
    snprintf(key, sizeof(key), "%s.db", path);
    wsh_conf_uint(ctx, key, r->db, db, 0, 1000000, &v->db);
    if (r->sentinel != NULL) {
        conf_sentinel(ctx, path, r, v);
    }
}

/* Two shards naming one server would hold the same channels twice
 * over: refused. */
static bool
conf_same_server(const wsh_conf_redis_server_t *a,
    const wsh_conf_redis_server_t *b)
{
    if (a->sentinel_master != NULL || b->sentinel_master != NULL) {
        return a->sentinel_master != NULL && b->sentinel_master != NULL
               && strcmp(a->sentinel_master, b->sentinel_master) == 0
               && strcmp(a->sentinels[0].host, b->sentinels[0].host) == 0
               && a->sentinels[0].port == b->sentinels[0].port;
    }
    if (a->unix_socket != NULL || b->unix_socket != NULL) {
        return a->unix_socket != NULL && b->unix_socket != NULL
               && strcmp(a->unix_socket, b->unix_socket) == 0;
    }
    return strcmp(a->host, b->host) == 0 && a->port == b->port;
}

/* engine.redis.shards into E->servers, engine.redis's user, password and
 * db being their defaults. */
static void
conf_shards(wsh_conf_ctx_t *ctx, conf_raw_redis_t *r, wsh_conf_engine_t *e)
{
    conf_raw_server_t *raw;
    char path[64];
    size_t i, j;

    if (wsh_conf_is_set(r->server.host) || wsh_conf_is_set(r->server.port)
        || wsh_conf_is_set(r->server.unix_socket) || r->server.sentinel)
    {
        wsh_conf_value_error(ctx, r->server.sentinel
                             ? "engine.redis.sentinel"
                             : wsh_conf_is_set(r->server.unix_socket)
                             ? "engine.redis.unix_socket"
                             : wsh_conf_is_set(r->server.host)
                             ? "engine.redis.host" : "engine.redis.port",
                             "not used with shards, which name the servers: "
                             "move it into a shard, or remove it");
        return;
    }
    e->servers = calloc(r->shards_count, sizeof(*e->servers));
    if (e->servers == NULL) {
        wsh_conf_error(ctx, 1, 1, "out of memory");
        return;
    }
    e->sharded = true;
    for (i = 0; i < r->shards_count && !ctx->failed; i++) {
        raw = &r->shards[i];
        snprintf(path, sizeof(path), "engine.redis.shards[%zu]", i);
        e->nservers++;
        if (!wsh_conf_is_set(raw->host) && !wsh_conf_is_set(raw->unix_socket)
            && raw->sentinel == NULL)
        {
            wsh_conf_value_error(ctx, path, "name the server: host (and "
                                 "port), unix_socket or sentinel");
            return;
        }
        if (wsh_conf_is_set(raw->host) && wsh_conf_is_set(raw->unix_socket)) {
            snprintf(path + strlen(path), sizeof(path) - strlen(path),
                     ".unix_socket");
            wsh_conf_value_error(ctx, path, "not used with host: keep one");
            return;
        }
        conf_server(ctx, path, raw, &r->server, &e->servers[i]);
        for (j = 0; j < i && !ctx->failed; j++) {
            if (conf_same_server(&e->servers[j], &e->servers[i])) {
                wsh_conf_value_error(ctx, path, "the same server as "
                                     "engine.redis.shards[%zu]: list each "
                                     "server once", j);
            }
        }
    }
}

/* engine.redis.cluster: the seed nodes into E->cluster_seeds. The
 * nodes are found from them, so a key naming a server is refused, and
 * the prefix must leave the hash tags of the names alone
 * (redis_slot.h). */
static void
conf_cluster(wsh_conf_ctx_t *ctx, conf_raw_redis_t *r, wsh_conf_engine_t *e)
{
    const char *other = r->shards != NULL ? "engine.redis.shards"
                        : r->server.sentinel ? "engine.redis.sentinel"
                        : wsh_conf_is_set(r->server.unix_socket)
                        ? "engine.redis.unix_socket"
                        : wsh_conf_is_set(r->server.host) ? "engine.redis.host"
                        : wsh_conf_is_set(r->server.port) ? "engine.redis.port"
                        : wsh_conf_is_set(r->server.db) ? "engine.redis.db"
                        : NULL;

    if (other == NULL && (r->tls != NULL || wsh_conf_is_set(r->server.user)))
    {
        /* The sharded subscriber (redis_ssub.c) speaks neither. */
        wsh_conf_value_error(ctx, r->tls != NULL ? "engine.redis.tls"
                             : "engine.redis.user", "not supported with "
                             "cluster yet: remove it (use password, the "
                             "default user's)");
        return;
    }
    if (other != NULL) {
        wsh_conf_value_error(ctx, other, "not used with cluster, whose "
                             "nodes are found from the seeds (and use db "
                             "0): remove it, or remove cluster");
        return;
    }
    /* The rule of redis_slot_prefix_ok (engine/redis_slot.h), which
     * this layer cannot include. */
    if (strpbrk(e->prefix, "{}") != NULL) {
        wsh_conf_value_error(ctx, "engine.redis.prefix", "holds '{' or "
                             "'}', which would move the hash tag of every "
                             "name in cluster mode: remove them");
        return;
    }
    if (conf_addresses(ctx, "engine.redis.cluster", r->cluster,
                       r->cluster_count, &e->cluster_seeds,
                       &e->ncluster_seeds) == WSH_OK)
    {
        e->sharded = true;
    }
}

/* engine.redis.tls: to every server and sentinel. hiredis 0.14
 * (Debian 12) has no TLS: refused here, so that "wshubd -t" says so
 * rather than a worker failing to connect. */
static void
conf_redis_tls(wsh_conf_ctx_t *ctx, conf_raw_tls_client_t *t,
    wsh_conf_engine_t *e)
{
#ifndef HAVE_HIREDIS_SSL
    (void) t;
    (void) e;
    wsh_conf_value_error(ctx, "engine.redis.tls", "this wshubd was built "
                         "without TLS to Redis (hiredis %d.%d has no "
                         "hiredis_ssl; configure says \"redis TLS: no\"): "
                         "build it against hiredis >= 1.0 with hiredis_ssl, "
                         "or remove the key", HIREDIS_MAJOR, HIREDIS_MINOR);
#else
    size_t i;

    for (i = 0; i < e->nservers; i++) {
        if (e->servers[i].unix_socket != NULL) {
            wsh_conf_value_error(ctx, "engine.redis.tls", "not over a UNIX "
                                 "socket (%s): remove one",
                                 e->sharded ? "a shard's unix_socket"
                                 : "unix_socket is set");
            return;
        }
    }
    if (wsh_conf_is_set(t->cert_file) != wsh_conf_is_set(t->key_file)) {
        wsh_conf_value_error(ctx, wsh_conf_is_set(t->cert_file)
                             ? "engine.redis.tls.cert_file"
                             : "engine.redis.tls.key_file", "a client "
                             "certificate needs both cert_file and key_file");
        return;
    }
    e->tls.on = true;
    e->tls.ca_file = wsh_conf_strdup_or(ctx, t->ca_file, NULL);
    e->tls.cert_file = wsh_conf_strdup_or(ctx, t->cert_file, NULL);
    e->tls.key_file = wsh_conf_strdup_or(ctx, t->key_file, NULL);
    e->tls.server_name = wsh_conf_strdup_or(ctx, t->server_name, NULL);
#endif
}

void
wsh_conf_redis(wsh_conf_ctx_t *ctx, conf_raw_redis_t *r, wsh_conf_engine_t *e)
{
    static conf_raw_redis_t none;

    if (r == NULL) {
        r = &none;
    }
    e->prefix = wsh_conf_strdup_or(ctx, r->prefix, "wshub:");
    wsh_conf_msec(ctx, "engine.redis.connect_timeout", r->connect_timeout,
                  2000, 1, &e->connect_timeout);
    wsh_conf_msec(ctx, "engine.redis.command_timeout", r->command_timeout,
                  2000, 1, &e->command_timeout);
    wsh_conf_msec(ctx, "engine.redis.reconnect_min", r->reconnect_min, 100, 1,
                  &e->reconnect_min);
    wsh_conf_msec(ctx, "engine.redis.reconnect_max", r->reconnect_max, 10000,
                  1, &e->reconnect_max);
    wsh_conf_msec(ctx, "engine.redis.presence_ttl", r->presence_ttl, 30000,
                  1000, &e->presence_ttl);
    wsh_conf_uint(ctx, "engine.redis.breaker_failures", r->breaker_failures,
                  20, 0, 1000000, &e->breaker_failures);
    wsh_conf_msec(ctx, "engine.redis.breaker_open", r->breaker_open, 30000, 1,
                  &e->breaker_open);
    if (!ctx->failed && e->reconnect_max < e->reconnect_min) {
        wsh_conf_value_error(ctx, "engine.redis.reconnect_max", "must not be "
                             "shorter than reconnect_min");
    }
    if (ctx->failed) {
        return;
    }
    if (r->cluster != NULL) {
        conf_cluster(ctx, r, e);
    } else if (r->shards != NULL) {
        conf_shards(ctx, r, e);
    }
    if (ctx->failed) {
        return;
    }
    if (r->shards == NULL) {
        e->servers = calloc(1, sizeof(*e->servers));
        if (e->servers == NULL) {
            wsh_conf_error(ctx, 1, 1, "out of memory");
            return;
        }
        e->nservers = 1;
        conf_server(ctx, "engine.redis", &r->server, NULL, e->servers);
    }
    if (r->tls != NULL && !ctx->failed) {
        conf_redis_tls(ctx, r->tls, e);
    }
}

void
wsh_conf_redis_free(wsh_conf_engine_t *e)
{
    wsh_conf_redis_server_t *v;
    size_t i;

    for (i = 0; i < e->nservers; i++) {
        v = &e->servers[i];
        free(v->host);
        free(v->unix_socket);
        free(v->user);
        free(v->password);
        while (v->nsentinels > 0) {
            free(v->sentinels[--v->nsentinels].host);
        }
        free(v->sentinels);
        free(v->sentinel_master);
        free(v->sentinel_password);
    }
    free(e->servers);
    e->servers = NULL;
    e->nservers = 0;
    while (e->ncluster_seeds > 0) {
        free(e->cluster_seeds[--e->ncluster_seeds].host);
    }
    free(e->cluster_seeds);
    e->cluster_seeds = NULL;
    free(e->prefix);
    free(e->tls.ca_file);
    free(e->tls.cert_file);
    free(e->tls.key_file);
    free(e->tls.server_name);
}
