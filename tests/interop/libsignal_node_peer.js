'use strict';
// One device backed by npm `libsignal` 6.0.0 (WhiskeySockets/libsignal-node),
// speaking shared/interop/PEER_PROTOCOL.md on stdin/stdout. Run as a separate
// process by tests/interop/main.rs; the library itself is not part of confide.

const common = require('./peer_common');
const nodeCrypto = require('crypto');
const libsignal = require('libsignal');
const { PeerError, badRequest } = common;

const LIB_VERSION = require('libsignal/package.json').version;

// PKCS#8 / SPKI DER prefixes for a raw X25519 key (RFC 8410).
const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex');

// The public key (05 || X25519) for a given 32-byte private key, computed by
// Node's own X25519 so that any 32 bytes work, clamped or not.
function keyPairFromPrivate(priv) {
    const key = nodeCrypto.createPrivateKey({
        key: Buffer.concat([PKCS8_X25519, priv]),
        format: 'der',
        type: 'pkcs8',
    });
    const spki = nodeCrypto.createPublicKey(key).export({ format: 'der', type: 'spki' });
    return { pubKey: Buffer.concat([Buffer.from([5]), spki.subarray(spki.length - 32)]), privKey: Buffer.from(priv) };
}

function keyPairFor(priv) {
    return priv ? keyPairFromPrivate(priv) : libsignal.curve.generateKeyPair();
}

// In-memory storage with the shape libsignal-node calls. Sessions are kept
// serialized (SessionRecord.serialize() is JSON-safe), as an application
// would keep them, so no live object is shared between calls.
class Storage {
    constructor(identity, registrationId, trustAll) {
        this.identity = identity;
        this.registrationId = registrationId;
        this.trust = new common.TrustStore(trustAll);
        this.sessions = new Map();
        this.preKeys = new Map();
        this.signedPreKeys = new Map();
    }
    async getOurIdentity() {
        return this.identity;
    }
    async getOurRegistrationId() {
        return this.registrationId;
    }
    async isTrustedIdentity(identifier, identityKey) {
        return this.trust.isTrusted(identifier, identityKey);
    }
    async loadSession(addr) {
        const s = this.sessions.get(addr);
        return s === undefined ? undefined : libsignal.SessionRecord.deserialize(JSON.parse(s));
    }
    async storeSession(addr, record) {
        this.sessions.set(addr, JSON.stringify(record.serialize()));
    }
    async loadPreKey(id) {
        return this.preKeys.get(Number(id));
    }
    async removePreKey(id) {
        this.preKeys.delete(Number(id));
    }
    async loadSignedPreKey(id) {
        return this.signedPreKeys.get(Number(id));
    }
}

let me = null; // { name, deviceId, storage, nextSignedId, nextPreKeyId }

function requireIdentity() {
    if (!me) {
        throw new PeerError('NoIdentity', 'call generate_identity first');
    }
    return me;
}

function protocolAddress(addr) {
    return new libsignal.ProtocolAddress(addr.name, addr.deviceId);
}

function mapError(e) {
    if (e instanceof libsignal.UntrustedIdentityKeyError) return 'UntrustedIdentity';
    if (e instanceof libsignal.MessageCounterError) return 'DuplicateMessage';
    if (e instanceof libsignal.PreKeyError) return 'InvalidPreKeyId';
    const msg = String((e && e.message) || '');
    if (/Incompatible version/.test(msg)) return 'InvalidVersion';
    if (/No session|No sessions|No open session/.test(msg)) return 'NoSession';
    if (/Bad MAC/i.test(msg)) return 'BadMac';
    return 'InvalidMessage';
}

