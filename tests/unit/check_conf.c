/* check_conf.c -- unit tests of the configuration loader and parsers.
 *
 * The value parsers (sizes, durations, listen addresses) are tested on
 * their own; wsh_conf_load() on the shipped etc/wshub.yaml, on an empty
 * file (every default) and on small broken files written to a temporary
 * directory, checking that each error names FILE:LINE:COL of the mistake
 * and says what is wrong.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "core/conf.h"
#include "core/module.h"
#include "auth_jwt/auth_jwt.h"
#include "hub/hub.h"

typedef struct {
    char path[4096];
    char err[WSH_CONF_ERR_MAX];
} loaded_t;

/* The hub module's section of CF. */
static const hub_conf_t *
hub_of(const wsh_conf_t *cf)
{
    return wsh_conf_section(cf, wsh_module_find("hub"));
}

/* Write TEXT to a new temporary file, load it and remove the file before
 * returning, so a failed assertion leaves nothing behind. */
static wsh_conf_t *
load_text(const char *text, loaded_t *ld)
{
    const char *dir = getenv("TMPDIR");
    wsh_conf_t *cf;
    size_t len = strlen(text);
    FILE *fp;
    int fd;

    if (dir == NULL || *dir == '\0') {
        dir = "/tmp";
    }
    snprintf(ld->path, sizeof(ld->path), "%s/check_conf.XXXXXX", dir);
    fd = mkstemp(ld->path);
    ck_assert_msg(fd != -1, "mkstemp(%s) failed", ld->path);
    fp = fdopen(fd, "w");
    ck_assert_ptr_nonnull(fp);
    ck_assert_uint_eq(fwrite(text, 1, len, fp), len);
    ck_assert_int_eq(fclose(fp), 0);

    memset(ld->err, 0, sizeof(ld->err));
    cf = wsh_conf_load(ld->path, ld->err, sizeof(ld->err));
    unlink(ld->path);
    return cf;
}

/* TEXT must fail with an error at LINE:COL that contains every one of
 * the NULL-terminated substrings that follow. */
static void
expect_error(const char *text, int line, int col, ...)
{
    char prefix[4200];
    const char *want;
    wsh_conf_t *cf;
    loaded_t ld;
    va_list ap;

    cf = load_text(text, &ld);
    if (cf != NULL) {
        wsh_conf_free(cf);
        ck_abort_msg("loaded, but an error at %d:%d was expected in:\n%s",
                     line, col, text);
    }
    snprintf(prefix, sizeof(prefix), "%s:%d:%d: ", ld.path, line, col);
    ck_assert_msg(strncmp(ld.err, prefix, strlen(prefix)) == 0,
                  "error \"%s\" does not start with \"%s\"", ld.err, prefix);
    va_start(ap, col);
    while ((want = va_arg(ap, const char *)) != NULL) {
        ck_assert_msg(strstr(ld.err, want) != NULL,
                      "error \"%s\" does not mention \"%s\"", ld.err, want);
    }
    va_end(ap);
}

START_TEST(test_parse_size)
{
    static const struct {
        const char *text;
        size_t      value;
    } good[] = {
        { "0", 0 },
        { "1", 1 },
        { "512", 512 },
        { "64k", 64 * 1024 },
        { "64K", 64 * 1024 },
        { "1m", 1024 * 1024 },
        { "16M", 16 * 1024 * 1024 },
        { "2g", (size_t) 2 * 1024 * 1024 * 1024 },
        { "007", 7 },
    };
    static const char *const bad[] = {
        "", "k", "m", "1x", "-1", "+1", "1kk", " 1", "1 ", "1 k", "1.5k",
        "0x10", "1b", "1kb", "99999999999999999999999", "17179869184g",
    };
    size_t i, v;

    for (i = 0; i < wsh_nelems(good); i++) {
        v = 12345;
        ck_assert_msg(wsh_conf_parse_size(good[i].text, &v) == WSH_OK,
                      "\"%s\" rejected", good[i].text);
        ck_assert_msg(v == good[i].value, "\"%s\" gave %zu", good[i].text,
                      v);
    }
    for (i = 0; i < wsh_nelems(bad); i++) {
        v = 12345;
        ck_assert_msg(wsh_conf_parse_size(bad[i], &v) == WSH_ERROR,
                      "\"%s\" accepted as %zu", bad[i], v);
    }
    ck_assert_int_eq(wsh_conf_parse_size(NULL, &v), WSH_ERROR);
}
END_TEST

START_TEST(test_parse_msec)
{
    static const struct {
        const char *text;
        wsh_msec_t  value;
    } good[] = {
        { "0", 0 },
        { "0s", 0 },
        { "250ms", 250 },
        { "54s", 54000 },
        { "5m", 300000 },
        { "1h", 3600000 },
        { "10", 10000 },
        { "1500ms", 1500 },
    };
    static const char *const bad[] = {
        "", "5x", "ms", "s", "-1s", "-1", " 5s", "5s ", "5 s", "5S", "5sec",
        "1.5s", "5msx", "5hm", "99999999999999999999999h",
    };
    wsh_msec_t v;
    size_t i;

    for (i = 0; i < wsh_nelems(good); i++) {
        v = 12345;
        ck_assert_msg(wsh_conf_parse_msec(good[i].text, &v) == WSH_OK,
                      "\"%s\" rejected", good[i].text);
        ck_assert_msg(v == good[i].value, "\"%s\" gave %llu", good[i].text,
                      (unsigned long long) v);
    }
    for (i = 0; i < wsh_nelems(bad); i++) {
        ck_assert_msg(wsh_conf_parse_msec(bad[i], &v) == WSH_ERROR,
                      "\"%s\" accepted", bad[i]);
    }
}
END_TEST

