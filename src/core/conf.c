/* conf.c -- load, check and parse the YAML configuration.
 *
 * Three passes, so every mistake is reported where it was made:
 *  1. shape: a libyaml walk over the file, guided by the libcyaml schema,
 *     rejects unknown or duplicate keys and wrong kinds (list for value...)
 *     with FILE:LINE:COL and records where every value sits;
 *  2. load: libcyaml fills a struct of raw strings (every scalar is a
 *     string, because libcyaml accepts "3x" as 3 and knows no units);
 *  3. values: each string is parsed and checked here, defaults applied,
 *     and errors point at the value's line and column from pass 1.
 */
#include "core/conf.h"
#include "core/log.h"
#include "core/module.h"
#include "auth_jwt/auth_jwt.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#include <cyaml/cyaml.h>
#include <openssl/crypto.h>
#include <yaml.h>

/* Pass 2 target: every scalar as the text the user wrote. */
typedef struct {
    char *path;
    char *module;
    char *max_message_size;
    char **allow;
    unsigned allow_count;
    char *auth;
    char **listen;
    unsigned listen_count;
    char *realm;
} conf_raw_endpoint_t;

typedef struct {
    char *rooms;
    char *size;
    char *ttl;
} conf_raw_history_t;

typedef struct {
    char *client_ids;
    char *max_rooms_per_connection;
    char *announce_connections;
    char *slow_consumer;
    char *api_key;
    char *api_max_body;
    char *idempotency_window;
    conf_raw_history_t *history;
    unsigned history_count;
} conf_raw_hub_t;

typedef struct {
    char *engine_required;
} conf_raw_health_t;

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
    char *algorithm;
    char *secret;
    char *secret_file;
    char *public_key_file;
    char *leeway;
    char *require_exp;
    char *audience;
    char *issuer;
    char *query_param;
    char *rooms_claim;
    char *rooms_claim_required;
} conf_raw_auth_jwt_t;

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
    char *host;
    char *port;
    char *unix_socket;
    char *user;
    char *password;
    char *db;
    char *prefix;
    char *connect_timeout;
    char *command_timeout;
    char *reconnect_min;
    char *reconnect_max;
    char *presence_ttl;
    char *breaker_failures;
    char *breaker_open;
} conf_raw_redis_t;

typedef struct {
    char             *type;
    char             *node_id;
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
    conf_raw_endpoint_t *endpoints;
    unsigned             endpoints_count;
    char               **allowed_origins;
    unsigned             allowed_origins_count;
    conf_raw_hub_t      *hub;
    conf_raw_engine_t   *engine;
    conf_raw_health_t   *health;
    conf_raw_rate_t     *rate_limit;
    conf_raw_auth_jwt_t *auth_jwt;
    conf_raw_tls_t      *tls;
    conf_raw_limits_t   *limits;
    conf_raw_deflate_t  *compression;
} conf_raw_t;

#define CONF_STR(key, type, member, flags)                                   \
    CYAML_FIELD_STRING_PTR(key, (flags), type, member, 0, CYAML_UNLIMITED)

static const cyaml_schema_value_t conf_string_schema = {
    CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, CYAML_UNLIMITED),
};

static const cyaml_schema_field_t conf_endpoint_fields[] = {
    CONF_STR("path", conf_raw_endpoint_t, path, CYAML_FLAG_DEFAULT),
    CONF_STR("module", conf_raw_endpoint_t, module, CYAML_FLAG_DEFAULT),
    CONF_STR("max_message_size", conf_raw_endpoint_t, max_message_size,
             CYAML_FLAG_OPTIONAL),
    CYAML_FIELD_SEQUENCE("allow", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
                         conf_raw_endpoint_t, allow, &conf_string_schema, 1,
                         1024),
    CONF_STR("auth", conf_raw_endpoint_t, auth, CYAML_FLAG_OPTIONAL),
    CYAML_FIELD_SEQUENCE("listen", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
                         conf_raw_endpoint_t, listen, &conf_string_schema, 1,
                         64),
    CONF_STR("realm", conf_raw_endpoint_t, realm, CYAML_FLAG_OPTIONAL),
    CYAML_FIELD_END
};

static const cyaml_schema_value_t conf_endpoint_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, conf_raw_endpoint_t,
                        conf_endpoint_fields),
};

#define CONF_HUB(key) CONF_STR(#key, conf_raw_hub_t, key, CYAML_FLAG_OPTIONAL)

static const cyaml_schema_field_t conf_history_fields[] = {
    CONF_STR("rooms", conf_raw_history_t, rooms, CYAML_FLAG_DEFAULT),
    CONF_STR("size", conf_raw_history_t, size, CYAML_FLAG_OPTIONAL),
    CONF_STR("ttl", conf_raw_history_t, ttl, CYAML_FLAG_OPTIONAL),
    CYAML_FIELD_END
};

static const cyaml_schema_value_t conf_history_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, conf_raw_history_t,
                        conf_history_fields),
};

static const cyaml_schema_field_t conf_hub_fields[] = {
    CONF_HUB(client_ids),
    CONF_HUB(max_rooms_per_connection),
    CONF_HUB(announce_connections),
    CONF_HUB(slow_consumer),
    CONF_HUB(api_key),
    CONF_HUB(api_max_body),
    CONF_HUB(idempotency_window),
    CYAML_FIELD_SEQUENCE("history", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
                         conf_raw_hub_t, history, &conf_history_schema, 0,
                         256),
    CYAML_FIELD_END
};

#define CONF_REDIS(key) \
    CONF_STR(#key, conf_raw_redis_t, key, CYAML_FLAG_OPTIONAL)

static const cyaml_schema_field_t conf_redis_fields[] = {
    CONF_REDIS(host),
    CONF_REDIS(port),
    CONF_REDIS(unix_socket),
    CONF_REDIS(user),
    CONF_REDIS(password),
    CONF_REDIS(db),
    CONF_REDIS(prefix),
    CONF_REDIS(connect_timeout),
    CONF_REDIS(command_timeout),
    CONF_REDIS(reconnect_min),
    CONF_REDIS(reconnect_max),
    CONF_REDIS(presence_ttl),
    CONF_REDIS(breaker_failures),
    CONF_REDIS(breaker_open),
    CYAML_FIELD_END
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

static const cyaml_schema_field_t conf_health_fields[] = {
    CONF_STR("engine_required", conf_raw_health_t, engine_required,
             CYAML_FLAG_OPTIONAL),
    CYAML_FIELD_END
};

#define CONF_JWT(key) \
    CONF_STR(#key, conf_raw_auth_jwt_t, key, CYAML_FLAG_OPTIONAL)

static const cyaml_schema_field_t conf_auth_jwt_fields[] = {
    CONF_JWT(algorithm),
    CONF_JWT(secret),
    CONF_JWT(secret_file),
    CONF_JWT(public_key_file),
    CONF_JWT(leeway),
    CONF_JWT(require_exp),
    CONF_JWT(audience),
    CONF_JWT(issuer),
    CONF_JWT(query_param),
    CONF_JWT(rooms_claim),
    CONF_JWT(rooms_claim_required),
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
    CYAML_FIELD_MAPPING_PTR("redis", CYAML_FLAG_OPTIONAL, conf_raw_engine_t,
                            redis, conf_redis_fields),
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
                         conf_raw_t, listen, &conf_string_schema, 1, 64),
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
    CYAML_FIELD_SEQUENCE("endpoints", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
                         conf_raw_t, endpoints, &conf_endpoint_schema, 1, 256),
    CYAML_FIELD_SEQUENCE("allowed_origins",
                         CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, conf_raw_t,
                         allowed_origins, &conf_string_schema, 0, 1024),
    CYAML_FIELD_MAPPING_PTR("hub", CYAML_FLAG_OPTIONAL, conf_raw_t, hub,
                            conf_hub_fields),
    CYAML_FIELD_MAPPING_PTR("engine", CYAML_FLAG_OPTIONAL, conf_raw_t, engine,
                            conf_engine_fields),
    CYAML_FIELD_MAPPING_PTR("health", CYAML_FLAG_OPTIONAL, conf_raw_t, health,
                            conf_health_fields),
    CYAML_FIELD_MAPPING_PTR("rate_limit", CYAML_FLAG_OPTIONAL, conf_raw_t,
                            rate_limit, conf_rate_fields),
    CYAML_FIELD_MAPPING_PTR("auth_jwt", CYAML_FLAG_OPTIONAL, conf_raw_t,
                            auth_jwt, conf_auth_jwt_fields),
    CYAML_FIELD_MAPPING_PTR("tls", CYAML_FLAG_OPTIONAL, conf_raw_t, tls,
                            conf_tls_fields),
    CYAML_FIELD_MAPPING_PTR("limits", CYAML_FLAG_OPTIONAL, conf_raw_t,
                            limits, conf_limits_fields),
    CYAML_FIELD_MAPPING_PTR("compression", CYAML_FLAG_OPTIONAL, conf_raw_t,
                            compression, conf_deflate_fields),
    CYAML_FIELD_END
};

static const cyaml_schema_value_t conf_top_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, conf_raw_t, conf_top_fields),
};

