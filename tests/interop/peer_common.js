'use strict';
// Shared plumbing for the interop driver scripts: the JSON-lines loop of
// shared/interop/PEER_PROTOCOL.md, request validation, hex helpers and the
// trust-on-first-use identity table. Library-specific code lives in the
// *_peer.js scripts.

// The libraries log with console.info/log (e.g. "Closing session: ..."), which
// would corrupt the reply stream: stdout carries replies only.
for (const name of ['log', 'info', 'debug', 'trace']) {
    console[name] = (...args) => console.error(...args);
}

const readline = require('readline');

// An error that becomes an ok:false reply with the given code.
class PeerError extends Error {
    constructor(code, message) {
        super(message);
        this.code = code;
    }
}

function badRequest(message) {
    return new PeerError('InvalidRequest', message);
}

function unsupported(op) {
    return new PeerError('Unsupported', `op "${op}" is unsupported by this peer`);
}

const HEX_RE = /^(?:[0-9a-fA-F]{2})*$/;

function hexToBuf(value, field) {
    if (typeof value !== 'string' || !HEX_RE.test(value)) {
        throw badRequest(`field "${field}" must be a hex string`);
    }
    return Buffer.from(value, 'hex');
}

function has(req, field) {
    return req[field] !== undefined && req[field] !== null;
}

function reqHex(req, field, len) {
    if (!has(req, field)) {
        throw badRequest(`missing field "${field}"`);
    }
    const buf = hexToBuf(req[field], field);
    if (len !== undefined && buf.length !== len) {
        throw badRequest(`field "${field}" must be ${len} bytes, got ${buf.length}`);
    }
    return buf;
}

function optHex(req, field, len) {
    return has(req, field) ? reqHex(req, field, len) : undefined;
}

function reqInt(req, field, min, max) {
    const v = req[field];
    if (!Number.isInteger(v) || v < min || v > max) {
        throw badRequest(`field "${field}" must be an integer in ${min}..${max}`);
    }
    return v;
}

function optInt(req, field, min, max) {
    return has(req, field) ? reqInt(req, field, min, max) : undefined;
}

function reqString(req, field) {
    if (typeof req[field] !== 'string') {
        throw badRequest(`field "${field}" must be a string`);
    }
    return req[field];
}

function optBool(req, field, dflt) {
    if (!has(req, field)) {
        return dflt;
    }
    if (typeof req[field] !== 'boolean') {
        throw badRequest(`field "${field}" must be a boolean`);
    }
    return req[field];
}

function reqObject(req, field) {
    const v = req[field];
    if (v === null || typeof v !== 'object' || Array.isArray(v)) {
        throw badRequest(`field "${field}" must be an object`);
    }
    return v;
}

// Both libraries split "name.device" on '.', so names must not contain one.
function reqAddress(req, field) {
    const a = reqObject(req, field || 'address');
    const name = reqString(a, 'name');
    if (name.length === 0 || name.includes('.')) {
        throw badRequest('address name must be non-empty and contain no "."');
    }
    return { name, deviceId: reqInt(a, 'device_id', 1, 127) };
}

// "text" (UTF-8) or "plaintext" (hex), as encrypt takes them.
function reqPayload(req) {
    if (has(req, 'plaintext')) {
        return reqHex(req, 'plaintext');
    }
    if (typeof req.text === 'string') {
        return Buffer.from(req.text, 'utf8');
    }
    throw badRequest('need "text" (string) or "plaintext" (hex)');
}

// The bundle object another peer returned from "bundle".
function parseBundle(req) {
    const b = reqObject(req, 'bundle');
    const parsed = {
        registrationId: reqInt(b, 'registration_id', 0, 0xffffffff),
        identityKey: reqHex(b, 'identity_key', 33),
        signedPreKeyId: reqInt(b, 'signed_prekey_id', 0, 0xffffff),
        signedPreKey: reqHex(b, 'signed_prekey', 33),
        signedPreKeySignature: reqHex(b, 'signed_prekey_signature', 64),
        preKeyId: undefined,
        preKey: undefined,
    };
    if (has(b, 'prekey') !== has(b, 'prekey_id')) {
        throw badRequest('bundle needs both or neither of prekey and prekey_id');
    }
    if (has(b, 'prekey')) {
        parsed.preKeyId = reqInt(b, 'prekey_id', 0, 0xffffff);
        parsed.preKey = reqHex(b, 'prekey', 33);
    }
    return parsed;
}

// Identity trust, keyed by name: the libraries ask with either "name" or
// "name.device", and a Signal identity key belongs to the account.
class TrustStore {
    constructor(trustAll) {
        this.trustAll = trustAll;
        this.known = new Map();
    }

    static key(identifier) {
        return String(identifier).replace(/\.\d+$/, '');
    }

    // Trust on first use: remember the first key seen, reject any other.
    isTrusted(identifier, identityKey) {
        const key = TrustStore.key(identifier);
        const hex = Buffer.from(identityKey).toString('hex');
        if (this.trustAll) {
            return true;
        }
        const known = this.known.get(key);
        if (known === undefined) {
            this.known.set(key, hex);
            return true;
        }
        return known === hex;
    }
}

