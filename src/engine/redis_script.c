/* redis_script.c -- the Lua scripts of the Redis engine's presence,
 * and how they are called.
 *
 * They run by EVALSHA (SHA-1 computed here, SCRIPT LOAD on connect); a
 * NOSCRIPT reply (SCRIPT FLUSH, a fail-over) resends the same call as
 * EVAL, which caches the script again. redis_presence.c says what they
 * are for.
 */
#include "engine/redis.h"
#include "core/log.h"

#include <openssl/evp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Shared head of the scripts: NOW from Redis TIME (one clock for all
 * hosts) and the id of an entry "ID\tNODE/PID". */
#define REDIS_LUA_HEAD \
    "local t = redis.call('TIME')\n" \
    "local now = t[1] * 1000 + math.floor(t[2] / 1000)\n" \
    "local function idof(e) return string.match(e, '^([^\\t]*)') end\n"

/* Presence is two keys per room (redis_presence.c): KEYS[1], the
 * sorted set of entries "ID\tNODE/PID" scored by their expiry, and
 * KEYS[2], the hash of the room's ids, each with its number of entries.
 * Every script that adds or removes an entry keeps the hash in step, so
 * a room's count is HLEN and no script walks the room: a join, a leave
 * and a refresh cost O(1) whatever the room's size (the member list
 * given while a room is within list_max is at most that long). The hash
 * may count an id whose entries expired until a refresh sweeps them
 * (presence_ttl / 3). */

/* Join. ARGV: entry, id, channel, joined event, ttl, list_max,
 * announce_max. Adds the entry and returns {count, ids...}: the room's
 * number of ids (the joiner's included), and the ids themselves while
 * that is within list_max; announces the id unless it was present
 * already or the room is past announce_max. */
static const char redis_lua_join[] = REDIS_LUA_HEAD
    "local ttl = tonumber(ARGV[5])\n"
    "if redis.call('ZADD', KEYS[1], now + ttl, ARGV[1]) == 1\n"
    "   and redis.call('HINCRBY', KEYS[2], ARGV[2], 1) == 1\n"
    "   and redis.call('HLEN', KEYS[2]) <= tonumber(ARGV[7]) then\n"
    "  redis.call('PUBLISH', ARGV[3], ARGV[4])\n"
    "end\n"
    "redis.call('PEXPIRE', KEYS[1], 2 * ttl)\n"
    "redis.call('PEXPIRE', KEYS[2], 2 * ttl)\n"
    "local n = redis.call('HLEN', KEYS[2])\n"
    "if n > tonumber(ARGV[6]) then return {n} end\n"
    "local out = redis.call('HKEYS', KEYS[2])\n"
    "table.insert(out, 1, n)\n"
    "return out\n";

/* Leave. ARGV: entry, id, channel, left event, announce_max. Announces
 * the id when its last entry goes, while the room (before the leave) is
 * within announce_max. */
static const char redis_lua_leave[] = REDIS_LUA_HEAD
    "if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end\n"
    "local n = redis.call('HLEN', KEYS[2])\n"
    "if redis.call('HINCRBY', KEYS[2], ARGV[2], -1) > 0 then return 0 end\n"
    "redis.call('HDEL', KEYS[2], ARGV[2])\n"
    "if n <= tonumber(ARGV[5]) then\n"
    "  redis.call('PUBLISH', ARGV[3], ARGV[4])\n"
    "end\n"
    "return 1\n";

/* Who. ARGV: cursor, limit (0: the count alone). Returns {next cursor,
 * count, ids...}: a page of the room's ids by HSCAN (each id once, on
 * however many workers it is). */
static const char redis_lua_who[] = REDIS_LUA_HEAD
    "local n = redis.call('HLEN', KEYS[2])\n"
    "if tonumber(ARGV[2]) == 0 then return {'0', n} end\n"
    "local r = redis.call('HSCAN', KEYS[2], ARGV[1], 'COUNT',\n"
    "                     math.max(1, tonumber(ARGV[2]) - 16))\n"
    "local out = {r[1], n}\n"
    "for i = 1, #r[2], 2 do out[#out + 1] = r[2][i] end\n"
    "return out\n";

