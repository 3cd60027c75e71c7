/* conf_value.h -- inside the configuration loader: where values sit in
 * the file, and the one parser of each type.
 *
 * conf.c walks the file and parses the core's keys; conf_section.c
 * parses the sections modules declare (wshub.h) with the same setters,
 * so that a boolean, a size or a duration reads the same everywhere.
 */
#ifndef WSH_CONF_VALUE_H
#define WSH_CONF_VALUE_H

#include "core/conf.h"

#include <stdarg.h>
#include <stdio.h>

#include <cyaml/cyaml.h>
#include <yaml.h>

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
} wsh_conf_ctx_t;

/* The first error wins: later ones are not reported. */
void wsh_conf_error(wsh_conf_ctx_t *ctx, int line, int col, const char *fmt,
    ...) __attribute__((format(printf, 4, 5)));
/* An error about the value at PATH ("hub.api_key"), at its place. */
void wsh_conf_value_error(wsh_conf_ctx_t *ctx, const char *path,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Errors about the key TO are to point at FROM's place (an alias). */
void wsh_conf_loc_alias(wsh_conf_ctx_t *ctx, const char *from,
    const char *to);

/* A value was written (not absent, not empty). */
bool wsh_conf_is_set(const char *s);

/* Each sets *OUT to DEF when TEXT is not set, else parses TEXT or
 * reports the error at PATH. */
void wsh_conf_bool(wsh_conf_ctx_t *ctx, const char *path, const char *text,
    bool def, bool *out);
void wsh_conf_uint(wsh_conf_ctx_t *ctx, const char *path, const char *text,
    unsigned def, unsigned min, unsigned max, unsigned *out);
void wsh_conf_size(wsh_conf_ctx_t *ctx, const char *path, const char *text,
    size_t def, size_t min, size_t max, size_t *out);
void wsh_conf_msec(wsh_conf_ctx_t *ctx, const char *path, const char *text,
    wsh_msec_t def, wsh_msec_t min, wsh_msec_t *out);
char *wsh_conf_strdup(wsh_conf_ctx_t *ctx, const char *s);

/* An endpoint as written (pass 2, every scalar as text). */
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

/* A key whose value is kept as text (pass 2). */
#define CONF_STR(key, type, member, flags)                                   \
    CYAML_FIELD_STRING_PTR(key, (flags), type, member, 0, CYAML_UNLIMITED)

/* A string, as an entry of a list. */
extern const cyaml_schema_value_t wsh_conf_string_schema;

/* VALUE if set, else DEFLT (may be NULL), allocated. */
char *wsh_conf_strdup_or(wsh_conf_ctx_t *ctx, const char *value,
    const char *deflt);

/* engine.redis.sentinel, and a shard's, as written. */
typedef struct {
    char     *master;
    char    **addresses;
    unsigned  addresses_count;
    char     *password;
} conf_raw_sentinel_t;

/* A Redis server as written: engine.redis's own keys, or a shard. */
typedef struct {
    char *host;
    char *port;
    char *unix_socket;
    char *user;
    char *password;
    char *db;
    conf_raw_sentinel_t *sentinel;
} conf_raw_server_t;

/* engine.redis.tls as written. */
typedef struct {
    char *ca_file;
    char *cert_file;
    char *key_file;
    char *server_name;
} conf_raw_tls_client_t;

/* engine.redis as written. */
typedef struct {
    conf_raw_server_t server;
    char *prefix;
    char *connect_timeout;
    char *command_timeout;
    char *reconnect_min;
    char *reconnect_max;
    char *presence_ttl;
    char *breaker_failures;
    char *breaker_open;
    conf_raw_server_t *shards;
    unsigned shards_count;
    char **cluster;
    unsigned cluster_count;
    conf_raw_tls_client_t *tls;
} conf_raw_redis_t;

/* conf_redis.c: engine.redis's keys, and its values into E (R may be
 * NULL: the defaults). */
extern const cyaml_schema_field_t wsh_conf_redis_fields[];
void wsh_conf_redis(wsh_conf_ctx_t *ctx, conf_raw_redis_t *r,
    wsh_conf_engine_t *e);
void wsh_conf_redis_free(wsh_conf_engine_t *e);

/* conf_shape.c: pass 1, the file against SCHEMA, remembering where each
 * value is; false after an error. libcyaml's log goes to the context
 * too (a last-resort message: pass 1 catches what it would say). */
bool wsh_conf_check_shape(wsh_conf_ctx_t *ctx, FILE *fp,
    const cyaml_schema_value_t *schema);
void wsh_conf_cyaml_log(cyaml_log_t level, void *data, const char *fmt,
    va_list ap);

/* conf_value.c: "ADDRESS" or "ADDRESS tls" into ADDR, as nginx's
 * "listen 443 ssl": the address stays the listener's identity, so a
 * reload may switch TLS on or off on the same socket. Shared by
 * "listen" and an endpoint's "listen", which must name addresses the
 * same way to match them. */
int wsh_conf_listen_text(const char *text, wsh_listen_addr_t *addr);

/* conf_endpoint.c: the endpoints as written (COUNT of them; NULL: each
 * module's default endpoint) into CF, after the modules' sections. */
void wsh_conf_endpoints(wsh_conf_ctx_t *ctx, conf_raw_endpoint_t *endpoints,
    size_t count, wsh_conf_t *cf);

/* conf_section.c: the sections modules declare. */

/* The top-level schema: CORE's fields, then one per declared section,
 * whose raw text goes to the array of pointers at SECTIONS_OFFSET of the
 * raw struct (RAW_SIZE bytes). NULL on ENOMEM. Built once. */
const cyaml_schema_value_t *wsh_conf_schema(const cyaml_schema_field_t *core,
    size_t raw_size, size_t sections_offset);

/* Before the core's values: an ALIAS field that is set gives its text
 * to the key it names, when that one is not set (RAW: the top struct). */
void wsh_conf_sections_alias(wsh_conf_ctx_t *ctx, void *raw,
    void *const *sections);

/* Parse every declared section (absent ones get their defaults) into
 * CF->sections, then each one's check. */
void wsh_conf_sections_load(wsh_conf_ctx_t *ctx, void *const *sections,
    wsh_conf_t *cf);
void wsh_conf_sections_free(wsh_conf_t *cf);

#endif /* WSH_CONF_VALUE_H */
