'use strict';
// Captures known-answer vectors from the official @signalapp/libsignal-client 0.103.0
// (npm; AGPL-3.0, so only ever run as a separate process, never linked or copied):
//
//   NODE_PATH=tests/official_interop/node_modules node tests/vectors/capture/official_libsignal_client.js \
//     > tests/vectors/official_libsignal_client.json
//
// Only the library's public API is called. What it computes is recorded as it came out:
// nothing is re-derived here, and nothing in the output was computed by confide.
//
// Fixed keys (SHA-256("confide-kat:" + label), clamped, through PrivateKey.deserialize):
// Alice's and Bob's identities, Bob's signed and one-time prekeys, the trust root and
// the server key. Not fixable through the API, so drawn by the library once and
// recorded: Bob's Kyber prekey (KEMKeyPair.generate; its record as KyberPreKeyRecord
// serializes it, and the secret key as KEMSecretKey serializes it), the sender-key chain
// (SenderKeyDistributionMessage.create; chain id, iteration and chain key as the
// message's getters give them). Every signature, ephemeral key, base key and Kyber
// encapsulation is the library's own randomness, so a second run gives other bytes for
// the same keys: the output was captured once and committed, and confide's fast tests
// (tests/known_answers.rs) replay it without a peer process.
//
// Before printing, a second libsignal device holding Bob's keys reads every captured
// message, so a capture that libsignal itself cannot read is never written.
//
// Layout: libsignal has only the current sender-key layout (distribution id and chain
// id in every message); the legacy layout confide also speaks cannot come from here.

const nodeCrypto = require('crypto');
const S = require('@signalapp/libsignal-client');
const VERSION = require('@signalapp/libsignal-client/package.json').version;

const hex = (b) => Buffer.from(b).toString('hex');
const bytes = (s) => new Uint8Array(Buffer.from(s, 'utf8'));
const addrKey = (a) => `${a.name()}.${a.deviceId()}`;

function fixedPrivate(label) {
  const k = nodeCrypto.createHash('sha256').update('confide-kat:' + label).digest();
  k[0] &= 248;
  k[31] &= 127;
  k[31] |= 64;
  return new Uint8Array(k);
}
const privateKey = (label) => S.PrivateKey.deserialize(fixedPrivate(label));

