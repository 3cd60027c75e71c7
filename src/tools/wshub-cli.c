/* wshub-cli.c -- wshub-cli, the interactive terminal client of wshub.
 *
 * Like wscat, plus the hub protocol of wshub-protocol(7): it connects to
 * a ws:// or wss:// URL through the tools' WebSocket client (client.h),
 * reads lines with libedit's readline-compatible callback interface,
 * driven by a libevent read event on stdin so that messages from the hub
 * are printed (above the prompt) while the user types, and turns /commands
 * and plain lines into hub requests. When the connection drops it
 * reconnects with capped, jittered exponential back-off and rejoins every
 * room it had joined. With -e it is a filter for scripts: lines in, every
 * received message out as one JSON line, nothing else on stdout.
 */
#include "core/core.h"
#include "wshub.h"
#include "tools/client.h"
#include "ws/frame.h"

#include <errno.h>
#include <getopt.h>
#include <locale.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <editline/readline.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <jansson.h>

#define CLI_BACKOFF_MIN_MS  250     /* first reconnection delay */
#define CLI_BACKOFF_MAX_MS  10000   /* the delay doubles up to this */
#define CLI_STABLE_MS       10000   /* open this long: back-off starts over */
#define CLI_CLOSE_WAIT_MS   3000    /* bound on the closing handshake */
#define CLI_DRAIN_MS        500     /* -e: wait for replies after input */
#define CLI_SEND_HIGH       (1 << 20)   /* pause input above this backlog */
#define CLI_ID_MAX          64
#define CLI_MAX_ROOMS       1024
#define CLI_MEMBERS_SHOWN   20
#define CLI_HISTORY_SIZE    1000

enum {
    CLI_SAY_MSG,        /* a message from someone */
    CLI_SAY_EVENT,      /* "* ..." something happened */
    CLI_SAY_ERROR       /* "! ..." something went wrong */
};

typedef enum {
    CLI_IDLE,           /* not connected; maybe waiting to reconnect */
    CLI_CONNECTING,     /* TCP, TLS or the opening handshake under way */
    CLI_OPEN,
    CLI_CLOSING         /* we started the closing handshake, to exit */
} cli_state_e;

typedef struct {
    char        name[WSH_ROOM_MAX + 1];
    bool        confirmed;      /* room_joined seen on this connection */
    bool        has_since;      /* rejoin with since: {offset, epoch} */
    json_int_t  offset;
    char        epoch[128];
} cli_room_t;

typedef struct {
    struct event_base  *base;
    const char         *url_text;
    wsh_url_t           url;
    SSL_CTX            *ssl_ctx;
    char               *headers;        /* -H lines, each ending in CRLF */
    wsh_client_t       *cl;
    cli_state_e         state;

    bool                script;         /* -e */
    bool                readline;       /* libedit on a terminal */
    bool                color;
    bool                reconnect;      /* not --no-reconnect */
    int                 retries;        /* -1: unlimited */
    wsh_msec_t          drain_ms;

    int                 failures;       /* attempts in a row never open */
    int                 level;          /* back-off exponent */
    int                 hint_ms;        /* server_shutdown's, or -1 */
    bool                ever_open;
    wsh_msec_t          opened_at;
    wsh_msec_t          ping_sent;

    char                id[CLI_ID_MAX + 1];
    cli_room_t         *rooms;          /* joined or being joined */
    size_t              nrooms;
    cli_room_t         *seeds;          /* --since, until the first /join */
    size_t              nseeds;
    char                current[WSH_ROOM_MAX + 1];
    char                prompt[WSH_ROOM_MAX + 8];

    struct event       *stdin_ev;
    struct event       *retry_ev;
    struct event       *drain_ev;
    struct event       *exit_ev;
    struct event       *pump_ev;
    struct event       *sig_ev[4];
    struct evbuffer    *in;             /* plain input not yet in lines */
    bool                stdin_on;
    bool                in_eof;
    bool                draining;
    bool                quitting;
    bool                in_handler;     /* inside libedit's line callback */
    bool                rl_on;          /* the callback is installed */
    bool                line_done;      /* the callback got a line */
    int                 status;         /* exit status */
    char               *histfile;
} cli_t;

/* libedit's line callback takes no argument. */
static cli_t *cli_self;

static void cli_connect(cli_t *cli);
static void cli_quit(cli_t *cli, int status);
static void cli_pump(cli_t *cli);

static const char cli_commands_help[] =
    "Commands:\n"
    "  /join ROOM         join ROOM and make it the current room\n"
    "  /leave [ROOM]      leave ROOM (default: the current room)\n"
    "  /to ID MESSAGE     private message to client ID\n"
    "  /all MESSAGE       broadcast to every connected client\n"
    "  /ping              ask the server for a pong (shows the round trip)\n"
    "  /raw JSON          send JSON as is\n"
    "  /rooms             list the rooms joined and the current one\n"
    "  /quit              close the connection and exit\n"
    "  /help              this list\n"
    "  any other line     a room_message to the current room\n"
    "  //text             sends \"/text\" as a message\n";

/* ---- output ----------------------------------------------------------- */

static void
cli_stamp(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    snprintf(buf, len, "%02d:%02d:%02d.%03ld", tm.tm_hour, tm.tm_min,
             tm.tm_sec, ts.tv_nsec / 1000000);
}

/* Make text from the network safe for a terminal: control characters
 * (C0, DEL and UTF-8 encoded C1) could move the cursor or change colours,
 * so they become '?', and line breaks a space. In place. */
static void
cli_sanitize(char *s)
{
    u_char *p = (u_char *) s;

    for (; *p; p++) {
        if (*p == '\n' || *p == '\r' || *p == '\t') {
            *p = ' ';
        } else if (*p < 0x20 || *p == 0x7f) {
            *p = '?';
        } else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
            p[0] = '?';
            p[1] = '?';
            p++;
        }
    }
}

/* Interactive output must not mangle the line being edited: erase the
 * prompt and the input (which may wrap over several rows) before
 * printing, and have libedit draw them again afterwards. Inside the line
 * callback libedit has already ended the line, so nothing is to do. */
static void
cli_out_begin(cli_t *cli)
{
    struct winsize ws;
    int cols = 80, rows;

    if (!cli->rl_on || cli->in_handler) {
        return;
    }
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
        cols = ws.ws_col;
    }
    rows = ((int) strlen(cli->prompt) + (rl_point > 0 ? rl_point : 0))
           / cols;
    fputs("\r", stdout);
    if (rows > 0) {
        fprintf(stdout, "\033[%dA", rows);
    }
    fputs("\033[J", stdout);
}