/* Where a value sits in the file, by its dotted path ("endpoints[1].path"). */
typedef struct wsh_conf_loc_s {
    char path[96];
    int  line;
    int  col;
} conf_loc_t;

typedef struct {
    const char   *file;
    char         *err;
    size_t        errlen;
    yaml_parser_t parser;
    conf_loc_t   *locs;
    size_t        nlocs;
    size_t        maxlocs;
    bool          failed;
} conf_ctx_t;

static void conf_error(conf_ctx_t *ctx, int line, int col, const char *fmt,
    ...) __attribute__((format(printf, 4, 5)));

static void
conf_error(conf_ctx_t *ctx, int line, int col, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (ctx->failed) {
        return;                 /* the first error is the one to fix */
    }
    ctx->failed = true;
    n = snprintf(ctx->err, ctx->errlen, "%s:%d:%d: ", ctx->file, line, col);
    if (n < 0 || (size_t) n >= ctx->errlen) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(ctx->err + n, ctx->errlen - (size_t) n, fmt, ap);
    va_end(ap);
}

static const conf_loc_t *
conf_loc(conf_ctx_t *ctx, const char *path)
{
    static const conf_loc_t none = { "", 1, 1 };
    size_t i;

    for (i = 0; i < ctx->nlocs; i++) {
        if (strcmp(ctx->locs[i].path, path) == 0) {
            return &ctx->locs[i];
        }
    }
    return &none;
}

/* Report an error about the value at PATH ("ping_period"). */
static void conf_value_error(conf_ctx_t *ctx, const char *path,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
conf_value_error(conf_ctx_t *ctx, const char *path, const char *fmt, ...)
{
    const conf_loc_t *loc = conf_loc(ctx, path);
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    conf_error(ctx, loc->line, loc->col, "%s: %s", path, msg);
}

static void
conf_remember(conf_ctx_t *ctx, const char *path, const yaml_mark_t *mark)
{
    conf_loc_t *loc;

    if (ctx->nlocs == ctx->maxlocs) {
        size_t n = ctx->maxlocs ? ctx->maxlocs * 2 : 64;
        conf_loc_t *p = realloc(ctx->locs, n * sizeof(*p));

        if (p == NULL) {
            return;             /* only costs a less precise message */
        }
        ctx->locs = p;
        ctx->maxlocs = n;
    }
    loc = &ctx->locs[ctx->nlocs++];
    snprintf(loc->path, sizeof(loc->path), "%s", path);
    loc->line = (int) mark->line + 1;
    loc->col = (int) mark->column + 1;
}

static bool
conf_next(conf_ctx_t *ctx, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&ctx->parser, ev)) {
        conf_error(ctx, (int) ctx->parser.problem_mark.line + 1,
                   (int) ctx->parser.problem_mark.column + 1,
                   "YAML syntax error: %s%s%s", ctx->parser.problem,
                   ctx->parser.context ? " " : "",
                   ctx->parser.context ? ctx->parser.context : "");
        return false;
    }
    if (ev->type == YAML_ALIAS_EVENT) {
        conf_error(ctx, (int) ev->start_mark.line + 1,
                   (int) ev->start_mark.column + 1,
                   "YAML aliases are not supported in the configuration");
        yaml_event_delete(ev);
        return false;
    }
    return true;
}

/* Levenshtein distance, for "did you mean" on misspelt keys. */
static size_t
conf_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), i, j, prev, cur, row[64];

    if (lb >= wsh_nelems(row)) {
        return SIZE_MAX;
    }
    for (j = 0; j <= lb; j++) {
        row[j] = j;
    }
    for (i = 1; i <= la; i++) {
        prev = row[0];
        row[0] = i;
        for (j = 1; j <= lb; j++) {
            cur = row[j];
            row[j] = prev + (a[i - 1] != b[j - 1]);
            if (row[j - 1] + 1 < row[j]) {
                row[j] = row[j - 1] + 1;
            }
            if (cur + 1 < row[j]) {
                row[j] = cur + 1;
            }
            prev = cur;
        }
    }
    return row[lb];
}

static const char *
conf_suggest(const cyaml_schema_field_t *fields, const char *key)
{
    const char *best = NULL;
    size_t d, bestd = 3;        /* suggest only close matches */

    for (; fields->key != NULL; fields++) {
        d = conf_distance(key, fields->key);
        if (d < bestd) {
            bestd = d;
            best = fields->key;
        }
    }
    return best;
}

static bool conf_walk_value(conf_ctx_t *ctx, const cyaml_schema_value_t *sv,
    const char *path, const char *what);

static bool
conf_walk_mapping(conf_ctx_t *ctx, const cyaml_schema_field_t *fields,
    const char *path, const yaml_mark_t *start)
{
    const cyaml_schema_field_t *f;
    uint64_t seen = 0;
    yaml_event_t ev;
    char sub[96];
    unsigned idx;
    bool ok;

    for ( ;; ) {
        if (!conf_next(ctx, &ev)) {
            return false;
        }
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            for (f = fields, idx = 0; f->key != NULL; f++, idx++) {
                if (!(f->value.flags & CYAML_FLAG_OPTIONAL)
                    && !(seen & (UINT64_C(1) << idx)))
                {
                    conf_error(ctx, (int) start->line + 1,
                               (int) start->column + 1,
                               "%s: missing required key \"%s\"", path,
                               f->key);
                    return false;
                }
            }
            return true;
        }
        if (ev.type != YAML_SCALAR_EVENT) {
            conf_error(ctx, (int) ev.start_mark.line + 1,
                       (int) ev.start_mark.column + 1,
                       "a key must be a plain word%s%s", *path ? " in " : "",
                       path);
            yaml_event_delete(&ev);
            return false;
        }
        for (f = fields, idx = 0; f->key != NULL; f++, idx++) {
            if (strcmp(f->key, (char *) ev.data.scalar.value) == 0) {
                break;
            }
        }
        if (f->key == NULL) {
            const char *hint = conf_suggest(fields,
                                            (char *) ev.data.scalar.value);

            conf_error(ctx, (int) ev.start_mark.line + 1,
                       (int) ev.start_mark.column + 1,
                       "unknown key \"%s\"%s%s%s%s%s",
                       (char *) ev.data.scalar.value,
                       *path ? " in " : "", path,
                       hint ? " (did you mean \"" : "", hint ? hint : "",
                       hint ? "\"?)" : "");
            yaml_event_delete(&ev);
            return false;
        }
        if (seen & (UINT64_C(1) << idx)) {
            conf_error(ctx, (int) ev.start_mark.line + 1,
                       (int) ev.start_mark.column + 1,
                       "duplicate key \"%s\"", f->key);
            yaml_event_delete(&ev);
            return false;
        }
        seen |= UINT64_C(1) << idx;
        snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", f->key);
        yaml_event_delete(&ev);
        ok = conf_walk_value(ctx, &f->value, sub, f->key);
        if (!ok) {
            return false;
        }
    }
}

