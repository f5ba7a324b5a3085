'use strict';
// One device backed by npm `@privacyresearch/libsignal-protocol-typescript`
// 0.0.16 (the TypeScript port), speaking shared/interop/PEER_PROTOCOL.md on
// stdin/stdout. Run as a separate process by tests/interop/main.rs; the
// library itself is not part of confide. Needs Node >= 20 (globalThis.crypto).

const common = require('./peer_common');
const lib = require('@privacyresearch/libsignal-protocol-typescript');
const { PeerError, badRequest, toArrayBuffer } = common;

const LIB_VERSION = require('@privacyresearch/libsignal-protocol-typescript/package.json').version;

if (!globalThis.crypto || !globalThis.crypto.subtle) {
    console.error('ts_peer.js needs WebCrypto (globalThis.crypto): use Node 20 or newer');
    process.exit(1);
}

// In-memory StorageType for the TS port. isTrustedIdentity is synchronous on
// purpose: SessionBuilder.processV3 calls it without await, so a Promise
// (always truthy) would silently trust every incoming identity.
class Storage {
    constructor(identity, registrationId, trustAll) {
        this.identity = identity;
        this.registrationId = registrationId;
        this.trust = new common.TrustStore(trustAll);
        this.sessions = new Map();
        this.preKeys = new Map();
        this.signedPreKeys = new Map();
    }
    async getIdentityKeyPair() {
        return this.identity;
    }
    async getLocalRegistrationId() {
        return this.registrationId;
    }
    isTrustedIdentity(identifier, identityKey) {
        return this.trust.isTrusted(identifier, new Uint8Array(identityKey));
    }
    async saveIdentity(encodedAddress, publicKey) {
        // Trust on first use: the first key seen sticks; never overwrite.
        this.trust.isTrusted(encodedAddress, new Uint8Array(publicKey));
        return false;
    }
    async loadPreKey(id) {
        return this.preKeys.get(Number(id));
    }
    async storePreKey(id, kp) {
        this.preKeys.set(Number(id), kp);
    }
    async removePreKey(id) {
        this.preKeys.delete(Number(id));
    }
    async loadSignedPreKey(id) {
        return this.signedPreKeys.get(Number(id));
    }
    async storeSignedPreKey(id, kp) {
        this.signedPreKeys.set(Number(id), kp);
    }
    async removeSignedPreKey(id) {
        this.signedPreKeys.delete(Number(id));
    }
    async loadSession(addr) {
        return this.sessions.get(addr);
    }
    async storeSession(addr, record) {
        this.sessions.set(addr, record);
    }
}

let curve = null; // the library's synchronous Curve (wasm), set up in main()
let me = null; // { name, deviceId, storage, nextSignedId, nextPreKeyId }

function requireIdentity() {
    if (!me) {
        throw new PeerError('NoIdentity', 'call generate_identity first');
    }
    return me;
}

async function keyPairFor(priv) {
    if (priv) {
        // createKeyPair clamps its argument in place; give it a copy.
        return curve.createKeyPair(toArrayBuffer(Buffer.from(priv)));
    }
    return lib.KeyHelper.generateIdentityKeyPair();
}

function address(addr) {
    return new lib.SignalProtocolAddress(addr.name, addr.deviceId);
}

function closedRank(session) {
    const closed = session.indexInfo.closed;
    return closed === -1 ? Infinity : closed;
}

function mapError(e) {
    const msg = String((e && e.message) || '');
    if (e && e.name === 'MessageCounterError') return 'DuplicateMessage';
    if (/Identity key changed|Unknown identity key/.test(msg)) return 'UntrustedIdentity';
    if (/Incompatible version/.test(msg)) return 'InvalidVersion';
    if (/No record|No session/.test(msg)) return 'NoSession';
    if (/Invalid signature/.test(msg)) return 'InvalidSignature';
    if (/Bad MAC/.test(msg)) return 'BadMac';
    if (/Missing Signed PreKey/.test(msg)) return 'InvalidPreKeyId';
    return 'InvalidMessage';
}