static void
cli_out_end(cli_t *cli)
{
    fflush(stdout);
    if (cli->rl_on && !cli->in_handler) {
        rl_forced_update_display();
    }
}

/* Print one line: time stamp, a mark for the kind, the text (made safe
 * for the terminal). Interactive output goes to stdout around the
 * prompt; with -e, stdout carries only the server's messages, so this
 * goes to stderr. */
static void
cli_say(cli_t *cli, int kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
cli_say(cli_t *cli, int kind, const char *fmt, ...)
{
    char stamp[32], *text = NULL;
    const char *on = "", *off = "", *mark = "";
    FILE *fp = cli->script ? stderr : stdout;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&text, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    cli_sanitize(text);
    cli_stamp(stamp, sizeof(stamp));
    if (kind == CLI_SAY_EVENT) {
        mark = "* ";
        if (cli->color) {
            on = "\033[36m";
            off = "\033[0m";
        }
    } else if (kind == CLI_SAY_ERROR) {
        mark = "! ";
        if (cli->color) {
            on = "\033[1;31m";
            off = "\033[0m";
        }
    }
    cli_out_begin(cli);
    fprintf(fp, "%s %s%s%s%s\n", stamp, on, mark, text, off);
    cli_out_end(cli);
    free(text);
}

/* Print a block of help text as is (no time stamp). */
static void
cli_print_block(cli_t *cli, const char *text)
{
    cli_out_begin(cli);
    fputs(text, cli->script ? stderr : stdout);
    cli_out_end(cli);
}

static void
cli_update_prompt(cli_t *cli)
{
    if (cli->current[0] != '\0') {
        snprintf(cli->prompt, sizeof(cli->prompt), "%s> ", cli->current);
    } else {
        snprintf(cli->prompt, sizeof(cli->prompt), "> ");
    }
    if (!cli->rl_on) {
        return;
    }
    /* Outside the line callback the old prompt is on the screen: erase
     * it with the old length, then draw the new one. */
    if (!cli->in_handler) {
        cli_out_begin(cli);
    }
    rl_set_prompt(cli->prompt);
    if (!cli->in_handler) {
        cli_out_end(cli);
    }
}

/* ---- rooms ------------------------------------------------------------ */

static cli_room_t *
cli_room_find(cli_room_t *rooms, size_t n, const char *name)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (strcmp(rooms[i].name, name) == 0) {
            return &rooms[i];
        }
    }
    return NULL;
}

/* Add NAME to the joined set (or return it if there); NULL when the set
 * is full or out of memory. The room's since state comes from --since. */
static cli_room_t *
cli_room_add(cli_t *cli, const char *name)
{
    cli_room_t *r, *seed, *rooms;

    r = cli_room_find(cli->rooms, cli->nrooms, name);
    if (r != NULL) {
        return r;
    }
    if (cli->nrooms == CLI_MAX_ROOMS) {
        return NULL;
    }
    rooms = realloc(cli->rooms, (cli->nrooms + 1) * sizeof(cli_room_t));
    if (rooms == NULL) {
        return NULL;
    }
    cli->rooms = rooms;
    r = &cli->rooms[cli->nrooms++];
    memset(r, 0, sizeof(*r));
    snprintf(r->name, sizeof(r->name), "%s", name);
    seed = cli_room_find(cli->seeds, cli->nseeds, name);
    if (seed != NULL) {
        r->has_since = true;
        r->offset = seed->offset;
        memcpy(r->epoch, seed->epoch, sizeof(r->epoch));
        /* A seed applies once: a later /join starts live. */
        *seed = cli->seeds[--cli->nseeds];
    }
    return r;
}

/* Remove NAME from the joined set; when it was the current room, the
 * most recently joined remaining room becomes current. */
static void
cli_room_remove(cli_t *cli, const char *name)
{
    cli_room_t *r = cli_room_find(cli->rooms, cli->nrooms, name);
    bool was_current;

    if (r == NULL) {
        return;
    }
    was_current = strcmp(cli->current, name) == 0;
    memmove(r, r + 1, (size_t) (&cli->rooms[cli->nrooms] - (r + 1))
                          * sizeof(cli_room_t));
    cli->nrooms--;
    if (was_current) {
        if (cli->nrooms > 0) {
            snprintf(cli->current, sizeof(cli->current), "%s",
                     cli->rooms[cli->nrooms - 1].name);
        } else {
            cli->current[0] = '\0';
        }
        cli_update_prompt(cli);
    }
}

/* ---- sending ---------------------------------------------------------- */

/* Send a JSON text message; takes the reference to OBJ (which may be
 * NULL after a failed json_pack: bad UTF-8 in user input). Returns WSH_OK
 * or WSH_ERROR, having said why. */
static int
cli_send_json(cli_t *cli, json_t *obj)
{
    char *text;
    int rc;

    if (obj == NULL) {
        cli_say(cli, CLI_SAY_ERROR, "not sent: the text is not valid UTF-8");
        return WSH_ERROR;
    }
    if (cli->state != CLI_OPEN) {
        json_decref(obj);
        cli_say(cli, CLI_SAY_ERROR, "not connected: not sent");
        return WSH_ERROR;
    }
    text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (text == NULL) {
        cli_say(cli, CLI_SAY_ERROR, "json_dumps() failed");
        return WSH_ERROR;
    }
    rc = wsh_client_send(cli->cl, WSH_WS_OP_TEXT, text, strlen(text));
    free(text);
    if (rc != 0) {
        cli_say(cli, CLI_SAY_ERROR, "wsh_client_send() failed");
        return WSH_ERROR;
    }
    return WSH_OK;
}

static int
cli_send_join(cli_t *cli, const cli_room_t *r)
{
    json_t *obj = json_pack("{s:s, s:s}", "type", "join_room", "room",
                            r->name);

    /* Issue 11's recovery: rejoin from the last offset seen, so a hub
     * with room history sends what was missed. Others ignore "since". */
    if (obj != NULL && r->has_since) {
        json_t *since = json_pack("{s:I}", "offset", r->offset);

        if (since != NULL && r->epoch[0] != '\0') {
            json_object_set_new(since, "epoch", json_string(r->epoch));
        }
        json_object_set_new(obj, "since", since);
    }
    return cli_send_json(cli, obj);
}

/* ---- commands --------------------------------------------------------- */

/* Split "WORD REST": returns WORD (NUL-terminated in place) and sets
 * *rest to the text after the blanks that follow it. */