static bool
conf_walk_value(conf_ctx_t *ctx, const cyaml_schema_value_t *sv,
    const char *path, const char *what)
{
    yaml_event_t ev;
    char sub[96];
    unsigned i;
    bool ok = true;
    int line, col;

    if (!conf_next(ctx, &ev)) {
        return false;
    }
    line = (int) ev.start_mark.line + 1;
    col = (int) ev.start_mark.column + 1;
    conf_remember(ctx, path, &ev.start_mark);

    switch (sv->type) {
    case CYAML_MAPPING:
        if (ev.type != YAML_MAPPING_START_EVENT) {
            conf_error(ctx, line, col, "%s: expected a mapping of keys",
                       *path ? path : what);
            ok = false;
            break;
        }
        ok = conf_walk_mapping(ctx, sv->mapping.fields, path, &ev.start_mark);
        break;

    case CYAML_SEQUENCE:
        if (ev.type != YAML_SEQUENCE_START_EVENT) {
            conf_error(ctx, line, col, "%s: expected a list (\"- item\" lines "
                       "or [a, b])", path);
            ok = false;
            break;
        }
        yaml_event_delete(&ev);
        for (i = 0; ok; i++) {
            if (!conf_next(ctx, &ev)) {
                return false;
            }
            if (ev.type == YAML_SEQUENCE_END_EVENT) {
                if (i < sv->sequence.min) {
                    conf_error(ctx, line, col, "%s: needs at least %u "
                               "entries", path, sv->sequence.min);
                    ok = false;
                }
                break;
            }
            if (i >= sv->sequence.max) {
                conf_error(ctx, (int) ev.start_mark.line + 1,
                           (int) ev.start_mark.column + 1,
                           "%s: at most %u entries", path, sv->sequence.max);
                ok = false;
                break;
            }
            snprintf(sub, sizeof(sub), "%s[%u]", path, i);
            conf_remember(ctx, sub, &ev.start_mark);
            if (sv->sequence.entry->type == CYAML_MAPPING) {
                if (ev.type != YAML_MAPPING_START_EVENT) {
                    conf_error(ctx, (int) ev.start_mark.line + 1,
                               (int) ev.start_mark.column + 1,
                               "%s: expected a mapping of keys", sub);
                    ok = false;
                } else {
                    yaml_mark_t start = ev.start_mark;

                    yaml_event_delete(&ev);
                    ok = conf_walk_mapping(ctx,
                                           sv->sequence.entry->mapping.fields,
                                           sub, &start);
                    continue;
                }
            } else if (ev.type != YAML_SCALAR_EVENT) {
                conf_error(ctx, (int) ev.start_mark.line + 1,
                           (int) ev.start_mark.column + 1,
                           "%s: expected a single value", sub);
                ok = false;
            }
            yaml_event_delete(&ev);
        }
        break;

    default:
        if (ev.type != YAML_SCALAR_EVENT) {
            conf_error(ctx, line, col, "%s: expected a single value, not a "
                       "%s", what, ev.type == YAML_SEQUENCE_START_EVENT
                       ? "list" : "mapping");
            ok = false;
        }
        break;
    }
    yaml_event_delete(&ev);
    return ok;
}

/* Pass 1: the file's shape against the schema. */
static bool
conf_check_shape(conf_ctx_t *ctx, FILE *fp)
{
    yaml_event_t ev;
    bool ok = false;

    if (!yaml_parser_initialize(&ctx->parser)) {
        conf_error(ctx, 1, 1, "out of memory");
        return false;
    }
    yaml_parser_set_input_file(&ctx->parser, fp);

    if (!conf_next(ctx, &ev)) {                 /* STREAM_START */
        goto done;
    }
    yaml_event_delete(&ev);
    if (!conf_next(ctx, &ev)) {
        goto done;
    }
    if (ev.type == YAML_STREAM_END_EVENT) {     /* empty file: defaults */
        yaml_event_delete(&ev);
        ok = true;
        goto done;
    }
    yaml_event_delete(&ev);                     /* DOCUMENT_START */
    if (!conf_walk_value(ctx, &conf_top_schema, "", "the configuration")) {
        goto done;
    }
    if (!conf_next(ctx, &ev)) {                 /* DOCUMENT_END */
        goto done;
    }
    yaml_event_delete(&ev);
    if (!conf_next(ctx, &ev)) {
        goto done;
    }
    if (ev.type != YAML_STREAM_END_EVENT) {
        conf_error(ctx, (int) ev.start_mark.line + 1,
                   (int) ev.start_mark.column + 1,
                   "only one YAML document is allowed");
        yaml_event_delete(&ev);
        goto done;
    }
    yaml_event_delete(&ev);
    ok = true;
done:
    yaml_parser_delete(&ctx->parser);
    return ok;
}

/* libcyaml speaks through this; pass 1 already caught what it would say,
 * so anything here is kept as a last-resort message. */
static void
conf_cyaml_log(cyaml_log_t level, void *data, const char *fmt, va_list ap)
{
    conf_ctx_t *ctx = data;
    char msg[256];
    size_t n;

    if (level < CYAML_LOG_ERROR || ctx->failed) {
        return;
    }
    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n') {
        msg[--n] = '\0';
    }
    if (strstr(msg, "Backtrace") == NULL && strncmp(msg, "  in", 4) != 0) {
        conf_error(ctx, 1, 1, "%s", msg);
    }
}

int
wsh_conf_parse_size(const char *text, size_t *out)
{
    unsigned long long v, mult = 1;
    char *end;

    if (text == NULL || !isdigit((unsigned char) *text)) {
        return WSH_ERROR;
    }
    errno = 0;
    v = strtoull(text, &end, 10);
    if (errno != 0) {
        return WSH_ERROR;
    }
    switch (*end) {
    case '\0': break;
    case 'k': case 'K': mult = 1024ULL; end++; break;
    case 'm': case 'M': mult = 1024ULL * 1024; end++; break;
    case 'g': case 'G': mult = 1024ULL * 1024 * 1024; end++; break;
    default: return WSH_ERROR;
    }
    if (*end != '\0' || v > SIZE_MAX / mult) {
        return WSH_ERROR;
    }
    *out = (size_t) (v * mult);
    return WSH_OK;
}

int
wsh_conf_parse_msec(const char *text, wsh_msec_t *out)
{
    unsigned long long v, mult;
    char *end;

    if (text == NULL || !isdigit((unsigned char) *text)) {
        return WSH_ERROR;
    }
    errno = 0;
    v = strtoull(text, &end, 10);
    if (errno != 0) {
        return WSH_ERROR;
    }
    if (strcmp(end, "ms") == 0) {
        mult = 1;
    } else if (*end == '\0' || strcmp(end, "s") == 0) {
        mult = 1000;            /* a bare number is seconds, as in nginx */
    } else if (strcmp(end, "m") == 0) {
        mult = 60 * 1000;
    } else if (strcmp(end, "h") == 0) {
        mult = 3600 * 1000;
    } else {
        return WSH_ERROR;
    }
    if (v > UINT64_MAX / mult / 1000) {     /* absurd: keep clocks sane */
        return WSH_ERROR;
    }
    *out = v * mult;
    return WSH_OK;
}

int
wsh_conf_parse_listen(const char *text, wsh_listen_addr_t *a)
{
    char host[64];
    const char *colon, *h;
    size_t hlen;
    unsigned long port;
    char *end;
    struct sockaddr_in *sin = (struct sockaddr_in *) &a->sockaddr;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &a->sockaddr;

    memset(a, 0, sizeof(*a));
    if (text[0] == '[') {
        colon = strchr(text, ']');
        if (colon == NULL || colon[1] != ':') {
            return WSH_ERROR;
        }
        h = text + 1;
        hlen = (size_t) (colon - h);
        colon++;
    } else {
        colon = strrchr(text, ':');
        if (colon == NULL) {
            return WSH_ERROR;
        }
        h = text;
        hlen = (size_t) (colon - text);
    }
    if (hlen >= sizeof(host)) {
        return WSH_ERROR;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    if (!isdigit((unsigned char) colon[1])) {
        return WSH_ERROR;
    }
    port = strtoul(colon + 1, &end, 10);
    if (*end != '\0' || port == 0 || port > 65535) {
        return WSH_ERROR;
    }
    if (hlen == 0 || strcmp(host, "*") == 0) {
        sin->sin_family = AF_INET;
        sin->sin_addr.s_addr = htonl(INADDR_ANY);
        sin->sin_port = htons((uint16_t) port);
        a->socklen = sizeof(*sin);
        snprintf(a->text, sizeof(a->text), "0.0.0.0:%lu", port);
    } else if (text[0] != '[' && inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t) port);
        a->socklen = sizeof(*sin);
        snprintf(a->text, sizeof(a->text), "%s:%lu", host, port);
    } else if (text[0] == '[' && inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t) port);
        a->socklen = sizeof(*sin6);
        snprintf(a->text, sizeof(a->text), "[%s]:%lu", host, port);
    } else {
        return WSH_ERROR;       /* names are not resolved: be explicit */
    }
    return WSH_OK;
}

static bool
conf_is_set(const char *s)
{
    return s != NULL && *s != '\0';
}

static void
conf_size(conf_ctx_t *ctx, const char *path, const char *text, size_t def,
    size_t min, size_t max, size_t *out)
{
    *out = def;
    if (!conf_is_set(text)) {
        return;
    }
    if (wsh_conf_parse_size(text, out) != WSH_OK) {
        conf_value_error(ctx, path, "invalid size \"%s\" (use a number of "
                         "bytes with an optional k, m or g suffix, e.g. 64k)",
                         text);
    } else if (*out < min || *out > max) {
        conf_value_error(ctx, path, "size \"%s\" is out of range "
                         "(%zu to %zu bytes)", text, min, max);
    }
}

