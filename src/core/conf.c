/* conf.c -- load, check and parse the YAML configuration: the core's keys.
 *
 * Three passes, so every mistake is reported where it was made:
 *  1. shape (conf_shape.c): a libyaml walk over the file, guided by the
 *     libcyaml schema of the core's keys and the modules' sections
 *     (conf_section.c), rejects unknown or duplicate keys and wrong kinds
 *     (list for value...) with FILE:LINE:COL and records where every
 *     value sits;
 *  2. load: libcyaml fills a struct of raw strings (every scalar is a
 *     string, because libcyaml accepts "3x" as 3 and knows no units);
 *  3. values: each string is parsed with the one parser of its type
 *     (conf_value.c) and checked, defaults applied: the modules' sections
 *     first, then the core's keys here and the endpoints
 *     (conf_endpoint.c); errors point at the value's line and column
 *     from pass 1. This file knows no module.
 */
#include "core/conf.h"
#include "core/conf_value.h"
#include "core/log.h"
#include "core/module.h"

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <cyaml/cyaml.h>
#include <yaml.h>

/* Pass 2 target: every scalar as the text the user wrote. */

typedef struct {
    char *enabled;
    char *level;
    char *min_size;
    char *window_bits;
    char *client_window_bits;
    char *mem_level;
    char *server_context_takeover;
    char *client_context_takeover;
} conf_raw_deflate_t;

typedef struct {
    char *rps;
    char *burst;
    char *action;
} conf_raw_rate_t;

typedef struct {
    char *per_ip_connections;
    char *per_ip_handshake_rate;
    char *per_ip_handshake_burst;
    char *per_ip_pending;
    char *max_connections_total;
    char *max_fragments;
    char *worker_send_buffer;
} conf_raw_limits_t;

typedef struct {
    char             *type;
    char             *node_id;
    char             *idempotency_window;
    conf_raw_redis_t *redis;
} conf_raw_engine_t;

typedef struct {
    char *certificate;
    char *certificate_key;
    char *protocols;
    char *ciphers;
    char *ciphersuites;
} conf_raw_tls_t;

typedef struct {
    char                *daemon;
    char                *pid_file;
    char                *user;
    char                *group;
    char                *worker_rlimit_nofile;
    char                *worker_processes;
    char                *error_log;
    char                *log_level;
    char                *access_log;
    char                *access_log_format;
    char               **listen;
    unsigned             listen_count;
    char                *backlog;
    char                *reuseport;
    char                *max_connections;
    char                *max_message_size;
    char                *send_buffer;
    char                *max_header_size;
    char                *max_headers;
    char                *handshake_timeout;
    char                *ping_period;
    char                *pong_wait;
    char                *write_wait;
    char                *write_delay;
    char                *close_timeout;
    char                *shutdown_timeout;
    char                *shutdown_spread;
    char                *slow_consumer;
    conf_raw_endpoint_t *endpoints;
    unsigned             endpoints_count;
    char               **allowed_origins;
    unsigned             allowed_origins_count;
    conf_raw_engine_t   *engine;
    conf_raw_rate_t     *rate_limit;
    conf_raw_tls_t      *tls;
    conf_raw_limits_t   *limits;
    conf_raw_deflate_t  *compression;
    void                *sections[WSH_MODULES_MAX];  /* conf_section.c */
} conf_raw_t;

const cyaml_schema_value_t wsh_conf_string_schema = {
    CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, CYAML_UNLIMITED),
};

static const cyaml_schema_field_t conf_endpoint_fields[] = {
    CONF_STR("path", conf_raw_endpoint_t, path, CYAML_FLAG_DEFAULT),
    CONF_STR("module", conf_raw_endpoint_t, module, CYAML_FLAG_DEFAULT),
    CONF_STR("max_message_size", conf_raw_endpoint_t, max_message_size,
             CYAML_FLAG_OPTIONAL),
    CYAML_FIELD_SEQUENCE("allow", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
                         conf_raw_endpoint_t, allow, &wsh_conf_string_schema, 1,
                         1024),
    CONF_STR("auth", conf_raw_endpoint_t, auth, CYAML_FLAG_OPTIONAL),
    CYAML_FIELD_SEQUENCE("listen", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
                         conf_raw_endpoint_t, listen, &wsh_conf_string_schema, 1,
                         64),
    CONF_STR("realm", conf_raw_endpoint_t, realm, CYAML_FLAG_OPTIONAL),
    CYAML_FIELD_END
};