static char *
cli_word(char *s, char **rest)
{
    char *w;

    while (*s == ' ' || *s == '\t') {
        s++;
    }
    w = s;
    while (*s != '\0' && *s != ' ' && *s != '\t') {
        s++;
    }
    if (*s != '\0') {
        *s++ = '\0';
        while (*s == ' ' || *s == '\t') {
            s++;
        }
    }
    *rest = s;
    return w;
}

static void
cli_cmd_join(cli_t *cli, const char *room)
{
    cli_room_t *r;

    if (!wsh_valid_room(room, strlen(room))) {
        cli_say(cli, CLI_SAY_ERROR, "usage: /join ROOM (1-%d characters of "
                "A-Z a-z 0-9 _ . : @ / -)", WSH_ROOM_MAX);
        return;
    }
    if (cli_room_find(cli->rooms, cli->nrooms, room) != NULL) {
        /* Already in: only switch, as the hub would say "Already in
         * room". */
        snprintf(cli->current, sizeof(cli->current), "%s", room);
        cli_update_prompt(cli);
        if (!cli->script) {
            cli_say(cli, CLI_SAY_EVENT, "current room: %s", room);
        }
        return;
    }
    r = cli_room_add(cli, room);
    if (r == NULL) {
        cli_say(cli, CLI_SAY_ERROR, "too many rooms");
        return;
    }
    snprintf(cli->current, sizeof(cli->current), "%s", room);
    cli_update_prompt(cli);
    if (cli->state == CLI_OPEN) {
        (void) cli_send_join(cli, r);
    } else {
        cli_say(cli, CLI_SAY_EVENT, "not connected: will join %s when "
                "connected", room);
    }
}

static void
cli_cmd_leave(cli_t *cli, const char *room)
{
    char name[WSH_ROOM_MAX + 1];

    if (*room == '\0') {
        room = cli->current;
    }
    if (*room == '\0') {
        cli_say(cli, CLI_SAY_ERROR, "usage: /leave [ROOM] (no current room)");
        return;
    }
    if (cli_room_find(cli->rooms, cli->nrooms, room) == NULL) {
        cli_say(cli, CLI_SAY_ERROR, "not in room %s", room);
        return;
    }
    snprintf(name, sizeof(name), "%s", room);
    cli_room_remove(cli, name);
    if (cli->state == CLI_OPEN) {
        (void) cli_send_json(cli, json_pack("{s:s, s:s}", "type",
                                            "leave_room", "room", name));
    } else if (!cli->script) {
        cli_say(cli, CLI_SAY_EVENT, "left %s", name);
    }
}

static void
cli_cmd_rooms(cli_t *cli)
{
    char buf[4096];
    size_t i, n = 0;

    buf[0] = '\0';
    for (i = 0; i < cli->nrooms && n < sizeof(buf); i++) {
        n += (size_t) snprintf(buf + n, sizeof(buf) - n, "%s%s%s",
                               i ? ", " : "", cli->rooms[i].name,
                               cli->rooms[i].confirmed ? "" : " (joining)");
    }
    cli_say(cli, CLI_SAY_EVENT, "rooms: %s; current: %s",
            cli->nrooms ? buf : "none",
            cli->current[0] ? cli->current : "none");
}

/* Act on one input line: a /command or a message to the current room. */
static void
cli_line(cli_t *cli, char *line)
{
    char *cmd, *rest, *arg;

    if (line[0] != '/' || line[1] == '/') {
        if (line[0] == '/') {
            line++;             /* "//text" sends "/text" */
        }
        if (line[0] == '\0') {
            return;
        }
        if (cli->current[0] == '\0') {
            cli_say(cli, CLI_SAY_ERROR, "no current room: /join ROOM first "
                    "(or /help)");
            return;
        }
        (void) cli_send_json(cli, json_pack("{s:s, s:s, s:s}", "type",
                                            "room_message", "room",
                                            cli->current, "text", line));
        return;
    }

    cmd = cli_word(line + 1, &rest);

    if (strcmp(cmd, "join") == 0) {
        arg = cli_word(rest, &rest);
        cli_cmd_join(cli, arg);

    } else if (strcmp(cmd, "leave") == 0) {
        arg = cli_word(rest, &rest);
        cli_cmd_leave(cli, arg);

    } else if (strcmp(cmd, "to") == 0 || strcmp(cmd, "msg") == 0) {
        arg = cli_word(rest, &rest);
        if (*arg == '\0' || *rest == '\0') {
            cli_say(cli, CLI_SAY_ERROR, "usage: /to ID MESSAGE");
            return;
        }
        (void) cli_send_json(cli, json_pack("{s:s, s:s, s:s}", "type",
                                            "private_message", "to", arg,
                                            "text", rest));

    } else if (strcmp(cmd, "all") == 0) {
        if (*rest == '\0') {
            cli_say(cli, CLI_SAY_ERROR, "usage: /all MESSAGE");
            return;
        }
        (void) cli_send_json(cli, json_pack("{s:s, s:s}", "type",
                                            "broadcast", "text", rest));

    } else if (strcmp(cmd, "ping") == 0) {
        if (cli_send_json(cli, json_pack("{s:s}", "type", "ping")) == WSH_OK)
        {
            cli->ping_sent = wsh_monotonic_msec();
        }

    } else if (strcmp(cmd, "raw") == 0) {
        if (*rest == '\0') {
            cli_say(cli, CLI_SAY_ERROR, "usage: /raw JSON");
            return;
        }
        if (cli->state != CLI_OPEN) {
            cli_say(cli, CLI_SAY_ERROR, "not connected: not sent");
            return;
        }
        if (wsh_client_send(cli->cl, WSH_WS_OP_TEXT, rest, strlen(rest))
            != 0)
        {
            cli_say(cli, CLI_SAY_ERROR, "wsh_client_send() failed");
        }

    } else if (strcmp(cmd, "rooms") == 0) {
        cli_cmd_rooms(cli);

    } else if (strcmp(cmd, "quit") == 0 || strcmp(cmd, "exit") == 0) {
        cli_quit(cli, 0);

    } else if (strcmp(cmd, "help") == 0 || strcmp(cmd, "?") == 0) {
        cli_print_block(cli, cli_commands_help);

    } else {
        cli_say(cli, CLI_SAY_ERROR, "unknown command /%s (try /help)", cmd);
    }
}

/* ---- incoming messages ------------------------------------------------ */

/* What to show of a relayed message: its "text" when that is a string,
 * else its other fields as compact JSON. Returns malloc'd memory (the
 * caller frees) or NULL. */
