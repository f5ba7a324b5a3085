'use strict';
// The bytes each v4 message of the official libsignal (@signalapp/libsignal-client 0.103.0)
// carries beyond v3, for the same message sequence as `cargo bench --bench v4`'s byte table
// (benches/v4.rs, `bytes_table`). Not a test and not run by cargo: run it by hand,
//
//   (cd tests/official_interop && npm ci) && node benches/v4_bytes.js
//
// libsignal 0.103 cannot make v3 sessions, so "v3" here is each message with its v4-only
// protobuf fields taken out and the lengths around them re-encoded: SignalMessage field 5
// (pq_ratchet) and 6 (addresses), PreKeySignalMessage fields 7 (Kyber prekey id) and 8
// (Kyber ciphertext). Everything else a v3 message has (ratchet key, counters, ciphertext,
// version byte, MAC) is the same size in both versions, so the difference is exactly what
// v4 adds. The addresses are not ServiceIds ("alice", "bob"), so libsignal leaves field 6
// out, as confide's `SessionRecord` API does.
//
// The sequence (every plaintext 140 bytes):
// - ping-pong: a fresh session from Bob's bundle (one-time EC prekey and Kyber prekey),
//   A→B (the PreKeySignalMessage), B→A, then 200 messages alternating A→B, B→A, ...
// - one-way: a fresh session the same way, A→B, B→A, then 200 messages A→B.
// The two establishing messages are reported on their own; the 200 are the table rows.

const path = require('path');
const S = require(path.join(__dirname, '../tests/official_interop/node_modules/@signalapp/libsignal-client'));
const LIB_VERSION = require(path.join(__dirname, '../tests/official_interop/node_modules/@signalapp/libsignal-client/package.json')).version;

const PAYLOAD = new Uint8Array(140).map((_, i) => i % 251);
const RUN = 200;

// ---- minimal protobuf walking (varints and length-delimited fields only, as these use)

function readVarint(buf, pos) {
  let v = 0n; let shift = 0n; let p = pos;
  for (;;) {
    const b = buf[p++];
    v |= BigInt(b & 0x7f) << shift;
    if (b < 0x80) return [v, p];
    shift += 7n;
  }
}
const varintLen = (n) => { let len = 1; while (n >= 0x80) { n = Math.floor(n / 128); len++; } return len; };

// The fields of a protobuf message as [fieldNumber, start, end, payloadStart] (bytes of the
// whole entry, tag included).
function fields(buf) {
  const out = [];
  let p = 0;
  while (p < buf.length) {
    const start = p;
    let tag; [tag, p] = readVarint(buf, p);
    const num = Number(tag >> 3n); const wire = Number(tag & 7n);
    let payloadStart = p;
    if (wire === 0) { [, p] = readVarint(buf, p); } else if (wire === 2) {
      let len; [len, p] = readVarint(buf, p); payloadStart = p; p += Number(len);
    } else if (wire === 1) { p += 8; } else if (wire === 5) { p += 4; } else { throw new Error(`wire type ${wire}`); }
    out.push([num, start, p, payloadStart]);
  }
  return out;
}

// A SignalMessage's size without fields 5 and 6: version byte, protobuf, 8-byte MAC.
function signalV3Size(bytes) {
  const body = bytes.subarray(1, bytes.length - 8);
  let size = 1 + 8;
  for (const [num, start, end] of fields(body)) if (num !== 5 && num !== 6) size += end - start;
  return size;
}

// A PreKeySignalMessage's size without fields 7 and 8, its inner SignalMessage (field 4)
// counted at its v3 size with its length prefix re-encoded.
function preKeyV3Size(bytes) {
  const body = bytes.subarray(1);
  let size = 1;
  for (const [num, start, end, payloadStart] of fields(body)) {
    if (num === 7 || num === 8) continue;
    if (num === 4) {
      const inner = signalV3Size(body.subarray(payloadStart, end));
      size += 1 + varintLen(inner) + inner;
    } else {
      size += end - start;
    }
  }
  return size;
}