static void
conf_msec(conf_ctx_t *ctx, const char *path, const char *text,
    wsh_msec_t def, wsh_msec_t min, wsh_msec_t *out)
{
    *out = def;
    if (!conf_is_set(text)) {
        return;
    }
    if (wsh_conf_parse_msec(text, out) != WSH_OK) {
        conf_value_error(ctx, path, "invalid duration \"%s\" (use a number "
                         "with ms, s, m or h, e.g. 54s or 250ms)", text);
    } else if (*out < min) {
        conf_value_error(ctx, path, "duration \"%s\" is too short (at "
                         "least %llums)", text, (unsigned long long) min);
    }
}

static void
conf_uint(conf_ctx_t *ctx, const char *path, const char *text, unsigned def,
    unsigned min, unsigned max, unsigned *out)
{
    unsigned long v;
    char *end;

    *out = def;
    if (!conf_is_set(text)) {
        return;
    }
    errno = 0;
    v = strtoul(text, &end, 10);
    if (!isdigit((unsigned char) *text) || *end != '\0' || errno != 0
        || v < min || v > max)
    {
        conf_value_error(ctx, path, "\"%s\" is not a whole number from %u "
                         "to %u", text, min, max);
        return;
    }
    *out = (unsigned) v;
}

/* The one reading of boolean words, for booleans and for the keys that
 * take a name or off (access_log, auth_jwt.query_param): 1 for on, true
 * and yes, 0 for off, false and no, -1 for anything else. */
static int
conf_bool_word(const char *text)
{
    static const char *yes[] = { "on", "true", "yes" };
    static const char *no[] = { "off", "false", "no" };
    size_t i;

    for (i = 0; i < wsh_nelems(yes); i++) {
        if (strcmp(text, yes[i]) == 0) {
            return 1;
        }
        if (strcmp(text, no[i]) == 0) {
            return 0;
        }
    }
    return -1;
}

static void
conf_bool(conf_ctx_t *ctx, const char *path, const char *text, bool def,
    bool *out)
{
    *out = def;
    if (!conf_is_set(text)) {
        return;
    }
    switch (conf_bool_word(text)) {
    case 1: *out = true; break;
    case 0: *out = false; break;
    default:
        conf_value_error(ctx, path, "\"%s\" is not on or off", text);
    }
}

static char *
conf_strdup(conf_ctx_t *ctx, const char *s)
{
    char *p = strdup(s);

    if (p == NULL) {
        conf_error(ctx, 1, 1, "out of memory");
    }
    return p;
}

static void
conf_workers(conf_ctx_t *ctx, conf_raw_t *raw, wsh_conf_t *cf)
{
    unsigned n;
    long ncpu;

    if (!conf_is_set(raw->worker_processes)
        || strcmp(raw->worker_processes, "auto") == 0)
    {
        ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        cf->worker_processes = ncpu > 0 ? (int) ncpu : 1;
        return;
    }
    conf_uint(ctx, "worker_processes", raw->worker_processes, 1, 1, 1024, &n);
    cf->worker_processes = (int) n;
}

static void
conf_logs(conf_ctx_t *ctx, conf_raw_t *raw, wsh_conf_t *cf)
{
    char err[512];

    if (conf_is_set(raw->error_log) && conf_bool_word(raw->error_log) >= 0) {
        /* Not a file named "off": errors must go somewhere. */
        conf_value_error(ctx, "error_log", "\"%s\" is not a place: use "
                         "stderr or a file", raw->error_log);
    }
    cf->error_log = conf_strdup(ctx, conf_is_set(raw->error_log)
                                     ? raw->error_log : "stderr");
    if (conf_is_set(raw->access_log)
        && conf_bool_word(raw->access_log) == 1)
    {
        conf_value_error(ctx, "access_log", "\"%s\" says where: use off, "
                         "stderr or a file", raw->access_log);
    } else if (conf_is_set(raw->access_log)
               && conf_bool_word(raw->access_log) != 0)
    {
        cf->access_log = conf_strdup(ctx, raw->access_log);
    }
    if (wsh_access_format_compile(conf_is_set(raw->access_log_format)
                                  ? raw->access_log_format : NULL,
                                  &cf->access_format, err, sizeof(err))
        != WSH_OK)
    {
        conf_value_error(ctx, "access_log_format", "%s", err);
    }
    cf->log_level = WSH_LOG_NOTICE;
    if (conf_is_set(raw->log_level)) {
        cf->log_level = wsh_log_level_parse(raw->log_level);
        if (cf->log_level < 0) {
            conf_value_error(ctx, "log_level", "unknown level \"%s\" (use "
                             "emerg, alert, crit, error, warn, notice, info "
                             "or debug)", raw->log_level);
        }
    }
    if (conf_is_set(raw->pid_file)) {
        cf->pid_file = conf_strdup(ctx, raw->pid_file);
    }
}

/* "ADDRESS tls", as nginx's "listen 443 ssl": the address stays the
 * listener's identity, so a reload may switch TLS on or off on the same
 * socket. Shared by "listen" and an endpoint's "listen", which must
 * name addresses the same way to match them. */
static int
conf_listen_text(const char *text, wsh_listen_addr_t *addr)
{
    char buf[96];
    size_t len;
    bool tls = false;

    snprintf(buf, sizeof(buf), "%s", text);
    len = strlen(buf);
    if (len > 4 && strcmp(buf + len - 4, " tls") == 0) {
        buf[len - 4] = '\0';
        tls = true;
    }
    if (wsh_conf_parse_listen(buf, addr) != WSH_OK) {
        return WSH_ERROR;
    }
    addr->tls = tls;
    return WSH_OK;
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
        conf_error(ctx, 1, 1, "out of memory");
        return;
    }
    cf->nlisten = n;
    for (i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "listen[%zu]", i);
        if (conf_listen_text(list[i], &cf->listen[i]) != WSH_OK) {
            conf_value_error(ctx, path, "invalid address \"%s\" (use "
                             "IP:PORT, [IPv6]:PORT or *:PORT, then \" tls\" "
                             "for TLS)", list[i]);
            return;
        }
        if (cf->listen[i].tls && raw->tls == NULL) {
            conf_value_error(ctx, path, "\"%s\" needs a tls section with "
                             "certificate and certificate_key", list[i]);
            return;
        }
        for (j = 0; j < i; j++) {
            if (strcmp(cf->listen[j].text, cf->listen[i].text) == 0) {
                conf_value_error(ctx, path, "duplicate address \"%s\"",
                                 list[i]);
                return;
            }
        }
    }
}

int
wsh_conf_parse_cidr(const char *text, wsh_cidr_t *cidr)
{
    char addr[INET6_ADDRSTRLEN];
    const char *slash = strchr(text, '/');
    size_t len = slash ? (size_t) (slash - text) : strlen(text);
    unsigned long bits;
    char *end;
    unsigned max;

    if (len == 0 || len >= sizeof(addr)) {
        return WSH_ERROR;
    }
    memcpy(addr, text, len);
    addr[len] = '\0';
    memset(cidr, 0, sizeof(*cidr));
    if (inet_pton(AF_INET, addr, cidr->addr) == 1) {
        cidr->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, addr, cidr->addr) == 1) {
        cidr->family = AF_INET6;
        max = 128;
    } else {
        return WSH_ERROR;
    }
    bits = max;
    if (slash != NULL) {
        if (slash[1] < '0' || slash[1] > '9') {
            return WSH_ERROR;
        }
        errno = 0;
        bits = strtoul(slash + 1, &end, 10);
        if (*end != '\0' || errno != 0 || bits > max) {
            return WSH_ERROR;
        }
    }
    cidr->bits = (uint8_t) bits;
    return WSH_OK;
}

static bool
conf_cidr_match(const wsh_cidr_t *cidr, const u_char *addr)
{
    unsigned full = cidr->bits / 8, rest = cidr->bits % 8;

    if (memcmp(cidr->addr, addr, full) != 0) {
        return false;
    }
    return rest == 0
           || ((cidr->addr[full] ^ addr[full]) & (0xff00 >> rest) & 0xff) == 0;
}

bool
wsh_conf_allowed(const wsh_endpoint_t *ep, const struct sockaddr *sa)
{
    static const u_char v4mapped[12] = { 0,0,0,0,0,0,0,0,0,0,0xff,0xff };
    const u_char *a4 = NULL, *a6 = NULL;
    size_t i;

    if (ep->nallow == 0) {
        return true;
    }
    if (sa->sa_family == AF_INET) {
        a4 = (const u_char *) &((const struct sockaddr_in *) sa)->sin_addr;
    } else if (sa->sa_family == AF_INET6) {
        a6 = (const u_char *) &((const struct sockaddr_in6 *) sa)->sin6_addr;
        if (memcmp(a6, v4mapped, sizeof(v4mapped)) == 0) {
            a4 = a6 + 12;       /* an IPv4 client on a dual-stack socket */
        }
    }
    for (i = 0; i < ep->nallow; i++) {
        if ((ep->allow[i].family == AF_INET && a4 != NULL
             && conf_cidr_match(&ep->allow[i], a4))
            || (ep->allow[i].family == AF_INET6 && a6 != NULL
                && conf_cidr_match(&ep->allow[i], a6)))
        {
            return true;
        }
    }
    return false;
}