static char *
cli_body(json_t *obj)
{
    json_t *text = json_object_get(obj, "text"), *copy;
    char *s;

    if (json_is_string(text)) {
        return strdup(json_string_value(text));
    }
    copy = json_copy(obj);
    if (copy == NULL) {
        return NULL;
    }
    json_object_del(copy, "type");
    json_object_del(copy, "room");
    json_object_del(copy, "from");
    json_object_del(copy, "to");
    s = json_dumps(copy, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(copy);
    return s;
}

static const char *
cli_str(json_t *obj, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(obj, key));

    return s != NULL ? s : dflt;
}

static void
cli_show_joined(cli_t *cli, json_t *obj, const char *room)
{
    json_t *members = json_object_get(obj, "members"), *m, *rec;
    char buf[2048];
    size_t i, n = 0;

    buf[0] = '\0';
    json_array_foreach(members, i, m) {
        if (n >= sizeof(buf)) {
            break;
        }
        if (i == CLI_MEMBERS_SHOWN) {
            snprintf(buf + n, sizeof(buf) - n, ", ...");
            break;
        }
        if (json_is_string(m)) {
            n += (size_t) snprintf(buf + n, sizeof(buf) - n, "%s%s",
                                   i ? ", " : "", json_string_value(m));
        }
    }
    rec = json_object_get(obj, "recovered");
    cli_say(cli, CLI_SAY_EVENT, "joined %s (%zu member%s: %s)%s", room,
            json_array_size(members), json_array_size(members) == 1 ? "" : "s",
            buf, json_is_true(rec) ? ", missed messages recovered"
                 : json_is_false(rec) ? ", history lost: not recovered" : "");
}

/* OBJ's "offset" and "epoch" (if any) become ROOM's since state. */
static void
cli_track_offset(cli_t *cli, const char *room, json_t *obj)
{
    json_t *offset = json_object_get(obj, "offset");
    const char *epoch;
    cli_room_t *r;

    if (json_is_integer(offset) && json_integer_value(offset) >= 0
        && (r = cli_room_find(cli->rooms, cli->nrooms, room)) != NULL)
    {
        r->has_since = true;
        r->offset = json_integer_value(offset);
        epoch = cli_str(obj, "epoch", NULL);
        if (epoch != NULL) {
            snprintf(r->epoch, sizeof(r->epoch), "%s", epoch);
        }
    }
}

/* Keep what the protocol tells us whatever the output mode: our id, the
 * rooms joined, the offsets to rejoin from, the reconnection hint. */
static void
cli_track(cli_t *cli, json_t *obj, const char *type)
{
    const char *room = cli_str(obj, "room", NULL);
    cli_room_t *r;

    if (strcmp(type, "welcome") == 0) {
        snprintf(cli->id, sizeof(cli->id), "%s", cli_str(obj, "id", ""));

    } else if (strcmp(type, "room_joined") == 0 && room != NULL) {
        r = cli_room_add(cli, room);
        if (r != NULL) {
            r->confirmed = true;
        }

    } else if (strcmp(type, "room_left") == 0 && room != NULL) {
        cli_room_remove(cli, room);

    } else if (strcmp(type, "error") == 0
               && strcmp(cli_str(obj, "request", ""), "join_room") == 0
               && strcmp(cli_str(obj, "error", ""), "Already in room") != 0)
    {
        /* The error does not name the room: drop the latest join not
         * yet confirmed, so it is not retried on every reconnect. */
        size_t i = cli->nrooms;

        while (i > 0 && cli->rooms[i - 1].confirmed) {
            i--;
        }
        if (i > 0) {
            char name[WSH_ROOM_MAX + 1];

            snprintf(name, sizeof(name), "%s", cli->rooms[i - 1].name);
            cli_room_remove(cli, name);
        }

    } else if (strcmp(type, "server_shutdown") == 0) {
        json_t *ms = json_object_get(obj, "reconnect_after_ms");
        json_t *rooms = json_object_get(obj, "rooms"), *pos;
        const char *name;

        if (json_is_integer(ms) && json_integer_value(ms) >= 0
            && json_integer_value(ms) <= 600000)
        {
            cli->hint_ms = (int) json_integer_value(ms);
        }
        /* Where we stand in each room with history: rejoin from there. */
        json_object_foreach(rooms, name, pos) {
            cli_track_offset(cli, name, pos);
        }
    }

    /* Rooms with history (issue 11) number their messages. A recovered
     * room_joined names the room's last offset, but the missed messages
     * follow it: they move our offset, one by one. */
    if (room != NULL
        && !(strcmp(type, "room_joined") == 0
             && json_is_true(json_object_get(obj, "recovered"))))
    {
        cli_track_offset(cli, room, obj);
    }
}

static void
cli_show(cli_t *cli, json_t *obj, const char *type)
{
    const char *room = cli_str(obj, "room", "?");
    const char *from = cli_str(obj, "from", "?");
    char *body = NULL;

    if (strcmp(type, "room_message") == 0) {
        body = cli_body(obj);
        cli_say(cli, CLI_SAY_MSG, "[%s] %s: %s", room, from,
                body ? body : "");
    } else if (strcmp(type, "private_message") == 0) {
        body = cli_body(obj);
        cli_say(cli, CLI_SAY_MSG, "[private] %s: %s", from, body ? body : "");
    } else if (strcmp(type, "broadcast") == 0) {
        body = cli_body(obj);
        cli_say(cli, CLI_SAY_MSG, "[all] %s: %s", from, body ? body : "");
    } else if (strcmp(type, "welcome") == 0) {
        cli_say(cli, CLI_SAY_EVENT, "you are %s (%s)", cli->id,
                cli_str(obj, "message", ""));
    } else if (strcmp(type, "room_joined") == 0) {
        cli_show_joined(cli, obj, room);
    } else if (strcmp(type, "room_left") == 0) {
        cli_say(cli, CLI_SAY_EVENT, "left %s", room);
    } else if (strcmp(type, "user_joined_room") == 0) {
        cli_say(cli, CLI_SAY_EVENT, "%s joined %s",
                cli_str(obj, "userId", "?"), room);
    } else if (strcmp(type, "user_left_room") == 0) {
        cli_say(cli, CLI_SAY_EVENT, "%s left %s",
                cli_str(obj, "userId", "?"), room);
    } else if (strcmp(type, "user_joined") == 0) {
        cli_say(cli, CLI_SAY_EVENT, "%s connected", cli_str(obj, "id", "?"));
    } else if (strcmp(type, "user_left") == 0) {
        cli_say(cli, CLI_SAY_EVENT, "%s disconnected",
                cli_str(obj, "id", "?"));
    } else if (strcmp(type, "pong") == 0) {
        if (cli->ping_sent != 0) {
            cli_say(cli, CLI_SAY_EVENT, "pong (%llu ms)",
                    (unsigned long long) (wsh_monotonic_msec()
                                          - cli->ping_sent));
            cli->ping_sent = 0;
        } else {
            cli_say(cli, CLI_SAY_EVENT, "pong");
        }
    } else if (strcmp(type, "echo") == 0) {
        body = json_dumps(json_object_get(obj, "data"),
                          JSON_COMPACT | JSON_ENCODE_ANY);
        cli_say(cli, CLI_SAY_EVENT, "echo: %s", body ? body : "null");
    } else if (strcmp(type, "error") == 0) {
        const char *req = cli_str(obj, "request", NULL);

        cli_say(cli, CLI_SAY_ERROR, "error: %s%s%s%s",
                cli_str(obj, "error", "(no reason)"), req ? " (" : "",
                req ? req : "", req ? ")" : "");
    } else if (strcmp(type, "server_shutdown") == 0) {
        cli_say(cli, CLI_SAY_EVENT, "server: %s (reconnect after %d ms)",
                cli_str(obj, "message", "shutting down"), cli->hint_ms);
    } else {
        body = json_dumps(obj, JSON_COMPACT);
        cli_say(cli, CLI_SAY_MSG, "< %s", body ? body : "");
    }
    free(body);
}

