'use strict';
// Interop driver for confide's media and safety-number tests.
//
// Runs npm `baileys` 6.17.16 (WhatsApp media encryption) and
// `@signalapp/libsignal-client` 0.103.0 (libsignal's Fingerprint) in this separate
// Node.js process; confide's Rust tests talk to it over stdin/stdout. Only the
// packages' public helpers are called; none of their code is copied.
//
// Framing and op names follow shared/interop/PEER_PROTOCOL.md: one JSON request per
// line, one JSON reply per line, binary values in lowercase hex.
//
//   hello
//   media_encrypt     {kind, in_path, out_path}
//                     -> {media_key, file_sha256, file_enc_sha256, file_length, mac}
//   media_decrypt     {kind, in_path, out_path, media_key, file_sha256?, file_enc_sha256?}
//                     -> {file_length, file_sha256, file_enc_sha256}
//   fingerprint       {local_id | local_id_hex, local_key, remote_id | remote_id_hex,
//                      remote_key, version?, iterations?} -> {displayable, scannable}
//   fingerprint_compare  (fingerprint's fields) + {scanned}
//                     -> {result: "match" | "mismatch" | "error", code?, message?}
//   quit

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const readline = require('readline');
const { pipeline } = require('stream/promises');
const { Transform } = require('stream');

const media = require('baileys/lib/Utils/messages-media');
const defaults = require('baileys/lib/Defaults');
const libsignal = require('@signalapp/libsignal-client');

// confide kind names -> baileys MediaType.
const BAILEYS_TYPE = {
  image: 'image',
  video: 'video',
  audio: 'audio',
  document: 'document',
  sticker: 'sticker',
  history: 'md-msg-hist',
  app_state: 'md-app-state',
  link_thumbnail: 'thumbnail-link',
  sticker_pack: 'sticker-pack',
  gif: 'gif',
  ptt: 'ptt',
  ptv: 'ptv',
};

// baileys 6.17.16's HKDF table has no sticker-pack row. Add the info-string suffix
// ("WhatsApp Sticker Pack Keys") so that kind also runs through baileys' own key
// expansion and cipher code; every other kind uses baileys' table untouched.
if (!defaults.MEDIA_HKDF_KEY_MAPPING['sticker-pack']) {
  defaults.MEDIA_HKDF_KEY_MAPPING['sticker-pack'] = 'Sticker Pack';
}

const MAC_LEN = 10;

function fail(code, message) {
  const e = new Error(message);
  e.code = code;
  return e;
}

function hex(buf) {
  return Buffer.from(buf).toString('hex');
}

function sha256(data) {
  return crypto.createHash('sha256').update(data).digest('hex');
}

function baileysType(kind) {
  const t = BAILEYS_TYPE[kind];
  if (!t) throw fail('UnknownKind', `unknown media kind ${kind}`);
  return t;
}

function field(req, name) {
  if (typeof req[name] !== 'string') throw fail('BadRequest', `missing field ${name}`);
  return req[name];
}

// baileys decrypts only from a URL, so uploads are served from loopback, one token per
// download, and only files this driver was asked to decrypt.
const served = new Map();
const server = http.createServer((req, res) => {
  const path = served.get(req.url.slice(1));
  if (!path) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { 'content-length': fs.statSync(path).size });
  fs.createReadStream(path).pipe(res);
});
const listening = new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));

async function mediaEncrypt(req) {
  const type = baileysType(field(req, 'kind'));
  if (req.media_key) throw fail('Unsupported', 'baileys picks its own media key');
  const enc = await media.encryptedStream({ url: field(req, 'in_path') }, type);
  await pipeline(enc.encWriteStream, fs.createWriteStream(field(req, 'out_path')));
  return {
    media_key: hex(enc.mediaKey),
    file_sha256: hex(enc.fileSha256),
    file_enc_sha256: hex(enc.fileEncSha256),
    file_length: enc.fileLength,
    mac: hex(enc.mac),
  };
}