static void
conf_allow(conf_ctx_t *ctx, size_t i, const conf_raw_endpoint_t *raw,
    wsh_endpoint_t *ep)
{
    char path[64];
    size_t j;

    if (raw->allow == NULL || raw->allow_count == 0) {
        return;
    }
    ep->allow = calloc(raw->allow_count, sizeof(*ep->allow));
    if (ep->allow == NULL) {
        conf_error(ctx, 1, 1, "out of memory");
        return;
    }
    for (j = 0; j < raw->allow_count; j++) {
        snprintf(path, sizeof(path), "endpoints[%zu].allow[%zu]", i, j);
        if (wsh_conf_parse_cidr(raw->allow[j], &ep->allow[j]) != WSH_OK) {
            conf_value_error(ctx, path, "\"%s\" is not an address or "
                             "network (use 10.0.0.0/8, 127.0.0.1 or ::1/128)",
                             raw->allow[j]);
            return;
        }
        ep->nallow++;
    }
}

/* An endpoint's "listen": the listen entries it is served on. */
static void
conf_endpoint_listen(conf_ctx_t *ctx, size_t i,
    const conf_raw_endpoint_t *raw, const wsh_conf_t *cf, wsh_endpoint_t *ep)
{
    wsh_listen_addr_t addr;
    char path[64];
    size_t j, k;

    for (j = 0; raw->listen != NULL && j < raw->listen_count; j++) {
        snprintf(path, sizeof(path), "endpoints[%zu].listen[%zu]", i, j);
        k = cf->nlisten;
        if (conf_listen_text(raw->listen[j], &addr) == WSH_OK) {
            for (k = 0; k < cf->nlisten; k++) {
                if (strcmp(cf->listen[k].text, addr.text) == 0) {
                    break;
                }
            }
        }
        if (k == cf->nlisten) {
            conf_value_error(ctx, path, "\"%s\" is not one of the listen "
                             "addresses", raw->listen[j]);
            return;
        }
        ep->listeners |= (uint64_t) 1 << k;
    }
}

/* An endpoint's "auth:": which auth module runs before its module. */
static void
conf_endpoint_auth(conf_ctx_t *ctx, const conf_raw_endpoint_t *raw,
    size_t i, const wsh_conf_t *cf, wsh_endpoint_t *ep)
{
    char path[64];

    if (strncmp(raw->module, "auth_", 5) == 0) {
        snprintf(path, sizeof(path), "endpoints[%zu].module", i);
        conf_value_error(ctx, path, "\"%s\" authenticates, it serves no "
                         "endpoint: use \"auth: jwt\" beside a module",
                         raw->module);
        return;
    }
    if (!conf_is_set(raw->auth)) {
        return;
    }
    snprintf(path, sizeof(path), "endpoints[%zu].auth", i);
    if (strcmp(raw->auth, "jwt") != 0) {
        conf_value_error(ctx, path, "unknown authentication \"%s\" (this "
                         "build has: jwt)", raw->auth);
    } else if (!cf->auth_jwt.enabled) {
        conf_value_error(ctx, path, "\"jwt\" needs an auth_jwt: section "
                         "with the algorithm and key");
    } else {
        ep->auth = wsh_module_find("auth_jwt");
    }
}

/* An endpoint's "realm:", by default its path: the namespace of its
 * clients' ids and topics (wsh_conn_realm). Realms go into topic names
 * as "REALM#NAME", hence no '#'. */
static void
conf_endpoint_realm(conf_ctx_t *ctx, const conf_raw_endpoint_t *raw,
    size_t i, wsh_endpoint_t *ep)
{
    char path[64];
    size_t j, len;

    snprintf(path, sizeof(path), "endpoints[%zu].realm", i);
    if (!conf_is_set(raw->realm)) {
        if (strlen(ep->path) > WSH_REALM_MAX) {
            conf_value_error(ctx, path, "the path is over %d bytes: give "
                             "the endpoint a shorter realm", WSH_REALM_MAX);
            return;
        }
        ep->realm = conf_strdup(ctx, ep->path);
        return;
    }
    len = strlen(raw->realm);
    for (j = 0; j < len; j++) {
        if (!isalnum((u_char) raw->realm[j])
            && strchr("_.:@/-", raw->realm[j]) == NULL)
        {
            break;
        }
    }
    if (len == 0 || len > WSH_REALM_MAX || j < len) {
        conf_value_error(ctx, path, "\"%s\" is not a realm: 1 to %d of "
                         "A-Z a-z 0-9 _ . : @ / -", raw->realm,
                         WSH_REALM_MAX);
        return;
    }
    ep->realm = conf_strdup(ctx, raw->realm);
    ep->realm_set = true;
}

/* A realm is verified when one of its endpoints authenticates: its ids
 * are then only those an auth module vouched for. An endpoint that
 * serves no WebSocket (the publish API) without a realm of its own
 * publishes into the only realm of the topic endpoints, if there is
 * just one. */
static void
conf_realms(wsh_conf_t *cf)
{
    wsh_endpoint_t *ep, *other, *only = NULL;
    size_t i, j, nrealms = 0;

    for (i = 0; i < cf->nendpoints; i++) {
        ep = &cf->endpoints[i];
        for (j = 0; j < cf->nendpoints; j++) {
            other = &cf->endpoints[j];
            if (other->auth != NULL && ep->realm != NULL
                && other->realm != NULL
                && strcmp(other->realm, ep->realm) == 0)
            {
                ep->realm_verified = true;
            }
        }
        if (ep->module == NULL || ep->module->members == NULL) {
            continue;
        }
        for (j = 0; j < i; j++) {
            other = &cf->endpoints[j];
            if (other->module != NULL && other->module->members != NULL
                && strcmp(other->realm, ep->realm) == 0)
            {
                break;
            }
        }
        if (j == i) {
            nrealms++;
            only = ep;
        }
    }
    for (i = 0; i < cf->nendpoints; i++) {
        ep = &cf->endpoints[i];
        if (ep->module != NULL && ep->module->open == NULL && !ep->realm_set) {
            free(ep->realm);
            ep->realm = nrealms == 1 ? strdup(only->realm) : NULL;
        }
    }
}

/* Whether an endpoint serving topics has the realm NAME. */
bool
wsh_conf_realm_known(const wsh_conf_t *cf, const char *name, size_t len)
{
    const wsh_endpoint_t *ep;
    size_t i;

    for (i = 0; i < cf->nendpoints; i++) {
        ep = &cf->endpoints[i];
        if (ep->module->members != NULL && ep->realm != NULL
            && strlen(ep->realm) == len && memcmp(ep->realm, name, len) == 0)
        {
            return true;
        }
    }
    return false;
}

static void
conf_endpoints(conf_ctx_t *ctx, conf_raw_t *raw, wsh_conf_t *cf)
{
    static char *loopback[] = { "127.0.0.0/8", "::1" };
    static conf_raw_endpoint_t deflt[] = {
        { "/echo", "echo", "16m", NULL, 0, NULL, NULL, 0, NULL },
        { "/ws", "hub", NULL, NULL, 0, NULL, NULL, 0, NULL },
        { "/api/publish", "hub_api", NULL, loopback, wsh_nelems(loopback),
          NULL, NULL, 0, NULL },
        { "/health", "health", NULL, NULL, 0, NULL, NULL, 0, NULL },
        { "/metrics", "metrics", NULL, loopback, wsh_nelems(loopback), NULL,
          NULL, 0, NULL }
    };
    conf_raw_endpoint_t *list = raw->endpoints ? raw->endpoints : deflt;
    size_t n = raw->endpoints ? raw->endpoints_count : wsh_nelems(deflt);
    size_t i, j;
    wsh_endpoint_t *ep;
    char path[64];

    cf->endpoints = calloc(n, sizeof(*cf->endpoints));
    if (cf->endpoints == NULL) {
        conf_error(ctx, 1, 1, "out of memory");
        return;
    }
    cf->nendpoints = n;
    for (i = 0; i < n && !ctx->failed; i++) {
        ep = &cf->endpoints[i];
        snprintf(path, sizeof(path), "endpoints[%zu].path", i);
        if (list[i].path[0] != '/' || strpbrk(list[i].path, "?# \t") != NULL) {
            conf_value_error(ctx, path, "\"%s\" must start with / and hold "
                             "no query, fragment or space", list[i].path);
            return;
        }
        for (j = 0; j < i; j++) {
            if (strcmp(cf->endpoints[j].path, list[i].path) == 0) {
                conf_value_error(ctx, path, "duplicate endpoint \"%s\"",
                                 list[i].path);
                return;
            }
        }
        ep->path = conf_strdup(ctx, list[i].path);
        snprintf(path, sizeof(path), "endpoints[%zu].module", i);
        ep->module = wsh_module_find(list[i].module);
        if (ep->module == NULL) {
            conf_value_error(ctx, path, "unknown module \"%s\" (this build "
                             "has: %s)", list[i].module, wsh_module_names());
            return;
        }
        snprintf(path, sizeof(path), "endpoints[%zu].max_message_size", i);
        conf_size(ctx, path, list[i].max_message_size, cf->max_message_size,
                  1, (size_t) 1 << 31, &ep->max_message_size);
        conf_allow(ctx, i, &list[i], ep);
        conf_endpoint_listen(ctx, i, &list[i], cf, ep);
        conf_endpoint_auth(ctx, &list[i], i, cf, ep);
        conf_endpoint_realm(ctx, &list[i], i, ep);
    }
    conf_realms(cf);
}