/* -e: one JSON value per line on stdout. The hub's messages are compact
 * JSON already and go out byte for byte; other text is re-encoded (a
 * JSON document spread over lines) or quoted (not JSON at all) so that
 * every line stays one JSON value. */
static void
cli_emit(cli_t *cli, json_t *root, const char *data, size_t len)
{
    char *s;

    if (root != NULL && memchr(data, '\n', len) == NULL
        && memchr(data, '\r', len) == NULL)
    {
        fwrite(data, 1, len, stdout);
        fputc('\n', stdout);
    } else {
        if (root != NULL) {
            s = json_dumps(root, JSON_COMPACT | JSON_ENCODE_ANY);
        } else {
            json_t *str = json_stringn(data, len);

            s = str ? json_dumps(str, JSON_ENCODE_ANY) : NULL;
            json_decref(str);
        }
        if (s != NULL) {
            puts(s);
            free(s);
        }
    }
    /* The reader went away (wshub-cli -e ... | head): done, like a
     * filter killed by SIGPIPE, which is ignored for the sockets' sake. */
    if (fflush(stdout) == EOF || ferror(stdout)) {
        cli_quit(cli, 0);
    }
}

/* ---- connection ------------------------------------------------------- */

static void
cli_on_open(wsh_client_t *cl, void *arg)
{
    cli_t *cli = arg;
    size_t i;

    cli->state = CLI_OPEN;
    cli->failures = 0;
    cli->opened_at = wsh_monotonic_msec();
    cli_say(cli, CLI_SAY_EVENT, "%s %s", cli->ever_open ? "reconnected to"
            : "connected to", cli->url_text);
    cli->ever_open = true;

    for (i = 0; i < cli->nrooms; i++) {
        cli->rooms[i].confirmed = false;
        if (cli_send_join(cli, &cli->rooms[i]) != WSH_OK) {
            return;
        }
    }
    if (cli->nrooms > 0) {
        cli_say(cli, CLI_SAY_EVENT, "rejoining %zu room%s", cli->nrooms,
                cli->nrooms == 1 ? "" : "s");
    }
    cli_pump(cli);
}

static void
cli_on_message(wsh_client_t *cl, int opcode, const u_char *data, size_t len,
    void *arg)
{
    cli_t *cli = arg;
    json_t *root, *type;

    if (opcode != WSH_WS_OP_TEXT) {
        cli_say(cli, cli->script ? CLI_SAY_EVENT : CLI_SAY_MSG,
                "< binary message, %zu bytes", len);
        return;
    }
    root = json_loadb((const char *) data, len, 0, NULL);
    type = json_object_get(root, "type");
    if (json_is_string(type)) {
        cli_track(cli, root, json_string_value(type));
    }
    if (cli->script) {
        cli_emit(cli, root, (const char *) data, len);
    } else if (json_is_object(root) && json_is_string(type)) {
        cli_show(cli, root, json_string_value(type));
    } else if (root != NULL) {
        char *s = json_dumps(root, JSON_COMPACT | JSON_ENCODE_ANY);

        cli_say(cli, CLI_SAY_MSG, "< %s", s ? s : "");
        free(s);
    } else {
        cli_say(cli, CLI_SAY_MSG, "< %.*s", (int) len, (const char *) data);
    }
    json_decref(root);
}

/* Back-off for the next attempt: 250 ms doubling to 10 s, with "equal
 * jitter" (half fixed, half random) so that clients dropped together by
 * a restart do not all come back in the same millisecond. */
static wsh_msec_t
cli_backoff(cli_t *cli)
{
    wsh_msec_t d = CLI_BACKOFF_MIN_MS;
    int i;

    for (i = 0; i < cli->level && d < CLI_BACKOFF_MAX_MS; i++) {
        d *= 2;
    }
    if (d > CLI_BACKOFF_MAX_MS) {
        d = CLI_BACKOFF_MAX_MS;
    }
    if (cli->level < 30) {
        cli->level++;
    }
    return d / 2 + (wsh_msec_t) random() % (d / 2 + 1);
}

/* The connection is over (or never was): say so in one line, with what
 * comes next, then exit or schedule the next attempt. */
static void
cli_lost(cli_t *cli, int code, const char *reason)
{
    cli_state_e was = cli->state;
    char what[512];
    struct timeval tv;
    wsh_msec_t delay;

    cli->state = CLI_IDLE;
    if (cli->stdin_on && !cli->readline) {
        event_del(cli->stdin_ev);
        cli->stdin_on = false;
    }
    if (was == CLI_CLOSING || cli->quitting) {
        event_base_loopexit(cli->base, NULL);
        return;
    }

    if (reason == NULL || *reason == '\0') {
        reason = "connection lost";
    }
    if (was == CLI_OPEN) {
        snprintf(what, sizeof(what), "disconnected (%s)", reason);
        if (wsh_monotonic_msec() - cli->opened_at >= CLI_STABLE_MS) {
            cli->level = 0;
        }
    } else {
        cli->failures++;
        snprintf(what, sizeof(what), "cannot connect to %s (%s)",
                 cli->url_text, reason);
    }

    if (cli->draining) {
        /* -e: all input was sent already; nothing left to do. */
        cli_say(cli, CLI_SAY_EVENT, "%s", what);
        cli_quit(cli, 0);
        return;
    }
    if (!cli->reconnect) {
        cli_say(cli, CLI_SAY_ERROR, "%s; not reconnecting (--no-reconnect)",
                what);
        cli_quit(cli, 1);
        return;
    }
    if (cli->retries >= 0 && cli->failures > cli->retries) {
        cli_say(cli, CLI_SAY_ERROR, "%s; giving up after %d attempt%s", what,
                cli->failures, cli->failures == 1 ? "" : "s");
        cli_quit(cli, 1);
        return;
    }

    if (cli->hint_ms >= 0) {
        delay = (wsh_msec_t) cli->hint_ms;
        cli->hint_ms = -1;
    } else {
        delay = cli_backoff(cli);
    }
    cli_say(cli, was == CLI_OPEN ? CLI_SAY_EVENT : CLI_SAY_ERROR,
            "%s; reconnecting in %.2f s", what, delay / 1000.0);
    tv.tv_sec = (time_t) (delay / 1000);
    tv.tv_usec = (suseconds_t) (delay % 1000) * 1000;
    evtimer_add(cli->retry_ev, &tv);
}

