//! confide as one device speaking the JSON-lines peer protocol
//! (`../shared/interop/PEER_PROTOCOL.md`) on stdin/stdout, so test drivers can wire it
//! to other Signal-protocol implementations.
//!
//! `cargo run --release --example peer`. Supports the pairwise ops; group, sealed-sender,
//! fingerprint and media ops answer `ok:false` until confide implements them.

use std::io::{BufRead, Write};

use confide::cipher;
use confide::keys::{
    IdentityKeyPair, KeyPair, PreKeyPublic, PreKeyRecord, PrivateKey, PublicKey,
    SignedPreKeyPublic, SignedPreKeyRecord,
};
use confide::store::{IdentityStore, InMemoryStore, PreKeyStore, SignedPreKeyStore};
use confide::{
    Address, BundleError, CiphertextMessage, DecryptError, EncryptError, IdentityKey, PreKeyBundle,
    SystemRng, Timestamp,
};
use serde_json::{Value, json};

/// A request failed: the protocol's `error` text and `code`.
struct Failure {
    code: String,
    error: String,
}

impl Failure {
    fn new(code: &str, error: impl std::fmt::Display) -> Self {
        Self {
            code: code.to_string(),
            error: error.to_string(),
        }
    }

    fn bad_request(error: impl std::fmt::Display) -> Self {
        Self::new("BadRequest", error)
    }
}

type Reply = Result<Value, Failure>;

struct Device {
    store: InMemoryStore,
    device_id: u32,
    trust_all: bool,
    next_signed_id: u32,
    next_pre_key_id: u32,
}

struct Peer {
    rng: SystemRng,
    device: Option<Device>,
}

fn now() -> Timestamp {
    Timestamp::from_system_time(std::time::SystemTime::now())
}

fn field<'a>(req: &'a Value, name: &str) -> Result<&'a Value, Failure> {
    match req.get(name) {
        Some(Value::Null) | None => Err(Failure::bad_request(format!("missing field {name}"))),
        Some(v) => Ok(v),
    }
}

fn opt<'a>(req: &'a Value, name: &str) -> Option<&'a Value> {
    req.get(name).filter(|v| !v.is_null())
}

fn as_u32(v: &Value, name: &str) -> Result<u32, Failure> {
    v.as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| Failure::bad_request(format!("field {name} must be a u32")))
}

fn as_str<'a>(v: &'a Value, name: &str) -> Result<&'a str, Failure> {
    v.as_str()
        .ok_or_else(|| Failure::bad_request(format!("field {name} must be a string")))
}

fn as_hex(v: &Value, name: &str) -> Result<Vec<u8>, Failure> {
    hex::decode(as_str(v, name)?)
        .map_err(|_| Failure::bad_request(format!("field {name} must be hex")))
}

fn u32_field(req: &Value, name: &str) -> Result<u32, Failure> {
    as_u32(field(req, name)?, name)
}

fn hex_field(req: &Value, name: &str) -> Result<Vec<u8>, Failure> {
    as_hex(field(req, name)?, name)
}

fn key32(bytes: &[u8], name: &str) -> Result<[u8; 32], Failure> {
    <[u8; 32]>::try_from(bytes)
        .map_err(|_| Failure::bad_request(format!("field {name} must be 32 bytes")))
}

fn public_key(bytes: &[u8], name: &str) -> Result<PublicKey, Failure> {
    PublicKey::try_from(bytes).map_err(|e| Failure::new("InvalidKey", format!("{name}: {e}")))
}

fn address(req: &Value, name: &str) -> Result<Address, Failure> {
    let a = field(req, name)?;
    let device_id = u32_field(a, "device_id")?;
    Ok(Address::new(as_str(field(a, "name")?, "name")?, device_id))
}

fn payload(req: &Value) -> Result<Vec<u8>, Failure> {
    if let Some(t) = opt(req, "text") {
        return Ok(as_str(t, "text")?.as_bytes().to_vec());
    }
    hex_field(req, "plaintext")
}