static const cyaml_schema_value_t conf_endpoint_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, conf_raw_endpoint_t,
                        conf_endpoint_fields),
};

static const cyaml_schema_field_t conf_rate_fields[] = {
    CONF_STR("rps", conf_raw_rate_t, rps, CYAML_FLAG_OPTIONAL),
    CONF_STR("burst", conf_raw_rate_t, burst, CYAML_FLAG_OPTIONAL),
    CONF_STR("action", conf_raw_rate_t, action, CYAML_FLAG_OPTIONAL),
    CYAML_FIELD_END
};

#define CONF_LIMIT(key) \
    CONF_STR(#key, conf_raw_limits_t, key, CYAML_FLAG_OPTIONAL)

static const cyaml_schema_field_t conf_limits_fields[] = {
    CONF_LIMIT(per_ip_connections),
    CONF_LIMIT(per_ip_handshake_rate),
    CONF_LIMIT(per_ip_handshake_burst),
    CONF_LIMIT(per_ip_pending),
    CONF_LIMIT(max_connections_total),
    CONF_LIMIT(max_fragments),
    CONF_LIMIT(worker_send_buffer),
    CYAML_FIELD_END
};

#define CONF_DEFLATE(key) \
    CONF_STR(#key, conf_raw_deflate_t, key, CYAML_FLAG_OPTIONAL)

static const cyaml_schema_field_t conf_deflate_fields[] = {
    CONF_DEFLATE(enabled),
    CONF_DEFLATE(level),
    CONF_DEFLATE(min_size),
    CONF_DEFLATE(window_bits),
    CONF_DEFLATE(client_window_bits),
    CONF_DEFLATE(mem_level),
    CONF_DEFLATE(server_context_takeover),
    CONF_DEFLATE(client_context_takeover),
    CYAML_FIELD_END
};

static const cyaml_schema_field_t conf_tls_fields[] = {
    CONF_STR("certificate", conf_raw_tls_t, certificate, CYAML_FLAG_DEFAULT),
    CONF_STR("certificate_key", conf_raw_tls_t, certificate_key,
             CYAML_FLAG_DEFAULT),
    CONF_STR("protocols", conf_raw_tls_t, protocols, CYAML_FLAG_OPTIONAL),
    CONF_STR("ciphers", conf_raw_tls_t, ciphers, CYAML_FLAG_OPTIONAL),
    CONF_STR("ciphersuites", conf_raw_tls_t, ciphersuites,
             CYAML_FLAG_OPTIONAL),
    CYAML_FIELD_END
};

static const cyaml_schema_field_t conf_engine_fields[] = {
    CONF_STR("type", conf_raw_engine_t, type, CYAML_FLAG_OPTIONAL),
    CONF_STR("node_id", conf_raw_engine_t, node_id, CYAML_FLAG_OPTIONAL),
    CONF_STR("idempotency_window", conf_raw_engine_t, idempotency_window,
             CYAML_FLAG_OPTIONAL),
    CYAML_FIELD_MAPPING_PTR("redis", CYAML_FLAG_OPTIONAL, conf_raw_engine_t,
                            redis, wsh_conf_redis_fields),
    CYAML_FIELD_END
};

#define CONF_OPT(key, member) CONF_STR(key, conf_raw_t, member, CYAML_FLAG_OPTIONAL)

static const cyaml_schema_field_t conf_top_fields[] = {
    CONF_OPT("daemon", daemon),
    CONF_OPT("pid_file", pid_file),
    CONF_OPT("user", user),
    CONF_OPT("group", group),
    CONF_OPT("worker_rlimit_nofile", worker_rlimit_nofile),
    CONF_OPT("worker_processes", worker_processes),
    CONF_OPT("error_log", error_log),
    CONF_OPT("log_level", log_level),
    CONF_OPT("access_log", access_log),
    CONF_OPT("access_log_format", access_log_format),
    CYAML_FIELD_SEQUENCE("listen", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
                         conf_raw_t, listen, &wsh_conf_string_schema, 1, 64),
    CONF_OPT("backlog", backlog),
    CONF_OPT("reuseport", reuseport),
    CONF_OPT("max_connections", max_connections),
    CONF_OPT("max_message_size", max_message_size),
    CONF_OPT("send_buffer", send_buffer),
    CONF_OPT("max_header_size", max_header_size),
    CONF_OPT("max_headers", max_headers),
    CONF_OPT("handshake_timeout", handshake_timeout),
    CONF_OPT("ping_period", ping_period),
    CONF_OPT("pong_wait", pong_wait),
    CONF_OPT("write_wait", write_wait),
    CONF_OPT("write_delay", write_delay),
    CONF_OPT("close_timeout", close_timeout),
    CONF_OPT("shutdown_timeout", shutdown_timeout),
    CONF_OPT("shutdown_spread", shutdown_spread),
    CONF_OPT("slow_consumer", slow_consumer),
    CYAML_FIELD_SEQUENCE("endpoints", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
                         conf_raw_t, endpoints, &conf_endpoint_schema, 1, 256),
    CYAML_FIELD_SEQUENCE("allowed_origins",
                         CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, conf_raw_t,
                         allowed_origins, &wsh_conf_string_schema, 0, 1024),
    CYAML_FIELD_MAPPING_PTR("engine", CYAML_FLAG_OPTIONAL, conf_raw_t, engine,
                            conf_engine_fields),
    CYAML_FIELD_MAPPING_PTR("rate_limit", CYAML_FLAG_OPTIONAL, conf_raw_t,
                            rate_limit, conf_rate_fields),
    CYAML_FIELD_MAPPING_PTR("tls", CYAML_FLAG_OPTIONAL, conf_raw_t, tls,
                            conf_tls_fields),
    CYAML_FIELD_MAPPING_PTR("limits", CYAML_FLAG_OPTIONAL, conf_raw_t,
                            limits, conf_limits_fields),
    CYAML_FIELD_MAPPING_PTR("compression", CYAML_FLAG_OPTIONAL, conf_raw_t,
                            compression, conf_deflate_fields),
    CYAML_FIELD_END
};

/* The core's keys and the modules' sections. */
static const cyaml_schema_value_t *
conf_schema(void)
{
    return wsh_conf_schema(conf_top_fields, sizeof(conf_raw_t),
                           offsetof(conf_raw_t, sections));
}

typedef wsh_conf_ctx_t conf_ctx_t;

static void
conf_workers(conf_ctx_t *ctx, conf_raw_t *raw, wsh_conf_t *cf)
{
    unsigned n;
    long ncpu;

    if (!wsh_conf_is_set(raw->worker_processes)
        || strcmp(raw->worker_processes, "auto") == 0)
    {
        ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        cf->worker_processes = ncpu > 0 ? (int) ncpu : 1;
        return;
    }
    wsh_conf_uint(ctx, "worker_processes", raw->worker_processes, 1, 1, 1024, &n);
    cf->worker_processes = (int) n;
}

static void
conf_logs(conf_ctx_t *ctx, conf_raw_t *raw, wsh_conf_t *cf)
{
    char err[512];

    if (wsh_conf_is_set(raw->error_log) && wsh_conf_bool_word(raw->error_log) >= 0) {
        /* Not a file named "off": errors must go somewhere. */
        wsh_conf_value_error(ctx, "error_log", "\"%s\" is not a place: use "
                         "stderr or a file", raw->error_log);
    }
    cf->error_log = wsh_conf_strdup(ctx, wsh_conf_is_set(raw->error_log)
                                     ? raw->error_log : "stderr");
    if (wsh_conf_is_set(raw->access_log)
        && wsh_conf_bool_word(raw->access_log) == 1)
    {
        wsh_conf_value_error(ctx, "access_log", "\"%s\" says where: use off, "
                         "stderr or a file", raw->access_log);
    } else if (wsh_conf_is_set(raw->access_log)
               && wsh_conf_bool_word(raw->access_log) != 0)
    {
        cf->access_log = wsh_conf_strdup(ctx, raw->access_log);
    }
    if (wsh_access_format_compile(wsh_conf_is_set(raw->access_log_format)
                                  ? raw->access_log_format : NULL,
                                  &cf->access_format, err, sizeof(err))
        != WSH_OK)
    {
        wsh_conf_value_error(ctx, "access_log_format", "%s", err);
    }
    cf->log_level = WSH_LOG_NOTICE;
    if (wsh_conf_is_set(raw->log_level)) {
        cf->log_level = wsh_log_level_parse(raw->log_level);
        if (cf->log_level < 0) {
            wsh_conf_value_error(ctx, "log_level", "unknown level \"%s\" (use "
                             "emerg, alert, crit, error, warn, notice, info "
                             "or debug)", raw->log_level);
        }
    }
    if (wsh_conf_is_set(raw->pid_file)) {
        cf->pid_file = wsh_conf_strdup(ctx, raw->pid_file);
    }
}

static void
conf_listen(conf_ctx_t *ctx, conf_raw_t *raw, wsh_conf_t *cf)
{
    static char *deflt[] = { "127.0.0.1:8080" };
    char **list = raw->listen ? raw->listen : deflt;
    size_t n = raw->listen ? raw->listen_count : 1, i, j;
    char path[32];

    cf->listen = calloc(n, sizeof(*cf->listen));
    if (cf->listen == NULL) {
        wsh_conf_error(ctx, 1, 1, "out of memory");
        return;
    }
    cf->nlisten = n;
    for (i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "listen[%zu]", i);
        if (wsh_conf_listen_text(list[i], &cf->listen[i]) != WSH_OK) {
            wsh_conf_value_error(ctx, path, "invalid address \"%s\" (use "
                             "IP:PORT, [IPv6]:PORT or *:PORT, then \" tls\" "
                             "for TLS)", list[i]);
            return;
        }
        if (cf->listen[i].tls && raw->tls == NULL) {
            wsh_conf_value_error(ctx, path, "\"%s\" needs a tls section with "
                             "certificate and certificate_key", list[i]);
            return;
        }
        for (j = 0; j < i; j++) {
            if (strcmp(cf->listen[j].text, cf->listen[i].text) == 0) {
                wsh_conf_value_error(ctx, path, "duplicate address \"%s\"",
                                 list[i]);
                return;
            }
        }
    }
}

/* slow_consumer (hub.slow_consumer before 0.2): what happens to a client
 * whose output is over send_buffer when something is sent to it. */
static void
conf_slow_consumer(conf_ctx_t *ctx, const char *text, wsh_conf_t *cf)
{
    cf->slow_consumer_drop = false;
    if (!wsh_conf_is_set(text)) {
        return;
    }
    if (strcmp(text, "drop") == 0) {
        cf->slow_consumer_drop = true;
    } else if (strcmp(text, "close") != 0) {
        wsh_conf_value_error(ctx, "slow_consumer", "\"%s\" is not close or "
                             "drop", text);
    }
}

char *
wsh_conf_strdup_or(conf_ctx_t *ctx, const char *value, const char *deflt)
{
    if (wsh_conf_is_set(value)) {
        return wsh_conf_strdup(ctx, value);
    }
    return deflt ? wsh_conf_strdup(ctx, deflt) : NULL;
}

/* A node id unique across hosts: the host name is not (containers),
 * so 64 random bits. */
static char *
conf_node_id(conf_ctx_t *ctx)
{
    unsigned char rnd[8];
    char id[20];
    size_t i;

    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t) sizeof(rnd)) {
        wsh_conf_error(ctx, 1, 1, "getrandom() failed for engine.node_id");
        return NULL;
    }
    for (i = 0; i < sizeof(rnd); i++) {
        snprintf(id + 2 * i, 3, "%02x", rnd[i]);
    }
    return wsh_conf_strdup(ctx, id);
}