static void
cli_on_close(wsh_client_t *cl, int code, const char *reason, void *arg)
{
    cli_t *cli = arg;
    char why[256];

    /* REASON lives in CL. */
    snprintf(why, sizeof(why), "%s", reason ? reason : "");
    if (cli->cl == cl) {
        cli->cl = NULL;
    }
    wsh_client_free(cl);
    cli_lost(cli, code, why);
}

static const wsh_client_handlers_t cli_handlers = {
    cli_on_open, cli_on_message, cli_on_close, NULL
};

static void
cli_connect(cli_t *cli)
{
    /* client.c never calls the close handler from inside this call: a
     * failure it sees at once is a NULL return. */
    cli->state = CLI_CONNECTING;
    cli->cl = wsh_client_connect(cli->base, &cli->url, cli->ssl_ctx,
                                 cli->headers, NULL, &cli_handlers, cli);
    if (cli->cl == NULL) {
        cli_lost(cli, 1006, "cannot resolve the host or start connecting");
    }
}

static void
cli_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    cli_connect(arg);
}

/* ---- exit ------------------------------------------------------------- */

static void
cli_exit_cb(evutil_socket_t fd, short what, void *arg)
{
    cli_t *cli = arg;

    event_base_loopexit(cli->base, NULL);
}

/* Stop reading, close the connection politely (the closing handshake
 * sends what is still queued first) and leave the loop, within
 * CLI_CLOSE_WAIT_MS whatever the server does. */
static void
cli_quit(cli_t *cli, int status)
{
    struct timeval tv = { CLI_CLOSE_WAIT_MS / 1000,
                          (CLI_CLOSE_WAIT_MS % 1000) * 1000 };

    if (cli->quitting) {
        return;
    }
    cli->quitting = true;
    cli->status = status;
    if (cli->stdin_on) {
        event_del(cli->stdin_ev);
        cli->stdin_on = false;
    }
    event_del(cli->retry_ev);
    event_del(cli->drain_ev);
    event_del(cli->pump_ev);
    if (cli->cl != NULL && cli->state == CLI_OPEN) {
        cli->state = CLI_CLOSING;
        wsh_client_close(cli->cl, 1000, "bye");
        evtimer_add(cli->exit_ev, &tv);
        return;
    }
    event_base_loopexit(cli->base, NULL);
}

static void
cli_drain_cb(evutil_socket_t fd, short what, void *arg)
{
    cli_t *cli = arg;

    cli_quit(cli, 0);
}

static void
cli_signal_cb(evutil_socket_t sig, short what, void *arg)
{
    cli_t *cli = arg;

    if (sig == SIGWINCH) {
        if (cli->readline) {
            rl_resize_terminal();
        }
        return;
    }
    cli_quit(cli, sig == SIGINT ? 0 : 1);
}

/* ---- input ------------------------------------------------------------ */

/* Plain input (-e, or stdin not a terminal): act on the complete lines
 * read so far, but only while connected, so a script's lines wait for
 * the connection instead of failing; stop reading while the connection
 * is down or its send queue is long. */
static void
cli_pump(cli_t *cli)
{
    struct timeval tv = { 0, 10000 };
    size_t len;
    char *line;

    if (cli->readline || cli->quitting) {
        return;
    }
    while (cli->state == CLI_OPEN && !cli->quitting) {
        if (wsh_client_pending(cli->cl) > CLI_SEND_HIGH) {
            if (cli->stdin_on) {
                event_del(cli->stdin_ev);
                cli->stdin_on = false;
            }
            evtimer_add(cli->pump_ev, &tv);
            return;
        }
        line = evbuffer_readln(cli->in, &len, EVBUFFER_EOL_LF);
        if (line == NULL && cli->in_eof && evbuffer_get_length(cli->in) > 0)
        {
            /* The last line has no newline. */
            len = evbuffer_get_length(cli->in);
            line = malloc(len + 1);
            if (line != NULL) {
                evbuffer_remove(cli->in, line, len);
                line[len] = '\0';
            }
        }
        if (line == NULL) {
            break;
        }
        if (len > 0 && line[len - 1] == '\r') {
            line[len - 1] = '\0';
        }
        cli_line(cli, line);
        free(line);
    }
    if (cli->quitting || cli->state != CLI_OPEN) {
        return;
    }
    if (cli->in_eof) {
        if (!cli->draining) {
            struct timeval dt = { (time_t) (cli->drain_ms / 1000),
                                  (suseconds_t) (cli->drain_ms % 1000)
                                      * 1000 };

            cli->draining = true;
            evtimer_add(cli->drain_ev, &dt);
        }
        return;
    }
    if (!cli->stdin_on) {
        event_add(cli->stdin_ev, NULL);
        cli->stdin_on = true;
    }
}

static void
cli_pump_cb(evutil_socket_t fd, short what, void *arg)
{
    cli_pump(arg);
}

static void
cli_stdin_plain(evutil_socket_t fd, short what, void *arg)
{
    cli_t *cli = arg;
    int n;

    n = evbuffer_read(cli->in, fd, 65536);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        return;
    }
    if (n <= 0) {
        if (n < 0) {
            cli_say(cli, CLI_SAY_ERROR, "read(stdin) failed: %s",
                    strerror(errno));
        }
        cli->in_eof = true;
        event_del(cli->stdin_ev);
        cli->stdin_on = false;
    }
    cli_pump(cli);
}

static void
cli_rl_line(char *line)
{
    cli_t *cli = cli_self;

    cli->line_done = true;
    if (line == NULL) {
        /* ^D on an empty line */
        cli_quit(cli, 0);
        return;
    }
    cli->in_handler = true;
    if (line[0] != '\0') {
        add_history(line);
    }
    cli_line(cli, line);
    cli->in_handler = false;
    free(line);
}

