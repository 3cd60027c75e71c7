/* conf.h -- the configuration: one YAML file, one struct.
 *
 * wsh_conf_load() reads the file with libcyaml into raw strings, checks
 * its shape with a libyaml pass that knows each key's line and column,
 * then parses and validates every value (sizes like "512k", durations
 * like "54s") into wsh_conf_t. Every error names FILE:LINE:COL.
 */
#ifndef WSH_CONF_H
#define WSH_CONF_H

#include "core/core.h"
#include "core/access.h"
#include "core/module.h"

#include <sys/socket.h>

typedef struct wsh_module_s wsh_module_t;

typedef struct {
    struct sockaddr_storage sockaddr;
    socklen_t               socklen;
    char                    text[80];      /* as written, normalised */
    bool                    tls;           /* "ADDRESS tls" */
} wsh_listen_addr_t;

/* An address or network of an allow list. */
typedef struct {
    int                 family;            /* AF_INET or AF_INET6 */
    uint8_t             bits;              /* prefix length */
    uint8_t             addr[16];
} wsh_cidr_t;

/* The compression section (permessage-deflate, RFC 7692). */
typedef struct {
    bool                enabled;
    unsigned            level;             /* zlib 1..9 */
    size_t              min_size;          /* smaller: sent uncompressed */
    unsigned            window_bits;       /* 9..15: our LZ77 window */
    unsigned            client_window_bits; /* 9..15: asked of clients */
    unsigned            mem_level;         /* zlib 1..9 */
    bool                server_context_takeover;
    bool                client_context_takeover;
} wsh_conf_deflate_t;

typedef struct {
    char               *path;
    const wsh_module_t *module;
    size_t              max_message_size;
    wsh_cidr_t         *allow;             /* NULL: every client */
    size_t              nallow;
    uint64_t            listeners;         /* bit i: listen[i]; 0: all */
    const wsh_module_t *auth;              /* NULL: no authentication */
    char               *realm;             /* wsh_conn_realm(); NULL: none
                                            * (a publish API endpoint of
                                            * several realms) */
    bool                realm_set;         /* by "realm:", not the path */
    bool                realm_verified;    /* one of its endpoints has
                                            * auth */
} wsh_endpoint_t;

/* One allowed_origins entry: scheme://host[:port], host maybe "*.x". */
typedef struct {
    char                scheme[8];         /* "http" or "https" */
    char                host[256];         /* lower case, without "*." */
    bool                wildcard;          /* any subdomain of host */
    unsigned            port;
} wsh_origin_t;


/* The limits section (limits:): 0 turns a limit off. */
typedef struct {
    unsigned            per_ip_connections;     /* WebSockets, all workers */
    unsigned            per_ip_handshake_rate;  /* upgrades a second */
    unsigned            per_ip_handshake_burst;
    unsigned            per_ip_pending;         /* handshakes, per worker */
    unsigned            max_connections_total;  /* WebSockets, all workers */
    unsigned            max_fragments;          /* frames per message */
    size_t              worker_send_buffer;     /* output of one worker */
} wsh_conf_limits_t;

/* A Redis Sentinel (engine.redis.sentinel.addresses). */
typedef struct {
    char               *host;
    unsigned            port;
} wsh_conf_sentinel_t;

/* A TLS client block (engine.redis.tls). */
typedef struct {
    bool                on;
    char               *ca_file;           /* NULL: the system's store */
    char               *cert_file;         /* with key_file; NULL: none */
    char               *key_file;
    char               *server_name;       /* NULL: the host connected to */
} wsh_conf_tls_client_t;

/* Most shards of engine.redis.shards: as many as have counters in
 * shared memory. */
#define WSH_REDIS_SHARDS_MAX WSH_STATS_SHARDS

/* A Redis server of the engine, as the engine connects to it: the one
 * of engine.redis (host, port, unix_socket or sentinel), or one of
 * engine.redis.shards, whose password, user and db default to
 * engine.redis's. */
typedef struct {
    char               *host;
    unsigned            port;
    char               *unix_socket;       /* NULL: TCP */
    char               *user;              /* ACL user, NULL: none */
    char               *password;          /* NULL: no AUTH */
    unsigned            db;
    char               *sentinel_master;   /* NULL: no Sentinel */
    wsh_conf_sentinel_t *sentinels;
    size_t              nsentinels;
    char               *sentinel_password; /* NULL: no AUTH to them */
} wsh_conf_redis_server_t;

/* The engine section (engine:). */
typedef struct {
    bool                redis;             /* type: redis, else local */
    char               *node_id;           /* this node in envelopes */
    wsh_msec_t          idempotency_window; /* retries answered, not
                                             * published again */
    char               *prefix;            /* channel and key prefix */
    wsh_msec_t          connect_timeout;
    wsh_msec_t          command_timeout;
    wsh_msec_t          reconnect_min;
    wsh_msec_t          reconnect_max;
    wsh_msec_t          presence_ttl;
    unsigned            breaker_failures;  /* 0: no circuit breaker */
    wsh_msec_t          breaker_open;
    /* The servers the engine uses: one (engine.redis's own: host and
     * port, unix_socket or sentinel) or the shards, in their order
     * (placement depends on it). */
    wsh_conf_redis_server_t *servers;
    size_t              nservers;
    bool                sharded;           /* engine.redis.shards, or
                                            * engine.redis.cluster */
    /* engine.redis.cluster: the seed nodes (servers[0] then holds only
     * user and password, for every node); NULL: not a cluster. */
    wsh_conf_sentinel_t *cluster_seeds;
    size_t              ncluster_seeds;
    wsh_conf_tls_client_t tls;             /* engine.redis.tls: to every
                                            * server and sentinel */
} wsh_conf_engine_t;