/* hub.history: room patterns as the auth rooms claim's (a name, or a
 * prefix ending in '*'), each with its ring size and ttl. */
static void
conf_hub_history(conf_ctx_t *ctx, const conf_raw_hub_t *raw,
    wsh_conf_hub_t *hub)
{
    const conf_raw_history_t *r;
    wsh_conf_history_t *h;
    char path[64];
    unsigned size;
    size_t i;

    if (raw->history == NULL || raw->history_count == 0) {
        return;
    }
    hub->history = calloc(raw->history_count, sizeof(*hub->history));
    if (hub->history == NULL) {
        conf_error(ctx, 1, 1, "out of memory");
        return;
    }
    for (i = 0; i < raw->history_count && !ctx->failed; i++) {
        r = &raw->history[i];
        h = &hub->history[i];
        hub->nhistory++;
        snprintf(path, sizeof(path), "hub.history[%zu].rooms", i);
        if (!wsh_valid_room_pattern(r->rooms, strlen(r->rooms))) {
            conf_value_error(ctx, path, "\"%s\" is not a room name or a "
                             "prefix ending in * (e.g. \"chat:*\")",
                             r->rooms);
            return;
        }
        h->rooms = conf_strdup(ctx, r->rooms);
        snprintf(path, sizeof(path), "hub.history[%zu].size", i);
        conf_uint(ctx, path, r->size, 100, 1, 1000000, &size);
        h->size = size;
        snprintf(path, sizeof(path), "hub.history[%zu].ttl", i);
        conf_msec(ctx, path, r->ttl, 300000, 100, &h->ttl);
    }
}

static void
conf_hub(conf_ctx_t *ctx, conf_raw_hub_t *raw, wsh_conf_hub_t *hub)
{
    static conf_raw_hub_t none;

    if (raw == NULL) {
        raw = &none;
    }
    conf_bool(ctx, "hub.client_ids", raw->client_ids, true, &hub->client_ids);
    conf_uint(ctx, "hub.max_rooms_per_connection",
              raw->max_rooms_per_connection, 100, 1, 100000,
              &hub->max_rooms_per_connection);
    conf_bool(ctx, "hub.announce_connections", raw->announce_connections,
              false, &hub->announce_connections);
    hub->slow_consumer_drop = false;
    if (conf_is_set(raw->slow_consumer)) {
        if (strcmp(raw->slow_consumer, "drop") == 0) {
            hub->slow_consumer_drop = true;
        } else if (strcmp(raw->slow_consumer, "close") != 0) {
            conf_value_error(ctx, "hub.slow_consumer", "\"%s\" is not close "
                             "or drop", raw->slow_consumer);
        }
    }
    if (conf_is_set(raw->api_key)) {
        if (strlen(raw->api_key) < 16) {
            conf_value_error(ctx, "hub.api_key", "too short: use at least 16 "
                             "random characters (e.g. openssl rand -hex 16)");
        }
        hub->api_key = conf_strdup(ctx, raw->api_key);
    }
    conf_size(ctx, "hub.api_max_body", raw->api_max_body, 1 << 20, 2,
              (size_t) 1 << 31, &hub->api_max_body);
    conf_msec(ctx, "hub.idempotency_window", raw->idempotency_window,
              300000, 1000, &hub->idempotency_window);
    conf_hub_history(ctx, raw, hub);
}

static char *
conf_strdup_or(conf_ctx_t *ctx, const char *value, const char *deflt)
{
    if (conf_is_set(value)) {
        return conf_strdup(ctx, value);
    }
    return deflt ? conf_strdup(ctx, deflt) : NULL;
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
        conf_error(ctx, 1, 1, "getrandom() failed for engine.node_id");
        return NULL;
    }
    for (i = 0; i < sizeof(rnd); i++) {
        snprintf(id + 2 * i, 3, "%02x", rnd[i]);
    }
    return conf_strdup(ctx, id);
}