/* Sync: refresh, sweep and (on reconnect) resync. ARGV: ttl, channel,
 * "J" event prefix, "L" event prefix, "\tNODE/PID" (empty: no resync),
 * NJ, NL, announce_max, NJ ids joined and NL ids left while we were cut
 * off, then this worker's entries. Re-scores our entries (putting back
 * those a restarted Redis lost); on a resync drops our entries not
 * listed (their leave was lost; the only walk of the room, once per
 * reconnect); removes the expired ones. While the room is within
 * announce_max it announces each joined id that only we hold, and each
 * left or expired id with no entry left, once, and returns {count,
 * ids...}; past it {count}. */
static const char redis_lua_sync[] = REDIS_LUA_HEAD
    "local ttl, nj, nl = tonumber(ARGV[1]), tonumber(ARGV[6]),\n"
    "                    tonumber(ARGV[7])\n"
    "local first = 9 + nj + nl\n"
    "local mine, gone, sfx = {}, {}, ARGV[5]\n"
    "local function drop(e)\n"
    "  local id = idof(e)\n"
    "  if redis.call('HINCRBY', KEYS[2], id, -1) <= 0 then\n"
    "    redis.call('HDEL', KEYS[2], id)\n"
    "    gone[#gone + 1] = id\n"
    "  end\n"
    "end\n"
    "for i = first, #ARGV do mine[ARGV[i]] = true end\n"
    "if sfx ~= '' then\n"
    "  for _, e in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do\n"
    "    if not mine[e] and string.sub(e, -#sfx) == sfx then\n"
    "      redis.call('ZREM', KEYS[1], e)\n"
    "      drop(e)\n"
    "    end\n"
    "  end\n"
    "end\n"
    "for i = first, #ARGV do\n"
    "  if redis.call('ZADD', KEYS[1], now + ttl, ARGV[i]) == 1 then\n"
    "    redis.call('HINCRBY', KEYS[2], idof(ARGV[i]), 1)\n"
    "  end\n"
    "end\n"
    "for _, e in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do\n"
    "  redis.call('ZREM', KEYS[1], e)\n"
    "  drop(e)\n"
    "end\n"
    "redis.call('PEXPIRE', KEYS[1], 2 * ttl)\n"
    "redis.call('PEXPIRE', KEYS[2], 2 * ttl)\n"
    "local n = redis.call('HLEN', KEYS[2])\n"
    "if n > tonumber(ARGV[8]) then return {n} end\n"
    "for i = 9, 8 + nj do\n"
    "  if tonumber(redis.call('HGET', KEYS[2], ARGV[i]) or '0') == 1 then\n"
    "    redis.call('PUBLISH', ARGV[2], ARGV[3] .. ARGV[i])\n"
    "  end\n"
    "end\n"
    "local told = {}\n"
    "local function tell(id)\n"
    "  if not told[id] and redis.call('HEXISTS', KEYS[2], id) == 0 then\n"
    "    told[id] = true\n"
    "    redis.call('PUBLISH', ARGV[2], ARGV[4] .. id)\n"
    "  end\n"
    "end\n"
    "for i = 9 + nj, first - 1 do tell(ARGV[i]) end\n"
    "for _, id in ipairs(gone) do tell(id) end\n"
    "local out = redis.call('HKEYS', KEYS[2])\n"
    "table.insert(out, 1, n)\n"
    "return out\n";

/* History publish (redis_history.c). KEYS[1]: the room's key base; ARGV:
 * size, ttl (ms), channel, publish prefix, message (as published, of
 * any format), idempotency key ('': none), its window (ms). A key seen
 * within its window returns the first {offset, epoch, 1} and publishes
 * nothing. Otherwise the next offset (a new epoch, Redis TIME in hex,
 * when the history starts or was lost); the message is kept as is as
 * "MSEC MESSAGE" in the list (its offset follows from its place) and
 * published after the prefix as "OFFSET EPOCH\n" MESSAGE. Returns
 * {offset, epoch, 0}. */