START_TEST(test_parse_listen)
{
    static const struct {
        const char *text;
        int         family;
        const char *addr;
        int         port;
        const char *norm;
    } good[] = {
        { "127.0.0.1:8080", AF_INET, "127.0.0.1", 8080, "127.0.0.1:8080" },
        { "0.0.0.0:1", AF_INET, "0.0.0.0", 1, "0.0.0.0:1" },
        { "10.1.2.3:65535", AF_INET, "10.1.2.3", 65535, "10.1.2.3:65535" },
        { "*:8080", AF_INET, "0.0.0.0", 8080, NULL },
        { ":8080", AF_INET, "0.0.0.0", 8080, NULL },
        { "[::1]:80", AF_INET6, "::1", 80, "[::1]:80" },
        { "[::]:443", AF_INET6, "::", 443, "[::]:443" },
        { "[2001:db8::1]:9000", AF_INET6, "2001:db8::1", 9000,
          "[2001:db8::1]:9000" },
    };
    static const char *const bad[] = {
        "localhost:80", "example.com:80", "1.2.3.4", "1.2.3.4:0",
        "1.2.3.4:65536", ":99999", ":", "", "80", "[::1]80", "[::1]",
        "::1:80", "[127.0.0.1]:80", "1.2.3.4:http", "1.2.3.4:-1",
        "1.2.3.4:+80", "1.2.3.4:80x", "1.2.3.4: 80", "1.2.3:80",
        "256.1.1.1:80", "[::1:80", "[fe80::1%lo]:80x",
    };
    char buf[INET6_ADDRSTRLEN];
    const struct sockaddr_in *sin;
    const struct sockaddr_in6 *sin6;
    wsh_listen_addr_t a, any;
    size_t i;

    for (i = 0; i < wsh_nelems(good); i++) {
        ck_assert_msg(wsh_conf_parse_listen(good[i].text, &a) == WSH_OK,
                      "\"%s\" rejected", good[i].text);
        ck_assert_int_eq(a.sockaddr.ss_family, good[i].family);
        if (good[i].family == AF_INET) {
            sin = (const struct sockaddr_in *) &a.sockaddr;
            ck_assert_uint_eq(a.socklen, sizeof(*sin));
            ck_assert_int_eq(ntohs(sin->sin_port), good[i].port);
            inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf));
        } else {
            sin6 = (const struct sockaddr_in6 *) &a.sockaddr;
            ck_assert_uint_eq(a.socklen, sizeof(*sin6));
            ck_assert_int_eq(ntohs(sin6->sin6_port), good[i].port);
            inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf));
        }
        ck_assert_str_eq(buf, good[i].addr);
        if (good[i].norm != NULL) {
            ck_assert_str_eq(a.text, good[i].norm);
        }
    }

    /* the three spellings of the IPv4 wildcard are one address */
    ck_assert_int_eq(wsh_conf_parse_listen("0.0.0.0:8080", &any), WSH_OK);
    ck_assert_int_eq(wsh_conf_parse_listen("*:8080", &a), WSH_OK);
    ck_assert_str_eq(a.text, any.text);
    ck_assert_int_eq(wsh_conf_parse_listen(":8080", &a), WSH_OK);
    ck_assert_str_eq(a.text, any.text);
    for (i = 0; i < wsh_nelems(bad); i++) {
        ck_assert_msg(wsh_conf_parse_listen(bad[i], &a) == WSH_ERROR,
                      "\"%s\" accepted as %s", bad[i], a.text);
    }
}
END_TEST

/* The file shipped in etc/ loads, and says what its comments say. */
START_TEST(test_load_shipped)
{
    const char *srcdir = getenv("WSHUB_SRCDIR");
    char path[4096], err[WSH_CONF_ERR_MAX];
    const wsh_endpoint_t *ep;
    wsh_conf_t *cf;

    if (srcdir == NULL || *srcdir == '\0') {
        srcdir = ".";
    }
    snprintf(path, sizeof(path), "%s/etc/wshub.yaml", srcdir);
    err[0] = '\0';
    cf = wsh_conf_load(path, err, sizeof(err));
    ck_assert_msg(cf != NULL, "%s: %s", path, err);

    ck_assert_str_eq(cf->file, path);
    ck_assert(!cf->daemon);
    ck_assert_int_ge(cf->worker_processes, 1);
    ck_assert_str_eq(cf->error_log, "stderr");
    ck_assert_ptr_null(cf->access_log);
    ck_assert_ptr_null(cf->pid_file);
    ck_assert_uint_eq(cf->nlisten, 1);
    ck_assert_str_eq(cf->listen[0].text, "127.0.0.1:8080");
    ck_assert_int_eq(cf->backlog, 511);
    ck_assert_uint_eq(cf->max_connections, 10000);
    ck_assert_uint_eq(cf->max_message_size, 64 * 1024);
    ck_assert_uint_eq(cf->send_buffer, 1024 * 1024);
    ck_assert_uint_eq(cf->max_header_size, 8 * 1024);
    ck_assert_uint_eq(cf->max_headers, 64);
    ck_assert_uint_eq(cf->handshake_timeout, 10000);
    ck_assert_uint_eq(cf->ping_period, 54000);
    ck_assert_uint_eq(cf->pong_wait, 60000);
    ck_assert_uint_eq(cf->write_wait, 10000);
    ck_assert_uint_eq(cf->close_timeout, 5000);
    ck_assert_uint_eq(cf->shutdown_timeout, 30000);
    ck_assert_uint_eq(cf->nendpoints, 7);
    ep = wsh_conf_endpoint(cf, "/ws", 3);
    ck_assert_ptr_nonnull(ep);
    ck_assert_ptr_eq(ep->module, wsh_module_find("hub"));
    ck_assert_uint_eq(hub_of(cf)->max_rooms_per_connection, 100);
    ck_assert(!cf->slow_consumer_drop);
    ep = wsh_conf_endpoint(cf, "/echo", 5);
    ck_assert_ptr_nonnull(ep);
    ck_assert_ptr_eq(ep->module, wsh_module_find("echo"));
    ck_assert_uint_eq(ep->max_message_size, 16 * 1024 * 1024);
    wsh_conf_free(cf);
}
END_TEST

