'use strict';
// One device backed by the official @signalapp/libsignal-client 0.103.0, speaking
// shared/interop/PEER_PROTOCOL.md on stdin/stdout: the base ops, the group ops and the
// sealed-sender ops. Run as a separate process by tests/official_interop/peer_suite.rs,
// which wires it to confide's `examples/peer` only through this protocol. Only the
// library's public API is called; diagnostics go to stderr.
//
// Differences the protocol leaves room for, all forced by libsignal 0.103:
// - 1:1 messages are version 4 only, so `bundle` always carries a Kyber prekey and
//   `process_bundle` needs one. A v3 bundle (as confide's, whose Kyber fields are null)
//   is refused with code MissingKyberPreKey unless the request also carries
//   `identity_private`, the bundle owner's identity private key (which the owner's
//   `generate_identity` reply contains; only test runners have it). The peer then adds
//   a Kyber prekey signed by that identity, so libsignal can record the identity and a
//   session. Multi-recipient sealed sender (version 2) needs such a session for every
//   recipient (it carries the recipient's registration id); sender-key messages never
//   use it. 1:1 messages through it are version 4, which v3-only peers cannot read.
// - `bundle` also takes `kyber_prekey_id` and `kyber_last_resort` (default true): a
//   one-time Kyber prekey is deleted once a session used it; a last-resort one stays,
//   and a second session from the same (Kyber id, signed prekey id, base key) is
//   refused (InvalidKyberPreKeyUse), as the facts describe a Signal client's store.
// - `session_record` and `split_multi` (not in the protocol): `SessionRecord.serialize()`
//   as hex, and the server's split of a multi-recipient message,
//   for the v4 tests' derivation checks.
// - Rotating a sender key (`group_create` with `rotate`) deletes the own record for the
//   distribution and creates a new one, as Signal clients do after a member leaves.
// - `sealed_decrypt` of a sender-key message follows the Signal clients: open the
//   envelope (`sealedSenderDecryptToUsmc`, which checks the sender certificate's key
//   against the envelope), validate the certificate against `trust_root` at
//   `timestamp`, then `groupDecrypt`. 1:1 contents go through
//   `sealedSenderDecryptMessage`, which validates and decrypts in one step.

const S = require('@signalapp/libsignal-client');
const readline = require('readline');

const LIB_VERSION = require('@signalapp/libsignal-client/package.json').version;

class PeerError extends Error {
  constructor(code, message) { super(message); this.peerCode = code; }
}
const bad = (m) => new PeerError('BadRequest', m);

const hex = (b) => Buffer.from(b).toString('hex');
function unhex(v, name) {
  if (typeof v !== 'string' || !/^([0-9a-fA-F]{2})*$/.test(v)) throw bad(`field ${name} must be hex`);
  return new Uint8Array(Buffer.from(v, 'hex'));
}
function field(r, name) {
  if (r[name] === undefined || r[name] === null) throw bad(`missing field ${name}`);
  return r[name];
}
const opt = (r, name) => (r[name] === undefined || r[name] === null ? undefined : r[name]);
function u32(v, name) {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw bad(`field ${name} must be a u32`);
  return v;
}
function str(v, name) {
  if (typeof v !== 'string') throw bad(`field ${name} must be a string`);
  return v;
}
function bool(v, name) {
  if (typeof v !== 'boolean') throw bad(`field ${name} must be a bool`);
  return v;
}
function deviceId(v) {
  const dev = u32(v, 'device_id');
  if (dev < 1 || dev > 127) throw bad('field device_id must be 1..127');
  return dev;
}
function address(r, name) {
  const a = field(r, name);
  if (typeof a !== 'object') throw bad(`field ${name} must be an address`);
  return S.ProtocolAddress.new(str(field(a, 'name'), 'name'), deviceId(field(a, 'device_id')));
}
function payload(r) {
  if (opt(r, 'text') !== undefined) return new Uint8Array(Buffer.from(str(r.text, 'text'), 'utf8'));
  return unhex(field(r, 'plaintext'), 'plaintext');
}
function uuid(r, name) {
  const s = str(field(r, name), name);
  if (!/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(s)) {
    throw bad(`field ${name} must be a UUID`);
  }
  return s.toLowerCase();
}
const addrKey = (a) => `${a.name()}.${a.deviceId()}`;
const plain = (pt) => ({ plaintext: hex(pt), text: Buffer.from(pt).toString('utf8') });

