// One device backed by the official @signalapp/libsignal-client, speaking JSON lines
// (a subset of ../../../shared/interop/PEER_PROTOCOL.md's group and sealed-sender ops)
// on stdin/stdout, for confide's interop tests. Diagnostics go to stderr.
'use strict';
const S = require('@signalapp/libsignal-client');
const readline = require('readline');

const hex = (b) => Buffer.from(b).toString('hex');
const unhex = (s) => new Uint8Array(Buffer.from(s, 'hex'));
const addrKey = (a) => `${a.name()}.${a.deviceId()}`;

class Identities extends S.IdentityKeyStore {
  constructor(pair, regId) { super(); this.pair = pair; this.regId = regId; this.known = new Map(); }
  async getIdentityKey() { return this.pair.privateKey; }
  async getLocalRegistrationId() { return this.regId; }
  async saveIdentity(a, k) { this.known.set(addrKey(a), k); return S.IdentityChange.NewOrUnchanged; }
  async isTrustedIdentity() { return true; }
  async getIdentity(a) { return this.known.get(addrKey(a)) || null; }
}
class Sessions extends S.SessionStore {
  constructor() { super(); this.m = new Map(); }
  async saveSession(a, r) { this.m.set(addrKey(a), r.serialize()); }
  async getSession(a) { const b = this.m.get(addrKey(a)); return b ? S.SessionRecord.deserialize(b) : null; }
  async getExistingSessions(as) { return as.map((a) => S.SessionRecord.deserialize(this.m.get(addrKey(a)))); }
}
class SenderKeys extends S.SenderKeyStore {
  constructor() { super(); this.m = new Map(); }
  async saveSenderKey(a, d, r) { this.m.set(`${addrKey(a)}/${d}`, r.serialize()); }
  async getSenderKey(a, d) { const b = this.m.get(`${addrKey(a)}/${d}`); return b ? S.SenderKeyRecord.deserialize(b) : null; }
}

let me = null;
const addr = (a) => S.ProtocolAddress.new(a.name, a.device_id);

