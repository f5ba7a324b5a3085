//! confide as one device speaking the JSON-lines peer protocol
//! (`../shared/interop/PEER_PROTOCOL.md`) on stdin/stdout, so test drivers can wire it
//! to other Signal-protocol implementations.
//!
//! `cargo run --release --example peer`. Supports every op of the protocol.
//!
//! Persistent mode: `peer --db PATH --db-key HEX` keeps everything in a `SqliteStore` at
//! PATH sealed with the 32-byte key; started again it resumes (`hello` reports the stored
//! `name`, `device_id` and `identity_key`), and a message decrypted before a crash comes
//! back from the store with `"redelivered": true` — by `decrypt`, `group_decrypt` and
//! `sealed_decrypt` alike (their replies always carry `redelivered`; without `--db` it is
//! always `false` and a replay is refused as a duplicate).

mod groups;
mod media;

use std::io::{BufRead, Write};

use confide::keys::{
    IdentityKeyPair, KeyPair, PreKeyPublic, PreKeyRecord, PrivateKey, PublicKey,
    SignedPreKeyPublic, SignedPreKeyRecord,
};
use confide::session::cipher;
use confide::store::{
    DurableStore, IdentityStore, InMemoryStore, ProtocolStore, SqliteStore, StoreKey,
};
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

/// Where a device keeps its state.
enum Store {
    Memory(Box<InMemoryStore>),
    Sqlite(Box<SqliteStore>),
}

impl Store {
    fn get(&self) -> &dyn ProtocolStore {
        match self {
            Store::Memory(s) => &**s,
            Store::Sqlite(s) => &**s,
        }
    }
}

struct Device {
    store: Store,
    name: String,
    device_id: u32,
    trust_all: bool,
    next_signed_id: u32,
    next_pre_key_id: u32,
}

/// State-store key of the peer's own settings in persistent mode.
const PROFILE_KIND: &str = "peer";
const PROFILE_KEY: &str = "profile";

impl Device {
    /// Persists name, device id, trust mode and the next key ids (persistent mode only).
    fn save_profile(&self) -> Result<(), Failure> {
        let Store::Sqlite(s) = &self.store else {
            return Ok(());
        };
        let profile = json!({
            "name": self.name,
            "device_id": self.device_id,
            "trust_all": self.trust_all,
            "next_signed_id": self.next_signed_id,
            "next_pre_key_id": self.next_pre_key_id,
        });
        let st = s
            .state_store()
            .ok_or_else(|| Failure::new("Store", "store keeps no state"))?;
        st.save_state(PROFILE_KIND, PROFILE_KEY, profile.to_string().as_bytes())
            .map_err(store_error)
    }

    /// Resumes the device kept in `store`, if it has an identity and a profile.
    fn resume(store: SqliteStore) -> Result<Result<Self, SqliteStore>, Failure> {
        if !store.has_local_identity().map_err(store_error)? {
            return Ok(Err(store));
        }
        let Some(st) = store.state_store() else {
            return Ok(Err(store));
        };
        let Some(bytes) = st.state(PROFILE_KIND, PROFILE_KEY).map_err(store_error)? else {
            return Ok(Err(store));
        };
        let p: Value = serde_json::from_slice(&bytes)
            .map_err(|_| Failure::new("Store", "stored profile is corrupt"))?;
        Ok(Ok(Self {
            name: as_str(field(&p, "name")?, "name")?.to_string(),
            device_id: u32_field(&p, "device_id")?,
            trust_all: p.get("trust_all").and_then(Value::as_bool).unwrap_or(false),
            next_signed_id: u32_field(&p, "next_signed_id")?,
            next_pre_key_id: u32_field(&p, "next_pre_key_id")?,
            store: Store::Sqlite(Box::new(store)),
        }))
    }
}