static const char redis_lua_hpub[] = REDIS_LUA_HEAD
    "local sk, ek, lk = KEYS[1] .. ':s', KEYS[1] .. ':e', KEYS[1] .. ':l'\n"
    "local dk = KEYS[1] .. ':k:' .. ARGV[6]\n"
    "if ARGV[6] ~= '' then\n"
    "  local seen = redis.call('GET', dk)\n"
    "  if seen then\n"
    "    local sp = string.find(seen, ' ', 1, true)\n"
    "    return {tonumber(string.sub(seen, 1, sp - 1)),\n"
    "            string.sub(seen, sp + 1), 1}\n"
    "  end\n"
    "end\n"
    "local epoch = redis.call('GET', ek)\n"
    "if not epoch or not redis.call('GET', sk) then\n"
    "  epoch = string.format('%08x%08x', tonumber(t[1]), tonumber(t[2]))\n"
    "  redis.call('SET', ek, epoch)\n"
    "  redis.call('SET', sk, 0)\n"
    "  redis.call('DEL', lk)\n"
    "end\n"
    "local seq = redis.call('INCR', sk)\n"
    "redis.call('RPUSH', lk, now .. ' ' .. ARGV[5])\n"
    "redis.call('LTRIM', lk, -tonumber(ARGV[1]), -1)\n"
    "for _, k in ipairs({sk, ek, lk}) do\n"
    "  redis.call('PEXPIRE', k, ARGV[2])\n"
    "end\n"
    "redis.call('PUBLISH', ARGV[3], ARGV[4] .. seq .. ' ' .. epoch .. '\\n'\n"
    "           .. ARGV[5])\n"
    "if ARGV[6] ~= '' then\n"
    "  redis.call('SET', dk, seq .. ' ' .. epoch, 'PX', ARGV[7])\n"
    "end\n"
    "return {seq, epoch, 0}\n";

/* Publish with an idempotency key (redis_history.c), for topics without
 * history. KEYS[1]: the key, ARGV: its window (ms), channel, message.
 * A key seen within its window returns {first receivers, 1} and
 * publishes nothing; else {receivers, 0}. */
static const char redis_lua_kpub[] =
    "local seen = redis.call('GET', KEYS[1])\n"
    "if seen then return {tonumber(seen), 1} end\n"
    "local n = redis.call('PUBLISH', ARGV[2], ARGV[3])\n"
    "redis.call('SET', KEYS[1], n, 'PX', ARGV[1])\n"
    "return {n, 0}\n";

/* History read (redis_history.c). KEYS[1]: the room's key base; ARGV:
 * ttl (ms), "1" with since, its offset, its epoch ('' : the current).
 * Starts the history when there is none (an epoch for the position),
 * drops entries past ttl, and returns {last offset, epoch, 1 if every
 * message after the since offset is kept (then those messages follow,
 * as published, in order: offsets since + 1, since + 2...) else 0}. */
static const char redis_lua_hread[] = REDIS_LUA_HEAD
    "local sk, ek, lk = KEYS[1] .. ':s', KEYS[1] .. ':e', KEYS[1] .. ':l'\n"
    "local epoch = redis.call('GET', ek)\n"
    "if not epoch or not redis.call('GET', sk) then\n"
    "  epoch = string.format('%08x%08x', tonumber(t[1]), tonumber(t[2]))\n"
    "  redis.call('SET', sk, 0)\n"
    "  redis.call('SET', ek, epoch)\n"
    "  redis.call('DEL', lk)\n"
    "  redis.call('PEXPIRE', sk, ARGV[1])\n"
    "  redis.call('PEXPIRE', ek, ARGV[1])\n"
    "end\n"
    "local seq = tonumber(redis.call('GET', sk) or '0')\n"
    "if ARGV[2] ~= '1' then return {seq, epoch, 0} end\n"
    "local since = tonumber(ARGV[3])\n"
    "if (ARGV[4] ~= '' and ARGV[4] ~= epoch) or since > seq then\n"
    "  return {seq, epoch, 0}\n"
    "end\n"
    "local all = redis.call('LRANGE', lk, 0, -1)\n"
    "local first, cutoff = 1, now - tonumber(ARGV[1])\n"
    "while first <= #all\n"
    "      and tonumber(string.match(all[first], '^(%d+) ')) <= cutoff do\n"
    "  first = first + 1\n"
    "end\n"
    "if first > 1 then redis.call('LTRIM', lk, first - 1, -1) end\n"
    "local oldest = seq - (#all - first + 1) + 1\n"
    "if since + 1 < oldest then return {seq, epoch, 0} end\n"
    "local out = {seq, epoch, 1}\n"
    "for i = first + (since + 1 - oldest), #all do\n"
    "  local e = all[i]\n"
    "  out[#out + 1] = string.sub(e, string.find(e, ' ', 1, true) + 1)\n"
    "end\n"
    "return out\n";