// Stores keep serialized records, as an application would, so that a failed library
// call cannot leave a half-changed live object behind.
class Identities extends S.IdentityKeyStore {
  constructor(pair, regId, trustAll) {
    super(); this.pair = pair; this.regId = regId; this.trustAll = trustAll; this.known = new Map();
  }
  async getIdentityKey() { return this.pair.privateKey; }
  async getLocalRegistrationId() { return this.regId; }
  async saveIdentity(a, k) {
    const old = this.known.get(addrKey(a));
    this.known.set(addrKey(a), k.serialize());
    return old && Buffer.compare(Buffer.from(old), Buffer.from(k.serialize())) !== 0
      ? S.IdentityChange.ReplacedExisting : S.IdentityChange.NewOrUnchanged;
  }
  async isTrustedIdentity(a, k) {
    const old = this.known.get(addrKey(a));
    return this.trustAll || !old || Buffer.compare(Buffer.from(old), Buffer.from(k.serialize())) === 0;
  }
  async getIdentity(a) { const b = this.known.get(addrKey(a)); return b ? S.PublicKey.deserialize(b) : null; }
}
class Sessions extends S.SessionStore {
  constructor() { super(); this.m = new Map(); }
  async saveSession(a, r) { this.m.set(addrKey(a), r.serialize()); }
  async getSession(a) { const b = this.m.get(addrKey(a)); return b ? S.SessionRecord.deserialize(b) : null; }
  async getExistingSessions(as) {
    return as.map((a) => {
      const b = this.m.get(addrKey(a));
      if (!b) throw new PeerError('NoSession', `no session with ${addrKey(a)}`);
      return S.SessionRecord.deserialize(b);
    });
  }
}
class SenderKeys extends S.SenderKeyStore {
  constructor() { super(); this.m = new Map(); }
  async saveSenderKey(a, d, r) { this.m.set(`${addrKey(a)}/${d}`, r.serialize()); }
  async getSenderKey(a, d) { const b = this.m.get(`${addrKey(a)}/${d}`); return b ? S.SenderKeyRecord.deserialize(b) : null; }
}
class RecordStore {
  constructor(cls) { this.cls = cls; this.m = new Map(); }
  put(id, r) { this.m.set(id, r.serialize()); }
  get(id) {
    const b = this.m.get(id);
    if (!b) throw new PeerError('InvalidKeyId', `no key with id ${id}`);
    return this.cls.deserialize(b);
  }
}
class PreKeys extends S.PreKeyStore {
  constructor() { super(); this.s = new RecordStore(S.PreKeyRecord); }
  async savePreKey(id, r) { this.s.put(id, r); }
  async getPreKey(id) { return this.s.get(id); }
  async removePreKey(id) { this.s.m.delete(id); }
}
class SignedPreKeys extends S.SignedPreKeyStore {
  constructor() { super(); this.s = new RecordStore(S.SignedPreKeyRecord); }
  async saveSignedPreKey(id, r) { this.s.put(id, r); }
  async getSignedPreKey(id) { return this.s.get(id); }
}
// One-time Kyber prekeys are deleted once used; a last-resort one stays, and a second
// session from the same (Kyber id, signed prekey id, base key) is refused as a replay, as
// the facts describe a Signal client's store doing.
class KyberPreKeys extends S.KyberPreKeyStore {
  constructor() { super(); this.s = new RecordStore(S.KyberPreKeyRecord); this.lastResort = new Set(); this.used = new Set(); }
  async saveKyberPreKey(id, r, lastResort = true) {
    this.s.put(id, r);
    if (lastResort) this.lastResort.add(id); else this.lastResort.delete(id);
  }
  async getKyberPreKey(id) { return this.s.get(id); }
  async markKyberPreKeyUsed(id, signedId, baseKey) {
    if (!this.lastResort.has(id)) { this.s.m.delete(id); return; }
    const use = `${id}/${signedId}/${hex(baseKey.serialize())}`;
    if (this.used.has(use)) throw new PeerError('InvalidKyberPreKeyUse', `last-resort Kyber prekey ${id} reused`);
    this.used.add(use);
  }
}