// Stores keep serialized records, as peer.js's do.
class Identities extends S.IdentityKeyStore {
  constructor(pair, regId) { super(); this.pair = pair; this.regId = regId; this.known = new Map(); }
  async getIdentityKey() { return this.pair.privateKey; }
  async getLocalRegistrationId() { return this.regId; }
  async saveIdentity(a, k) { this.known.set(addrKey(a), k.serialize()); return S.IdentityChange.NewOrUnchanged; }
  async isTrustedIdentity() { return true; }
  async getIdentity(a) { const b = this.known.get(addrKey(a)); return b ? S.PublicKey.deserialize(b) : null; }
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
class PreKeys extends S.PreKeyStore {
  constructor() { super(); this.m = new Map(); }
  async savePreKey(id, r) { this.m.set(id, r.serialize()); }
  async getPreKey(id) { return S.PreKeyRecord.deserialize(this.m.get(id)); }
  async removePreKey(id) { this.m.delete(id); }
}
class SignedPreKeys extends S.SignedPreKeyStore {
  constructor() { super(); this.m = new Map(); }
  async saveSignedPreKey(id, r) { this.m.set(id, r.serialize()); }
  async getSignedPreKey(id) { return S.SignedPreKeyRecord.deserialize(this.m.get(id)); }
}
class KyberPreKeys extends S.KyberPreKeyStore {
  constructor() { super(); this.m = new Map(); }
  async saveKyberPreKey(id, r) { this.m.set(id, r.serialize()); }
  async getKyberPreKey(id) { return S.KyberPreKeyRecord.deserialize(this.m.get(id)); }
  async markKyberPreKeyUsed() {}
}

// A protobuf reader just big enough to pick fields out of the session record the
// library serialized (storage.proto RecordStructure, SPQR's PqRatchetState).
function fields(buf) {
  const out = [];
  let i = 0;
  const varint = () => {
    let v = 0n; let shift = 0n;
    for (;;) {
      const b = buf[i++];
      if (b === undefined) throw new Error('capture: truncated varint');
      v |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return v;
      shift += 7n;
    }
  };
  while (i < buf.length) {
    const key = Number(varint());
    const tag = key >> 3; const wire = key & 7;
    if (wire === 0) out.push({ tag, value: varint() });
    else if (wire === 2) { const n = Number(varint()); out.push({ tag, value: buf.subarray(i, i + n) }); i += n; }
    else if (wire === 1) { out.push({ tag, value: buf.subarray(i, i + 8) }); i += 8; }
    else if (wire === 5) { out.push({ tag, value: buf.subarray(i, i + 4) }); i += 4; }
    else throw new Error(`capture: wire type ${wire}`);
  }
  return out;
}
const one = (buf, tag) => {
  const f = fields(buf).find((x) => x.tag === tag);
  if (!f) throw new Error(`capture: no field ${tag}`);
  return f.value;
};
const all = (buf, tag) => fields(buf).filter((x) => x.tag === tag).map((x) => x.value);

const ALICE = 'a11ce000-ca70-4000-8000-00000000a11c';
const BOB = 'b0b00000-ca70-4000-8000-000000000b0b';
const DISTRIBUTION = '0f0f0f0f-ca70-4000-8000-0000000000d1';
const GROUP_ID = hex(nodeCrypto.createHash('sha256').update('confide-kat:group id').digest().subarray(0, 16));
const EXPIRATION = 1800000000000; // 2027-01-15; the tests read at 1_700_000_000_000.
const SPK_ID = 7; const OPK_ID = 31; const KYBER_ID = 401;
const PREKEY_TIMESTAMP = 1690000000000;

function device(name, label, regId) {
  const priv = privateKey(label);
  const pair = new S.IdentityKeyPair(priv.getPublicKey(), priv);
  return {
    addr: S.ProtocolAddress.new(name, 1), pair, ids: new Identities(pair, regId), sessions: new Sessions(),
    senderKeys: new SenderKeys(), preKeys: new PreKeys(), signedPreKeys: new SignedPreKeys(),
    kyberPreKeys: new KyberPreKeys(),
  };
}

async function main() {
  const alice = device(ALICE, 'alice identity', 1111);

  // Bob's prekeys, with fixed EC keys and the one Kyber key the library draws.
  const bobIdentity = privateKey('bob identity');
  const spk = privateKey('bob signed prekey');
  const opk = privateKey('bob one-time prekey');
  const spkSig = bobIdentity.sign(spk.getPublicKey().serialize());
  const kem = S.KEMKeyPair.generate();
  const kemSig = bobIdentity.sign(kem.getPublicKey().serialize());
  const spkRecord = S.SignedPreKeyRecord.new(SPK_ID, PREKEY_TIMESTAMP, spk.getPublicKey(), spk, spkSig);
  const opkRecord = S.PreKeyRecord.new(OPK_ID, opk.getPublicKey(), opk);
  const kyberRecord = S.KyberPreKeyRecord.new(KYBER_ID, PREKEY_TIMESTAMP, kem, kemSig);

  // Alice starts a v4 session from Bob's bundle.
  const bundle = S.PreKeyBundle.new(2222, 1, OPK_ID, opk.getPublicKey(), SPK_ID, spk.getPublicKey(), spkSig,
    bobIdentity.getPublicKey(), KYBER_ID, kem.getPublicKey(), kemSig);
  const bobAddr = S.ProtocolAddress.new(BOB, 1);
  await S.processPreKeyBundle(bundle, bobAddr, alice.addr, alice.sessions, alice.ids);

  const v4 = [];
  let pqxdh = null;
  // Messages 3 and 4 are encrypted and never recorded: Bob's chain must skip them.
  for (let i = 0; i < 6; i++) {
    const text = `alice to bob, v4 #${i}`;
    const m = await S.signalEncrypt(bytes(text), bobAddr, alice.addr, alice.sessions, alice.ids);
    if (m.type() !== 3) throw new Error('capture: expected a prekey message');
    if (i === 0) {
      // What libsignal's Alice holds after PQXDH: its receiving chain (Bob's signed
      // prekey, index 0) is PQXDH's chain key; SPQR's negotiation record holds the auth
      // key; the root key is already one ratchet step on.
      const session = one((await alice.sessions.getSession(bobAddr)).serialize(), 1);
      const receiver = all(session, 7);
      if (receiver.length !== 1) throw new Error('capture: one receiver chain expected');
      const ck = one(receiver[0], 3);
      const negotiation = one(one(session, 15), 1);
      pqxdh = {
        session_version: Number(one(session, 1)),
        receiver_chain_ratchet_key: hex(one(receiver[0], 1)),
        receiver_chain_index: Number(fields(ck).find((f) => f.tag === 1)?.value ?? 0n),
        chain_key: hex(one(ck, 2)),
        spqr_auth_key: hex(one(negotiation, 1)),
        alice_base_key: hex(one(session, 13)),
      };
    }
    if (i !== 3 && i !== 4) v4.push({ index: i, type: m.type(), plaintext: hex(bytes(text)), serialized: hex(m.serialize()) });
  }

  // Sender keys: Alice's chain for the group, iterations 0, 1, 2, 5 and 40 recorded.
  const skdm = await S.SenderKeyDistributionMessage.create(alice.addr, DISTRIBUTION, alice.senderKeys);
  const group = [];
  const groupEncrypt = async (text) => {
    const m = await S.groupEncrypt(alice.addr, DISTRIBUTION, alice.senderKeys, bytes(text));
    const parsed = S.SenderKeyMessage.deserialize(m.serialize());
    return { m, iteration: parsed.iteration(), chain_id: parsed.chainId(), text };
  };
  for (let i = 0; i <= 40; i++) {
    const g = await groupEncrypt(`alice to the group #${i}`);
    if (g.iteration !== i) throw new Error('capture: unexpected iteration');
    if ([0, 1, 2, 5, 40].includes(i)) {
      group.push({ iteration: g.iteration, chain_id: g.chain_id, plaintext: hex(bytes(g.text)), serialized: hex(g.m.serialize()) });
    }
  }

  // Sealed sender under a fixed trust root and server key.
  const root = privateKey('trust root');
  const server = privateKey('server key');
  const serverCert = S.ServerCertificate.new(3, server.getPublicKey(), root);
  const senderCert = S.SenderCertificate.new(ALICE, '+14155550101', 1, alice.pair.publicKey, EXPIRATION, serverCert, server);
  const sealed = [];
  // v1 around a group message (iteration 41), with a content hint and a group id.
  {
    const g = await groupEncrypt('sealed v1 to the group');
    const usmc = S.UnidentifiedSenderMessageContent.new(g.m, senderCert, 1, new Uint8Array(Buffer.from(GROUP_ID, 'hex')));
    const ct = await S.sealedSenderEncrypt(usmc, bobAddr, alice.ids);
    sealed.push({ label: 'v1 sender key', version: 1, serialized: hex(ct), content_type: 7, content_hint: 1,
      group_id: GROUP_ID, contents: hex(g.m.serialize()), iteration: g.iteration, plaintext: hex(bytes(g.text)) });
  }
  // v2 around a group message (iteration 42): the multi-recipient message as sent and
  // the server's split for Bob, by the library's own helper.
  {
    const g = await groupEncrypt('sealed v2 to the group');
    const usmc = S.UnidentifiedSenderMessageContent.new(g.m, senderCert, 2, new Uint8Array(Buffer.from(GROUP_ID, 'hex')));
    const multi = await S.sealedSenderMultiRecipientEncrypt(usmc, [bobAddr], alice.ids, alice.sessions);
    const single = S.sealedSenderMultiRecipientMessageForSingleRecipient(multi);
    sealed.push({ label: 'v2 sender key', version: 2, serialized: hex(single), multi: hex(multi), content_type: 7,
      content_hint: 2, group_id: GROUP_ID, contents: hex(g.m.serialize()), iteration: g.iteration,
      plaintext: hex(bytes(g.text)) });
  }
  // v1 around a 1:1 message (Alice's seventh, index 6, still a prekey message).
  {
    const text = 'sealed v1, one to one';
    const inner = await S.signalEncrypt(bytes(text), bobAddr, alice.addr, alice.sessions, alice.ids);
    const usmc = S.UnidentifiedSenderMessageContent.new(inner, senderCert, 0, null);
    const ct = await S.sealedSenderEncrypt(usmc, bobAddr, alice.ids);
    sealed.push({ label: 'v1 one to one', version: 1, serialized: hex(ct), content_type: inner.type(), content_hint: 0,
      group_id: null, contents: hex(inner.serialize()), index: 6, plaintext: hex(bytes(text)) });
  }

  // libsignal's own Bob, on the same keys, reads everything before it is written out.
  const bob = device(BOB, 'bob identity', 2222);
  await bob.signedPreKeys.saveSignedPreKey(SPK_ID, spkRecord);
  await bob.preKeys.savePreKey(OPK_ID, opkRecord);
  await bob.kyberPreKeys.saveKyberPreKey(KYBER_ID, kyberRecord);
  const check = (got, want, what) => {
    if (hex(got) !== want) throw new Error(`capture: libsignal's Bob read ${what} wrong`);
  };
  for (const m of [...v4].reverse()) {
    const pt = await S.signalDecryptPreKey(S.PreKeySignalMessage.deserialize(Buffer.from(m.serialized, 'hex')),
      alice.addr, bob.addr, bob.sessions, bob.ids, bob.preKeys, bob.signedPreKeys, bob.kyberPreKeys);
    check(pt, m.plaintext, `v4 #${m.index}`);
  }
  await S.processSenderKeyDistributionMessage(alice.addr, S.SenderKeyDistributionMessage.deserialize(skdm.serialize()), bob.senderKeys);
  for (const m of [group[4], group[0], group[3], group[2], group[1]]) {
    check(await S.groupDecrypt(alice.addr, bob.senderKeys, Buffer.from(m.serialized, 'hex')), m.plaintext, `group #${m.iteration}`);
  }
  const rootPublic = root.getPublicKey();
  for (const m of sealed) {
    const usmc = await S.sealedSenderDecryptToUsmc(Buffer.from(m.serialized, 'hex'), bob.ids);
    const cert = usmc.senderCertificate();
    if (!cert.validate(rootPublic, 1700000000000)) throw new Error('capture: certificate did not validate');
    if (cert.validate(rootPublic, EXPIRATION + 1)) throw new Error('capture: expired certificate validated');
    check(usmc.contents(), m.contents, `${m.label} contents`);
    if (usmc.msgType() !== m.content_type || usmc.contentHint() !== m.content_hint) throw new Error('capture: usmc fields');
    const pt = m.content_type === 7
      ? await S.groupDecrypt(alice.addr, bob.senderKeys, usmc.contents())
      : await S.signalDecryptPreKey(S.PreKeySignalMessage.deserialize(usmc.contents()), alice.addr, bob.addr,
        bob.sessions, bob.ids, bob.preKeys, bob.signedPreKeys, bob.kyberPreKeys);
    check(pt, m.plaintext, m.label);
  }

  const out = {
    source: `npm @signalapp/libsignal-client ${VERSION}, captured by tests/vectors/capture/official_libsignal_client.js`,
    alice: {
      name: ALICE, device_id: 1, registration_id: 1111,
      identity_private: hex(fixedPrivate('alice identity')), identity_public: hex(alice.pair.publicKey.serialize()),
    },
    bob: {
      name: BOB, device_id: 1, registration_id: 2222,
      identity_private: hex(fixedPrivate('bob identity')), identity_public: hex(bobIdentity.getPublicKey().serialize()),
      signed_pre_key_id: SPK_ID, signed_pre_key_timestamp: PREKEY_TIMESTAMP,
      signed_pre_key_private: hex(fixedPrivate('bob signed prekey')), signed_pre_key_public: hex(spk.getPublicKey().serialize()),
      signed_pre_key_signature: hex(spkSig),
      pre_key_id: OPK_ID, pre_key_private: hex(fixedPrivate('bob one-time prekey')), pre_key_public: hex(opk.getPublicKey().serialize()),
      kyber_pre_key_id: KYBER_ID, kyber_pre_key_timestamp: PREKEY_TIMESTAMP,
      // Drawn by KEMKeyPair.generate: the record as KyberPreKeyRecord.serialize() gives
      // it (libsignal's storage format), and its parts by the library's getters.
      kyber_pre_key_record: hex(kyberRecord.serialize()),
      kyber_secret_key: hex(kyberRecord.secretKey().serialize()),
      kyber_public_key: hex(kyberRecord.publicKey().serialize()),
      kyber_signature: hex(kyberRecord.signature()),
    },
    group: {
      layout: 'current',
      distribution_id: DISTRIBUTION,
      skdm: hex(skdm.serialize()),
      chain_id: skdm.chainId(),
      iteration: skdm.iteration(),
      chain_key: hex(skdm.chainKey()),
      messages: group,
    },
    sealed: {
      trust_root_private: hex(fixedPrivate('trust root')), trust_root_public: hex(rootPublic.serialize()),
      server_key_id: 3, server_private: hex(fixedPrivate('server key')), server_public: hex(server.getPublicKey().serialize()),
      server_certificate: hex(serverCert.serialize()), sender_certificate: hex(senderCert.serialize()),
      sender_uuid: ALICE, sender_e164: '+14155550101', sender_device_id: 1, expiration: EXPIRATION,
      messages: sealed,
    },
    v4: {
      // From libsignal's Alice's session record after her first message (see above).
      pqxdh,
      messages: v4,
    },
  };
  process.stdout.write(JSON.stringify(out, null, 1) + '\n');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
