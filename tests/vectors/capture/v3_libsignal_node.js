'use strict';
// Captures known-answer vectors for confide's v3 session derivations from npm `libsignal`
// 6.0.0 (WhiskeySockets/libsignal-node), run as a separate process:
//
//   NODE_PATH=tests/interop/node_modules node tests/vectors/capture/v3_libsignal_node.js \
//     > tests/vectors/v3_libsignal_node.json
//
// Every private key is fixed (SHA-256 of a label, clamped), so the run is repeatable. The
// library's own key generation, agreement, HKDF and HMAC are wrapped only to record what
// they compute; nothing is re-derived here. The output was captured once and committed:
// confide's fast tests check their derivations against it without a peer process.

const nodeCrypto = require('crypto');
const libsignal = require('libsignal');
const curve = require('libsignal/src/curve');
const crypto = require('libsignal/src/crypto');
const VERSION = require('libsignal/package.json').version;

const hex = (b) => Buffer.from(b).toString('hex');
const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex');

function fixedPrivate(label) {
    const k = nodeCrypto.createHash('sha256').update('confide-kat:' + label).digest();
    k[0] &= 248;
    k[31] &= 127;
    k[31] |= 64;
    return k;
}

function keyPair(label) {
    const priv = fixedPrivate(label);
    const key = nodeCrypto.createPrivateKey({ key: Buffer.concat([PKCS8_X25519, priv]), format: 'der', type: 'pkcs8' });
    const spki = key.export ? nodeCrypto.createPublicKey(key).export({ format: 'der', type: 'spki' }) : null;
    return { pubKey: Buffer.concat([Buffer.from([5]), spki.subarray(spki.length - 32)]), privKey: priv };
}

// Key pairs the library draws, in order, instead of random ones.
const queue = [];
const drawn = [];
curve.generateKeyPair = function () {
    const next = queue.shift();
    if (!next) throw new Error('capture: the library drew more key pairs than scripted');
    drawn.push(next);
    return keyPair(next);
};

const agreements = [];
const origAgree = curve.calculateAgreement;
curve.calculateAgreement = function (pub, priv) {
    const out = origAgree(pub, priv);
    agreements.push({ pub: Buffer.from(pub), priv: Buffer.from(priv), out: Buffer.from(out) });
    return out;
};

const hkdfs = [];
const origDerive = crypto.deriveSecrets;
crypto.deriveSecrets = function (input, salt, info, chunks) {
    const out = origDerive(input, salt, info, chunks);
    hkdfs.push({ input: Buffer.from(input), salt: Buffer.from(salt), info: info.toString(), out: out.map((b) => Buffer.from(b)) });
    return out;
};

const macs = [];
const origMac = crypto.calculateMAC;
crypto.calculateMAC = function (key, data) {
    const out = origMac(key, data);
    if (data.length === 1 && (data[0] === 1 || data[0] === 2) && key.length === 32) {
        macs.push({ key: Buffer.from(key), seed: data[0], out: Buffer.from(out) });
    }
    return out;
};

class Storage {
    constructor(identity, registrationId) {
        this.identity = identity;
        this.registrationId = registrationId;
        this.sessions = new Map();
        this.preKeys = new Map();
        this.signedPreKeys = new Map();
    }
    async getOurIdentity() { return this.identity; }
    async getOurRegistrationId() { return this.registrationId; }
    async isTrustedIdentity() { return true; }
    async loadSession(addr) {
        const s = this.sessions.get(addr);
        return s === undefined ? undefined : libsignal.SessionRecord.deserialize(JSON.parse(s));
    }
    async storeSession(addr, record) { this.sessions.set(addr, JSON.stringify(record.serialize())); }
    async loadPreKey(id) { return this.preKeys.get(Number(id)); }
    async removePreKey(id) { this.preKeys.delete(Number(id)); }
    async loadSignedPreKey(id) { return this.signedPreKeys.get(Number(id)); }
}