const handlers = {
    async hello() {
        return {
            impl: 'libsignal-protocol-typescript',
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
        const identity = await keyPairFor(common.optHex(req, 'identity_private', 32));
        let registrationId = common.optInt(req, 'registration_id', 0, 0x3fff);
        if (registrationId === undefined) {
            registrationId = lib.KeyHelper.generateRegistrationId();
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
        const signedKp = await keyPairFor(common.optHex(req, 'signed_prekey_private', 32));
        const signature = curve.calculateSignature(st.identity.privKey, signedKp.pubKey);
        await st.storeSignedPreKey(signedId, signedKp);

        const oneTime = common.optBool(req, 'one_time', true);
        let preKeyId = null;
        let preKeyPub = null;
        if (oneTime) {
            preKeyId = common.optInt(req, 'prekey_id', 1, 0xffffff);
            if (preKeyId === undefined) {
                while (st.preKeys.has(m.nextPreKeyId)) m.nextPreKeyId++;
                preKeyId = m.nextPreKeyId++;
            }
            const kp = await keyPairFor(common.optHex(req, 'prekey_private', 32));
            await st.storePreKey(preKeyId, kp);
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
        const device = {
            registrationId: b.registrationId,
            identityKey: toArrayBuffer(b.identityKey),
            signedPreKey: {
                keyId: b.signedPreKeyId,
                publicKey: toArrayBuffer(b.signedPreKey),
                signature: toArrayBuffer(b.signedPreKeySignature),
            },
        };
        if (b.preKey) {
            device.preKey = { keyId: b.preKeyId, publicKey: toArrayBuffer(b.preKey) };
        }
        // processPreKey verifies the signed-prekey signature itself (throws).
        await new lib.SessionBuilder(m.storage, address(addr)).processPreKey(device);
        return {};
    },

    async encrypt(req) {
        const m = requireIdentity();
        const addr = common.reqAddress(req);
        const data = common.reqPayload(req);
        const res = await new lib.SessionCipher(m.storage, address(addr)).encrypt(toArrayBuffer(data));
        // The body is a "binary" string (one char per byte); type 1 is the old
        // WhisperMessage numbering, 2 in the protocol's.
        return { type: res.type === 3 ? 3 : 2, ciphertext: Buffer.from(res.body, 'latin1').toString('hex') };
    },

    async decrypt(req) {
        const m = requireIdentity();
        const addr = common.reqAddress(req);
        const type = common.reqInt(req, 'type', 0, 255);
        const ct = toArrayBuffer(common.reqHex(req, 'ciphertext'));
        const cipher = new lib.SessionCipher(m.storage, address(addr));
        let pt;
        if (type === 3) {
            pt = await cipher.decryptPreKeyWhisperMessage(ct, 'binary');
        } else if (type === 2) {
            pt = await common.decryptOneSessionAtATime(
                m.storage.sessions,
                address(addr).toString(),
                'sessions',
                // Open session first, then the most recently closed, as
                // SessionCipher.decryptWithSessionList pops them.
                (all) => Object.keys(all).sort((x, y) => closedRank(all[y]) - closedRank(all[x])),
                () => cipher.decryptWhisperMessage(ct, 'binary'),
                (e) => e && e.name === 'MessageCounterError',
            );
        } else {
            throw new PeerError('InvalidMessage', `unsupported message type ${type}`);
        }
        const buf = Buffer.from(new Uint8Array(pt));
        return { plaintext: buf.toString('hex'), text: buf.toString('utf8') };
    },

    async has_session(req) {
        const m = requireIdentity();
        const addr = common.reqAddress(req);
        const open = await new lib.SessionCipher(m.storage, address(addr)).hasOpenSession();
        return { has_session: !!open };
    },

    async sign(req) {
        const m = requireIdentity();
        const msg = common.reqHex(req, 'message');
        return { signature: common.hex(curve.calculateSignature(m.storage.identity.privKey, toArrayBuffer(msg))) };
    },

    async verify(req) {
        const pub = common.reqHex(req, 'public_key', 33);
        const msg = common.reqHex(req, 'message');
        const sig = common.reqHex(req, 'signature');
        let valid = false;
        try {
            // The wasm verify returns true when the signature is INVALID.
            valid = sig.length === 64 && !curve.verifySignature(toArrayBuffer(pub), toArrayBuffer(msg), toArrayBuffer(sig));
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

async function main() {
    curve = (await lib.default()).Curve;
    common.runPeer(handlers, mapError);
}

main().catch((e) => {
    console.error('ts_peer.js failed to start:', e);
    process.exit(1);
});
