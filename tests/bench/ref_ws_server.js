// ref_ws_server.js -- the reference peer of tests/bench/run.sh: Node's
// `ws` package serving what wshub's /echo and /ws (hub) endpoints serve
// in the benchmark scenarios, so wshub's figures come with a ratio to a
// known server measured in the same run on the same machine.
//
//   node ref_ws_server.js PORT      (needs `ws` on NODE_PATH)
//
// /echo sends every message back as it came (text or binary). /ws speaks
// the part of the hub protocol (PROTOCOL.md) that wshub-bench uses:
// join_room is answered with room_joined and its members and announced
// to the others as user_joined_room; room_message is relayed with `from`
// set to every other member of the room, serialised once and the same
// buffer handed to every recipient, as the idiomatic ws broadcast does.
// It prints "listening" once the port is open. No TLS, no deflate.
'use strict';

const http = require('http');
const { WebSocketServer } = require('ws');
const { parse } = require('./ref_hub_request.js');

const port = Number(process.argv[2]);
const rooms = new Map();        // room name -> Set of sockets
let nextId = 1;

const server = http.createServer((req, res) => {
    res.writeHead(404);
    res.end();
});
const echo = new WebSocketServer({ noServer: true, perMessageDeflate: false });
const hub = new WebSocketServer({ noServer: true, perMessageDeflate: false });

server.on('upgrade', (req, sock, head) => {
    const wss = req.url === '/echo' ? echo : req.url === '/ws' ? hub : null;
    if (wss === null) {
        sock.destroy();
        return;
    }
    wss.handleUpgrade(req, sock, head, (ws) => wss.emit('connection', ws));
});

echo.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});

function send(ws, obj) {
    ws.send(JSON.stringify(obj));
}

hub.on('connection', (ws) => {
    const id = String(nextId++);
    const joined = new Set();

    ws.on('message', (data, isBinary) => {
        const { m, error } = parse(data);
        if (error !== undefined) {
            send(ws, { type: 'error', message: error });
            return;
        }
        let members = rooms.get(m.room);
        if (m.type === 'join_room') {
            if (members === undefined) {
                members = new Set();
                rooms.set(m.room, members);
            }
            const note = Buffer.from(JSON.stringify(
                { type: 'user_joined_room', room: m.room, user_id: id }));
            for (const other of members) {
                other.send(note, { binary: false });
            }
            members.add(ws);
            joined.add(m.room);
            send(ws, { type: 'room_joined', room: m.room,
                       members: [...members].map((s) => s.id) });
        } else if (m.type === 'room_message') {
            if (!joined.has(m.room)) {
                send(ws, { type: 'error', message: 'Not in room' });
                return;
            }
            m.from = id;
            const out = Buffer.from(JSON.stringify(m));
            for (const other of members) {
                if (other !== ws) {
                    other.send(out, { binary: false });
                }
            }
        } else {
            send(ws, { type: 'error', message: 'Unknown type' });
        }
    });
    ws.on('close', () => {
        for (const room of joined) {
            const members = rooms.get(room);
            members.delete(ws);
            if (members.size === 0) {
                rooms.delete(room);
            }
        }
    });
    ws.id = id;
});

server.listen(port, '127.0.0.1', () => console.log('listening'));