static const char *const redis_lua_text[REDIS_LUA_N] = {
    redis_lua_join, redis_lua_leave, redis_lua_sync, redis_lua_hpub,
    redis_lua_hread, redis_lua_kpub, redis_lua_who
};
/* The scripts as sent: redis_lua_text, or in cluster mode a copy with
 * SPUBLISH for PUBLISH (the channels are sharded, redis_cluster.c). */
static const char *redis_lua[REDIS_LUA_N];
static char       *redis_lua_spub[REDIS_LUA_N];
static char redis_lua_sha[REDIS_LUA_N][41];
/* How many of a script's arguments are keys (the first ones). */
static const char *const redis_lua_nkeys[REDIS_LUA_N] = {
    "2", "2", "2", "1", "1", "1", "2"
};

/* A script call, kept until its reply so that NOSCRIPT can resend it. */
typedef struct {
    redis_shard_t   *shard;
    int              script;
    bool             retried;
    bool             redirected;    /* after a MOVED or an ASK */
    redisCallbackFn *done;          /* NULL: reply ignored */
    void            *privdata;
    int              argc;
    const char     **argv;          /* the keys, then ARGV */
    size_t          *argl;
} redis_call_t;

static int redis_call_send(redis_call_t *k, bool eval);

static void
redis_call_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply *reply = r;
    redis_call_t *k = privdata;
    redis_conn_t *rc = redis_replied(ac);
    redis_shard_t *to;
    bool ask;

    /* Cluster mode: the slot moved (MOVED) or is moving (ASK): once
     * more, on its master. */
    if (rc != NULL && !redis_exiting && !k->redirected
        && (to = redis_cluster_redirected(reply, &ask)) != NULL)
    {
        k->redirected = true;
        k->shard = to;
        /* After ASKING, EVAL: the importing node may lack the script,
         * and a NOSCRIPT there would need another ASKING. */
        if (redis_call_send(k, ask) == WSH_OK) {
            return;
        }
    }
    if (rc != NULL && !redis_exiting && !k->retried && reply != NULL
        && reply->type == REDIS_REPLY_ERROR
        && strncmp(reply->str, "NOSCRIPT", 8) == 0)
    {
        k->retried = true;
        if (redis_call_send(k, true) == WSH_OK) {
            return;
        }
    }
    if (k->done != NULL) {
        k->done(ac, reply, k->privdata);
    }
    free(k);
}

static int
redis_call_send(redis_call_t *k, bool eval)
{
    const char **v = malloc((size_t) (k->argc + 3) * sizeof(*v));
    size_t *l = malloc((size_t) (k->argc + 3) * sizeof(*l));
    int rv = WSH_ERROR;

    if (v != NULL && l != NULL && redis_cmd_up(k->shard)) {
        v[0] = eval ? "EVAL" : "EVALSHA";
        v[1] = eval ? redis_lua[k->script] : redis_lua_sha[k->script];
        v[2] = redis_lua_nkeys[k->script];
        memcpy(v + 3, k->argv, (size_t) k->argc * sizeof(*v));
        memcpy(l + 3, k->argl, (size_t) k->argc * sizeof(*l));
        l[0] = strlen(v[0]);
        l[1] = strlen(v[1]);
        l[2] = strlen(v[2]);
        if (redisAsyncCommandArgv(k->shard->cmd.ac, redis_call_cb, k,
                                  k->argc + 3, v, l) == REDIS_OK)
        {
            redis_sent(&k->shard->cmd);
            rv = WSH_OK;
        }
    }
    free(v);
    free(l);
    return rv;
}