fn bundle_error(e: BundleError) -> Failure {
    let code = match &e {
        BundleError::InvalidSignature => "InvalidSignature",
        BundleError::UntrustedIdentity { .. } => "UntrustedIdentity",
        BundleError::WeakKey => "WeakKey",
        _ => "Store",
    };
    Failure::new(code, e)
}

fn encrypt_error(e: EncryptError) -> Failure {
    let code = match &e {
        EncryptError::NoSession => "NoSession",
        EncryptError::UntrustedIdentity { .. } => "UntrustedIdentity",
        EncryptError::ChainExhausted => "ChainExhausted",
        _ => "Store",
    };
    Failure::new(code, e)
}

fn decrypt_error(e: DecryptError) -> Failure {
    Failure::new(e.code(), e)
}

fn store_error(e: confide::StoreError) -> Failure {
    Failure::new("Store", e)
}

impl Peer {
    fn device(&mut self) -> Result<&mut Device, Failure> {
        self.device
            .as_mut()
            .ok_or_else(|| Failure::new("NoIdentity", "call generate_identity first"))
    }

    fn handle(&mut self, op: &str, req: &Value) -> Reply {
        match op {
            "hello" => Ok(json!({
                "impl": "confide",
                "version": env!("CARGO_PKG_VERSION"),
                "message_version": 3,
                "sender_keys": false,
                "sealed_sender": false,
            })),
            "generate_identity" => self.generate_identity(req),
            "bundle" => self.bundle(req),
            "process_bundle" => self.process_bundle(req),
            "encrypt" => self.encrypt(req),
            "decrypt" => self.decrypt(req),
            "has_session" => {
                let addr = address(req, "address")?;
                let d = self.device()?;
                let has = cipher::has_session(&d.store, &addr).map_err(store_error)?;
                Ok(json!({ "has_session": has }))
            }
            "sign" => {
                let message = hex_field(req, "message")?;
                let mut rng = SystemRng::new();
                let d = self.device()?;
                let identity = d.store.local_identity().map_err(store_error)?;
                Ok(json!({ "signature": hex::encode(identity.sign(&mut rng, &message)) }))
            }
            "verify" => {
                let key = public_key(&hex_field(req, "public_key")?, "public_key")?;
                let message = hex_field(req, "message")?;
                let signature = hex_field(req, "signature")?;
                Ok(json!({ "valid": key.verify_signature(&message, &signature) }))
            }
            "group_create" | "group_process" | "group_encrypt" | "group_decrypt"
            | "sender_cert" | "sealed_encrypt" | "sealed_decrypt" | "fingerprint"
            | "media_encrypt" | "media_decrypt" => Err(Failure::new(
                "Unsupported",
                format!("op {op} is not supported by this confide version"),
            )),
            _ => Err(Failure::new("UnknownOp", format!("unknown op {op}"))),
        }
    }

    fn generate_identity(&mut self, req: &Value) -> Reply {
        let name = as_str(field(req, "name")?, "name")?.to_string();
        let device_id = u32_field(req, "device_id")?;
        let identity = match opt(req, "identity_private") {
            Some(v) => IdentityKeyPair::from_private(PrivateKey::from_bytes(key32(
                &as_hex(v, "identity_private")?,
                "identity_private",
            )?)),
            None => IdentityKeyPair::generate(&mut self.rng),
        };
        let registration_id = match opt(req, "registration_id") {
            Some(v) => as_u32(v, "registration_id")?,
            None => confide::keys::generate_registration_id(&mut self.rng),
        };
        let trust_all = match opt(req, "trust_all") {
            Some(v) => v
                .as_bool()
                .ok_or_else(|| Failure::bad_request("field trust_all must be a bool"))?,
            None => false,
        };
        let reply = json!({
            "name": name,
            "device_id": device_id,
            "registration_id": registration_id,
            "identity_key": hex::encode(identity.identity_key().serialize()),
            "identity_private": hex::encode(identity.private_key().to_bytes().as_ref()),
        });
        self.device = Some(Device {
            store: InMemoryStore::new(identity, registration_id),
            device_id,
            trust_all,
            next_signed_id: 1,
            next_pre_key_id: 1,
        });
        Ok(reply)
    }