const handlers = {
    async hello() {
        return {
            impl: 'libsignal-node',
            version: LIB_VERSION,
            message_version: 3,
            sender_keys: false,
            sealed_sender: false,
        };
    },

    async generate_identity(req) {
        const name = common.reqString(req, 'name');
        if (name.length === 0 || name.includes('.')) {
            throw badRequest('name must be non-empty and contain no "."');
        }
        const deviceId = common.reqInt(req, 'device_id', 1, 127);
        const identity = keyPairFor(common.optHex(req, 'identity_private', 32));
        let registrationId = common.optInt(req, 'registration_id', 0, 0x3fff);
        if (registrationId === undefined) {
            registrationId = libsignal.keyhelper.generateRegistrationId();
        }
        const trustAll = common.optBool(req, 'trust_all', false);
        me = {
            name,
            deviceId,
            storage: new Storage(identity, registrationId, trustAll),
            nextSignedId: 1,
            nextPreKeyId: 1,
        };
        return {
            name,
            device_id: deviceId,
            registration_id: registrationId,
            identity_key: common.hex(identity.pubKey),
            identity_private: common.hex(identity.privKey),
        };
    },

    async bundle(req) {
        const m = requireIdentity();
        const st = m.storage;
        let signedId = common.optInt(req, 'signed_prekey_id', 0, 0xffffff);
        if (signedId === undefined) {
            signedId = m.nextSignedId++;
        }
        const signedKp = keyPairFor(common.optHex(req, 'signed_prekey_private', 32));
        const signature = libsignal.curve.calculateSignature(st.identity.privKey, signedKp.pubKey);
        st.signedPreKeys.set(signedId, signedKp);

        const oneTime = common.optBool(req, 'one_time', true);
        let preKeyId = null;
        let preKeyPub = null;
        if (oneTime) {
            preKeyId = common.optInt(req, 'prekey_id', 1, 0xffffff);
            if (preKeyId === undefined) {
                while (st.preKeys.has(m.nextPreKeyId)) m.nextPreKeyId++;
                preKeyId = m.nextPreKeyId++;
            }
            const kp = keyPairFor(common.optHex(req, 'prekey_private', 32));
            st.preKeys.set(preKeyId, kp);
            preKeyPub = common.hex(kp.pubKey);
        }
        return {
            bundle: {
                registration_id: st.registrationId,
                device_id: m.deviceId,
                identity_key: common.hex(st.identity.pubKey),
                signed_prekey_id: signedId,
                signed_prekey: common.hex(signedKp.pubKey),
                signed_prekey_signature: common.hex(signature),
                prekey_id: preKeyId,
                prekey: preKeyPub,
                kyber_prekey_id: null,
                kyber_prekey: null,
                kyber_prekey_signature: null,
            },
        };
    },

    async process_bundle(req) {
        const m = requireIdentity();
        const addr = common.reqAddress(req);
        const b = common.parseBundle(req);
        // initOutgoing skips the signature check (it passes isInit=true), but
        // the protocol requires rejecting a bad signed-prekey signature.
        if (!libsignal.curve.verifySignature(b.identityKey, b.signedPreKey, b.signedPreKeySignature, false)) {
            throw new PeerError('InvalidSignature', 'signed prekey signature does not verify');
        }
        const device = {
            registrationId: b.registrationId,
            identityKey: b.identityKey,
            signedPreKey: { keyId: b.signedPreKeyId, publicKey: b.signedPreKey, signature: b.signedPreKeySignature },
        };
        if (b.preKey) {
            device.preKey = { keyId: b.preKeyId, publicKey: b.preKey };
        }
        await new libsignal.SessionBuilder(m.storage, protocolAddress(addr)).initOutgoing(device);
        return {};
    },

    async encrypt(req) {
        const m = requireIdentity();
        const addr = common.reqAddress(req);
        const data = common.reqPayload(req);
        const res = await new libsignal.SessionCipher(m.storage, protocolAddress(addr)).encrypt(data);
        // libsignal-node numbers a plain message 1 (old WhisperMessage); the
        // protocol uses libsignal's 2.
        return { type: res.type === 3 ? 3 : 2, ciphertext: common.hex(res.body) };
    },

    async decrypt(req) {
        const m = requireIdentity();
        const addr = common.reqAddress(req);
        const type = common.reqInt(req, 'type', 0, 255);
        const ct = common.reqHex(req, 'ciphertext');
        const cipher = new libsignal.SessionCipher(m.storage, protocolAddress(addr));
        let pt;
        if (type === 3) {
            pt = await cipher.decryptPreKeyWhisperMessage(ct);
        } else if (type === 2) {
            pt = await common.decryptOneSessionAtATime(
                m.storage.sessions,
                protocolAddress(addr).toString(),
                '_sessions',
                // Most recently used first, as SessionRecord.getSessions().
                (all) => Object.keys(all).sort((x, y) => (all[y].indexInfo.used || 0) - (all[x].indexInfo.used || 0)),
                () => cipher.decryptWhisperMessage(ct),
                (e) => e instanceof libsignal.MessageCounterError,
            );
        } else {
            throw new PeerError('InvalidMessage', `unsupported message type ${type}`);
        }
        return { plaintext: common.hex(pt), text: Buffer.from(pt).toString('utf8') };
    },

    async has_session(req) {
        const m = requireIdentity();
        const addr = common.reqAddress(req);
        const open = await new libsignal.SessionCipher(m.storage, protocolAddress(addr)).hasOpenSession();
        return { has_session: !!open };
    },

    async sign(req) {
        const m = requireIdentity();
        const msg = common.reqHex(req, 'message');
        return { signature: common.hex(libsignal.curve.calculateSignature(m.storage.identity.privKey, msg)) };
    },

    async verify(req) {
        const pub = common.reqHex(req, 'public_key', 33);
        const msg = common.reqHex(req, 'message');
        const sig = common.reqHex(req, 'signature');
        let valid = false;
        try {
            valid = sig.length === 64 && !!libsignal.curve.verifySignature(pub, msg, sig, false);
        } catch (e) {
            valid = false;
        }
        return { valid };
    },
};

for (const op of [
    'group_create', 'group_process', 'group_encrypt', 'group_decrypt',
    'sender_cert', 'sealed_encrypt', 'sealed_decrypt', 'fingerprint',
    'media_encrypt', 'media_decrypt',
]) {
    handlers[op] = async () => {
        throw common.unsupported(op);
    };
}

common.runPeer(handlers, mapError);