int
redis_script(redis_shard_t *s, int script, int argc,
    const char *const *argv, const size_t *argl, redisCallbackFn *done,
    void *privdata)
{
    size_t i, bytes = 0;
    redis_call_t *k;
    char *p;

    for (i = 0; i < (size_t) argc; i++) {
        bytes += argl[i];
    }
    k = malloc(sizeof(*k) + (size_t) argc * (sizeof(char *) + sizeof(size_t))
               + bytes);
    if (k == NULL) {
        return WSH_ERROR;
    }
    k->shard = s;
    k->script = script;
    k->retried = false;
    k->redirected = false;
    k->done = done;
    k->privdata = privdata;
    k->argc = argc;
    k->argv = (const char **) (k + 1);
    k->argl = (size_t *) (k->argv + argc);
    p = (char *) (k->argl + argc);
    for (i = 0; i < (size_t) argc; i++) {
        memcpy(p, argv[i], argl[i]);
        k->argv[i] = p;
        k->argl[i] = argl[i];
        p += argl[i];
    }
    if (redis_call_send(k, false) != WSH_OK) {
        free(k);
        return WSH_ERROR;
    }
    return WSH_OK;
}

static void
redis_load_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply *reply = r;

    (void) privdata;
    if (redis_replied(ac) != NULL && reply != NULL
        && reply->type == REDIS_REPLY_ERROR)
    {
        /* The scripts then go by EVAL, after a NOSCRIPT each. */
        wsh_log(WSH_LOG_ERR, "redis SCRIPT LOAD failed: %s", reply->str);
    }
}

void
redis_script_load(redis_shard_t *s)
{
    int i;

    for (i = 0; i < REDIS_LUA_N; i++) {
        if (redisAsyncCommand(s->cmd.ac, redis_load_cb, NULL,
                              "SCRIPT LOAD %s", redis_lua[i]) == REDIS_OK)
        {
            redis_sent(&s->cmd);
        }
    }
}

void
redis_script_exit(void)
{
    int s;

    for (s = 0; s < REDIS_LUA_N; s++) {
        free(redis_lua_spub[s]);
        redis_lua_spub[s] = NULL;
        redis_lua[s] = redis_lua_text[s];
    }
}

/* TEXT with "'SPUBLISH'" for each "'PUBLISH'"; NULL: no memory. */
static char *
redis_lua_sharded(const char *text)
{
    static const char from[] = "'PUBLISH'";
    char *out = malloc(2 * strlen(text) + 1), *o = out;
    const char *p = text, *q;

    if (out == NULL) {
        return NULL;
    }
    while ((q = strstr(p, from)) != NULL) {
        memcpy(o, p, (size_t) (q - p));
        o += q - p;
        memcpy(o, "'SPUBLISH'", 10);
        o += 10;
        p = q + sizeof(from) - 1;
    }
    strcpy(o, p);
    return out;
}

int
redis_script_init(void)
{
    u_char md[EVP_MAX_MD_SIZE];
    unsigned mdlen, i;
    int s;

    redis_script_exit();
    for (s = 0; s < REDIS_LUA_N; s++) {
        if (redis_clustered()) {
            redis_lua_spub[s] = redis_lua_sharded(redis_lua_text[s]);
            if (redis_lua_spub[s] == NULL) {
                wsh_log(WSH_LOG_EMERG, "out of memory for redis scripts");
                return WSH_ERROR;
            }
            redis_lua[s] = redis_lua_spub[s];
        }
        if (EVP_Digest(redis_lua[s], strlen(redis_lua[s]), md, &mdlen,
                       EVP_sha1(), NULL) != 1 || mdlen != 20)
        {
            wsh_log(WSH_LOG_EMERG, "SHA-1 of a redis script failed");
            return WSH_ERROR;
        }
        for (i = 0; i < mdlen; i++) {
            sprintf(redis_lua_sha[s] + 2 * i, "%02x", md[i]);
        }
    }
    return WSH_OK;
}