static void
cli_stdin_readline(evutil_socket_t fd, short what, void *arg)
{
    cli_t *cli = arg;
    int n = 0;

    /* Readable with nothing to read: the terminal is gone. libedit
     * would return nothing and the event would fire forever. */
    if (ioctl(fd, FIONREAD, &n) == 0 && n == 0) {
        cli_quit(cli, 0);
        return;
    }
    cli->line_done = false;
    rl_callback_read_char();
    if (cli->line_done && !cli->quitting) {
        /* libedit leaves character mode to call the handler and does not
         * come back: install again for the next line (raw mode, empty
         * line, a fresh prompt). */
        rl_callback_handler_install(cli->prompt, cli_rl_line);
    }
}

static void
cli_readline_start(cli_t *cli)
{
    const char *home = getenv("HOME"), *env = getenv("WSHUB_CLI_HISTFILE");

    /* Our own signal events do the work; libedit must not take SIGINT
     * or SIGWINCH away from libevent. */
    rl_catch_signals = 0;
    rl_catch_sigwinch = 0;
    rl_readline_name = "wshub-cli";
    using_history();
    stifle_history(CLI_HISTORY_SIZE);
    if (env != NULL) {
        cli->histfile = *env ? strdup(env) : NULL;
    } else if (home != NULL && *home != '\0') {
        if (asprintf(&cli->histfile, "%s/.wshub_cli_history", home) < 0) {
            cli->histfile = NULL;
        }
    }
    if (cli->histfile != NULL) {
        (void) read_history(cli->histfile);
    }
    cli_update_prompt(cli);
    rl_callback_handler_install(cli->prompt, cli_rl_line);
    cli->rl_on = true;
}

static void
cli_readline_stop(cli_t *cli)
{
    cli->rl_on = false;
    rl_callback_handler_remove();
    /* libedit left a prompt on the last line: erase it. */
    fputs("\r\033[K", stdout);
    fflush(stdout);
    if (cli->histfile != NULL) {
        (void) write_history(cli->histfile);
    }
}

/* ---- options ---------------------------------------------------------- */

static void
usage(FILE *fp)
{
    fprintf(fp,
        "Usage: wshub-cli [-ehkV] [-H header] [-r retries] [--insecure]\n"
        "                 [--no-reconnect] [--since ROOM=OFFSET[:EPOCH]]\n"
        "                 [--drain MS] URL\n"
        "\n"
        "An interactive client for wshub's hub protocol (and any WebSocket\n"
        "server): connect to URL (ws:// or wss://), type /commands or lines\n"
        "for the current room, see messages with time stamps. Reconnects\n"
        "by itself (back-off 250 ms doubling to 10 s) and rejoins its "
        "rooms.\n"
        "\n"
        "Options:\n"
        "  -e                 non-interactive, for scripts: read lines from\n"
        "                     stdin, print every received message as one\n"
        "                     JSON line on stdout; exit when stdin ends\n"
        "  -H 'Name: value'   add a header to the handshake request "
        "(repeatable)\n"
        "  -k, --insecure     wss://: do not verify the server certificate\n"
        "  --no-reconnect     exit (status 1) when the connection fails or\n"
        "                     drops instead of reconnecting\n"
        "  -r, --retries N    retry at most N times in a row, then exit\n"
        "                     with status 1 (default: no limit)\n"
        "  --since ROOM=OFFSET[:EPOCH]\n"
        "                     join ROOM from this history offset (rooms with\n"
        "                     history); repeatable\n"
        "  --drain MS         -e: wait MS for replies after the end of\n"
        "                     input (default %d)\n"
        "  -V, --version      show the version\n"
        "  -h, --help         show this help\n"
        "\n"
        "%s"
        "\n"
        "Examples:\n"
        "  wshub-cli 'ws://127.0.0.1:8080/ws?id=alice'\n"
        "    alice> /join lobby\n"
        "    lobby> hello\n"
        "  printf '/join lobby\\nhello from a script\\n' |\n"
        "    wshub-cli -e 'ws://127.0.0.1:8080/ws?id=bot'\n"
        "  wshub-cli -e --no-reconnect ws://127.0.0.1:8080/ws < /dev/null"
        " | jq .\n"
        "  wshub-cli -k -H 'Authorization: Bearer TOKEN' "
        "wss://hub.example.com/ws\n",
        CLI_DRAIN_MS, cli_commands_help);
}

static int
cli_add_header(cli_t *cli, const char *h)
{
    size_t old = cli->headers ? strlen(cli->headers) : 0, n = strlen(h);
    char *p;

    if (strchr(h, ':') == NULL || h[0] == ':' || strpbrk(h, "\r\n")) {
        fprintf(stderr, "wshub-cli: -H wants 'Name: value', not \"%s\"\n",
                h);
        return WSH_ERROR;
    }
    p = realloc(cli->headers, old + n + 3);
    if (p == NULL) {
        return WSH_ERROR;
    }
    memcpy(p + old, h, n);
    memcpy(p + old + n, "\r\n", 3);
    cli->headers = p;
    return WSH_OK;
}

/* --since ROOM=OFFSET[:EPOCH] */
static int
cli_add_seed(cli_t *cli, const char *arg)
{
    const char *eq = strchr(arg, '=');
    char room[WSH_ROOM_MAX + 1], *end;
    cli_room_t *seeds, *s;
    long long off;

    if (eq == NULL || (size_t) (eq - arg) > WSH_ROOM_MAX) {
        goto invalid;
    }
    memcpy(room, arg, (size_t) (eq - arg));
    room[eq - arg] = '\0';
    errno = 0;
    off = strtoll(eq + 1, &end, 10);
    if (!wsh_valid_room(room, strlen(room)) || end == eq + 1 || errno != 0
        || off < 0 || (*end != '\0' && *end != ':'))
    {
        goto invalid;
    }
    seeds = realloc(cli->seeds, (cli->nseeds + 1) * sizeof(cli_room_t));
    if (seeds == NULL) {
        return WSH_ERROR;
    }
    cli->seeds = seeds;
    s = &cli->seeds[cli->nseeds++];
    memset(s, 0, sizeof(*s));
    snprintf(s->name, sizeof(s->name), "%s", room);
    s->has_since = true;
    s->offset = (json_int_t) off;
    if (*end == ':') {
        snprintf(s->epoch, sizeof(s->epoch), "%s", end + 1);
    }
    return WSH_OK;

invalid:
    fprintf(stderr, "wshub-cli: --since wants ROOM=OFFSET[:EPOCH], not "
            "\"%s\"\n", arg);
    return WSH_ERROR;
}