/* An empty file (or only comments) means every default. */
START_TEST(test_load_empty)
{
    static const char *const texts[] = { "", "# nothing here\n\n" };
    wsh_conf_t *cf;
    loaded_t ld;
    size_t i;

    for (i = 0; i < wsh_nelems(texts); i++) {
        cf = load_text(texts[i], &ld);
        ck_assert_msg(cf != NULL, "\"%s\": %s", texts[i], ld.err);
        ck_assert(!cf->daemon);
        ck_assert_int_ge(cf->worker_processes, 1);
        ck_assert_int_eq(cf->worker_processes,
                         (int) sysconf(_SC_NPROCESSORS_ONLN));
        ck_assert_str_eq(cf->error_log, "stderr");
        ck_assert_ptr_null(cf->access_log);
        ck_assert_ptr_null(cf->pid_file);
        ck_assert_uint_eq(cf->nlisten, 1);
        ck_assert_str_eq(cf->listen[0].text, "127.0.0.1:8080");
        ck_assert_int_eq(cf->listen[0].sockaddr.ss_family, AF_INET);
        ck_assert_int_eq(cf->backlog, 511);
        ck_assert(cf->reuseport);
        ck_assert_uint_eq(cf->max_connections, 10000);
        ck_assert_uint_eq(cf->max_message_size, 65536);
        ck_assert_uint_eq(cf->send_buffer, 1024 * 1024);
        ck_assert_uint_eq(cf->max_header_size, 8192);
        ck_assert_uint_eq(cf->max_headers, 64);
        ck_assert_uint_eq(cf->handshake_timeout, 10000);
        ck_assert_uint_eq(cf->ping_period, 54000);
        ck_assert_uint_eq(cf->pong_wait, 60000);
        ck_assert_uint_eq(cf->write_wait, 10000);
        ck_assert_uint_eq(cf->close_timeout, 5000);
        ck_assert_uint_eq(cf->shutdown_timeout, 30000);
        ck_assert_uint_eq(cf->nendpoints, 7);
        ck_assert_str_eq(cf->endpoints[6].path, "/client");
        ck_assert_ptr_eq(cf->endpoints[6].module, wsh_module_find("client"));
        ck_assert_uint_eq(cf->endpoints[6].nallow, 0);
        ck_assert_str_eq(cf->endpoints[3].path, "/api/presence");
        ck_assert_ptr_eq(cf->endpoints[3].module,
                         wsh_module_find("hub_presence"));
        ck_assert_uint_eq(cf->endpoints[3].nallow, 2);
        ck_assert_ptr_eq(cf->endpoints[4].module, wsh_module_find("health"));
        ck_assert_str_eq(cf->endpoints[5].path, "/metrics");
        ck_assert_uint_eq(cf->endpoints[5].nallow, 2);
        ck_assert_str_eq(cf->endpoints[1].path, "/ws");
        ck_assert_ptr_eq(cf->endpoints[1].module, wsh_module_find("hub"));
        ck_assert_str_eq(cf->endpoints[2].path, "/api/publish");
        ck_assert_ptr_eq(cf->endpoints[2].module,
                         wsh_module_find("hub_api"));
        ck_assert_uint_eq(cf->endpoints[2].nallow, 2);
        /* Realms: /ws is its own, and the API publishes into it, the
         * only one. */
        ck_assert_str_eq(cf->endpoints[1].realm, "/ws");
        ck_assert_str_eq(cf->endpoints[2].realm, "/ws");
        ck_assert(!cf->endpoints[1].realm_verified);
        ck_assert_uint_eq(hub_of(cf)->api_max_body, 1 << 20);
        ck_assert_uint_eq(cf->limits.per_ip_pending, 256);
        ck_assert(hub_of(cf)->client_ids);
        ck_assert(!hub_of(cf)->announce_connections);
        ck_assert(!cf->slow_consumer_drop);
        ck_assert_uint_eq(cf->engine.idempotency_window, 300000);
        ck_assert_uint_eq(hub_of(cf)->max_rooms_per_connection, 100);
        ck_assert_ptr_null(hub_of(cf)->api_key);
        ck_assert(!cf->engine.redis);
        ck_assert_str_eq(cf->engine.servers[0].host, "127.0.0.1");
        ck_assert_uint_eq(cf->engine.servers[0].port, 6379);
        ck_assert_str_eq(cf->engine.prefix, "wshub:");
        ck_assert_uint_eq(cf->engine.presence_ttl, 30000);
        ck_assert_uint_eq(cf->engine.breaker_failures, 20);
        ck_assert_uint_eq(cf->engine.breaker_open, 30000);
        ck_assert_uint_eq(strlen(cf->engine.node_id), 16);
        ck_assert_str_eq(cf->endpoints[0].path, "/echo");
        ck_assert_ptr_nonnull(cf->endpoints[0].module);
        ck_assert_ptr_eq(cf->endpoints[0].module, wsh_module_find("echo"));
        ck_assert_uint_eq(cf->endpoints[0].max_message_size,
                          16 * 1024 * 1024);
        wsh_conf_free(cf);
    }
}
END_TEST

