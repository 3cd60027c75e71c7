// ref_hub_request.js -- what both reference peers of tests/bench/run.sh
// (ref_ws_server.js, ref_uws_server.mjs) do with a /ws request before
// acting on it: parse it, or say why not with PROTOCOL.md's message.
'use strict';

// { m: the request } or { error: the message of the error reply }.
exports.parse = function parse(text) {
    let m;
    try {
        m = JSON.parse(text);
    } catch (e) {
        return { error: 'Invalid JSON' };
    }
    if (m === null || typeof m !== 'object' || typeof m.room !== 'string') {
        return { error: 'Unknown type' };
    }
    return { m };
};