let me = null;
function device() {
  if (!me) throw new PeerError('NoIdentity', 'call generate_identity first');
  return me;
}
const ownAddress = () => S.ProtocolAddress.new(device().name, device().deviceId);

function senderInfo(cert) {
  return { name: cert.senderUuid(), device_id: cert.senderDeviceId() };
}

async function innerMessage(r, d, bytes) {
  const dist = opt(r, 'distribution_id') !== undefined ? uuid(r, 'distribution_id') : undefined;
  if (dist !== undefined) return S.groupEncrypt(ownAddress(), dist, d.senderKeys, bytes);
  return S.signalEncrypt(bytes, address(r, 'address'), ownAddress(), d.sessions, d.ids);
}

const ops = {
  hello: async () => ({
    impl: 'libsignal-client', version: LIB_VERSION, message_version: 4,
    sender_keys: true, sealed_sender: true,
  }),

  generate_identity: async (r) => {
    const name = str(field(r, 'name'), 'name');
    const devId = deviceId(field(r, 'device_id'));
    let pair;
    if (opt(r, 'identity_private') !== undefined) {
      const priv = S.PrivateKey.deserialize(unhex(r.identity_private, 'identity_private'));
      pair = new S.IdentityKeyPair(priv.getPublicKey(), priv);
    } else {
      pair = S.IdentityKeyPair.generate();
    }
    const regId = opt(r, 'registration_id') !== undefined
      ? u32(r.registration_id, 'registration_id') : 1 + Math.floor(Math.random() * 16380);
    const trustAll = opt(r, 'trust_all') !== undefined ? bool(r.trust_all, 'trust_all') : false;
    me = {
      name, deviceId: devId, pair, ids: new Identities(pair, regId, trustAll), sessions: new Sessions(),
      senderKeys: new SenderKeys(), preKeys: new PreKeys(), signedPreKeys: new SignedPreKeys(),
      kyberPreKeys: new KyberPreKeys(), nextId: 1,
    };
    return {
      name, device_id: devId, registration_id: regId,
      identity_key: hex(pair.publicKey.serialize()), identity_private: hex(pair.privateKey.serialize()),
    };
  },

  bundle: async (r) => {
    const d = device();
    const spkId = opt(r, 'signed_prekey_id') !== undefined ? u32(r.signed_prekey_id, 'signed_prekey_id') : d.nextId;
    const oneTime = opt(r, 'one_time') !== undefined ? bool(r.one_time, 'one_time') : true;
    const pkId = opt(r, 'prekey_id') !== undefined ? u32(r.prekey_id, 'prekey_id') : d.nextId;
    const spk = opt(r, 'signed_prekey_private') !== undefined
      ? S.PrivateKey.deserialize(unhex(r.signed_prekey_private, 'signed_prekey_private')) : S.PrivateKey.generate();
    const pk = opt(r, 'prekey_private') !== undefined
      ? S.PrivateKey.deserialize(unhex(r.prekey_private, 'prekey_private')) : S.PrivateKey.generate();
    const kem = S.KEMKeyPair.generate();
    const kyberId = opt(r, 'kyber_prekey_id') !== undefined ? u32(r.kyber_prekey_id, 'kyber_prekey_id') : d.nextId;
    const lastResort = opt(r, 'kyber_last_resort') !== undefined ? bool(r.kyber_last_resort, 'kyber_last_resort') : true;
    d.nextId = Math.max(d.nextId, spkId, pkId, kyberId) + 1;
    const spkSig = d.pair.privateKey.sign(spk.getPublicKey().serialize());
    const kemSig = d.pair.privateKey.sign(kem.getPublicKey().serialize());
    const now = Date.now();
    await d.signedPreKeys.saveSignedPreKey(spkId, S.SignedPreKeyRecord.new(spkId, now, spk.getPublicKey(), spk, spkSig));
    await d.kyberPreKeys.saveKyberPreKey(kyberId, S.KyberPreKeyRecord.new(kyberId, now, kem, kemSig), lastResort);
    if (oneTime) await d.preKeys.savePreKey(pkId, S.PreKeyRecord.new(pkId, pk.getPublicKey(), pk));
    return {
      bundle: {
        registration_id: d.ids.regId, device_id: d.deviceId, identity_key: hex(d.pair.publicKey.serialize()),
        signed_prekey_id: spkId, signed_prekey: hex(spk.getPublicKey().serialize()), signed_prekey_signature: hex(spkSig),
        prekey_id: oneTime ? pkId : null, prekey: oneTime ? hex(pk.getPublicKey().serialize()) : null,
        kyber_prekey_id: kyberId, kyber_prekey: hex(kem.getPublicKey().serialize()), kyber_prekey_signature: hex(kemSig),
      },
    };
  },

  process_bundle: async (r) => {
    const d = device();
    const a = address(r, 'address');
    const b = field(r, 'bundle');
    const identity = S.PublicKey.deserialize(unhex(field(b, 'identity_key'), 'identity_key'));
    const hasPre = opt(b, 'prekey') !== undefined;
    let kyberId; let kyber; let kyberSig;
    if (opt(b, 'kyber_prekey') !== undefined) {
      kyberId = u32(field(b, 'kyber_prekey_id'), 'kyber_prekey_id');
      kyber = S.KEMPublicKey.deserialize(unhex(b.kyber_prekey, 'kyber_prekey'));
      kyberSig = unhex(field(b, 'kyber_prekey_signature'), 'kyber_prekey_signature');
    } else if (opt(r, 'identity_private') !== undefined) {
      const owner = S.PrivateKey.deserialize(unhex(r.identity_private, 'identity_private'));
      if (Buffer.compare(Buffer.from(owner.getPublicKey().serialize()), Buffer.from(identity.serialize())) !== 0) {
        throw bad('identity_private does not belong to the bundle');
      }
      kyber = S.KEMKeyPair.generate().getPublicKey();
      kyberId = 0x7fff;
      kyberSig = owner.sign(kyber.serialize());
    } else {
      throw new PeerError('MissingKyberPreKey', 'libsignal 0.103 needs a Kyber prekey in every bundle');
    }
    const bundle = S.PreKeyBundle.new(
      u32(field(b, 'registration_id'), 'registration_id'), u32(field(b, 'device_id'), 'device_id'),
      hasPre ? u32(field(b, 'prekey_id'), 'prekey_id') : null,
      hasPre ? S.PublicKey.deserialize(unhex(b.prekey, 'prekey')) : null,
      u32(field(b, 'signed_prekey_id'), 'signed_prekey_id'),
      S.PublicKey.deserialize(unhex(field(b, 'signed_prekey'), 'signed_prekey')),
      unhex(field(b, 'signed_prekey_signature'), 'signed_prekey_signature'), identity, kyberId, kyber, kyberSig);
    await S.processPreKeyBundle(bundle, a, ownAddress(), d.sessions, d.ids);
    return {};
  },

  encrypt: async (r) => {
    const d = device();
    const m = await S.signalEncrypt(payload(r), address(r, 'address'), ownAddress(), d.sessions, d.ids);
    return { type: m.type(), ciphertext: hex(m.serialize()) };
  },

  decrypt: async (r) => {
    const d = device();
    const a = address(r, 'address');
    const ty = u32(field(r, 'type'), 'type');
    const bytes = unhex(field(r, 'ciphertext'), 'ciphertext');
    let pt;
    if (ty === 2) {
      pt = await S.signalDecrypt(S.SignalMessage.deserialize(bytes), a, ownAddress(), d.sessions, d.ids);
    } else if (ty === 3) {
      pt = await S.signalDecryptPreKey(S.PreKeySignalMessage.deserialize(bytes), a, ownAddress(), d.sessions, d.ids,
        d.preKeys, d.signedPreKeys, d.kyberPreKeys);
    } else {
      throw new PeerError('InvalidMessage', `unknown message type ${ty}`);
    }
    return plain(pt);
  },

  has_session: async (r) => {
    const s = await device().sessions.getSession(address(r, 'address'));
    return { has_session: !!s && s.hasCurrentState() };
  },

  // Not in PEER_PROTOCOL: the serialized SessionRecord (libsignal's storage.proto
  // RecordStructure), for the v4 tests' byte-for-byte derivation checks.
  session_record: async (r) => {
    const s = await device().sessions.getSession(address(r, 'address'));
    if (!s) throw new PeerError('NoSession', 'no session');
    return { record: hex(s.serialize()) };
  },

  sign: async (r) => ({ signature: hex(device().pair.privateKey.sign(unhex(field(r, 'message'), 'message'))) }),

  verify: async (r) => {
    const key = S.PublicKey.deserialize(unhex(field(r, 'public_key'), 'public_key'));
    return { valid: key.verify(unhex(field(r, 'message'), 'message'), unhex(field(r, 'signature'), 'signature')) };
  },

  group_create: async (r) => {
    const d = device();
    const dist = opt(r, 'distribution_id') !== undefined ? uuid(r, 'distribution_id') : require('crypto').randomUUID();
    const rotate = opt(r, 'rotate') !== undefined ? bool(r.rotate, 'rotate') : false;
    const layout = opt(r, 'layout') !== undefined ? str(r.layout, 'layout') : 'current';
    if (layout === 'legacy') throw new PeerError('Unsupported', 'layout "legacy" is unsupported by this peer');
    if (layout !== 'current') throw bad('field layout must be "current" or "legacy"');
    if (rotate) d.senderKeys.m.delete(`${addrKey(ownAddress())}/${dist}`);
    const skdm = await S.SenderKeyDistributionMessage.create(ownAddress(), dist, d.senderKeys);
    return { distribution_id: dist, skdm: hex(skdm.serialize()) };
  },

  group_process: async (r) => {
    const d = device();
    const sender = address(r, 'sender');
    const skdm = S.SenderKeyDistributionMessage.deserialize(unhex(field(r, 'skdm'), 'skdm'));
    await S.processSenderKeyDistributionMessage(sender, skdm, d.senderKeys);
    return {};
  },

  group_encrypt: async (r) => {
    const d = device();
    const m = await S.groupEncrypt(ownAddress(), uuid(r, 'distribution_id'), d.senderKeys, payload(r));
    return { ciphertext: hex(m.serialize()) };
  },

  group_decrypt: async (r) => {
    const d = device();
    return plain(await S.groupDecrypt(address(r, 'sender'), d.senderKeys, unhex(field(r, 'ciphertext'), 'ciphertext')));
  },

  sender_cert: async (r) => {
    const d = device();
    const key = (name) => (opt(r, name) !== undefined ? S.PrivateKey.deserialize(unhex(r[name], name)) : S.PrivateKey.generate());
    const root = key('trust_root_private');
    const server = key('server_key_private');
    const keyId = opt(r, 'server_key_id') !== undefined ? u32(r.server_key_id, 'server_key_id') : 1;
    const e164 = opt(r, 'e164') !== undefined ? str(r.e164, 'e164') : null;
    const exp = opt(r, 'expiration') !== undefined ? r.expiration : Date.now() + 86400000;
    if (!Number.isSafeInteger(exp) || exp < 0) throw bad('field expiration must be a u64');
    const sc = S.ServerCertificate.new(keyId, server.getPublicKey(), root);
    const cert = S.SenderCertificate.new(d.name, e164, d.deviceId, d.pair.publicKey, exp, sc, server);
    return {
      trust_root: hex(root.getPublicKey().serialize()), trust_root_private: hex(root.serialize()),
      server_certificate: hex(sc.serialize()), sender_cert: hex(cert.serialize()),
    };
  },

  sealed_encrypt: async (r) => {
    const d = device();
    const a = address(r, 'address');
    const cert = S.SenderCertificate.deserialize(unhex(field(r, 'sender_cert'), 'sender_cert'));
    const version = opt(r, 'version') !== undefined ? u32(r.version, 'version') : 1;
    if (version !== 1 && version !== 2) throw bad('field version must be 1 or 2');
    const hint = opt(r, 'content_hint') !== undefined ? u32(r.content_hint, 'content_hint') : 0;
    const groupId = opt(r, 'group_id') !== undefined ? unhex(r.group_id, 'group_id') : null;
    const bytes = payload(r);
    // Check everything the seal needs before the inner encryption advances a chain.
    if (!(await d.ids.getIdentity(a))) throw new PeerError('NoSession', `no identity known for ${addrKey(a)}`);
    if (version === 2) await d.sessions.getExistingSessions([a]);
    const inner = await innerMessage(r, d, bytes);
    const usmc = S.UnidentifiedSenderMessageContent.new(inner, cert, hint, groupId);
    if (version === 2) {
      const multi = await S.sealedSenderMultiRecipientEncrypt(usmc, [a], d.ids, d.sessions);
      return {
        inner_type: inner.type(), ciphertext: hex(S.sealedSenderMultiRecipientMessageForSingleRecipient(multi)),
        multi: hex(multi),
      };
    }
    return { inner_type: inner.type(), ciphertext: hex(await S.sealedSenderEncrypt(usmc, a, d.ids)) };
  },

  // Not in the protocol: the server's split of a multi-recipient (0x23) message into
  // the one recipient's 0x22 message.
  split_multi: async (r) => ({
    ciphertext: hex(S.sealedSenderMultiRecipientMessageForSingleRecipient(unhex(field(r, 'multi'), 'multi'))),
  }),

  sealed_decrypt: async (r) => {
    const d = device();
    const bytes = unhex(field(r, 'ciphertext'), 'ciphertext');
    const root = S.PublicKey.deserialize(unhex(field(r, 'trust_root'), 'trust_root'));
    const at = opt(r, 'timestamp') !== undefined ? r.timestamp : Date.now();
    if (!Number.isSafeInteger(at) || at < 0) throw bad('field timestamp must be a u64');
    const usmc = await S.sealedSenderDecryptToUsmc(bytes, d.ids);
    const cert = usmc.senderCertificate();
    const out = {
      sender: senderInfo(cert), sender_e164: cert.senderE164(), inner_type: usmc.msgType(),
      content_hint: usmc.contentHint(), group_id: usmc.groupId() ? hex(usmc.groupId()) : null,
    };
    if (usmc.msgType() === 7) {
      if (!cert.validate(root, at)) throw new PeerError('InvalidCertificate', 'sender certificate did not validate');
      const pt = await S.groupDecrypt(S.ProtocolAddress.new(out.sender.name, out.sender.device_id), d.senderKeys, usmc.contents());
      return { ...out, ...plain(pt) };
    }
    const res = await S.sealedSenderDecryptMessage(bytes, root, at, null, d.name, d.deviceId, d.sessions, d.ids,
      d.preKeys, d.signedPreKeys, d.kyberPreKeys);
    return { ...out, ...plain(res.message()) };
  },
};