/* Every key set to something other than its default. */
START_TEST(test_load_full)
{
    static const char text[] =
        "daemon: on\n"
        "pid_file: /run/wshub/wshubd.pid\n"
        "worker_processes: 3\n"
        "error_log: /var/log/wshub/error.log\n"
        "log_level: debug\n"
        "access_log: /var/log/wshub/access.log\n"
        "listen:\n"
        "  - 127.0.0.1:9001\n"
        "  - \"[::1]:9002\"\n"
        "  - \"*:9003\"\n"
        "backlog: 128\n"
        "max_connections: 500\n"
        "max_message_size: 1m\n"
        "send_buffer: 256k\n"
        "max_header_size: 4k\n"
        "max_headers: 32\n"
        "handshake_timeout: 2500ms\n"
        "ping_period: 0\n"
        "pong_wait: 10s\n"
        "write_wait: 1m\n"
        "close_timeout: 1\n"
        "shutdown_timeout: 1h\n"
        "endpoints:\n"
        "  - path: /a\n"
        "    module: echo\n"
        "  - path: /b/c\n"
        "    module: echo\n"
        "    max_message_size: 512\n";
    wsh_conf_t *cf;
    loaded_t ld;

    cf = load_text(text, &ld);
    ck_assert_msg(cf != NULL, "%s", ld.err);
    ck_assert(cf->daemon);
    ck_assert_str_eq(cf->pid_file, "/run/wshub/wshubd.pid");
    ck_assert_int_eq(cf->worker_processes, 3);
    ck_assert_str_eq(cf->error_log, "/var/log/wshub/error.log");
    ck_assert_str_eq(cf->access_log, "/var/log/wshub/access.log");
    ck_assert_uint_eq(cf->nlisten, 3);
    ck_assert_str_eq(cf->listen[0].text, "127.0.0.1:9001");
    ck_assert_str_eq(cf->listen[1].text, "[::1]:9002");
    ck_assert_int_eq(cf->listen[2].sockaddr.ss_family, AF_INET);
    ck_assert_int_eq(ntohs(((const struct sockaddr_in *)
                            &cf->listen[2].sockaddr)->sin_port), 9003);
    ck_assert_int_eq(cf->backlog, 128);
    ck_assert_uint_eq(cf->max_connections, 500);
    ck_assert_uint_eq(cf->max_message_size, 1024 * 1024);
    ck_assert_uint_eq(cf->send_buffer, 256 * 1024);
    ck_assert_uint_eq(cf->max_header_size, 4096);
    ck_assert_uint_eq(cf->max_headers, 32);
    ck_assert_uint_eq(cf->handshake_timeout, 2500);
    ck_assert_uint_eq(cf->ping_period, 0);
    ck_assert_uint_eq(cf->pong_wait, 10000);
    ck_assert_uint_eq(cf->write_wait, 60000);
    ck_assert_uint_eq(cf->close_timeout, 1000);
    ck_assert_uint_eq(cf->shutdown_timeout, 3600000);
    ck_assert_uint_eq(cf->nendpoints, 2);
    /* an endpoint without max_message_size takes the global one */
    ck_assert_uint_eq(wsh_conf_endpoint(cf, "/a", 2)->max_message_size,
                      1024 * 1024);
    ck_assert_uint_eq(wsh_conf_endpoint(cf, "/b/c", 4)->max_message_size,
                      512);
    ck_assert_ptr_null(wsh_conf_endpoint(cf, "/b", 2));
    ck_assert_ptr_null(wsh_conf_endpoint(cf, "/a/", 3));
    ck_assert_ptr_null(wsh_conf_endpoint(cf, "/echo", 5));
    wsh_conf_free(cf);
}
END_TEST

START_TEST(test_error_unknown_key)
{
    /* a typo gets a suggestion */
    expect_error("daemon: off\n"
                 "ping_perod: 5s\n", 2, 1,
                 "unknown key \"ping_perod\"", "did you mean \"ping_period\"",
                 NULL);
    /* indented inside an endpoint, with the endpoint named */
    expect_error("endpoints:\n"
                 "  - path: /a\n"
                 "    modul: echo\n", 3, 5,
                 "unknown key \"modul\"", "endpoints[0]",
                 "did you mean \"module\"", NULL);
    /* nothing close: no suggestion */
    expect_error("backlog: 5\n"
                 "\n"
                 "   \n"
                 "frobnicate: yes\n", 4, 1, "unknown key \"frobnicate\"",
                 NULL);
}
END_TEST

START_TEST(test_error_unknown_key_no_hint)
{
    loaded_t ld;
    wsh_conf_t *cf;

    cf = load_text("frobnicate: yes\n", &ld);
    ck_assert_ptr_null(cf);
    ck_assert_msg(strstr(ld.err, "did you mean") == NULL, "%s", ld.err);
}
END_TEST

START_TEST(test_error_duplicate_key)
{
    expect_error("backlog: 10\n"
                 "listen:\n"
                 "  - 127.0.0.1:9000\n"
                 "backlog: 20\n", 4, 1, "duplicate key \"backlog\"", NULL);
    expect_error("endpoints:\n"
                 "  - path: /a\n"
                 "    module: echo\n"
                 "    path: /b\n", 4, 5, "duplicate key \"path\"", NULL);
}
END_TEST

START_TEST(test_error_unknown_module)
{
    expect_error("endpoints:\n"
                 "  - path: /a\n"
                 "    module: echo\n"
                 "  - path: /b\n"
                 "    module: nope\n", 5, 13,
                 "endpoints[1].module", "unknown module \"nope\"", "echo",
                 NULL);
}
END_TEST

START_TEST(test_error_engine)
{
    expect_error("engine:\n"
                 "  type: memcached\n", 2, 9, "engine.type",
                 "\"memcached\" is not local or redis", NULL);
    expect_error("engine:\n"
                 "  type: redis\n"
                 "  redis:\n"
                 "    reconnect_min: 5s\n"
                 "    reconnect_max: 1s\n", 5, 20,
                 "engine.redis.reconnect_max", NULL);
    expect_error("engine:\n"
                 "  redis:\n"
                 "    breaker_failures: -1\n", 3, 23,
                 "engine.redis.breaker_failures", NULL);
    expect_error("engine:\n"
                 "  redis:\n"
                 "    breaker_open: 10q\n", 3, 19,
                 "engine.redis.breaker_open", "invalid duration", NULL);
    expect_error("engine:\n"
                 "  redis:\n"
                 "    prefx: a\n", 3, 5, "unknown key \"prefx\"",
                 "did you mean \"prefix\"", NULL);
}
END_TEST

/* engine.redis.sentinel: the master's name and the sentinels, in the
 * place of host and port. */