struct Peer {
    rng: SystemRng,
    device: Option<Device>,
    /// Persistent mode: the opened store, until `generate_identity` moves it into a device.
    db: Option<SqliteStore>,
    persistent: bool,
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

/// The protocol's device ids are 1..=127 (as libsignal's).
fn device_id(v: &Value) -> Result<u32, Failure> {
    let id = as_u32(v, "device_id")?;
    if !(1..=127).contains(&id) {
        return Err(Failure::bad_request("field device_id must be 1..127"));
    }
    Ok(id)
}

fn address(req: &Value, name: &str) -> Result<Address, Failure> {
    let a = field(req, name)?;
    let device_id = device_id(field(a, "device_id")?)?;
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
            "hello" => {
                let mut reply = json!({
                    "impl": "confide",
                    "version": env!("CARGO_PKG_VERSION"),
                    "message_version": 3,
                    "sender_keys": true,
                    "sealed_sender": true,
                    "persistent": self.persistent,
                });
                if let (Some(d), Value::Object(map)) = (&self.device, &mut reply) {
                    let identity = d.store.get().local_identity().map_err(store_error)?;
                    map.insert("name".into(), json!(d.name));
                    map.insert("device_id".into(), json!(d.device_id));
                    map.insert(
                        "identity_key".into(),
                        json!(hex::encode(identity.identity_key().serialize())),
                    );
                }
                Ok(reply)
            }
            "generate_identity" => self.generate_identity(req),
            "bundle" => self.bundle(req),
            "process_bundle" => self.start_session(req),
            "encrypt" => self.encrypt(req),
            "decrypt" => self.decrypt(req),
            "has_session" => {
                let addr = address(req, "address")?;
                let d = self.device()?;
                let has = cipher::has_session(d.store.get(), &addr).map_err(store_error)?;
                Ok(json!({ "has_session": has }))
            }
            "sign" => {
                let message = hex_field(req, "message")?;
                let mut rng = SystemRng::new();
                let d = self.device()?;
                let identity = d.store.get().local_identity().map_err(store_error)?;
                Ok(
                    json!({ "signature": hex::encode(confide::hazmat::xeddsa_sign(identity.private_key(), &mut rng, &message)) }),
                )
            }
            "verify" => {
                let key = public_key(&hex_field(req, "public_key")?, "public_key")?;
                let message = hex_field(req, "message")?;
                let signature = hex_field(req, "signature")?;
                Ok(json!({ "valid": key.verify_signature(&message, &signature) }))
            }
            "group_create" => self.group_create(req),
            "group_process" => self.group_process(req),
            "group_encrypt" => self.group_encrypt(req),
            "group_decrypt" => self.group_decrypt(req),
            "sender_cert" => self.sender_cert(req),
            "sealed_encrypt" => self.sealed_encrypt(req),
            "sealed_decrypt" => self.sealed_decrypt(req),
            "fingerprint" => self.fingerprint(req),
            "media_encrypt" => media::media_encrypt(req),
            "media_decrypt" => media::media_decrypt(req),
            _ => Err(Failure::new("UnknownOp", format!("unknown op {op}"))),
        }
    }

    fn generate_identity(&mut self, req: &Value) -> Reply {
        let name = as_str(field(req, "name")?, "name")?.to_string();
        let device_id = device_id(field(req, "device_id")?)?;
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
        let store = if self.persistent {
            let db = match self.device.take() {
                Some(Device {
                    store: Store::Sqlite(s),
                    ..
                }) => s,
                _ => Box::new(
                    self.db
                        .take()
                        .ok_or_else(|| Failure::new("Store", "persistent store unavailable"))?,
                ),
            };
            db.set_local_identity(&identity, registration_id)
                .map_err(store_error)?;
            Store::Sqlite(db)
        } else {
            Store::Memory(Box::new(InMemoryStore::new(identity, registration_id)))
        };
        let device = Device {
            store,
            name,
            device_id,
            trust_all,
            next_signed_id: 1,
            next_pre_key_id: 1,
        };
        device.save_profile()?;
        self.device = Some(device);
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
        let identity = d.store.get().local_identity().map_err(store_error)?;
        let signed_id = signed_id.unwrap_or(d.next_signed_id);
        d.next_signed_id = d.next_signed_id.max(signed_id.saturating_add(1));
        let signed_pair = match signed_private {
            Some(b) => KeyPair::from_private(PrivateKey::from_bytes(b)),
            None => KeyPair::generate(&mut rng),
        };
        let signature = confide::hazmat::xeddsa_sign(
            identity.private_key(),
            &mut rng,
            &signed_pair.public().serialize(),
        );
        let signed = SignedPreKeyRecord::new(signed_id, now(), signed_pair, signature);
        d.store
            .get()
            .save_signed_pre_key(&signed)
            .map_err(store_error)?;
        let pre_key = if one_time {
            let id = pre_key_id.unwrap_or(d.next_pre_key_id);
            d.next_pre_key_id = d.next_pre_key_id.max(id.saturating_add(1));
            let pair = match pre_key_private {
                Some(b) => KeyPair::from_private(PrivateKey::from_bytes(b)),
                None => KeyPair::generate(&mut rng),
            };
            let record = PreKeyRecord::new(id, pair);
            d.store.get().save_pre_key(&record).map_err(store_error)?;
            Some(record.public())
        } else {
            None
        };
        let spk = signed.public();
        d.save_profile()?;
        Ok(json!({ "bundle": {
            "registration_id": d.store.get().local_registration_id().map_err(store_error)?,
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

    fn start_session(&mut self, req: &Value) -> Reply {
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
        let signed_pre_key = SignedPreKeyPublic {
            id: u32_field(b, "signed_prekey_id")?,
            key: public_key(&hex_field(b, "signed_prekey")?, "signed_prekey")?,
            signature,
        };
        let mut bundle = PreKeyBundle::new(
            u32_field(b, "registration_id")?,
            u32_field(b, "device_id")?,
            identity_key,
            signed_pre_key,
        );
        if let Some(pre_key) = pre_key {
            bundle = bundle.with_pre_key(pre_key);
        }
        let mut rng = SystemRng::new();
        let d = self.device()?;
        if d.trust_all {
            cipher::accept_identity(d.store.get(), &addr, &bundle.identity_key)
                .map_err(store_error)?;
        }
        cipher::start_session(d.store.get(), &addr, &bundle, &mut rng, now())
            .map_err(bundle_error)?;
        Ok(json!({}))
    }

    fn encrypt(&mut self, req: &Value) -> Reply {
        let addr = address(req, "address")?;
        let plaintext = payload(req)?;
        let d = self.device()?;
        let msg = cipher::encrypt(d.store.get(), &addr, &plaintext).map_err(encrypt_error)?;
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
                cipher::accept_identity(d.store.get(), &addr, p.identity_key())
                    .map_err(store_error)?;
            }
        }
        let got =
            cipher::decrypt(d.store.get(), &addr, &msg, &mut rng, now()).map_err(decrypt_error)?;
        Ok(json!({
            "plaintext": hex::encode(got.plaintext.as_slice()),
            "text": String::from_utf8_lossy(&got.plaintext),
            "redelivered": got.redelivered,
        }))
    }
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let mut peer = Peer {
        rng: SystemRng::new(),
        device: None,
        db: None,
        persistent: false,
    };
    match (arg("--db"), arg("--db-key")) {
        (None, None) => {}
        (Some(path), Some(key_hex)) => {
            let key = match hex::decode(&key_hex)
                .ok()
                .map(zeroize::Zeroizing::new)
                .and_then(|b| StoreKey::try_from(b.as_slice()).ok())
            {
                Some(k) => k,
                None => {
                    eprintln!("peer: --db-key must be 32 bytes of hex");
                    return std::process::ExitCode::from(2);
                }
            };
            let store = match SqliteStore::open(&path, &key, &mut peer.rng) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("peer: cannot open the store: {e}");
                    return std::process::ExitCode::from(2);
                }
            };
            peer.persistent = true;
            match Device::resume(store) {
                Ok(Ok(device)) => peer.device = Some(device),
                Ok(Err(store)) => peer.db = Some(store),
                Err(f) => {
                    eprintln!("peer: cannot resume: {}", f.error);
                    return std::process::ExitCode::from(2);
                }
            }
        }
        _ => {
            eprintln!("peer: --db and --db-key go together");
            return std::process::ExitCode::from(2);
        }
    }
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