// Runs the request loop. `handlers` maps op name -> async (req) => reply
// fields; `mapError` turns a library exception into a code string.
function runPeer(handlers, mapError) {
    const write = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
    // The libraries are async; chaining every request onto one promise keeps
    // replies in request order and state changes strictly sequential.
    let queue = Promise.resolve();
    let quitting = false;

    const handle = async (line) => {
        let req;
        try {
            req = JSON.parse(line);
        } catch (e) {
            write({ id: null, ok: false, error: `invalid JSON: ${e.message}`, code: 'InvalidRequest' });
            return;
        }
        if (req === null || typeof req !== 'object' || Array.isArray(req)) {
            write({ id: null, ok: false, error: 'request must be a JSON object', code: 'InvalidRequest' });
            return;
        }
        const id = req.id === undefined ? null : req.id;
        try {
            if (typeof req.op !== 'string') {
                throw badRequest('missing field "op"');
            }
            if (req.op === 'quit') {
                write({ id, ok: true });
                quitting = true;
                return;
            }
            const handler = Object.prototype.hasOwnProperty.call(handlers, req.op) ? handlers[req.op] : undefined;
            if (!handler) {
                throw new PeerError('UnknownOp', `unknown op "${req.op}"`);
            }
            const fields = (await handler(req)) || {};
            write(Object.assign({ id, ok: true }, fields));
        } catch (e) {
            const code = e instanceof PeerError ? e.code : mapError(e);
            const msg = (e && (e.message || e.name)) || String(e);
            if (!(e instanceof PeerError)) {
                console.error(`op ${req.op} failed:`, e && e.stack ? e.stack : e);
            }
            write({ id, ok: false, error: `${e && e.name ? e.name + ': ' : ''}${msg}`, code });
        }
    };

    const exit = () => {
        // Exit once stdout has flushed everything queued before.
        process.stdout.write('', () => process.exit(0));
    };

    const rl = readline.createInterface({ input: process.stdin, terminal: false, crlfDelay: Infinity });
    rl.on('line', (line) => {
        if (line.trim() === '') {
            return;
        }
        queue = queue.then(async () => {
            if (quitting) {
                return;
            }
            await handle(line);
            if (quitting) {
                rl.close();
                exit();
            }
        });
    });
    rl.on('close', () => {
        queue = queue.then(exit);
    });
}

// Decrypts a SignalMessage trying one session of the record at a time, each
// alone in a copy of the record, and keeps only the session that worked.
//
// Why: both libraries try every session of a record on the SAME objects, and
// a session that does not match still gets its ratchet stepped before the MAC
// check fails; when another session then succeeds, the damaged one is stored
// too. Genuine traffic hits this after simultaneous initiation (the open
// session is damaged by a message meant for the older one). Doing the trial
// here on copies gives the libraries' decrypt the state libsignal would keep.
//
//   sessions: Map of address -> serialized record (JSON string)
//   field:    the record's sessions property ('_sessions' or 'sessions')
//   order:    (sessionsObject) -> keys in the order the library tries them
//   decrypt:  () => Promise<plaintext>, the library call for this address
//   isDuplicate: (error) -> bool, preferred as the reported error
async function decryptOneSessionAtATime(sessions, addr, field, order, decrypt, isDuplicate) {
    const saved = sessions.get(addr);
    if (saved === undefined) {
        return decrypt(); // the library reports the missing session
    }
    const data = JSON.parse(saved);
    let err = null;
    for (const key of order(data[field])) {
        sessions.set(addr, JSON.stringify(Object.assign({}, data, { [field]: { [key]: data[field][key] } })));
        try {
            const plaintext = await decrypt();
            const entry = JSON.parse(sessions.get(addr))[field][key];
            if (entry) {
                // The library may have promoted it to the open session.
                if (entry.indexInfo.closed === -1) {
                    for (const other of Object.keys(data[field])) {
                        if (other !== key && data[field][other].indexInfo.closed === -1) {
                            data[field][other].indexInfo.closed = Date.now();
                        }
                    }
                }
                data[field][key] = entry;
            }
            sessions.set(addr, JSON.stringify(data));
            return plaintext;
        } catch (e) {
            if (err === null || (isDuplicate(e) && !isDuplicate(err))) {
                err = e;
            }
        }
    }
    sessions.set(addr, saved);
    throw err;
}

// Node Buffer <-> exact ArrayBuffer (the TS port insists on ArrayBuffer).
function toArrayBuffer(buf) {
    const u8 = buf instanceof Uint8Array ? buf : new Uint8Array(buf);
    return u8.buffer.slice(u8.byteOffset, u8.byteOffset + u8.byteLength);
}

function hex(bytes) {
    return Buffer.from(bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : bytes).toString('hex');
}

module.exports = {
    PeerError,
    badRequest,
    unsupported,
    has,
    reqHex,
    optHex,
    reqInt,
    optInt,
    reqString,
    optBool,
    reqAddress,
    reqPayload,
    parseBundle,
    TrustStore,
    runPeer,
    decryptOneSessionAtATime,
    toArrayBuffer,
    hex,
};