START_TEST(test_sentinel)
{
    const wsh_conf_redis_server_t *v;
    wsh_conf_t *cf;
    loaded_t ld;

    cf = load_text("engine:\n  type: redis\n  redis:\n    sentinel:\n"
                   "      master: mymaster\n"
                   "      addresses: [\"10.0.0.1:26379\", \"[::1]:26380\",\n"
                   "                  \"sentinel-2.example:5000\"]\n"
                   "      password: pw\n", &ld);
    ck_assert_msg(cf != NULL, "%s", ld.err);
    v = cf->engine.servers;
    ck_assert_uint_eq(cf->engine.nservers, 1);
    ck_assert_str_eq(v->sentinel_master, "mymaster");
    ck_assert_uint_eq(v->nsentinels, 3);
    ck_assert_str_eq(v->sentinels[0].host, "10.0.0.1");
    ck_assert_uint_eq(v->sentinels[0].port, 26379);
    ck_assert_str_eq(v->sentinels[1].host, "::1");
    ck_assert_uint_eq(v->sentinels[1].port, 26380);
    ck_assert_str_eq(v->sentinels[2].host, "sentinel-2.example");
    ck_assert_uint_eq(v->sentinels[2].port, 5000);
    ck_assert_str_eq(v->sentinel_password, "pw");
    wsh_conf_free(cf);
    cf = load_text("engine:\n  type: redis\n", &ld);
    ck_assert_msg(cf != NULL, "%s", ld.err);
    ck_assert_ptr_null(cf->engine.servers[0].sentinel_master);
    ck_assert_uint_eq(cf->engine.servers[0].nsentinels, 0);
    wsh_conf_free(cf);

    expect_error("engine:\n  redis:\n    sentinel:\n"
                 "      addresses: [\"h:1\"]\n", 4, 7,
                 "engine.redis.sentinel", "missing required key \"master\"",
                 NULL);
    expect_error("engine:\n  redis:\n    sentinel:\n"
                 "      master: \"\"\n      addresses: [\"h:1\"]\n", 4, 15,
                 "engine.redis.sentinel.master", "missing", NULL);
    expect_error("engine:\n  redis:\n    sentinel:\n      master: m\n"
                 "      addresses: []\n", 5, 18,
                 "engine.redis.sentinel.addresses", "at least 1", NULL);
    expect_error("engine:\n  redis:\n    sentinel:\n      master: m\n"
                 "      addresses:\n        - h:26379\n        - ::1:26379\n",
                 7, 11, "engine.redis.sentinel.addresses[1]",
                 "invalid address \"::1:26379\"", NULL);
    expect_error("engine:\n  redis:\n    sentinel:\n      master: m\n"
                 "      addresses: [\"h:70000\"]\n", 5, 19,
                 "addresses[0]", "invalid address", NULL);
    expect_error("engine:\n  redis:\n    sentinel:\n      master: m\n"
                 "      addresses: [\"h\"]\n", 5, 19, "addresses[0]",
                 "HOST:PORT", NULL);
    expect_error("engine:\n  redis:\n    unix_socket: /run/r.sock\n"
                 "    sentinel:\n      master: m\n      addresses: [\"h:1\"]\n",
                 3, 18, "engine.redis.unix_socket", "not used with sentinel",
                 NULL);
    expect_error("engine:\n  redis:\n    host: 10.0.0.9\n"
                 "    sentinel:\n      master: m\n      addresses: [\"h:1\"]\n",
                 3, 11, "engine.redis.host", "not used with sentinel", NULL);
}
END_TEST

/* engine.redis.shards: the servers in order, each by host and port, a
 * UNIX socket or a sentinel master, user, password and db defaulting to
 * engine.redis's; the single-server form is one server. */
START_TEST(test_shards)
{
    const wsh_conf_redis_server_t *v;
    wsh_conf_t *cf;
    loaded_t ld;

    cf = load_text("engine:\n  type: redis\n  redis:\n    password: pw\n"
                   "    db: 3\n    shards:\n"
                   "      - host: 10.0.0.1\n"
                   "      - host: 10.0.0.2\n        port: 6380\n"
                   "        password: other\n        db: 0\n"
                   "      - unix_socket: /run/r.sock\n"
                   "      - sentinel:\n          master: m\n"
                   "          addresses: [\"10.0.0.3:26379\"]\n", &ld);
    ck_assert_msg(cf != NULL, "%s", ld.err);
    ck_assert(cf->engine.sharded);
    ck_assert_uint_eq(cf->engine.nservers, 4);
    v = cf->engine.servers;
    ck_assert_str_eq(v[0].host, "10.0.0.1");
    ck_assert_uint_eq(v[0].port, 6379);
    ck_assert_str_eq(v[0].password, "pw");
    ck_assert_uint_eq(v[0].db, 3);
    ck_assert_str_eq(v[1].host, "10.0.0.2");
    ck_assert_uint_eq(v[1].port, 6380);
    ck_assert_str_eq(v[1].password, "other");
    ck_assert_uint_eq(v[1].db, 0);
    ck_assert_str_eq(v[2].unix_socket, "/run/r.sock");
    ck_assert_str_eq(v[3].sentinel_master, "m");
    ck_assert_uint_eq(v[3].nsentinels, 1);
    ck_assert_uint_eq(v[3].sentinels[0].port, 26379);
    ck_assert_ptr_null(v[0].sentinel_master);
    wsh_conf_free(cf);

    cf = load_text("engine:\n  type: redis\n  redis:\n    port: 6390\n",
                   &ld);
    ck_assert_msg(cf != NULL, "%s", ld.err);
    ck_assert(!cf->engine.sharded);
    ck_assert_uint_eq(cf->engine.nservers, 1);
    ck_assert_str_eq(cf->engine.servers[0].host, "127.0.0.1");
    ck_assert_uint_eq(cf->engine.servers[0].port, 6390);
    wsh_conf_free(cf);

    expect_error("engine:\n  redis:\n    host: 10.0.0.9\n    shards:\n"
                 "      - host: h\n", 3, 11, "engine.redis.host",
                 "not used with shards", "move it into a shard", NULL);
    expect_error("engine:\n  redis:\n    sentinel:\n      master: m\n"
                 "      addresses: [\"h:1\"]\n    shards:\n"
                 "      - host: h\n", 4, 7, "engine.redis.sentinel",
                 "not used with shards", NULL);
    expect_error("engine:\n  redis:\n    shards:\n      - port: 6380\n",
                 4, 9, "engine.redis.shards[0]", "name the server", NULL);
    expect_error("engine:\n  redis:\n    shards:\n      - host: a\n"
                 "      - host: b\n        unix_socket: /s\n", 6, 22,
                 "engine.redis.shards[1].unix_socket", "not used with host",
                 NULL);
    expect_error("engine:\n  redis:\n    shards:\n      - host: a\n"
                 "      - host: b\n      - host: a\n        port: 6379\n",
                 6, 9, "engine.redis.shards[2]",
                 "the same server as engine.redis.shards[0]", NULL);
    expect_error("engine:\n  redis:\n    shards:\n      - host: a\n"
                 "        port: 0\n", 5, 15, "engine.redis.shards[0].port",
                 "from 1 to 65535", NULL);
    expect_error("engine:\n  redis:\n    shards: []\n", 3, 13,
                 "engine.redis.shards", "at least 1", NULL);
    expect_error("engine:\n  redis:\n    shards:\n"
                 "      - sentinel:\n          master: m\n"
                 "          addresses: [\"h:1\"]\n        port: 1\n",
                 7, 15, "engine.redis.shards[0].port",
                 "not used with sentinel", NULL);
}
END_TEST