const ops = {
  hello: async () => ({ impl: 'libsignal-client', version: '0.103.0', sender_keys: true, sealed_sender: true }),
  generate_identity: async (r) => {
    const pair = S.IdentityKeyPair.generate();
    me = { name: r.name, device_id: r.device_id, pair, ids: new Identities(pair, r.registration_id || 4242),
      sessions: new Sessions(), keys: new SenderKeys() };
    return { identity_key: hex(pair.publicKey.serialize()), registration_id: me.ids.regId };
  },
  group_create: async (r) => {
    const skdm = await S.SenderKeyDistributionMessage.create(addr(me), r.distribution_id, me.keys);
    return { distribution_id: r.distribution_id, skdm: hex(skdm.serialize()) };
  },
  group_process: async (r) => {
    await S.processSenderKeyDistributionMessage(addr(r.sender), S.SenderKeyDistributionMessage.deserialize(unhex(r.skdm)), me.keys);
    return {};
  },
  group_encrypt: async (r) => {
    const m = await S.groupEncrypt(addr(me), r.distribution_id, me.keys, Buffer.from(r.text));
    return { ciphertext: hex(m.serialize()) };
  },
  group_decrypt: async (r) => {
    const pt = await S.groupDecrypt(addr(r.sender), me.keys, unhex(r.ciphertext));
    return { text: Buffer.from(pt).toString() };
  },
  // Learn a remote identity (and, with its private key, which only tests have, a
  // session for multi-recipient sealed sender, which libsignal requires).
  learn: async (r) => {
    const a = addr(r.address);
    const key = S.PublicKey.deserialize(unhex(r.identity_key));
    await me.ids.saveIdentity(a, key);
    if (r.identity_private) {
      const priv = S.PrivateKey.deserialize(unhex(r.identity_private));
      const spk = S.PrivateKey.generate();
      const kem = S.KEMKeyPair.generate();
      const bundle = S.PreKeyBundle.new(r.registration_id, r.address.device_id, null, null, 1, spk.getPublicKey(),
        priv.sign(spk.getPublicKey().serialize()), key, 1, kem.getPublicKey(), priv.sign(kem.getPublicKey().serialize()));
      await S.processPreKeyBundle(bundle, a, addr(me), me.sessions, me.ids);
    }
    return {};
  },
  sender_cert: async (r) => {
    const root = r.trust_root_private ? S.PrivateKey.deserialize(unhex(r.trust_root_private)) : S.PrivateKey.generate();
    const server = S.PrivateKey.generate();
    const sc = S.ServerCertificate.new(r.server_key_id ?? 1, server.getPublicKey(), root);
    const cert = S.SenderCertificate.new(me.name, r.e164 || null, me.device_id, me.pair.publicKey,
      r.expiration ?? Date.now() + 86400000, sc, server);
    return { trust_root: hex(root.getPublicKey().serialize()), trust_root_private: hex(root.serialize()),
      server_certificate: hex(sc.serialize()), sender_cert: hex(cert.serialize()) };
  },
  validate_cert: async (r) => {
    const cert = S.SenderCertificate.deserialize(unhex(r.sender_cert));
    return { valid: cert.validate(S.PublicKey.deserialize(unhex(r.trust_root)), r.timestamp),
      uuid: cert.senderUuid(), e164: cert.senderE164(), device_id: cert.senderDeviceId() };
  },
  sealed_encrypt: async (r) => {
    const m = await S.groupEncrypt(addr(me), r.distribution_id, me.keys, Buffer.from(r.text));
    const cert = S.SenderCertificate.deserialize(unhex(r.sender_cert));
    const usmc = S.UnidentifiedSenderMessageContent.new(m, cert, r.content_hint || 0,
      r.group_id ? unhex(r.group_id) : null);
    if (r.version === 2) {
      const multi = await S.sealedSenderMultiRecipientEncrypt(usmc, r.addresses.map(addr), me.ids, me.sessions);
      return { inner_type: 7, multi: hex(multi) };
    }
    const ct = await S.sealedSenderEncrypt(usmc, addr(r.address), me.ids);
    return { inner_type: 7, ciphertext: hex(ct) };
  },
  sealed_decrypt: async (r) => {
    const usmc = await S.sealedSenderDecryptToUsmc(unhex(r.ciphertext), me.ids);
    const cert = usmc.senderCertificate();
    if (!cert.validate(S.PublicKey.deserialize(unhex(r.trust_root)), r.timestamp ?? Date.now())) {
      const e = new Error('sender certificate did not validate'); e.code = 'InvalidCertificate'; throw e;
    }
    const sender = { name: cert.senderUuid(), device_id: cert.senderDeviceId() };
    const out = { sender, sender_e164: cert.senderE164(), inner_type: usmc.msgType(), content_hint: usmc.contentHint(),
      group_id: usmc.groupId() ? hex(usmc.groupId()) : null };
    if (usmc.msgType() === 7) {
      out.text = Buffer.from(await S.groupDecrypt(addr(sender), me.keys, usmc.contents())).toString();
    } else {
      out.contents = hex(usmc.contents());
    }
    return out;
  },
  split_multi: async (r) => ({ ciphertext: hex(S.sealedSenderMultiRecipientMessageForSingleRecipient(unhex(r.multi))) }),
};

const rl = readline.createInterface({ input: process.stdin });
let chain = Promise.resolve();
rl.on('line', (line) => {
  chain = chain.then(async () => {
    let req;
    try { req = JSON.parse(line); } catch (e) { process.stdout.write(JSON.stringify({ id: null, ok: false, error: 'invalid JSON', code: 'BadRequest' }) + '\n'); return; }
    if (req.op === 'quit') { process.stdout.write(JSON.stringify({ id: req.id, ok: true }) + '\n'); process.exit(0); }
    const f = ops[req.op];
    let reply;
    if (!f) reply = { ok: false, error: `unknown op ${req.op}`, code: 'UnknownOp' };
    else {
      try { reply = { ok: true, ...(await f(req)) }; } catch (e) {
        reply = { ok: false, error: String(e && e.message), code: (e && (e.code || e.name)) || 'Error' };
      }
    }
    process.stdout.write(JSON.stringify({ id: req.id, ...reply }) + '\n');
  });
});
rl.on('close', () => chain.then(() => process.exit(0)));
