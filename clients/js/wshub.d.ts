// wshub.d.ts -- types of wshub.js, the client of wshub-protocol(7).

/** A room's position: the last message had of a room with history. */
export interface Since {
    offset: number;
    epoch?: string;
}

/** Any message of the protocol, as the server sent it. */
export interface Message {
    type: string;
    [member: string]: unknown;
}

/** A message of a room: the sender's members plus those the server sets. */
export interface RoomMessage extends Message {
    type: "room_message";
    room: string;
    from: string;
    /** In a room with history: its position, strictly increasing. */
    offset?: number;
    epoch?: string;
}

/** The answer to a request sent with an "id". */
export interface Ack extends Message {
    type: "ack";
    id: unknown;
    /** In a room with history: the position the message was given. */
    offset?: number;
    epoch?: string;
}

/** What a room's onPresence hears: the members when the room is
 * (re)joined (the ids, or only their count past the room's
 * presence_limit), then each join and leave the server announces. */
export type Presence =
    | { type: "members"; members?: string[]; count?: number }
    | { type: "join" | "leave"; id: string };

export interface MembersPage {
    members: string[];
    count: number;
    /** The next page's; absent on the last page. */
    cursor?: string;
}

/** An error event or a rejected promise. code: "policy" (closed with
 * 1008: stopped), "refused" (connections that never opened), "token"
 * (getToken threw), "url" (the WebSocket could not be made: stopped),
 * "server" (an error message: reply is it), "disconnected" (the
 * connection dropped before the answer), "closed" (close() or leave()). */
export interface WsHubError extends Error {
    code: "policy" | "refused" | "token" | "url" | "server" |
          "disconnected" | "closed";
    reason?: string;
    reply?: Message & { error: string; request?: string; room?: string };
}

export interface WsHubOptions {
    /** The id to ask for (?id=); the server may give another. */
    id?: string;
    /** A JSON Web Token, sent as ?token= (see tokenParam). */
    token?: string;
    /** Called before each connection for a fresh token. */
    getToken?: () => string | Promise<string>;
    /** The query parameter of the token: auth_jwt.query_param. Default
     * "token". */
    tokenParam?: string;
    /** Milliseconds between reconnections: jittered, doubling from min up
     * to max. Defaults 500 and 30000; min is at least 100. */
    reconnect?: { min?: number; max?: number };
    /** Connections in a row that never open, before any welcome, after
     * which the error event says "refused" and each attempt waits about
     * max. Default 3. */
    refusals?: number;
    /** Milliseconds for a connection to be welcomed. Default 10000. */
    timeout?: number;
    /** Milliseconds between pings; a connection that hears nothing for
     * as long after a ping is dropped. 0: no pings. Default 25000. */
    ping?: number;
    /** The WebSocket class (tests, or Node before 22). */
    WebSocket?: new (url: string) => WebSocket;
}

export interface RoomOptions {
    onMessage?: (message: RoomMessage) => void;
    onPresence?: (presence: Presence) => void;
    /** Recover from this position on the first join too. */
    since?: Since;
}

export declare class Room {
    readonly name: string;
    /** Its position, in a room with history once joined. */
    readonly epoch?: string;
    readonly offset?: number;
    /** A room_message (sent once joined). With an "id", resolves with
     * its ack (offset and epoch in a room with history), else at once. */
    send(message: object): Promise<Ack | undefined>;
    /** Leaves the room, for good. */
    leave(): void;
    /** A page of the members (room_members). */
    members(options?: { cursor?: string; limit?: number }):
        Promise<MembersPage>;
    /** Every page of the members. */
    pages(options?: { limit?: number }): AsyncGenerator<MembersPage>;
    /** The number of members (room_count). */
    count(): Promise<number>;
}

export interface WsHubEvents {
    /** Welcomed, with the connection's id. */
    connect: (id: string) => void;
    /** A welcomed connection closed. */
    disconnect: (code: number, reason: string) => void;
    /** The next connection is in DELAY ms. */
    reconnecting: (attempt: number, delay: number) => void;
    /** A room was rejoined with since: whether nothing was lost, and how
     * many messages missed are being replayed. */
    recovered: (room: string, recovered: boolean, missed: number) => void;
    error: (error: WsHubError) => void;
    private: (message: Message) => void;
    broadcast: (message: Message) => void;
    /** Every message from the server, first. */
    message: (message: Message) => void;
}

export declare class WsHub {
    constructor(url: string, options?: WsHubOptions);
    /** The connection's id, once welcomed. */
    readonly id: string | null;
    on<K extends keyof WsHubEvents>(event: K, fn: WsHubEvents[K]): this;
    off<K extends keyof WsHubEvents>(event: K, fn: WsHubEvents[K]): this;
    /** Joins the room, and again after every reconnection. */
    join(room: string, options?: RoomOptions): Room;
    /** Private messages to every connection of ID. */
    to(id: string): { send(message: object): Promise<Ack | undefined> };
    broadcast(message: object): Promise<Ack | undefined>;
    /** Stops for good; requests waiting fail with "closed". */
    close(): void;
    /** Connects again after close() or a stop. */
    connect(): void;
}

/** The delay before reconnection ATTEMPT: at random in the upper half of
 * min * 2^attempt, capped at max, never below min. */
export declare function backoff(attempt: number, min: number, max: number,
                                random?: () => number): number;