START_TEST(test_error_bad_duration)
{
    expect_error("daemon: off\n"
                 "listen: [\"127.0.0.1:9000\"]\n"
                 "ping_period: 5x\n", 3, 14,
                 "ping_period", "invalid duration \"5x\"", NULL);
    expect_error("close_timeout:   -1s\n", 1, 18, "close_timeout",
                 "\"-1s\"", NULL);
    expect_error("handshake_timeout: 0\n", 1, 20, "handshake_timeout",
                 "too short", NULL);
}
END_TEST

START_TEST(test_error_bad_size)
{
    expect_error("max_message_size: 12q\n", 1, 19, "max_message_size",
                 "invalid size \"12q\"", NULL);
    expect_error("endpoints:\n"
                 "  - path: /a\n"
                 "    module: echo\n"
                 "    max_message_size: 1kk\n", 4, 23,
                 "endpoints[0].max_message_size", "\"1kk\"", NULL);
    expect_error("max_header_size: 100\n", 1, 18, "max_header_size",
                 "out of range", NULL);
}
END_TEST

START_TEST(test_error_pong_wait)
{
    expect_error("ping_period: 60s\n"
                 "pong_wait: 60s\n", 2, 12, "pong_wait", "ping_period",
                 NULL);
    expect_error("pong_wait: 30s\n", 1, 12, "pong_wait", "ping_period",
                 NULL);
}
END_TEST

START_TEST(test_error_wrong_kind)
{
    expect_error("listen: 5\n", 1, 9, "listen", "list", NULL);
    expect_error("backlog:\n"
                 "  - 5\n", 2, 3, "backlog", "single value", NULL);
    expect_error("endpoints:\n"
                 "  - /echo\n", 2, 5, "endpoints[0]", "mapping", NULL);
    expect_error("listen:\n"
                 "  - [1, 2]\n", 2, 5, "listen[0]", "single value", NULL);
    expect_error("- a\n"
                 "- b\n", 1, 1, "mapping", NULL);
}
END_TEST

START_TEST(test_error_missing_endpoint_key)
{
    expect_error("endpoints:\n"
                 "  - path: /a\n", 2, 5, "endpoints[0]",
                 "missing required key \"module\"", NULL);
    expect_error("endpoints:\n"
                 "  - path: /a\n"
                 "    module: echo\n"
                 "  - module: echo\n", 4, 5, "endpoints[1]",
                 "missing required key \"path\"", NULL);
}
END_TEST

START_TEST(test_error_yaml_syntax)
{
    expect_error("daemon: off\n"
                 "backlog: 5\n"
                 "  bad: indentation\n", 3, 6, "YAML syntax error", NULL);
    expect_error("listen: [127.0.0.1:9000\n", 2, 1, "YAML syntax error",
                 NULL);
}
END_TEST

START_TEST(test_error_values)
{
    expect_error("listen:\n"
                 "  - 127.0.0.1:9000\n"
                 "  - localhost:9001\n", 3, 5, "listen[1]",
                 "\"localhost:9001\"", NULL);
    expect_error("listen:\n"
                 "  - 127.0.0.1:9000\n"
                 "  - 127.0.0.1:9000\n", 3, 5, "listen[1]", "duplicate",
                 NULL);
    expect_error("listen:\n"
                 "  - \"*:9000\"\n"
                 "  - 0.0.0.0:9000\n", 3, 5, "listen[1]", "duplicate",
                 NULL);
    expect_error("worker_processes: 0\n", 1, 19, "worker_processes", NULL);
    expect_error("daemon: maybe\n", 1, 9, "daemon", "\"maybe\"", NULL);
    expect_error("log_level: loud\n", 1, 12, "log_level", "\"loud\"", NULL);
    expect_error("endpoints:\n"
                 "  - path: echo\n"
                 "    module: echo\n", 2, 11, "endpoints[0].path", NULL);
    expect_error("endpoints:\n"
                 "  - path: /a\n"
                 "    module: echo\n"
                 "  - path: /a\n"
                 "    module: echo\n", 4, 11, "endpoints[1].path",
                 "duplicate", NULL);
}
END_TEST

/* The auth_jwt module's section of CF. */
static const wsh_conf_auth_jwt_t *
jwt_conf(const wsh_conf_t *cf)
{
    return wsh_conf_section(cf, wsh_module_find("auth_jwt"));
}

/* An auth_jwt section with the least it needs. */
static const char conf_jwt[] =
    "auth_jwt:\n"
    "  algorithm: HS256\n"
    "  secret: 0123456789abcdef0123456789abcdef\n";

