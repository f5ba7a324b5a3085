'use strict';
// Captures known-answer vectors for confide's media keys and media files from npm
// `baileys` (WhatsApp media crypto), run as a separate process:
//
//   NODE_PATH=tests/media_interop/node_modules node tests/vectors/capture/media_baileys.js \
//     > tests/vectors/media_baileys.json
//
// Media keys are fixed (SHA-256 of a label); the expansion is baileys' own HKDF with its
// own info strings, and each file is encrypted by baileys' own `encryptedStream` (which
// draws its media key itself: it is recorded). Captured once and committed.

const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const media = require('baileys/lib/Utils/messages-media');
const { hkdf } = require('baileys/lib/Utils/crypto');
const VERSION = require('baileys/package.json').version;

const hex = (b) => Buffer.from(b).toString('hex');
// confide's MediaKind (snake case) -> baileys' media type. Sticker packs are left out:
// baileys 6.17 has no HKDF info for them.
const KINDS = {
    image: 'image',
    video: 'video',
    audio: 'audio',
    document: 'document',
    sticker: 'sticker',
    history: 'md-msg-hist',
    app_state: 'md-app-state',
    link_thumbnail: 'thumbnail-link',
};

async function main() {
    const keys = [];
    for (const [kind, type] of Object.entries(KINDS)) {
        const mediaKey = crypto.createHash('sha256').update('confide-kat:media ' + kind).digest();
        const expanded = await hkdf(mediaKey, 112, { info: media.hkdfInfoKey(type) });
        const k = await media.getMediaKeys(mediaKey, type);
        if (!Buffer.from(expanded).subarray(16, 48).equals(k.cipherKey)) throw new Error('capture: hkdf mismatch');
        keys.push({
            kind,
            info: media.hkdfInfoKey(type),
            media_key: hex(mediaKey),
            iv: hex(k.iv),
            cipher_key: hex(k.cipherKey),
            mac_key: hex(k.macKey),
            ref_key: hex(Buffer.from(expanded).subarray(80, 112)),
        });
    }
    const files = [];
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'confide-kat-'));
    for (const [kind, len] of [['image', 0], ['document', 15], ['audio', 16], ['video', 1000], ['document', 4099]]) {
        const plain = Buffer.alloc(len);
        for (let i = 0; i < len; i++) plain[i] = (i * 7 + len) & 0xff;
        const input = path.join(dir, `in-${kind}-${len}`);
        fs.writeFileSync(input, plain);
        const enc = await media.encryptedStream({ url: input }, KINDS[kind]);
        const chunks = [];
        for await (const c of enc.encWriteStream) chunks.push(c);
        files.push({
            kind,
            plaintext: hex(plain),
            media_key: hex(enc.mediaKey),
            file_sha256: hex(enc.fileSha256),
            file_enc_sha256: hex(enc.fileEncSha256),
            file_length: enc.fileLength,
            mac: hex(enc.mac),
            upload: hex(Buffer.concat(chunks)),
        });
    }
    fs.rmSync(dir, { recursive: true, force: true });
    const out = { source: `npm baileys ${VERSION}, captured by tests/vectors/capture/media_baileys.js`, keys, files };
    process.stdout.write(JSON.stringify(out, null, 1) + '\n');
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});