    fn bundle(&mut self, req: &Value) -> Reply {
        let signed_id = opt(req, "signed_prekey_id")
            .map(|v| as_u32(v, "signed_prekey_id"))
            .transpose()?;
        let pre_key_id = opt(req, "prekey_id")
            .map(|v| as_u32(v, "prekey_id"))
            .transpose()?;
        let one_time = match opt(req, "one_time") {
            Some(v) => v
                .as_bool()
                .ok_or_else(|| Failure::bad_request("field one_time must be a bool"))?,
            None => true,
        };
        let signed_private = opt(req, "signed_prekey_private")
            .map(|v| {
                as_hex(v, "signed_prekey_private").and_then(|b| key32(&b, "signed_prekey_private"))
            })
            .transpose()?;
        let pre_key_private = opt(req, "prekey_private")
            .map(|v| as_hex(v, "prekey_private").and_then(|b| key32(&b, "prekey_private")))
            .transpose()?;
        let mut rng = SystemRng::new();
        let d = self.device()?;
        let identity = d.store.local_identity().map_err(store_error)?;
        let signed_id = signed_id.unwrap_or(d.next_signed_id);
        d.next_signed_id = d.next_signed_id.max(signed_id.saturating_add(1));
        let signed_pair = match signed_private {
            Some(b) => KeyPair::from_private(PrivateKey::from_bytes(b)),
            None => KeyPair::generate(&mut rng),
        };
        let signature = identity.sign(&mut rng, &signed_pair.public.serialize());
        let signed = SignedPreKeyRecord::new(signed_id, now(), signed_pair, signature);
        d.store.save_signed_pre_key(&signed).map_err(store_error)?;
        let pre_key = if one_time {
            let id = pre_key_id.unwrap_or(d.next_pre_key_id);
            d.next_pre_key_id = d.next_pre_key_id.max(id.saturating_add(1));
            let pair = match pre_key_private {
                Some(b) => KeyPair::from_private(PrivateKey::from_bytes(b)),
                None => KeyPair::generate(&mut rng),
            };
            let record = PreKeyRecord::new(id, pair);
            d.store.save_pre_key(&record).map_err(store_error)?;
            Some(record.public())
        } else {
            None
        };
        let spk = signed.public();
        Ok(json!({ "bundle": {
            "registration_id": d.store.local_registration_id().map_err(store_error)?,
            "device_id": d.device_id,
            "identity_key": hex::encode(identity.identity_key().serialize()),
            "signed_prekey_id": spk.id,
            "signed_prekey": hex::encode(spk.key.serialize()),
            "signed_prekey_signature": hex::encode(spk.signature),
            "prekey_id": pre_key.map(|p| p.id),
            "prekey": pre_key.map(|p| hex::encode(p.key.serialize())),
            "kyber_prekey_id": null,
            "kyber_prekey": null,
            "kyber_prekey_signature": null,
        }}))
    }