START_TEST(test_auth_jwt_require_exp)
{
    const char *base = conf_jwt;
    char text[256];
    wsh_conf_t *cf;
    loaded_t ld;

    /* On unless turned off (issue 19), and off only when the section
     * says so. */
    cf = load_text(base, &ld);
    ck_assert_msg(cf != NULL, "%s", ld.err);
    ck_assert(jwt_conf(cf)->require_exp);
    wsh_conf_free(cf);
    snprintf(text, sizeof(text), "%s  require_exp: off\n", base);
    cf = load_text(text, &ld);
    ck_assert_msg(cf != NULL, "%s", ld.err);
    ck_assert(!jwt_conf(cf)->require_exp);
    wsh_conf_free(cf);
    snprintf(text, sizeof(text), "%s  require_exp: sometimes\n", base);
    expect_error(text, 4, 16, "auth_jwt.require_exp", "\"sometimes\"",
                 NULL);
}
END_TEST

START_TEST(test_allow_list)
{
    struct sockaddr_in sin = { .sin_family = AF_INET };
    struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
    wsh_endpoint_t ep = { 0 };
    wsh_cidr_t cidr[3];

    ck_assert_int_eq(wsh_conf_parse_cidr("10.1.0.0/16", &cidr[0]), WSH_OK);
    ck_assert_int_eq(cidr[0].bits, 16);
    ck_assert_int_eq(wsh_conf_parse_cidr("fd00::/7", &cidr[1]), WSH_OK);
    ck_assert_int_eq(wsh_conf_parse_cidr("192.0.2.1", &cidr[2]), WSH_OK);
    ck_assert_int_eq(cidr[2].bits, 32);
    ck_assert_int_eq(wsh_conf_parse_cidr("10.0.0.0/33", &cidr[0]), WSH_ERROR);
    ck_assert_int_eq(wsh_conf_parse_cidr("10.0.0.0/", &cidr[0]), WSH_ERROR);
    ck_assert_int_eq(wsh_conf_parse_cidr("10.0.0.0/-1", &cidr[0]),
                     WSH_ERROR);
    ck_assert_int_eq(wsh_conf_parse_cidr("::1/129", &cidr[0]), WSH_ERROR);
    ck_assert_int_eq(wsh_conf_parse_cidr("localhost", &cidr[0]), WSH_ERROR);
    ck_assert_int_eq(wsh_conf_parse_cidr("", &cidr[0]), WSH_ERROR);

    ck_assert(wsh_conf_allowed(&ep, (struct sockaddr *) &sin));
    wsh_conf_parse_cidr("10.1.0.0/16", &cidr[0]);
    ep.allow = cidr;
    ep.nallow = 3;
    inet_pton(AF_INET, "10.1.255.7", &sin.sin_addr);
    ck_assert(wsh_conf_allowed(&ep, (struct sockaddr *) &sin));
    inet_pton(AF_INET, "10.2.0.1", &sin.sin_addr);
    ck_assert(!wsh_conf_allowed(&ep, (struct sockaddr *) &sin));
    inet_pton(AF_INET, "192.0.2.1", &sin.sin_addr);
    ck_assert(wsh_conf_allowed(&ep, (struct sockaddr *) &sin));
    inet_pton(AF_INET, "192.0.2.2", &sin.sin_addr);
    ck_assert(!wsh_conf_allowed(&ep, (struct sockaddr *) &sin));
    inet_pton(AF_INET6, "fdab::1", &sin6.sin6_addr);
    ck_assert(wsh_conf_allowed(&ep, (struct sockaddr *) &sin6));
    inet_pton(AF_INET6, "fe80::1", &sin6.sin6_addr);
    ck_assert(!wsh_conf_allowed(&ep, (struct sockaddr *) &sin6));
    /* An IPv4 client on a dual-stack socket matches IPv4 entries. */
    inet_pton(AF_INET6, "::ffff:10.1.2.3", &sin6.sin6_addr);
    ck_assert(wsh_conf_allowed(&ep, (struct sockaddr *) &sin6));

    expect_error("endpoints:\n"
                 "  - path: /metrics\n"
                 "    module: metrics\n"
                 "    allow: [127.0.0.1, 10.0.0.0/40]\n", 4, 24,
                 "endpoints[0].allow[1]", "\"10.0.0.0/40\"", NULL);
}
END_TEST

/* limits: defaults, values, and errors at the offending value. */
START_TEST(test_limits)
{
    wsh_conf_t *cf;
    loaded_t ld;

    cf = load_text("", &ld);
    ck_assert_ptr_nonnull(cf);
    ck_assert_uint_eq(cf->limits.per_ip_connections, 0);
    ck_assert_uint_eq(cf->limits.per_ip_handshake_rate, 0);
    ck_assert_uint_eq(cf->limits.max_connections_total, 0);
    ck_assert_uint_eq(cf->limits.max_fragments, 0);
    ck_assert_uint_eq(cf->limits.worker_send_buffer, (size_t) 256 << 20);
    wsh_conf_free(cf);

    cf = load_text("limits:\n  per_ip_connections: 10\n"
                   "  per_ip_handshake_rate: 5\n  max_fragments: 2048\n"
                   "  worker_send_buffer: 0\n", &ld);
    ck_assert_msg(cf != NULL, "%s", ld.err);
    ck_assert_uint_eq(cf->limits.per_ip_connections, 10);
    ck_assert_uint_eq(cf->limits.per_ip_handshake_burst, 10);
    ck_assert_uint_eq(cf->limits.max_fragments, 2048);
    ck_assert_uint_eq(cf->limits.worker_send_buffer, 0);
    wsh_conf_free(cf);

    expect_error("limits:\n  per_ip_handshake_burst: 5\n", 2, 27,
                 "limits.per_ip_handshake_burst",
                 "needs limits.per_ip_handshake_rate", NULL);
    expect_error("limits:\n  max_fragments: many\n", 2, 18,
                 "limits.max_fragments", NULL);
    expect_error("limits:\n  worker_send_buffer: 1x\n", 2, 23,
                 "limits.worker_send_buffer", NULL);
    expect_error("limits:\n  per_ip_conections: 5\n", 2, 3,
                 "per_ip_conections", NULL);
}
END_TEST