/* The tls section: the certificate of every "ADDRESS tls" listener. */
enum {
    WSH_TLS_V1   = 0x01,
    WSH_TLS_V1_1 = 0x02,
    WSH_TLS_V1_2 = 0x04,
    WSH_TLS_V1_3 = 0x08
};

typedef struct {
    char               *certificate;       /* PEM chain; NULL: no section */
    char               *certificate_key;
    unsigned            protocols;         /* WSH_TLS_* bits, no gap */
    char               *ciphers;           /* TLS 1.2 and older */
    char               *ciphersuites;      /* TLS 1.3, NULL: OpenSSL's */
} wsh_conf_tls_t;

typedef struct wsh_conf_loc_s wsh_conf_loc_t;

typedef struct {
    char               *file;              /* the file this came from */

    bool                daemon;
    char               *pid_file;          /* NULL: none */
    char               *user;              /* workers' account, NULL: none */
    uid_t               uid;
    gid_t               gid;
    unsigned            worker_rlimit_nofile;   /* 0: inherited */
    int                 worker_processes;
    char               *error_log;
    int                 log_level;
    char               *access_log;        /* NULL: off */
    wsh_access_format_t access_format;

    wsh_listen_addr_t  *listen;
    size_t              nlisten;
    int                 backlog;
    bool                reuseport;

    unsigned            max_connections;   /* per worker */
    size_t              max_message_size;
    size_t              send_buffer;
    size_t              max_header_size;
    unsigned            max_headers;

    wsh_msec_t          handshake_timeout;
    wsh_msec_t          ping_period;       /* 0: no keepalive pings */
    wsh_msec_t          pong_wait;
    wsh_msec_t          write_wait;
    wsh_msec_t          write_delay;       /* 0: broadcasts at turn's end */
    wsh_msec_t          close_timeout;
    wsh_msec_t          shutdown_timeout;
    wsh_msec_t          shutdown_spread;

    wsh_endpoint_t     *endpoints;
    size_t              nendpoints;

    unsigned            rate_rps;          /* 0: no rate limit */
    unsigned            rate_burst;
    bool                rate_drop;         /* else close with 1008 */

    wsh_origin_t       *origins;           /* NULL: any origin */
    size_t              norigins;

    wsh_conf_limits_t   limits;
    bool                slow_consumer_drop; /* else close with 1008 */
    wsh_conf_engine_t   engine;
    wsh_conf_deflate_t  compression;

    wsh_conf_tls_t      tls;

    /* The modules' sections (wshub.h), by module index (module.h). */
    void               *sections[WSH_MODULES_MAX];
    bool                section_present[WSH_MODULES_MAX];

    wsh_conf_loc_t     *locs;              /* where each value was */
    size_t              nlocs;
    void               *raw;               /* libcyaml's data, freed with us */
} wsh_conf_t;

#define WSH_CONF_ERR_MAX 1024

/* Load and validate FILE. Returns a conf the caller frees with
 * wsh_conf_free(), or NULL with a "FILE:LINE:COL: message" in err. */
wsh_conf_t *wsh_conf_load(const char *file, char *err, size_t errlen);

void wsh_conf_free(wsh_conf_t *cf);

/* Value parsers, exported for the unit tests. Return WSH_OK or
 * WSH_ERROR when the text is not a valid size/duration. */
int wsh_conf_parse_size(const char *text, size_t *out);
int wsh_conf_parse_msec(const char *text, wsh_msec_t *out);
int wsh_conf_parse_listen(const char *text, wsh_listen_addr_t *addr);

/* Parse "scheme://host[:port]" (host may be "*.domain"); WSH_ERROR if
 * it is not one. */
int wsh_conf_parse_origin(const char *text, size_t len, wsh_origin_t *o);

/* True when the Origin header value TEXT is allowed by CF (always when
 * allowed_origins is not set). */
bool wsh_conf_origin_allowed(const wsh_conf_t *cf, const char *text,
    size_t len);

/* Parse "ADDRESS[/BITS]" (IPv4 or IPv6); WSH_ERROR if it is not one. */
int wsh_conf_parse_cidr(const char *text, wsh_cidr_t *cidr);

/* True when a client at SA may use EP (always without an allow list). */
bool wsh_conf_allowed(const wsh_endpoint_t *ep, const struct sockaddr *sa);
/* "FILE:LINE:COL" of the value at PATH ("tls.certificate") in BUF, for
 * errors found after loading (just FILE when PATH was not written). */
const char *wsh_conf_where(const wsh_conf_t *cf, const char *path,
    char *buf, size_t len);

/* M's section in CF (NULL when M declares none), and whether the file
 * has it. */
const void *wsh_conf_section(const wsh_conf_t *cf, const wsh_module_t *m);
int  wsh_conf_section_present(const wsh_conf_t *cf, const wsh_module_t *m);

/* The configuration in force in this process, for wsh_module_conf():
 * the master's current one, a worker's own. */
extern const wsh_conf_t *wsh_conf_in_force;
void wsh_conf_use(const wsh_conf_t *cf);

bool wsh_conf_realm_known(const wsh_conf_t *cf, const char *name,
    size_t len);
const wsh_endpoint_t *wsh_conf_endpoint(const wsh_conf_t *cf,
    const char *path, size_t len);

#endif /* WSH_CONF_H */