enum {
    OPT_NO_RECONNECT = 256,
    OPT_SINCE,
    OPT_DRAIN
};

static const struct option cli_options[] = {
    { "header", required_argument, NULL, 'H' },
    { "insecure", no_argument, NULL, 'k' },
    { "no-reconnect", no_argument, NULL, OPT_NO_RECONNECT },
    { "retries", required_argument, NULL, 'r' },
    { "since", required_argument, NULL, OPT_SINCE },
    { "drain", required_argument, NULL, OPT_DRAIN },
    { "version", no_argument, NULL, 'V' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 }
};

static int
cli_number(const char *s, const char *what, long max, long *out)
{
    char *end;
    long n;

    errno = 0;
    n = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno != 0 || n < 0 || n > max) {
        fprintf(stderr, "wshub-cli: %s wants a number from 0 to %ld, not "
                "\"%s\"\n", what, max, s);
        return WSH_ERROR;
    }
    *out = n;
    return WSH_OK;
}

int
main(int argc, char **argv)
{
    static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGWINCH };
    struct event_config *cfg;
    cli_t cli_s, *cli = &cli_s;
    bool insecure = false;
    char err[256];
    unsigned seed;
    long n;
    size_t i;
    int c;

    memset(cli, 0, sizeof(*cli));
    cli->reconnect = true;
    cli->retries = -1;
    cli->hint_ms = -1;
    cli->drain_ms = CLI_DRAIN_MS;
    cli_self = cli;

    while ((c = getopt_long(argc, argv, "eH:kr:Vh", cli_options, NULL))
           != -1)
    {
        switch (c) {
        case 'e':
            cli->script = true;
            break;
        case 'H':
            if (cli_add_header(cli, optarg) != WSH_OK) {
                return 2;
            }
            break;
        case 'k':
            insecure = true;
            break;
        case OPT_NO_RECONNECT:
            cli->reconnect = false;
            break;
        case 'r':
            if (cli_number(optarg, "--retries", 1000000, &n) != WSH_OK) {
                return 2;
            }
            cli->retries = (int) n;
            break;
        case OPT_SINCE:
            if (cli_add_seed(cli, optarg) != WSH_OK) {
                return 2;
            }
            break;
        case OPT_DRAIN:
            if (cli_number(optarg, "--drain", 3600000, &n) != WSH_OK) {
                return 2;
            }
            cli->drain_ms = (wsh_msec_t) n;
            break;
        case 'V':
            printf("wshub-cli version %s\n", WSH_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    cli->url_text = argv[optind];
    if (wsh_url_parse(cli->url_text, &cli->url, err, sizeof(err)) != WSH_OK)
    {
        fprintf(stderr, "wshub-cli: %s\n", err);
        return 2;
    }
    if (cli->url.tls) {
        cli->ssl_ctx = wsh_client_ssl_ctx(insecure);
        if (cli->ssl_ctx == NULL) {
            fprintf(stderr, "wshub-cli: wsh_client_ssl_ctx() failed\n");
            return 1;
        }
    }

    if (getrandom(&seed, sizeof(seed), 0) != (ssize_t) sizeof(seed)) {
        seed = (unsigned) time(NULL) ^ (unsigned) getpid();
    }
    srandom(seed);
    signal(SIGPIPE, SIG_IGN);
    setlocale(LC_CTYPE, "");

    cli->readline = !cli->script && isatty(STDIN_FILENO)
                    && isatty(STDOUT_FILENO);
    cli->color = !cli->script && isatty(STDOUT_FILENO)
                 && getenv("NO_COLOR") == NULL
                 && (getenv("TERM") == NULL
                     || strcmp(getenv("TERM"), "dumb") != 0);
    if (!cli->readline) {
        setvbuf(stdout, NULL, _IOLBF, 0);
    }

    /* poll(2), not epoll: stdin may be a regular file (-e < script). */
    cfg = event_config_new();
    if (cfg == NULL
        || event_config_require_features(cfg, EV_FEATURE_FDS) != 0
        || (cli->base = event_base_new_with_config(cfg)) == NULL)
    {
        fprintf(stderr, "wshub-cli: event_base_new_with_config() failed\n");
        return 1;
    }
    event_config_free(cfg);

    cli->in = evbuffer_new();
    cli->stdin_ev = event_new(cli->base, STDIN_FILENO, EV_READ | EV_PERSIST,
                              cli->readline ? cli_stdin_readline
                                            : cli_stdin_plain, cli);
    cli->retry_ev = evtimer_new(cli->base, cli_retry_cb, cli);
    cli->drain_ev = evtimer_new(cli->base, cli_drain_cb, cli);
    cli->exit_ev = evtimer_new(cli->base, cli_exit_cb, cli);
    cli->pump_ev = evtimer_new(cli->base, cli_pump_cb, cli);
    if (cli->in == NULL || cli->stdin_ev == NULL || cli->retry_ev == NULL
        || cli->drain_ev == NULL || cli->exit_ev == NULL
        || cli->pump_ev == NULL)
    {
        fprintf(stderr, "wshub-cli: event_new() failed\n");
        return 1;
    }
    for (i = 0; i < wsh_nelems(sigs); i++) {
        cli->sig_ev[i] = evsignal_new(cli->base, sigs[i], cli_signal_cb, cli);
        if (cli->sig_ev[i] == NULL || evsignal_add(cli->sig_ev[i], NULL) != 0)
        {
            fprintf(stderr, "wshub-cli: evsignal_add() failed\n");
            return 1;
        }
    }

    if (cli->readline) {
        cli_readline_start(cli);
        event_add(cli->stdin_ev, NULL);
        cli->stdin_on = true;
    } else {
        cli_update_prompt(cli);
    }
    cli_connect(cli);

    event_base_dispatch(cli->base);

    if (cli->readline) {
        cli_readline_stop(cli);
    }
    if (cli->cl != NULL) {
        wsh_client_free(cli->cl);
    }
    for (i = 0; i < wsh_nelems(sigs); i++) {
        event_free(cli->sig_ev[i]);
    }
    event_free(cli->stdin_ev);
    event_free(cli->retry_ev);
    event_free(cli->drain_ev);
    event_free(cli->exit_ev);
    event_free(cli->pump_ev);
    evbuffer_free(cli->in);
    event_base_free(cli->base);
    if (cli->ssl_ctx != NULL) {
        SSL_CTX_free(cli->ssl_ctx);
    }
    free(cli->rooms);
    free(cli->seeds);
    free(cli->headers);
    free(cli->histfile);
    return cli->status;
}