/* An empty list is an error too, reported where the list is. */
START_TEST(test_error_empty_list)
{
    expect_error("daemon: off\n"
                 "listen: []\n", 2, 9, "listen", NULL);
    expect_error("daemon: off\n"
                 "backlog: 5\n"
                 "endpoints: []\n", 3, 12, "endpoints", NULL);
}
END_TEST

START_TEST(test_error_missing_file)
{
    char err[WSH_CONF_ERR_MAX];

    ck_assert_ptr_null(wsh_conf_load("/nonexistent/wshub.yaml", err,
                                     sizeof(err)));
    ck_assert_msg(strncmp(err, "/nonexistent/wshub.yaml:", 24) == 0, "%s",
                  err);
}
END_TEST

/* Keys that take a place or a name, or a boolean word: every spelling
 * of off turns them off (v0.1's access_log: false wrote to a file named
 * "false"), a word for on is an error saying what to give, and
 * error_log, which cannot be off, refuses them all. */
START_TEST(test_bool_words_of_string_keys)
{
    static const char *const off[] = { "off", "false", "no" };
    static const char *const on[] = { "on", "true", "yes" };
    const char *jwt = conf_jwt;
    char text[256];
    wsh_conf_t *cf;
    loaded_t ld;
    size_t i;

    for (i = 0; i < wsh_nelems(off); i++) {
        snprintf(text, sizeof(text), "access_log: %s\n", off[i]);
        cf = load_text(text, &ld);
        ck_assert_msg(cf != NULL, "%s: %s", off[i], ld.err);
        ck_assert_ptr_null(cf->access_log);
        wsh_conf_free(cf);

        snprintf(text, sizeof(text), "%s  query_param: %s\n", jwt, off[i]);
        cf = load_text(text, &ld);
        ck_assert_msg(cf != NULL, "%s: %s", off[i], ld.err);
        ck_assert_ptr_null(jwt_conf(cf)->query_param);
        wsh_conf_free(cf);

        snprintf(text, sizeof(text), "error_log: %s\n", off[i]);
        expect_error(text, 1, 12, "error_log", "stderr or a file", NULL);
    }
    for (i = 0; i < wsh_nelems(on); i++) {
        snprintf(text, sizeof(text), "access_log: %s\n", on[i]);
        expect_error(text, 1, 13, "access_log", "off, stderr or a file",
                     NULL);
        snprintf(text, sizeof(text), "%s  query_param: %s\n", jwt, on[i]);
        expect_error(text, 4, 16, "auth_jwt.query_param",
                     "the parameter's name", NULL);
        snprintf(text, sizeof(text), "error_log: %s\n", on[i]);
        expect_error(text, 1, 12, "error_log", "stderr or a file", NULL);
    }
}
END_TEST

/* A module's ALIAS field: the old name sets the new key (with a notice)
 * unless the new one is set too, which is an error naming both. */
START_TEST(test_alias_keys)
{
    wsh_conf_t *cf;
    loaded_t ld;

    cf = load_text("hub:\n  slow_consumer: drop\n"
                   "  idempotency_window: 10s\n", &ld);
    ck_assert_msg(cf != NULL, "%s", ld.err);
    ck_assert(cf->slow_consumer_drop);
    ck_assert_uint_eq(cf->engine.idempotency_window, 10000);
    wsh_conf_free(cf);
    cf = load_text("slow_consumer: drop\nengine:\n"
                   "  idempotency_window: 2s\n", &ld);
    ck_assert_msg(cf != NULL, "%s", ld.err);
    ck_assert(cf->slow_consumer_drop);
    ck_assert_uint_eq(cf->engine.idempotency_window, 2000);
    wsh_conf_free(cf);
    expect_error("slow_consumer: close\nhub:\n  slow_consumer: drop\n", 3,
                 18, "hub.slow_consumer", "old name of slow_consumer",
                 "remove this one", NULL);
    expect_error("hub:\n  slow_consumer: sometimes\n", 2, 18,
                 "slow_consumer", "\"sometimes\" is not close or drop", NULL);
    expect_error("hub:\n  history:\n    - size: 3\n", 3, 7,
                 "hub.history[0]", "missing required key \"rooms\"", NULL);
    expect_error("hub:\n  history:\n    - rooms: \"a*b\"\n", 3, 14,
                 "hub.history[0].rooms", "\"a*b\" is not a room name", NULL);
    expect_error("hub:\n  history:\n    - rooms: x\n      size: 0\n", 4,
                 13, "hub.history[0].size", "from 1 to 1000000", NULL);
}
END_TEST

static Suite *
conf_suite(void)
{
    Suite *s = suite_create("conf");
    TCase *values = tcase_create("values");
    TCase *load = tcase_create("load");

    tcase_add_test(values, test_parse_size);
    tcase_add_test(values, test_parse_msec);
    tcase_add_test(values, test_parse_listen);
    suite_add_tcase(s, values);

    tcase_add_test(load, test_load_shipped);
    tcase_add_test(load, test_load_empty);
    tcase_add_test(load, test_bool_words_of_string_keys);
    tcase_add_test(load, test_alias_keys);
    tcase_add_test(load, test_load_full);
    tcase_add_test(load, test_error_unknown_key);
    tcase_add_test(load, test_error_unknown_key_no_hint);
    tcase_add_test(load, test_error_duplicate_key);
    tcase_add_test(load, test_error_unknown_module);
    tcase_add_test(load, test_error_engine);
    tcase_add_test(load, test_sentinel);
    tcase_add_test(load, test_shards);
    tcase_add_test(load, test_error_bad_duration);
    tcase_add_test(load, test_error_bad_size);
    tcase_add_test(load, test_error_pong_wait);
    tcase_add_test(load, test_error_wrong_kind);
    tcase_add_test(load, test_error_missing_endpoint_key);
    tcase_add_test(load, test_error_yaml_syntax);
    tcase_add_test(load, test_error_values);
    tcase_add_test(load, test_limits);
    tcase_add_test(load, test_error_empty_list);
    tcase_add_test(load, test_allow_list);
    tcase_add_test(load, test_auth_jwt_require_exp);
    tcase_add_test(load, test_error_missing_file);
    suite_add_tcase(s, load);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(conf_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