    fn process_bundle(&mut self, req: &Value) -> Reply {
        let addr = address(req, "address")?;
        let b = field(req, "bundle")?;
        let identity_key =
            IdentityKey::new(public_key(&hex_field(b, "identity_key")?, "identity_key")?);
        let signature = hex_field(b, "signed_prekey_signature")?;
        let signature = <[u8; 64]>::try_from(&signature[..])
            .map_err(|_| Failure::new("InvalidSignature", "signature must be 64 bytes"))?;
        let pre_key = match (opt(b, "prekey_id"), opt(b, "prekey")) {
            (Some(id), Some(key)) => Some(PreKeyPublic {
                id: as_u32(id, "prekey_id")?,
                key: public_key(&as_hex(key, "prekey")?, "prekey")?,
            }),
            (None, None) => None,
            _ => return Err(Failure::bad_request("prekey_id and prekey go together")),
        };
        let bundle = PreKeyBundle {
            registration_id: u32_field(b, "registration_id")?,
            device_id: u32_field(b, "device_id")?,
            identity_key,
            signed_pre_key: SignedPreKeyPublic {
                id: u32_field(b, "signed_prekey_id")?,
                key: public_key(&hex_field(b, "signed_prekey")?, "signed_prekey")?,
                signature,
            },
            pre_key,
        };
        let mut rng = SystemRng::new();
        let d = self.device()?;
        if d.trust_all {
            cipher::accept_identity(&d.store, &addr, &bundle.identity_key).map_err(store_error)?;
        }
        cipher::process_bundle(&d.store, &addr, &bundle, &mut rng, now()).map_err(bundle_error)?;
        Ok(json!({}))
    }

    fn encrypt(&mut self, req: &Value) -> Reply {
        let addr = address(req, "address")?;
        let plaintext = payload(req)?;
        let d = self.device()?;
        let msg = cipher::encrypt(&d.store, &addr, &plaintext).map_err(encrypt_error)?;
        Ok(json!({ "type": msg.message_type(), "ciphertext": hex::encode(msg.serialized()) }))
    }

    fn decrypt(&mut self, req: &Value) -> Reply {
        let addr = address(req, "address")?;
        let ty = u32_field(req, "type")?;
        let bytes = hex_field(req, "ciphertext")?;
        let ty = u8::try_from(ty).map_err(|_| Failure::new("InvalidMessage", "unknown type"))?;
        let msg = CiphertextMessage::from_parts(ty, &bytes)
            .map_err(|e| decrypt_error(DecryptError::from(e)))?;
        let mut rng = SystemRng::new();
        let d = self.device()?;
        if d.trust_all {
            if let CiphertextMessage::PreKey(p) = &msg {
                cipher::accept_identity(&d.store, &addr, p.identity_key()).map_err(store_error)?;
            }
        }
        let plaintext = cipher::decrypt(&d.store, &addr, &msg, &mut rng).map_err(decrypt_error)?;
        Ok(json!({
            "plaintext": hex::encode(&plaintext),
            "text": String::from_utf8_lossy(&plaintext),
        }))
    }
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--db" || a == "--db-key") {
        eprintln!("peer: persistent mode (--db) needs the SQLite store, which this version lacks");
        return std::process::ExitCode::from(2);
    }
    let mut peer = Peer {
        rng: SystemRng::new(),
        device: None,
    };
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let (id, reply, quit) = match serde_json::from_str::<Value>(&line) {
            Ok(req) => {
                let id = req.get("id").cloned().unwrap_or(Value::Null);
                match req.get("op").and_then(Value::as_str) {
                    Some("quit") => (id, Ok(json!({})), true),
                    Some(op) => {
                        let op = op.to_string();
                        (id, peer.handle(&op, &req), false)
                    }
                    None => (id, Err(Failure::bad_request("missing field op")), false),
                }
            }
            Err(e) => (
                Value::Null,
                Err(Failure::bad_request(format!("invalid JSON: {e}"))),
                false,
            ),
        };
        let out = match reply {
            Ok(mut v) => {
                if let Value::Object(map) = &mut v {
                    map.insert("id".into(), id);
                    map.insert("ok".into(), Value::Bool(true));
                }
                v
            }
            Err(f) => json!({ "id": id, "ok": false, "error": f.error, "code": f.code }),
        };
        if writeln!(stdout, "{out}")
            .and_then(|()| stdout.flush())
            .is_err()
        {
            break;
        }
        if quit {
            break;
        }
    }
    std::process::ExitCode::SUCCESS
}