for (const op of ['fingerprint', 'media_encrypt', 'media_decrypt']) {
  ops[op] = async () => { throw new PeerError('Unsupported', `this peer does not implement ${op}`); };
}

function errorReply(e) {
  if (e instanceof PeerError) return { error: e.message, code: e.peerCode };
  if (e && typeof e.code === 'number' && S.ErrorCode[e.code] !== undefined) {
    return { error: String(e.message), code: S.ErrorCode[e.code] };
  }
  return { error: String(e && e.message), code: (e && e.name) || 'Error' };
}

const out = (v) => process.stdout.write(JSON.stringify(v) + '\n');
const rl = readline.createInterface({ input: process.stdin });
let chain = Promise.resolve();
rl.on('line', (line) => {
  chain = chain.then(async () => {
    if (line.trim() === '') return;
    let req;
    try { req = JSON.parse(line); } catch (e) {
      out({ id: null, ok: false, error: `invalid JSON: ${e.message}`, code: 'BadRequest' });
      return;
    }
    const id = req && typeof req === 'object' && req.id !== undefined ? req.id : null;
    if (!req || typeof req !== 'object' || typeof req.op !== 'string') {
      out({ id, ok: false, error: 'missing field op', code: 'BadRequest' });
      return;
    }
    if (req.op === 'quit') { out({ id, ok: true }); process.exit(0); }
    const f = Object.prototype.hasOwnProperty.call(ops, req.op) ? ops[req.op] : null;
    if (!f) { out({ id, ok: false, error: `unknown op ${req.op}`, code: 'UnknownOp' }); return; }
    try {
      out({ ...(await f(req)), id, ok: true });
    } catch (e) {
      process.stderr.write(`peer.js: ${req.op}: ${e && e.stack}\n`);
      out({ id, ok: false, ...errorReply(e) });
    }
  });
});
rl.on('close', () => chain.then(() => process.exit(0)));
