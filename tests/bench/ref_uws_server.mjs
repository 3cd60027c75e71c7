// ref_uws_server.mjs -- the second reference peer of tests/bench/run.sh:
// uWebSockets (the C++ library, through its Node binding uWebSockets.js,
// as repackaged on npm by `uws-pack`) serving what wshub's /echo and /ws
// (hub) endpoints serve in the benchmark scenarios. Issue 12 sets its
// targets against uWebSockets; this puts it in the same run, on the same
// machine, under the same generator.
//
//   node ref_uws_server.mjs PORT      (needs `uws-pack` on NODE_PATH)
//
// /echo sends every message back as it came. /ws speaks the part of the
// hub protocol (PROTOCOL.md) that wshub-bench uses, with uWebSockets' own
// pub/sub for the fan-out (its idiomatic, fastest broadcast: the message
// is handed to the library once, which writes it to every subscriber):
// join_room subscribes the socket to the room topic, is answered with
// room_joined and its members and announced to the others as
// user_joined_room; room_message is published with `from` set, to every
// member but the sender. It prints "listening" once the port is open.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import request from './ref_hub_request.js';

// ESM ignores NODE_PATH: the package is loaded from there by hand.
const uws = await import(pathToFileURL(path.join(
    process.env.NODE_PATH || 'node_modules', 'uws-pack', 'dist',
    'index.mjs')).href);

const port = Number(process.argv[2]);
const rooms = new Map();        // room name -> Set of member ids
const decoder = new TextDecoder();
let nextId = 1;

const app = uws.App();

app.ws('/echo', {
    compression: uws.DISABLED,
    maxPayloadLength: 16 * 1024 * 1024,
    idleTimeout: 0,
    message: (ws, message, isBinary) => {
        ws.send(message, isBinary);
    },
});

function send(ws, obj) {
    ws.send(JSON.stringify(obj), false);
}

app.ws('/ws', {
    compression: uws.DISABLED,
    maxPayloadLength: 16 * 1024 * 1024,
    maxBackpressure: 64 * 1024 * 1024,
    idleTimeout: 0,
    open: (ws) => {
        const d = ws.getUserData();
        d.id = String(nextId++);
        d.joined = new Set();
    },
    message: (ws, message) => {
        const d = ws.getUserData();
        const { m, error } = request.parse(decoder.decode(message));
        if (error !== undefined) {
            send(ws, { type: 'error', message: error });
            return;
        }
        if (m.type === 'join_room') {
            let members = rooms.get(m.room);
            if (members === undefined) {
                members = new Set();
                rooms.set(m.room, members);
            }
            app.publish(m.room, JSON.stringify(
                { type: 'user_joined_room', room: m.room, user_id: d.id }),
                false);
            ws.subscribe(m.room);
            members.add(d.id);
            d.joined.add(m.room);
            send(ws, { type: 'room_joined', room: m.room,
                       members: [...members] });
        } else if (m.type === 'room_message') {
            if (!d.joined.has(m.room)) {
                send(ws, { type: 'error', message: 'Not in room' });
                return;
            }
            m.from = d.id;
            ws.publish(m.room, JSON.stringify(m), false);
        } else {
            send(ws, { type: 'error', message: 'Unknown type' });
        }
    },
    close: (ws) => {
        const d = ws.getUserData();
        for (const room of d.joined) {
            const members = rooms.get(room);
            members.delete(d.id);
            if (members.size === 0) {
                rooms.delete(room);
            }
        }
    },
});

app.any('/*', (res) => {
    res.writeStatus('404 Not Found').end();
});

app.listen('127.0.0.1', port, (token) => {
    if (!token) {
        console.error('cannot listen on port ' + port);
        process.exit(1);
    }
    console.log('listening');
});
