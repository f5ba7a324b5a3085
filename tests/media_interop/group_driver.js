'use strict';
// Interop driver for confide's older group layout against Baileys' own sender-key code
// (npm `baileys` 6.17.16, its WASignalGroup: GroupSessionBuilder, GroupCipher,
// SenderKeyDistributionMessage, SenderKeyName, SenderKeyRecord). Runs as a separate
// Node.js process; confide's Rust tests (groups.rs) talk to it over stdin/stdout with
// one JSON request and one JSON reply per line, binary values in lowercase hex.
//
// The sender-key store is in memory and keeps each record the way Baileys' own key
// stores do, chosen per request with `store`:
//   "json"   (default) JSON.stringify/parse with Baileys' BufferJSON, as its file-based
//            auth state (useMultiFileAuthState) writes every record;
//   "clone"  a structured clone of the record's objects, which keeps every field.
// Either way a failed call leaves the stored record as it was.
//
//   hello                                      -> {baileys}
//   group_create  {group, sender, rotate?}     -> {skdm}     (rotate: drop the record first)
//   group_process {group, sender, skdm}        -> {}
//   group_encrypt {group, sender, plaintext}   -> {ciphertext}
//   group_decrypt {group, sender, ciphertext}  -> {plaintext}
//   record        {group, sender}              -> {record}   (the stored JSON, for diagnosis)
//   quit
//
// `sender` is {name, device_id}; `group` a group id string. `store` may accompany any
// request naming a group and switches that record's store representation.

const readline = require('readline');
const v8 = require('v8');
const G = require('baileys/WASignalGroup');
const { BufferJSON } = require('baileys/lib/Utils/generics');

const BAILEYS_VERSION = require('baileys/package.json').version;

class Store {
  constructor() { this.m = new Map(); this.mode = new Map(); }
  async loadSenderKey(name) {
    const k = name.toString();
    const v = this.m.get(k);
    if (v === undefined) return new G.SenderKeyRecord();
    if (this.mode.get(k) === 'clone') return new G.SenderKeyRecord(v8.deserialize(v));
    return new G.SenderKeyRecord(JSON.parse(v, BufferJSON.reviver));
  }
  async storeSenderKey(name, record) {
    const k = name.toString();
    if (this.mode.get(k) === 'clone') {
      // toJSON-free copy of the plain data: every field survives.
      const plainCopy = record.serialize().map((s) => ({
        senderKeyId: s.senderKeyId,
        senderChainKey: { iteration: s.senderChainKey.iteration, seed: Buffer.from(s.senderChainKey.seed) },
        senderSigningKey: {
          public: Buffer.from(s.senderSigningKey.public),
          ...(s.senderSigningKey.private ? { private: Buffer.from(s.senderSigningKey.private) } : {}),
        },
        senderMessageKeys: (s.senderMessageKeys || []).map((mk) => ({ iteration: mk.iteration, seed: Buffer.from(mk.seed) })),
      }));
      this.m.set(k, v8.serialize(plainCopy));
    } else {
      this.m.set(k, JSON.stringify(record.serialize(), BufferJSON.replacer));
    }
  }
}

const store = new Store();

function fail(code, message) {
  const e = new Error(message);
  e.code = code;
  return e;
}
function unhex(v, name) {
  if (typeof v !== 'string' || !/^([0-9a-f]{2})*$/.test(v)) throw fail('BadRequest', `field ${name} must be hex`);
  return Buffer.from(v, 'hex');
}
function senderKeyName(r) {
  if (typeof r.group !== 'string') throw fail('BadRequest', 'field group must be a string');
  const s = r.sender;
  if (!s || typeof s.name !== 'string' || !Number.isInteger(s.device_id)) throw fail('BadRequest', 'field sender must be an address');
  const addr = { id: s.name, deviceId: s.device_id, toString() { return `${s.name}.${s.device_id}`; } };
  const name = new G.SenderKeyName(r.group, addr);
  if (r.store !== undefined) {
    if (r.store !== 'json' && r.store !== 'clone') throw fail('BadRequest', 'field store must be json or clone');
    store.mode.set(name.toString(), r.store);
  }
  return name;
}

const ops = {
  hello: async () => ({ baileys: BAILEYS_VERSION }),
  group_create: async (r) => {
    const name = senderKeyName(r);
    if (r.rotate) store.m.delete(name.toString());
    const skdm = await new G.GroupSessionBuilder(store).create(name);
    return { skdm: Buffer.from(skdm.serialize()).toString('hex') };
  },
  group_process: async (r) => {
    const name = senderKeyName(r);
    const msg = new G.SenderKeyDistributionMessage(null, null, null, null, unhex(r.skdm, 'skdm'));
    await new G.GroupSessionBuilder(store).process(name, msg);
    return {};
  },
  group_encrypt: async (r) => {
    const name = senderKeyName(r);
    const ct = await new G.GroupCipher(store, name).encrypt(unhex(r.plaintext, 'plaintext'));
    return { ciphertext: Buffer.from(ct).toString('hex') };
  },
  group_decrypt: async (r) => {
    const name = senderKeyName(r);
    const pt = await new G.GroupCipher(store, name).decrypt(unhex(r.ciphertext, 'ciphertext'));
    return { plaintext: Buffer.from(pt).toString('hex') };
  },
  record: async (r) => {
    const name = senderKeyName(r);
    const rec = await store.loadSenderKey(name);
    return { record: JSON.parse(JSON.stringify(rec.serialize(), BufferJSON.replacer)) };
  },
};

const out = (v) => process.stdout.write(JSON.stringify(v) + '\n');
const rl = readline.createInterface({ input: process.stdin });
let chain = Promise.resolve();
rl.on('line', (line) => {
  chain = chain.then(async () => {
    let req;
    try { req = JSON.parse(line); } catch (e) {
      out({ id: null, ok: false, error: `invalid JSON: ${e.message}`, code: 'BadRequest' });
      return;
    }
    if (req.op === 'quit') { out({ id: req.id, ok: true }); process.exit(0); }
    const f = Object.prototype.hasOwnProperty.call(ops, req.op) ? ops[req.op] : null;
    if (!f) { out({ id: req.id, ok: false, error: `unknown op ${req.op}`, code: 'UnknownOp' }); return; }
    try {
      out({ ...(await f(req)), id: req.id, ok: true });
    } catch (e) {
      out({ id: req.id, ok: false, error: String(e && e.message), code: (e && typeof e.code === 'string' && e.code) || 'Error' });
    }
  });
});
rl.on('close', () => chain.then(() => process.exit(0)));