static void
conf_engine(conf_ctx_t *ctx, conf_raw_engine_t *raw, wsh_conf_engine_t *e)
{
    static conf_raw_engine_t none;

    if (raw == NULL) {
        raw = &none;
    }
    /* How long a publish's idempotency key is remembered by the
     * sequencer (hub.idempotency_window before 0.2). */
    wsh_conf_msec(ctx, "engine.idempotency_window", raw->idempotency_window,
                  300000, 1000, &e->idempotency_window);
    e->redis = false;
    if (wsh_conf_is_set(raw->type)) {
        if (strcmp(raw->type, "redis") == 0) {
            e->redis = true;
        } else if (strcmp(raw->type, "local") != 0) {
            wsh_conf_value_error(ctx, "engine.type", "\"%s\" is not local or "
                             "redis", raw->type);
        }
    }
    if (wsh_conf_is_set(raw->node_id)
        && strspn(raw->node_id, "abcdefghijklmnopqrstuvwxyz"
                  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
           != strlen(raw->node_id))
    {
        wsh_conf_value_error(ctx, "engine.node_id", "use letters, digits, "
                         "\"_\", \".\" and \"-\" only");
    }
    e->node_id = wsh_conf_is_set(raw->node_id) ? wsh_conf_strdup(ctx, raw->node_id)
                                           : conf_node_id(ctx);
    wsh_conf_redis(ctx, raw->redis, e);
}

static void
conf_engine_free(wsh_conf_engine_t *e)
{
    free(e->node_id);
    wsh_conf_redis_free(e);
}

/* user/group: looked up now, so a typo fails "wshubd -t" with its line
 * rather than a worker at fork time. */
static void
conf_user(conf_ctx_t *ctx, conf_raw_t *raw, wsh_conf_t *cf)
{
    struct passwd *pw;
    struct group *gr;

    if (!wsh_conf_is_set(raw->user)) {
        if (wsh_conf_is_set(raw->group)) {
            wsh_conf_value_error(ctx, "group", "needs user as well");
        }
        return;
    }
    pw = getpwnam(raw->user);
    if (pw == NULL) {
        wsh_conf_value_error(ctx, "user", "no such user \"%s\"", raw->user);
        return;
    }
    cf->user = wsh_conf_strdup(ctx, raw->user);
    cf->uid = pw->pw_uid;
    cf->gid = pw->pw_gid;
    if (wsh_conf_is_set(raw->group)) {
        gr = getgrnam(raw->group);
        if (gr == NULL) {
            wsh_conf_value_error(ctx, "group", "no such group \"%s\"",
                             raw->group);
            return;
        }
        cf->gid = gr->gr_gid;
    }
}

static void
conf_rate(conf_ctx_t *ctx, conf_raw_rate_t *raw, wsh_conf_t *cf)
{
    static conf_raw_rate_t none;

    if (raw == NULL) {
        raw = &none;
    }
    wsh_conf_uint(ctx, "rate_limit.rps", raw->rps, 0, 0, 1000000, &cf->rate_rps);
    wsh_conf_uint(ctx, "rate_limit.burst", raw->burst,
              cf->rate_rps ? cf->rate_rps * 2 : 0, 1, 10000000,
              &cf->rate_burst);
    cf->rate_drop = false;
    if (wsh_conf_is_set(raw->action)) {
        if (strcmp(raw->action, "drop") == 0) {
            cf->rate_drop = true;
        } else if (strcmp(raw->action, "close") != 0) {
            wsh_conf_value_error(ctx, "rate_limit.action", "\"%s\" is not close "
                             "or drop", raw->action);
        }
    }
    if (!ctx->failed && cf->rate_rps == 0 && wsh_conf_is_set(raw->burst)) {
        wsh_conf_value_error(ctx, "rate_limit.burst", "needs rate_limit.rps");
    }
}

/* "TLSv1.2 TLSv1.3" into WSH_TLS_* bits. OpenSSL takes a range (a
 * minimum and a maximum version), so the set must have no gap. */
static void
conf_tls_protocols(conf_ctx_t *ctx, const char *text, unsigned *out)
{
    static const char *names[] = { "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3" };
    char buf[128], *tok, *save;
    unsigned bits = 0, run, i;

    *out = WSH_TLS_V1_2 | WSH_TLS_V1_3;
    if (!wsh_conf_is_set(text)) {
        return;
    }
    snprintf(buf, sizeof(buf), "%s", text);
    for (tok = strtok_r(buf, " \t,", &save); tok != NULL;
         tok = strtok_r(NULL, " \t,", &save))
    {
        for (i = 0; i < wsh_nelems(names); i++) {
            if (strcmp(tok, names[i]) == 0) {
                bits |= 1u << i;
                break;
            }
        }
        if (i == wsh_nelems(names)) {
            wsh_conf_value_error(ctx, "tls.protocols", "unknown protocol \"%s\" "
                             "(use TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3)", tok);
            return;
        }
    }
    run = bits / (bits & -bits);        /* shifted down to bit 0 */
    if ((run & (run + 1)) != 0) {
        wsh_conf_value_error(ctx, "tls.protocols", "\"%s\" is not a range of "
                         "versions without a gap (e.g. TLSv1.2 TLSv1.3)",
                         text);
        return;
    }
    *out = bits;
}

/* The tls section's values; the files are read and checked by tls.c when
 * the cycle is built, so errors there name their file too. */
static void
conf_tls(conf_ctx_t *ctx, conf_raw_tls_t *raw, wsh_conf_tls_t *tls)
{
    if (raw == NULL) {
        return;
    }
    if (!wsh_conf_is_set(raw->certificate) || !wsh_conf_is_set(raw->certificate_key))
    {
        wsh_conf_value_error(ctx, wsh_conf_is_set(raw->certificate)
                         ? "tls.certificate_key" : "tls.certificate",
                         "must name a PEM file");
        return;
    }
    conf_tls_protocols(ctx, raw->protocols, &tls->protocols);
    tls->certificate = wsh_conf_strdup(ctx, raw->certificate);
    tls->certificate_key = wsh_conf_strdup(ctx, raw->certificate_key);
    /* Forward secrecy and AEAD only, as Mozilla's "intermediate" profile
     * (no DHE: that would need dhparam files). */
    tls->ciphers = wsh_conf_strdup_or(ctx, raw->ciphers,
                                  "ECDHE+AESGCM:ECDHE+CHACHA20");
    tls->ciphersuites = wsh_conf_strdup_or(ctx, raw->ciphersuites, NULL);
}

const char *
wsh_conf_where(const wsh_conf_t *cf, const char *path, char *buf,
    size_t len)
{
    size_t i;

    for (i = 0; i < cf->nlocs; i++) {
        if (strcmp(cf->locs[i].path, path) == 0) {
            snprintf(buf, len, "%s:%d:%d", cf->file, cf->locs[i].line,
                     cf->locs[i].col);
            return buf;
        }
    }
    snprintf(buf, len, "%s", cf->file);
    return buf;
}

/* The limits: section (abuse limits shared by all workers, see
 * net/limit.c); every one is off (0) by default except the fragment
 * and per-worker output caps. */
static void
conf_limits(conf_ctx_t *ctx, conf_raw_limits_t *raw, wsh_conf_limits_t *l)
{
    static conf_raw_limits_t none;

    if (raw == NULL) {
        raw = &none;
    }
    wsh_conf_uint(ctx, "limits.per_ip_connections", raw->per_ip_connections, 0,
              0, 1000000, &l->per_ip_connections);
    wsh_conf_uint(ctx, "limits.per_ip_handshake_rate",
              raw->per_ip_handshake_rate, 0, 0, 1000000,
              &l->per_ip_handshake_rate);
    wsh_conf_uint(ctx, "limits.per_ip_handshake_burst",
              raw->per_ip_handshake_burst,
              l->per_ip_handshake_rate ? l->per_ip_handshake_rate * 2 : 0, 1,
              10000000, &l->per_ip_handshake_burst);
    wsh_conf_uint(ctx, "limits.per_ip_pending", raw->per_ip_pending, 256, 0,
              1000000, &l->per_ip_pending);
    wsh_conf_uint(ctx, "limits.max_connections_total", raw->max_connections_total,
              0, 0, 100000000, &l->max_connections_total);
    wsh_conf_uint(ctx, "limits.max_fragments", raw->max_fragments, 0, 0,
              100000000, &l->max_fragments);
    wsh_conf_size(ctx, "limits.worker_send_buffer", raw->worker_send_buffer,
              (size_t) 256 << 20, 0, (size_t) 1 << 40,
              &l->worker_send_buffer);
    if (!ctx->failed && l->per_ip_handshake_rate == 0
        && wsh_conf_is_set(raw->per_ip_handshake_burst))
    {
        wsh_conf_value_error(ctx, "limits.per_ip_handshake_burst",
                         "needs limits.per_ip_handshake_rate");
    }
}

/* compression: permessage-deflate. Off by default: every browser offers
 * it, and its cost (CPU per message, zlib memory per message or, with
 * context takeover, per connection) should be an operator's choice.
 * Without context takeover an idle connection holds no zlib state. */
static void
conf_deflate(conf_ctx_t *ctx, conf_raw_deflate_t *raw, wsh_conf_deflate_t *d)
{
    static conf_raw_deflate_t none;

    if (raw == NULL) {
        raw = &none;
    }
    wsh_conf_bool(ctx, "compression.enabled", raw->enabled, false, &d->enabled);
    wsh_conf_uint(ctx, "compression.level", raw->level, 1, 1, 9, &d->level);
    wsh_conf_size(ctx, "compression.min_size", raw->min_size, 64, 0,
              (size_t) 1 << 31, &d->min_size);
    /* zlib cannot make raw deflate streams with an 8-bit window, so
     * neither we nor zlib-based clients could honour 8. */
    wsh_conf_uint(ctx, "compression.window_bits", raw->window_bits, 15, 9, 15,
              &d->window_bits);
    wsh_conf_uint(ctx, "compression.client_window_bits", raw->client_window_bits,
              15, 9, 15, &d->client_window_bits);
    wsh_conf_uint(ctx, "compression.mem_level", raw->mem_level, 8, 1, 9,
              &d->mem_level);
    wsh_conf_bool(ctx, "compression.server_context_takeover",
              raw->server_context_takeover, false,
              &d->server_context_takeover);
    wsh_conf_bool(ctx, "compression.client_context_takeover",
              raw->client_context_takeover, false,
              &d->client_context_takeover);
}

static void
conf_origins(conf_ctx_t *ctx, conf_raw_t *raw, wsh_conf_t *cf)
{
    char path[40];
    size_t i;

    if (raw->allowed_origins == NULL || raw->allowed_origins_count == 0) {
        return;
    }
    cf->origins = calloc(raw->allowed_origins_count, sizeof(*cf->origins));
    if (cf->origins == NULL) {
        wsh_conf_error(ctx, 1, 1, "out of memory");
        return;
    }
    for (i = 0; i < raw->allowed_origins_count; i++) {
        const char *t = raw->allowed_origins[i];

        snprintf(path, sizeof(path), "allowed_origins[%zu]", i);
        if (wsh_conf_parse_origin(t, strlen(t), &cf->origins[i]) != WSH_OK) {
            wsh_conf_value_error(ctx, path, "\"%s\" is not an origin (use "
                             "https://host[:port] or https://*.domain)", t);
            return;
        }
        cf->norigins++;
    }
}

/* Pass 3: every value parsed, defaulted and checked. */
static void
conf_values(conf_ctx_t *ctx, conf_raw_t *raw, wsh_conf_t *cf)
{
    unsigned backlog;

    wsh_conf_bool(ctx, "daemon", raw->daemon, false, &cf->daemon);
    conf_user(ctx, raw, cf);
    wsh_conf_uint(ctx, "worker_rlimit_nofile", raw->worker_rlimit_nofile, 0, 0,
              16777216, &cf->worker_rlimit_nofile);
    conf_workers(ctx, raw, cf);
    conf_logs(ctx, raw, cf);
    conf_listen(ctx, raw, cf);
    wsh_conf_uint(ctx, "backlog", raw->backlog, 511, 1, 65535, &backlog);
    cf->backlog = (int) backlog;
    wsh_conf_bool(ctx, "reuseport", raw->reuseport, true, &cf->reuseport);
    wsh_conf_uint(ctx, "max_connections", raw->max_connections, 10000, 1,
              1000000, &cf->max_connections);
    wsh_conf_size(ctx, "max_message_size", raw->max_message_size, 64 * 1024, 1,
              (size_t) 1 << 31, &cf->max_message_size);
    wsh_conf_size(ctx, "send_buffer", raw->send_buffer, 1024 * 1024, 1024,
              (size_t) 1 << 31, &cf->send_buffer);
    wsh_conf_size(ctx, "max_header_size", raw->max_header_size, 8 * 1024, 256,
              1024 * 1024, &cf->max_header_size);
    wsh_conf_uint(ctx, "max_headers", raw->max_headers, 64, 4, 1000,
              &cf->max_headers);
    wsh_conf_msec(ctx, "handshake_timeout", raw->handshake_timeout, 10000, 1,
              &cf->handshake_timeout);
    wsh_conf_msec(ctx, "ping_period", raw->ping_period, 54000, 0,
              &cf->ping_period);
    wsh_conf_msec(ctx, "pong_wait", raw->pong_wait, 60000, 1, &cf->pong_wait);
    wsh_conf_msec(ctx, "write_wait", raw->write_wait, 10000, 1, &cf->write_wait);
    wsh_conf_msec(ctx, "write_delay", raw->write_delay, 0, 0, &cf->write_delay);
    if (!ctx->failed && cf->write_delay > 1000) {
        wsh_conf_value_error(ctx, "write_delay", "at most 1s: broadcasts would "
                         "wait longer than any client expects");
    }
    wsh_conf_msec(ctx, "close_timeout", raw->close_timeout, 5000, 1,
              &cf->close_timeout);
    wsh_conf_msec(ctx, "shutdown_timeout", raw->shutdown_timeout, 30000, 0,
              &cf->shutdown_timeout);
    wsh_conf_msec(ctx, "shutdown_spread", raw->shutdown_spread, 2000, 0,
              &cf->shutdown_spread);
    if (!ctx->failed && cf->shutdown_spread > cf->shutdown_timeout) {
        wsh_conf_value_error(ctx, "shutdown_spread", "must not be longer than "
                         "shutdown_timeout (%llums), or the last clients are "
                         "cut off instead of closed",
                         (unsigned long long) cf->shutdown_timeout);
    }
    if (!ctx->failed && cf->ping_period != 0
        && cf->pong_wait <= cf->ping_period)
    {
        wsh_conf_value_error(ctx, "pong_wait", "must be longer than ping_period "
                         "(%llums), or a client that answers every ping is "
                         "still closed", (unsigned long long) cf->ping_period);
    }
    conf_origins(ctx, raw, cf);
    conf_rate(ctx, raw->rate_limit, cf);
    conf_tls(ctx, raw->tls, &cf->tls);
    conf_limits(ctx, raw->limits, &cf->limits);
    conf_deflate(ctx, raw->compression, &cf->compression);
    conf_slow_consumer(ctx, raw->slow_consumer, cf);
    conf_engine(ctx, raw->engine, &cf->engine);
    if (!ctx->failed) {
        wsh_conf_endpoints(ctx, raw->endpoints, raw->endpoints_count, cf);
    }
}

wsh_conf_t *
wsh_conf_load(const char *file, char *err, size_t errlen)
{
    conf_ctx_t ctx;
    cyaml_config_t cy;
    conf_raw_t empty, *raw = NULL;
    wsh_conf_t *cf = NULL;
    cyaml_err_t rc;
    FILE *fp;

    memset(&ctx, 0, sizeof(ctx));
    ctx.file = file;
    ctx.err = err;
    ctx.errlen = errlen;

    fp = fopen(file, "r");
    if (fp == NULL) {
        snprintf(err, errlen, "%s: cannot open: %s", file, strerror(errno));
        return NULL;
    }
    if (!wsh_conf_check_shape(&ctx, fp, conf_schema())) {
        fclose(fp);
        goto failed;
    }
    fclose(fp);

    memset(&cy, 0, sizeof(cy));
    cy.log_fn = wsh_conf_cyaml_log;
    cy.log_ctx = &ctx;
    cy.mem_fn = cyaml_mem;
    cy.log_level = CYAML_LOG_ERROR;
    cy.flags = CYAML_CFG_NO_ALIAS;
    rc = cyaml_load_file(file, &cy, conf_schema(), (cyaml_data_t **) &raw,
                         NULL);
    if (rc != CYAML_OK) {
        wsh_conf_error(&ctx, 1, 1, "%s", cyaml_strerror(rc));
        goto failed;
    }

    cf = calloc(1, sizeof(*cf));
    if (cf == NULL) {
        wsh_conf_error(&ctx, 1, 1, "out of memory");
        goto failed;
    }
    cf->raw = raw;
    if (raw == NULL) {
        memset(&empty, 0, sizeof(empty));
    } else {
        wsh_conf_sections_alias(&ctx, raw, raw->sections);
    }
    /* Sections first: endpoints check that their auth module's is
     * there. */
    wsh_conf_sections_load(&ctx, raw ? raw->sections : empty.sections, cf);
    conf_values(&ctx, raw ? raw : &empty, cf);
    cf->file = wsh_conf_strdup(&ctx, file);
    if (ctx.failed) {
        goto failed;
    }
    cf->locs = ctx.locs;            /* for wsh_conf_where() */
    cf->nlocs = ctx.nlocs;
    return cf;

failed:
    free(ctx.locs);
    if (cf != NULL) {
        wsh_conf_free(cf);
    } else if (raw != NULL) {
        cyaml_free(&cy, conf_schema(), raw, 0);
    }
    return NULL;
}

void
wsh_conf_free(wsh_conf_t *cf)
{
    cyaml_config_t cy;
    size_t i;

    if (cf == NULL) {
        return;
    }
    wsh_conf_sections_free(cf);
    if (cf->raw != NULL) {
        memset(&cy, 0, sizeof(cy));
        cy.mem_fn = cyaml_mem;
        cyaml_free(&cy, conf_schema(), cf->raw, 0);
    }
    for (i = 0; i < cf->nendpoints; i++) {
        free(cf->endpoints[i].path);
        free(cf->endpoints[i].allow);
        free(cf->endpoints[i].realm);
    }
    free(cf->endpoints);
    free(cf->origins);
    free(cf->listen);
    free(cf->error_log);
    free(cf->access_log);
    wsh_access_format_free(&cf->access_format);
    free(cf->pid_file);
    free(cf->user);
    free(cf->tls.certificate);
    free(cf->tls.certificate_key);
    free(cf->tls.ciphers);
    free(cf->tls.ciphersuites);
    free(cf->locs);
    conf_engine_free(&cf->engine);
    free(cf->file);
    free(cf);
}