async function main() {
    const aliceIdentity = keyPair('alice identity');
    const bobIdentity = keyPair('bob identity');
    const bobSigned = keyPair('bob signed prekey');
    const bobOneTime = keyPair('bob one-time prekey');
    const alice = new Storage(aliceIdentity, 1111);
    const bob = new Storage(bobIdentity, 2222);
    bob.signedPreKeys.set(7, bobSigned);
    bob.preKeys.set(31, bobOneTime);
    const signature = curve.calculateSignature(bobIdentity.privKey, bobSigned.pubKey);

    const bobAddr = new libsignal.ProtocolAddress('bob', 1);
    const aliceAddr = new libsignal.ProtocolAddress('alice', 1);
    const messages = [];
    const send = async (from, fromName, to, text) => {
        const c = await new libsignal.SessionCipher(from, to).encrypt(Buffer.from(text));
        messages.push({ from: fromName, type: c.type, plaintext: hex(Buffer.from(text)), serialized: hex(c.body) });
        return c;
    };
    const recv = async (at, from, c) => {
        const cipher = new libsignal.SessionCipher(at, from);
        return c.type === 3 ? cipher.decryptPreKeyWhisperMessage(c.body) : cipher.decryptWhisperMessage(c.body);
    };

    // Alice: base key, then her first ratchet key.
    queue.push('alice base key', 'alice ratchet key 1');
    await new libsignal.SessionBuilder(alice, bobAddr).initOutgoing({
        registrationId: 2222,
        identityKey: bobIdentity.pubKey,
        signedPreKey: { keyId: 7, publicKey: bobSigned.pubKey, signature },
        preKey: { keyId: 31, publicKey: bobOneTime.pubKey },
    });
    const a = [];
    for (let i = 0; i < 3; i++) a.push(await send(alice, 'alice', bobAddr, `alice to bob #${i}`));
    // Bob reads them out of order (2, 0, 1) and answers: one ratchet key of his.
    queue.push('bob ratchet key 1');
    for (const i of [2, 0, 1]) {
        const p = await recv(bob, aliceAddr, a[i]);
        if (p.toString() !== `alice to bob #${i}`) throw new Error('capture: wrong plaintext');
    }
    const b = [];
    for (let i = 0; i < 2; i++) b.push(await send(bob, 'bob', aliceAddr, `bob to alice #${i}`));
    queue.push('alice ratchet key 2');
    for (const m of b) await recv(alice, bobAddr, m);
    await send(alice, 'alice', bobAddr, 'alice to bob after the ratchet step');
    if (queue.length !== 0) throw new Error('capture: scripted key pairs left over: ' + queue);

    const priv = (label) => hex(fixedPrivate(label));
    const byPriv = new Map();
    for (const l of ['alice identity', 'bob identity', 'bob signed prekey', 'bob one-time prekey', ...drawn]) {
        byPriv.set(priv(l), l);
    }
    const x3dh = hkdfs.filter((h) => h.info === 'WhisperText');
    const ratchets = hkdfs.filter((h) => h.info === 'WhisperRatchet').map((h) => {
        const dh = agreements.find((g) => g.out.equals(h.input));
        return {
            root_key: hex(h.salt),
            their_public: hex(dh.pub),
            our_private_label: byPriv.get(hex(dh.priv)),
            our_private: hex(dh.priv),
            dh: hex(dh.out),
            next_root_key: hex(h.out[0]),
            chain_key: hex(h.out[1]),
        };
    });
    const uniq = (rows) => [...new Map(rows.map((r) => [JSON.stringify(r), r])).values()];
    const chainSteps = [];
    for (const m of macs.filter((x) => x.seed === 1)) {
        const next = macs.find((x) => x.seed === 2 && x.key.equals(m.key));
        chainSteps.push({ chain_key: hex(m.key), message_seed: hex(m.out), next_chain_key: hex(next.out) });
    }
    const messageKeys = hkdfs.filter((h) => h.info === 'WhisperMessageKeys').map((h) => ({
        seed: hex(h.input),
        cipher_key: hex(h.out[0]),
        mac_key: hex(h.out[1]),
        iv: hex(h.out[2].subarray(0, 16)),
    }));
    const out = {
        source: `npm libsignal ${VERSION}, captured by tests/vectors/capture/v3_libsignal_node.js`,
        alice: {
            registration_id: 1111,
            identity_private: priv('alice identity'),
            identity_public: hex(aliceIdentity.pubKey),
            // Private keys Alice's library drew, in order.
            drawn_privates: [priv('alice base key'), priv('alice ratchet key 1'), priv('alice ratchet key 2')],
        },
        bob: {
            registration_id: 2222,
            identity_private: priv('bob identity'),
            identity_public: hex(bobIdentity.pubKey),
            signed_pre_key_id: 7,
            signed_pre_key_private: priv('bob signed prekey'),
            signed_pre_key_public: hex(bobSigned.pubKey),
            signed_pre_key_signature: hex(signature),
            pre_key_id: 31,
            pre_key_private: priv('bob one-time prekey'),
            pre_key_public: hex(bobOneTime.pubKey),
            drawn_privates: [priv('bob ratchet key 1')],
        },
        // The handshake's HKDF ("WhisperText"): input is 0xFF*32 || DH1 || DH2 || DH3 || DH4.
        x3dh: uniq(x3dh.map((h) => ({ input: hex(h.input), root_key: hex(h.out[0]), chain_key: hex(h.out[1]) }))),
        ratchet_steps: uniq(ratchets),
        chain_steps: uniq(chainSteps),
        message_keys: uniq(messageKeys),
        messages,
    };
    process.stdout.write(JSON.stringify(out, null, 1) + '\n');
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});