// The SPQR header of a SignalMessage's pq_ratchet: epoch, key index, message type and
// chunk index (facts §2.5: version byte, varint epoch, varint index, type byte, varint
// chunk index for the types that carry a chunk).
const SPQR_TYPES = ['None', 'Hdr', 'Ek', 'EkCt1Ack', 'Ct1Ack', 'Ct1', 'Ct2'];
function spqrHeader(bytes) {
  const body = bytes.subarray(1, bytes.length - 8);
  for (const [num, , end, payloadStart] of fields(body)) {
    if (num !== 5 || end <= payloadStart) continue;
    const pq = body.subarray(payloadStart, end);
    let p = 1; let epoch; let index; let chunk = null;
    [epoch, p] = readVarint(pq, p);
    [index, p] = readVarint(pq, p);
    const type = pq[p++];
    if ([1, 2, 3, 5, 6].includes(type)) [chunk] = readVarint(pq, p);
    return { epoch: Number(epoch), index: Number(index), type: SPQR_TYPES[type], chunk: chunk === null ? null : Number(chunk) };
  }
  return null;
}

// ---- two in-memory devices

class Identities extends S.IdentityKeyStore {
  constructor(pair, regId) { super(); this.pair = pair; this.regId = regId; this.known = new Map(); }
  async getIdentityKey() { return this.pair.privateKey; }
  async getLocalRegistrationId() { return this.regId; }
  async saveIdentity(a, k) { this.known.set(a.toString(), k.serialize()); return S.IdentityChange.NewOrUnchanged; }
  async isTrustedIdentity() { return true; }
  async getIdentity(a) { const b = this.known.get(a.toString()); return b ? S.PublicKey.deserialize(b) : null; }
}
class Sessions extends S.SessionStore {
  constructor() { super(); this.m = new Map(); }
  async saveSession(a, r) { this.m.set(a.toString(), r.serialize()); }
  async getSession(a) { const b = this.m.get(a.toString()); return b ? S.SessionRecord.deserialize(b) : null; }
  async getExistingSessions(as) { return as.map((a) => S.SessionRecord.deserialize(this.m.get(a.toString()))); }
}
class Records {
  constructor(cls) { this.cls = cls; this.m = new Map(); }
  put(id, r) { this.m.set(id, r.serialize()); }
  get(id) { return this.cls.deserialize(this.m.get(id)); }
}
class PreKeys extends S.PreKeyStore {
  constructor() { super(); this.s = new Records(S.PreKeyRecord); }
  async savePreKey(id, r) { this.s.put(id, r); }
  async getPreKey(id) { return this.s.get(id); }
  async removePreKey(id) { this.s.m.delete(id); }
}
class SignedPreKeys extends S.SignedPreKeyStore {
  constructor() { super(); this.s = new Records(S.SignedPreKeyRecord); }
  async saveSignedPreKey(id, r) { this.s.put(id, r); }
  async getSignedPreKey(id) { return this.s.get(id); }
}
class KyberPreKeys extends S.KyberPreKeyStore {
  constructor() { super(); this.s = new Records(S.KyberPreKeyRecord); }
  async saveKyberPreKey(id, r) { this.s.put(id, r); }
  async getKyberPreKey(id) { return this.s.get(id); }
  async markKyberPreKeyUsed() {}
}

function device(name, regId) {
  const pair = S.IdentityKeyPair.generate();
  return {
    address: S.ProtocolAddress.new(name, 1), pair, ids: new Identities(pair, regId), sessions: new Sessions(),
    preKeys: new PreKeys(), signedPreKeys: new SignedPreKeys(), kyberPreKeys: new KyberPreKeys(),
  };
}

async function bundleOf(d) {
  const spk = S.PrivateKey.generate(); const pk = S.PrivateKey.generate(); const kem = S.KEMKeyPair.generate();
  const spkSig = d.pair.privateKey.sign(spk.getPublicKey().serialize());
  const kemSig = d.pair.privateKey.sign(kem.getPublicKey().serialize());
  await d.signedPreKeys.saveSignedPreKey(7, S.SignedPreKeyRecord.new(7, Date.now(), spk.getPublicKey(), spk, spkSig));
  await d.preKeys.savePreKey(9, S.PreKeyRecord.new(9, pk.getPublicKey(), pk));
  await d.kyberPreKeys.saveKyberPreKey(11, S.KyberPreKeyRecord.new(11, Date.now(), kem, kemSig));
  return S.PreKeyBundle.new(d.ids.regId, 1, 9, pk.getPublicKey(), 7, spk.getPublicKey(), spkSig,
    d.pair.publicKey, 11, kem.getPublicKey(), kemSig);
}