static void
conf_engine(conf_ctx_t *ctx, conf_raw_engine_t *raw, wsh_conf_engine_t *e)
{
    static conf_raw_engine_t none;
    static conf_raw_redis_t no_redis;
    conf_raw_redis_t *r;

    if (raw == NULL) {
        raw = &none;
    }
    r = raw->redis ? raw->redis : &no_redis;
    e->redis = false;
    if (conf_is_set(raw->type)) {
        if (strcmp(raw->type, "redis") == 0) {
            e->redis = true;
        } else if (strcmp(raw->type, "local") != 0) {
            conf_value_error(ctx, "engine.type", "\"%s\" is not local or "
                             "redis", raw->type);
        }
    }
    if (conf_is_set(raw->node_id)
        && strspn(raw->node_id, "abcdefghijklmnopqrstuvwxyz"
                  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
           != strlen(raw->node_id))
    {
        conf_value_error(ctx, "engine.node_id", "use letters, digits, "
                         "\"_\", \".\" and \"-\" only");
    }
    e->node_id = conf_is_set(raw->node_id) ? conf_strdup(ctx, raw->node_id)
                                           : conf_node_id(ctx);
    e->host = conf_strdup_or(ctx, r->host, "127.0.0.1");
    conf_uint(ctx, "engine.redis.port", r->port, 6379, 1, 65535, &e->port);
    e->unix_socket = conf_strdup_or(ctx, r->unix_socket, NULL);
    e->user = conf_strdup_or(ctx, r->user, NULL);
    e->password = conf_strdup_or(ctx, r->password, NULL);
    conf_uint(ctx, "engine.redis.db", r->db, 0, 0, 1000000, &e->db);
    e->prefix = conf_strdup_or(ctx, r->prefix, "wshub:");
    conf_msec(ctx, "engine.redis.connect_timeout", r->connect_timeout, 2000,
              1, &e->connect_timeout);
    conf_msec(ctx, "engine.redis.command_timeout", r->command_timeout, 2000,
              1, &e->command_timeout);
    conf_msec(ctx, "engine.redis.reconnect_min", r->reconnect_min, 100, 1,
              &e->reconnect_min);
    conf_msec(ctx, "engine.redis.reconnect_max", r->reconnect_max, 10000, 1,
              &e->reconnect_max);
    conf_msec(ctx, "engine.redis.presence_ttl", r->presence_ttl, 30000, 1000,
              &e->presence_ttl);
    conf_uint(ctx, "engine.redis.breaker_failures", r->breaker_failures, 20,
              0, 1000000, &e->breaker_failures);
    conf_msec(ctx, "engine.redis.breaker_open", r->breaker_open, 30000, 1,
              &e->breaker_open);
    if (!ctx->failed && e->reconnect_max < e->reconnect_min) {
        conf_value_error(ctx, "engine.redis.reconnect_max", "must not be "
                         "shorter than reconnect_min");
    }
}

static void
conf_engine_free(wsh_conf_engine_t *e)
{
    free(e->node_id);
    free(e->host);
    free(e->unix_socket);
    free(e->user);
    free(e->password);
    free(e->prefix);
}

static void
conf_auth_jwt(conf_ctx_t *ctx, conf_raw_auth_jwt_t *raw,
    wsh_conf_auth_jwt_t *a)
{
    char err[512];
    const char *bad;

    if (raw == NULL) {
        return;
    }
    a->enabled = true;
    conf_msec(ctx, "auth_jwt.leeway", raw->leeway, 0, 0, &a->leeway);
    /* On by default since 0.2.0: a token without exp is valid forever,
     * and nothing short of a new key could revoke it. */
    conf_bool(ctx, "auth_jwt.require_exp", raw->require_exp, true,
              &a->require_exp);
    a->audience = conf_strdup_or(ctx, raw->audience, NULL);
    a->issuer = conf_strdup_or(ctx, raw->issuer, NULL);
    if (!conf_is_set(raw->query_param)) {
        a->query_param = conf_strdup(ctx, "token");
    } else if (conf_bool_word(raw->query_param) == 1) {
        conf_value_error(ctx, "auth_jwt.query_param", "\"%s\" says where: "
                         "give the parameter's name, or off",
                         raw->query_param);
    } else if (conf_bool_word(raw->query_param) != 0) {
        if (strspn(raw->query_param, "abcdefghijklmnopqrstuvwxyz"
                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
            != strlen(raw->query_param))
        {
            conf_value_error(ctx, "auth_jwt.query_param", "use letters, "
                             "digits, \"_\", \".\" and \"-\" only, or off");
        }
        a->query_param = conf_strdup(ctx, raw->query_param);
    }
    a->rooms_claim = conf_strdup_or(ctx, raw->rooms_claim, "rooms");
    conf_bool(ctx, "auth_jwt.rooms_claim_required", raw->rooms_claim_required,
              false, &a->rooms_claim_required);
    if (ctx->failed) {
        return;
    }
    bad = wsh_auth_jwt_conf_key(a, raw->algorithm,
                                conf_is_set(raw->secret) ? raw->secret : NULL,
                                conf_is_set(raw->secret_file)
                                ? raw->secret_file : NULL,
                                conf_is_set(raw->public_key_file)
                                ? raw->public_key_file : NULL, err,
                                sizeof(err));
    if (bad != NULL) {
        conf_value_error(ctx, bad, "%s", err);
    }
}

static void
conf_auth_jwt_free(wsh_conf_auth_jwt_t *a)
{
    if (a->key != NULL) {
        OPENSSL_cleanse(a->key, a->keylen);
    }
    free(a->key);
    free(a->audience);
    free(a->issuer);
    free(a->query_param);
    free(a->rooms_claim);
}

/* user/group: looked up now, so a typo fails "wshubd -t" with its line
 * rather than a worker at fork time. */
static void
conf_user(conf_ctx_t *ctx, conf_raw_t *raw, wsh_conf_t *cf)
{
    struct passwd *pw;
    struct group *gr;

    if (!conf_is_set(raw->user)) {
        if (conf_is_set(raw->group)) {
            conf_value_error(ctx, "group", "needs user as well");
        }
        return;
    }
    pw = getpwnam(raw->user);
    if (pw == NULL) {
        conf_value_error(ctx, "user", "no such user \"%s\"", raw->user);
        return;
    }
    cf->user = conf_strdup(ctx, raw->user);
    cf->uid = pw->pw_uid;
    cf->gid = pw->pw_gid;
    if (conf_is_set(raw->group)) {
        gr = getgrnam(raw->group);
        if (gr == NULL) {
            conf_value_error(ctx, "group", "no such group \"%s\"",
                             raw->group);
            return;
        }
        cf->gid = gr->gr_gid;
    }
}

int
wsh_conf_parse_origin(const char *text, size_t len, wsh_origin_t *o)
{
    const char *p = text, *last = text + len, *host, *colon;
    unsigned long port;
    size_t hlen, i;
    char *end, digits[8];

    memset(o, 0, sizeof(*o));
    if (len > 8 && strncasecmp(p, "https://", 8) == 0) {
        strcpy(o->scheme, "https");
        o->port = 443;
        p += 8;
    } else if (len > 7 && strncasecmp(p, "http://", 7) == 0) {
        strcpy(o->scheme, "http");
        o->port = 80;
        p += 7;
    } else {
        return WSH_ERROR;
    }
    if (last - p > 2 && p[0] == '*' && p[1] == '.') {
        o->wildcard = true;
        p += 2;
    }
    host = p;
    colon = memchr(p, ':', (size_t) (last - p));
    hlen = (size_t) ((colon ? colon : last) - host);
    if (hlen == 0 || hlen >= sizeof(o->host)) {
        return WSH_ERROR;
    }
    for (i = 0; i < hlen; i++) {
        char ch = (char) tolower((unsigned char) host[i]);

        if (!isalnum((unsigned char) ch) && ch != '-' && ch != '.') {
            return WSH_ERROR;       /* no path, user info or IPv6 here */
        }
        o->host[i] = ch;
    }
    if (colon != NULL) {
        if (last - colon - 1 < 1 || last - colon - 1 > 5) {
            return WSH_ERROR;
        }
        memcpy(digits, colon + 1, (size_t) (last - colon - 1));
        digits[last - colon - 1] = '\0';
        port = strtoul(digits, &end, 10);
        if (*end != '\0' || !isdigit((unsigned char) digits[0]) || port == 0
            || port > 65535)
        {
            return WSH_ERROR;
        }
        o->port = (unsigned) port;
    }
    return WSH_OK;
}

bool
wsh_conf_origin_allowed(const wsh_conf_t *cf, const char *text, size_t len)
{
    wsh_origin_t o;
    size_t i, hl, ol;

    if (cf->norigins == 0) {
        return true;
    }
    if (wsh_conf_parse_origin(text, len, &o) != WSH_OK || o.wildcard) {
        return false;           /* "null", garbage, or a pattern */
    }
    for (i = 0; i < cf->norigins; i++) {
        const wsh_origin_t *a = &cf->origins[i];

        if (strcmp(a->scheme, o.scheme) != 0 || a->port != o.port) {
            continue;
        }
        if (!a->wildcard) {
            if (strcmp(a->host, o.host) == 0) {
                return true;
            }
            continue;
        }
        /* "*.example.com": any subdomain, not example.com itself. */
        hl = strlen(a->host);
        ol = strlen(o.host);
        if (ol > hl + 1 && o.host[ol - hl - 1] == '.'
            && strcmp(o.host + ol - hl, a->host) == 0)
        {
            return true;
        }
    }
    return false;
}

static void
conf_rate(conf_ctx_t *ctx, conf_raw_rate_t *raw, wsh_conf_t *cf)
{
    static conf_raw_rate_t none;

    if (raw == NULL) {
        raw = &none;
    }
    conf_uint(ctx, "rate_limit.rps", raw->rps, 0, 0, 1000000, &cf->rate_rps);
    conf_uint(ctx, "rate_limit.burst", raw->burst,
              cf->rate_rps ? cf->rate_rps * 2 : 0, 1, 10000000,
              &cf->rate_burst);
    cf->rate_drop = false;
    if (conf_is_set(raw->action)) {
        if (strcmp(raw->action, "drop") == 0) {
            cf->rate_drop = true;
        } else if (strcmp(raw->action, "close") != 0) {
            conf_value_error(ctx, "rate_limit.action", "\"%s\" is not close "
                             "or drop", raw->action);
        }
    }
    if (!ctx->failed && cf->rate_rps == 0 && conf_is_set(raw->burst)) {
        conf_value_error(ctx, "rate_limit.burst", "needs rate_limit.rps");
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
    if (!conf_is_set(text)) {
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
            conf_value_error(ctx, "tls.protocols", "unknown protocol \"%s\" "
                             "(use TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3)", tok);
            return;
        }
    }
    run = bits / (bits & -bits);        /* shifted down to bit 0 */
    if ((run & (run + 1)) != 0) {
        conf_value_error(ctx, "tls.protocols", "\"%s\" is not a range of "
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
    if (!conf_is_set(raw->certificate) || !conf_is_set(raw->certificate_key))
    {
        conf_value_error(ctx, conf_is_set(raw->certificate)
                         ? "tls.certificate_key" : "tls.certificate",
                         "must name a PEM file");
        return;
    }
    conf_tls_protocols(ctx, raw->protocols, &tls->protocols);
    tls->certificate = conf_strdup(ctx, raw->certificate);
    tls->certificate_key = conf_strdup(ctx, raw->certificate_key);
    /* Forward secrecy and AEAD only, as Mozilla's "intermediate" profile
     * (no DHE: that would need dhparam files). */
    tls->ciphers = conf_strdup_or(ctx, raw->ciphers,
                                  "ECDHE+AESGCM:ECDHE+CHACHA20");
    tls->ciphersuites = conf_strdup_or(ctx, raw->ciphersuites, NULL);
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
    conf_uint(ctx, "limits.per_ip_connections", raw->per_ip_connections, 0,
              0, 1000000, &l->per_ip_connections);
    conf_uint(ctx, "limits.per_ip_handshake_rate",
              raw->per_ip_handshake_rate, 0, 0, 1000000,
              &l->per_ip_handshake_rate);
    conf_uint(ctx, "limits.per_ip_handshake_burst",
              raw->per_ip_handshake_burst,
              l->per_ip_handshake_rate ? l->per_ip_handshake_rate * 2 : 0, 1,
              10000000, &l->per_ip_handshake_burst);
    conf_uint(ctx, "limits.per_ip_pending", raw->per_ip_pending, 256, 0,
              1000000, &l->per_ip_pending);
    conf_uint(ctx, "limits.max_connections_total", raw->max_connections_total,
              0, 0, 100000000, &l->max_connections_total);
    conf_uint(ctx, "limits.max_fragments", raw->max_fragments, 0, 0,
              100000000, &l->max_fragments);
    conf_size(ctx, "limits.worker_send_buffer", raw->worker_send_buffer,
              (size_t) 256 << 20, 0, (size_t) 1 << 40,
              &l->worker_send_buffer);
    if (!ctx->failed && l->per_ip_handshake_rate == 0
        && conf_is_set(raw->per_ip_handshake_burst))
    {
        conf_value_error(ctx, "limits.per_ip_handshake_burst",
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
    conf_bool(ctx, "compression.enabled", raw->enabled, false, &d->enabled);
    conf_uint(ctx, "compression.level", raw->level, 1, 1, 9, &d->level);
    conf_size(ctx, "compression.min_size", raw->min_size, 64, 0,
              (size_t) 1 << 31, &d->min_size);
    /* zlib cannot make raw deflate streams with an 8-bit window, so
     * neither we nor zlib-based clients could honour 8. */
    conf_uint(ctx, "compression.window_bits", raw->window_bits, 15, 9, 15,
              &d->window_bits);
    conf_uint(ctx, "compression.client_window_bits", raw->client_window_bits,
              15, 9, 15, &d->client_window_bits);
    conf_uint(ctx, "compression.mem_level", raw->mem_level, 8, 1, 9,
              &d->mem_level);
    conf_bool(ctx, "compression.server_context_takeover",
              raw->server_context_takeover, false,
              &d->server_context_takeover);
    conf_bool(ctx, "compression.client_context_takeover",
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
        conf_error(ctx, 1, 1, "out of memory");
        return;
    }
    for (i = 0; i < raw->allowed_origins_count; i++) {
        const char *t = raw->allowed_origins[i];

        snprintf(path, sizeof(path), "allowed_origins[%zu]", i);
        if (wsh_conf_parse_origin(t, strlen(t), &cf->origins[i]) != WSH_OK) {
            conf_value_error(ctx, path, "\"%s\" is not an origin (use "
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

    conf_bool(ctx, "daemon", raw->daemon, false, &cf->daemon);
    conf_user(ctx, raw, cf);
    conf_uint(ctx, "worker_rlimit_nofile", raw->worker_rlimit_nofile, 0, 0,
              16777216, &cf->worker_rlimit_nofile);
    conf_workers(ctx, raw, cf);
    conf_logs(ctx, raw, cf);
    conf_listen(ctx, raw, cf);
    conf_uint(ctx, "backlog", raw->backlog, 511, 1, 65535, &backlog);
    cf->backlog = (int) backlog;
    conf_bool(ctx, "reuseport", raw->reuseport, true, &cf->reuseport);
    conf_uint(ctx, "max_connections", raw->max_connections, 10000, 1,
              1000000, &cf->max_connections);
    conf_size(ctx, "max_message_size", raw->max_message_size, 64 * 1024, 1,
              (size_t) 1 << 31, &cf->max_message_size);
    conf_size(ctx, "send_buffer", raw->send_buffer, 1024 * 1024, 1024,
              (size_t) 1 << 31, &cf->send_buffer);
    conf_size(ctx, "max_header_size", raw->max_header_size, 8 * 1024, 256,
              1024 * 1024, &cf->max_header_size);
    conf_uint(ctx, "max_headers", raw->max_headers, 64, 4, 1000,
              &cf->max_headers);
    conf_msec(ctx, "handshake_timeout", raw->handshake_timeout, 10000, 1,
              &cf->handshake_timeout);
    conf_msec(ctx, "ping_period", raw->ping_period, 54000, 0,
              &cf->ping_period);
    conf_msec(ctx, "pong_wait", raw->pong_wait, 60000, 1, &cf->pong_wait);
    conf_msec(ctx, "write_wait", raw->write_wait, 10000, 1, &cf->write_wait);
    conf_msec(ctx, "write_delay", raw->write_delay, 0, 0, &cf->write_delay);
    if (!ctx->failed && cf->write_delay > 1000) {
        conf_value_error(ctx, "write_delay", "at most 1s: broadcasts would "
                         "wait longer than any client expects");
    }
    conf_msec(ctx, "close_timeout", raw->close_timeout, 5000, 1,
              &cf->close_timeout);
    conf_msec(ctx, "shutdown_timeout", raw->shutdown_timeout, 30000, 0,
              &cf->shutdown_timeout);
    conf_msec(ctx, "shutdown_spread", raw->shutdown_spread, 2000, 0,
              &cf->shutdown_spread);
    if (!ctx->failed && cf->shutdown_spread > cf->shutdown_timeout) {
        conf_value_error(ctx, "shutdown_spread", "must not be longer than "
                         "shutdown_timeout (%llums), or the last clients are "
                         "cut off instead of closed",
                         (unsigned long long) cf->shutdown_timeout);
    }
    if (!ctx->failed && cf->ping_period != 0
        && cf->pong_wait <= cf->ping_period)
    {
        conf_value_error(ctx, "pong_wait", "must be longer than ping_period "
                         "(%llums), or a client that answers every ping is "
                         "still closed", (unsigned long long) cf->ping_period);
    }
    conf_origins(ctx, raw, cf);
    conf_rate(ctx, raw->rate_limit, cf);
    conf_tls(ctx, raw->tls, &cf->tls);
    conf_limits(ctx, raw->limits, &cf->limits);
    conf_deflate(ctx, raw->compression, &cf->compression);
    conf_hub(ctx, raw->hub, &cf->hub);
    conf_engine(ctx, raw->engine, &cf->engine);
    conf_bool(ctx, "health.engine_required",
              raw->health ? raw->health->engine_required : NULL, false,
              &cf->health_engine_required);
    conf_auth_jwt(ctx, raw->auth_jwt, &cf->auth_jwt);
    if (!ctx->failed) {
        conf_endpoints(ctx, raw, cf);
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
    if (!conf_check_shape(&ctx, fp)) {
        fclose(fp);
        goto failed;
    }
    fclose(fp);

    memset(&cy, 0, sizeof(cy));
    cy.log_fn = conf_cyaml_log;
    cy.log_ctx = &ctx;
    cy.mem_fn = cyaml_mem;
    cy.log_level = CYAML_LOG_ERROR;
    cy.flags = CYAML_CFG_NO_ALIAS;
    rc = cyaml_load_file(file, &cy, &conf_top_schema, (cyaml_data_t **) &raw,
                         NULL);
    if (rc != CYAML_OK) {
        conf_error(&ctx, 1, 1, "%s", cyaml_strerror(rc));
        goto failed;
    }

    cf = calloc(1, sizeof(*cf));
    if (cf == NULL) {
        conf_error(&ctx, 1, 1, "out of memory");
        goto failed;
    }
    cf->raw = raw;
    if (raw == NULL) {
        memset(&empty, 0, sizeof(empty));
    }
    conf_values(&ctx, raw ? raw : &empty, cf);
    cf->file = conf_strdup(&ctx, file);
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
        cyaml_free(&cy, &conf_top_schema, raw, 0);
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
    if (cf->raw != NULL) {
        memset(&cy, 0, sizeof(cy));
        cy.mem_fn = cyaml_mem;
        cyaml_free(&cy, &conf_top_schema, cf->raw, 0);
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
    free(cf->hub.api_key);
    for (i = 0; i < cf->hub.nhistory; i++) {
        free(cf->hub.history[i].rooms);
    }
    free(cf->hub.history);
    conf_auth_jwt_free(&cf->auth_jwt);
    free(cf->tls.certificate);
    free(cf->tls.certificate_key);
    free(cf->tls.ciphers);
    free(cf->tls.ciphersuites);
    free(cf->locs);
    conf_engine_free(&cf->engine);
    free(cf->file);
    free(cf);
}

const wsh_endpoint_t *
wsh_conf_endpoint(const wsh_conf_t *cf, const char *path, size_t len)
{
    size_t i;

    for (i = 0; i < cf->nendpoints; i++) {
        if (strlen(cf->endpoints[i].path) == len
            && memcmp(cf->endpoints[i].path, path, len) == 0)
        {
            return &cf->endpoints[i];
        }
    }
    return NULL;
}
