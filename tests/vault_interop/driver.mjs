// JSON lines on stdin/stdout: {"id", "op", "args"} -> {"id", "ok", "result"} or {"id", "error"}.
// Ops: client.* and server.* call @serenity-kit/opaque 1.1.0 (opaque-ke 4 in WASM) as they
// are; "wrap" and "release_open" are confide's documented key wrap and key release,
// written here independently on Node's crypto (OpenSSL): HKDF-SHA256 with an empty salt,
// then AES-256-GCM as nonce(12) || ciphertext || tag(16).
import * as opaque from "@serenity-kit/opaque";
import crypto from "node:crypto";
import readline from "node:readline";

const b64u = (buf) => Buffer.from(buf).toString("base64url");
const unb64u = (s) => Buffer.from(s, "base64url");

function hkdf(ikm, info) {
  return Buffer.from(crypto.hkdfSync("sha256", ikm, Buffer.alloc(0), Buffer.from(info), 32));
}

function seal(key, aad, plaintext) {
  const nonce = crypto.randomBytes(12);
  const c = crypto.createCipheriv("aes-256-gcm", key, nonce);
  c.setAAD(aad);
  const ct = Buffer.concat([c.update(plaintext), c.final()]);
  return Buffer.concat([nonce, ct, c.getAuthTag()]);
}

function open(key, aad, sealed) {
  const nonce = sealed.subarray(0, 12);
  const tag = sealed.subarray(sealed.length - 16);
  const ct = sealed.subarray(12, sealed.length - 16);
  const d = crypto.createDecipheriv("aes-256-gcm", key, nonce);
  d.setAAD(aad);
  d.setAuthTag(tag);
  return Buffer.concat([d.update(ct), d.final()]);
}

const WRAP = "confide vault backup key v1";
const RELEASE = "confide vault release v1";

const ops = {
  // args: exportKey (b64u), key (b64u, 32 bytes) -> wrapped (b64u)
  wrap: ({ exportKey, key }) =>
    b64u(seal(hkdf(unb64u(exportKey), WRAP), Buffer.from(WRAP), unb64u(key))),
  // args: sessionKey, exportKey, attemptId, sealed (all b64u) -> the 32-byte key (b64u)
  release_open: ({ sessionKey, exportKey, attemptId, sealed }) => {
    const aad = Buffer.concat([Buffer.from(RELEASE), unb64u(attemptId)]);
    const payload = open(hkdf(unb64u(sessionKey), RELEASE), aad, unb64u(sealed));
    const wrapped = payload.subarray(0, 60);
    return b64u(open(hkdf(unb64u(exportKey), WRAP), Buffer.from(WRAP), wrapped));
  },
};

await opaque.ready;
const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  if (!line.trim()) continue;
  const { id, op, args } = JSON.parse(line);
  let reply;
  try {
    let result;
    if (op in ops) {
      result = ops[op](args);
    } else {
      const [side, fn] = op.split(".");
      result = opaque[side][fn](args);
    }
    reply = { id, ok: true, result: result === undefined ? null : result };
  } catch (e) {
    reply = { id, ok: false, error: String(e && e.message ? e.message : e) };
  }
  process.stdout.write(JSON.stringify(reply) + "\n");
}