async function mediaDecrypt(req) {
  const type = baileysType(field(req, 'kind'));
  const inPath = field(req, 'in_path');
  const outPath = field(req, 'out_path');
  const mediaKey = Buffer.from(field(req, 'media_key'), 'hex');
  const upload = await fs.promises.readFile(inPath);
  if (upload.length < 16 + MAC_LEN) throw fail('TooShort', 'upload too short');

  // baileys' download path decrypts without checking the MAC, so check it first with
  // the keys baileys derives (getMediaKeys) and Node's HMAC.
  const keys = await media.getMediaKeys(mediaKey, type);
  const ciphertext = upload.subarray(0, upload.length - MAC_LEN);
  const mac = crypto.createHmac('sha256', keys.macKey).update(keys.iv).update(ciphertext).digest();
  if (!crypto.timingSafeEqual(mac.subarray(0, MAC_LEN), upload.subarray(upload.length - MAC_LEN))) {
    throw fail('BadMac', 'MAC mismatch');
  }
  const fileEncSha256 = sha256(upload);
  if (req.file_enc_sha256 && req.file_enc_sha256 !== fileEncSha256) {
    throw fail('EncSha256Mismatch', 'file_enc_sha256 mismatch');
  }

  await listening;
  const token = crypto.randomBytes(12).toString('hex');
  served.set(token, inPath);
  const tmp = `${outPath}.driver-${token}.partial`;
  const hash = crypto.createHash('sha256');
  let length = 0;
  try {
    const url = `http://127.0.0.1:${server.address().port}/${token}`;
    const plain = await media.downloadContentFromMessage({ mediaKey, url }, type, {
      options: { proxy: false },
    });
    const tap = new Transform({
      transform(chunk, _enc, cb) {
        hash.update(chunk);
        length += chunk.length;
        cb(null, chunk);
      },
    });
    await pipeline(plain, tap, fs.createWriteStream(tmp));
    const fileSha256 = hash.digest('hex');
    if (req.file_sha256 && req.file_sha256 !== fileSha256) {
      throw fail('FileSha256Mismatch', 'file_sha256 mismatch');
    }
    await fs.promises.rename(tmp, outPath);
    return { file_length: length, file_sha256: fileSha256, file_enc_sha256: fileEncSha256 };
  } finally {
    served.delete(token);
    await fs.promises.rm(tmp, { force: true });
  }
}

function identifier(req, side) {
  if (typeof req[`${side}_id_hex`] === 'string') return Buffer.from(req[`${side}_id_hex`], 'hex');
  return Buffer.from(field(req, `${side}_id`), 'utf8');
}

function computeFingerprint(req) {
  const key = (name) => libsignal.PublicKey.deserialize(Buffer.from(field(req, name), 'hex'));
  return libsignal.Fingerprint.new(
    req.iterations ?? 5200,
    req.version ?? 2,
    identifier(req, 'local'),
    key('local_key'),
    identifier(req, 'remote'),
    key('remote_key'),
  );
}

function fingerprint(req) {
  const fp = computeFingerprint(req);
  return {
    displayable: fp.displayableFingerprint().toString(),
    scannable: hex(fp.scannableFingerprint().toBuffer()),
  };
}

function fingerprintCompare(req) {
  const fp = computeFingerprint(req);
  try {
    const scanned = libsignal.ScannableFingerprint._fromBuffer(
      Buffer.from(field(req, 'scanned'), 'hex'),
    );
    return { result: fp.scannableFingerprint().compare(scanned) ? 'match' : 'mismatch' };
  } catch (e) {
    return { result: 'error', code: String(e.code ?? e.name), message: String(e.message) };
  }
}

const OPS = {
  hello: async () => ({
    impl: 'baileys+libsignal-client',
    baileys: require('baileys/package.json').version,
    libsignal_client: require('@signalapp/libsignal-client/package.json').version,
  }),
  media_encrypt: mediaEncrypt,
  media_decrypt: mediaDecrypt,
  fingerprint: async (req) => fingerprint(req),
  fingerprint_compare: async (req) => fingerprintCompare(req),
};

async function handle(line) {
  let req;
  try {
    req = JSON.parse(line);
  } catch (e) {
    return { id: null, ok: false, error: 'invalid JSON', code: 'BadRequest' };
  }
  if (req.op === 'quit') {
    server.close();
    process.exit(0);
  }
  const op = OPS[req.op];
  if (!op) return { id: req.id, ok: false, error: `unknown op ${req.op}`, code: 'UnknownOp' };
  try {
    return { id: req.id, ok: true, ...(await op(req)) };
  } catch (e) {
    return { id: req.id, ok: false, error: String(e.message), code: String(e.code ?? 'Error') };
  }
}

// One request at a time, replies in order.
let queue = Promise.resolve();
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  queue = queue.then(async () => {
    const reply = await handle(line);
    process.stdout.write(`${JSON.stringify(reply)}\n`);
  });
});
rl.on('close', () => {
  queue.then(() => {
    server.close();
    process.exit(0);
  });
});