// One message from `tx` to `rx`: its total and v3-equivalent sizes and SPQR epoch.
async function send(tx, rx) {
  const m = await S.signalEncrypt(PAYLOAD, rx.address, tx.address, tx.sessions, tx.ids);
  const bytes = m.serialize();
  let v3; let epoch; let pt; let spqr = null;
  if (m.type() === S.CiphertextMessageType.PreKey) {
    v3 = preKeyV3Size(bytes);
    epoch = null;
    pt = await S.signalDecryptPreKey(S.PreKeySignalMessage.deserialize(bytes), tx.address, rx.address, rx.sessions,
      rx.ids, rx.preKeys, rx.signedPreKeys, rx.kyberPreKeys);
  } else {
    v3 = signalV3Size(bytes);
    spqr = spqrHeader(bytes);
    epoch = spqr ? spqr.epoch : null;
    pt = await S.signalDecrypt(S.SignalMessage.deserialize(bytes), tx.address, rx.address, rx.sessions, rx.ids);
  }
  if (Buffer.compare(Buffer.from(pt), Buffer.from(PAYLOAD)) !== 0) throw new Error('round trip failed');
  return { total: bytes.length, v3, extra: bytes.length - v3, epoch, spqr, prekey: m.type() === S.CiphertextMessageType.PreKey };
}

async function established() {
  const alice = device('alice', 1111); const bob = device('bob', 2222);
  await S.processPreKeyBundle(await bundleOf(bob), bob.address, alice.address, alice.sessions, alice.ids);
  const first = await send(alice, bob);
  const reply = await send(bob, alice);
  return { alice, bob, first, reply };
}

function summary(rows) {
  const extras = rows.map((r) => r.extra);
  const epochs = rows.map((r) => r.epoch).filter((e) => e !== null);
  return {
    messages: rows.length,
    mean_extra: extras.reduce((a, b) => a + b, 0) / rows.length,
    max_extra: Math.max(...extras),
    min_extra: Math.min(...extras),
    mean_total: rows.map((r) => r.total).reduce((a, b) => a + b, 0) / rows.length,
    last_epoch: epochs.length ? Math.max(...epochs) : null,
  };
}

async function main() {
  const pp = await established();
  const pingpong = [];
  for (let i = 0; i < RUN; i++) pingpong.push(i % 2 === 0 ? await send(pp.alice, pp.bob) : await send(pp.bob, pp.alice));
  const ow = await established();
  const oneway = [];
  for (let i = 0; i < RUN; i++) oneway.push(await send(ow.alice, ow.bob));
  const out = {
    impl: `libsignal-client ${LIB_VERSION}`,
    prekey_message: { total: pp.first.total, v3: pp.first.v3, extra: pp.first.extra },
    first_reply: { total: pp.reply.total, v3: pp.reply.v3, extra: pp.reply.extra },
    pingpong: summary(pingpong),
    oneway: summary(oneway),
  };
  console.log(`bytes beyond v3 per message, ${out.impl} (140-byte plaintexts)`);
  console.log(`  PreKeySignalMessage   total ${out.prekey_message.total}  extra ${out.prekey_message.extra}`);
  console.log(`  first reply (B→A)     total ${out.first_reply.total}  extra ${out.first_reply.extra}`);
  for (const [name, s] of [['ping-pong 200', out.pingpong], ['one-way 200', out.oneway]]) {
    console.log(`  ${name.padEnd(20)}  mean extra ${s.mean_extra.toFixed(2)}  max ${s.max_extra}  min ${s.min_extra}`
      + `  mean total ${s.mean_total.toFixed(1)}  last SPQR epoch ${s.last_epoch}`);
  }
  if (process.argv.includes('--json')) console.log(JSON.stringify(out));
  if (process.argv.includes('--trace')) {
    for (const [run, rows] of [['pp', pingpong], ['ow', oneway]]) {
      for (const [i, r] of rows.entries()) console.log(`${run} ${i} total ${r.total} extra ${r.extra} spqr ${JSON.stringify(r.spqr)}`);
    }
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
