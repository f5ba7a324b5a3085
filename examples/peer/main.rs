//! confide as one device speaking the JSON-lines peer protocol
//! (`../shared/interop/PEER_PROTOCOL.md`) on stdin/stdout, so test drivers can wire it
//! to other Signal-protocol implementations.
//!
//! `cargo run --release --example peer`. Supports every op of the protocol. It is a thin
//! adapter: each op decodes its JSON, makes one call on a [`Device`] (or, for the ops
//! that play a server or take keys made elsewhere, on the public key and certificate
//! types), and encodes the result; failures carry the library's own `code()`.
//!
//! Persistent mode: `peer --db PATH --db-key HEX` keeps everything in a `SqliteStore` at
//! PATH sealed with the 32-byte key; started again it resumes (`hello` reports the stored
//! `name`, `device_id` and `identity_key`), and a message decrypted before a crash comes
//! back from the store with `"redelivered": true` — by `decrypt`, `group_decrypt` and
//! `sealed_decrypt` alike (their replies always carry `redelivered`; without `--db` it is
//! always `false` and a replay is refused as a duplicate).

mod groups;
mod json;
mod media;

use std::io::{BufRead, Write};

use confide::device::{Device, FixedClock};
use confide::keys::{
    IdentityKeyPair, KemKeyPair, KemPublicKey, KemSecretKey, KeyPair, KyberPreKeyPublic,
    KyberPreKeyRecord, PreKeyPublic, PreKeyRecord, PrivateKey, SignedPreKeyPublic,
    SignedPreKeyRecord, generate_registration_id,
};
use confide::session::Versions;
use confide::session::cipher::{self, BundleSpec};
use confide::store::{DurableStore, InMemoryStore, ProtocolStore, SqliteStore, StoreKey};
use confide::{Address, CiphertextMessage, IdentityKey, PreKeyBundle, SystemRng, Timestamp};
use serde_json::{Value, json};

use json::{
    Failure, Reply, address, as_hex, as_str, as_u32, device_id, field, hex_field, key32, opt,
    opt_bool, opt_u32, payload, public_key, u32_field,
};

/// The device behind the peer. Its clock is set to the system time before every
/// request (or to a request's own `timestamp`, see `sealed_decrypt`).
type PeerDevice<S> = Device<S, SystemRng, FixedClock>;

/// Makes the store for a new identity: a fresh in-memory store, or the database file
/// with this identity set.
type OpenStore<S> = Box<dyn FnMut(&IdentityKeyPair, u32) -> Result<S, Failure>>;

/// State-store key of the peer's own settings in persistent mode: the device's address
/// and trust mode, which the library does not keep.
const PROFILE_KIND: &str = "peer";
const PROFILE_KEY: &str = "profile";

struct Peer<S> {
    device: Option<PeerDevice<S>>,
    /// `generate_identity`'s `trust_all`: accept a changed identity key from a bundle or
    /// a prekey message instead of refusing it.
    trust_all: bool,
    open: OpenStore<S>,
    clock: FixedClock,
    persistent: bool,
    /// `CONFIDE_PEER_VERSION=4`: v4 only (PQXDH, SPQR); otherwise v3 only, as before.
    v4: bool,
}

fn system_now() -> Timestamp {
    Timestamp::from_system_time(std::time::SystemTime::now())
}

impl<S: ProtocolStore> Peer<S> {
    fn new(open: OpenStore<S>, persistent: bool) -> Self {
        Self {
            device: None,
            trust_all: false,
            open,
            clock: FixedClock::new(system_now()),
            persistent,
            v4: std::env::var("CONFIDE_PEER_VERSION").is_ok_and(|v| v == "4"),
        }
    }

    fn device(&self) -> Result<&PeerDevice<S>, Failure> {
        self.device
            .as_ref()
            .ok_or_else(|| Failure::new("NoIdentity", "call generate_identity first"))
    }

    fn new_device(&self, store: S, name: &str, device_id: u32) -> PeerDevice<S> {
        Device::new(
            store,
            Address::new(name, device_id),
            SystemRng::new(),
            self.clock.clone(),
        )
        .with_versions(if self.v4 {
            Versions::V4Only
        } else {
            Versions::V3Only
        })
    }

    /// Persists the address and trust mode (persistent mode only).
    fn save_profile(&self) -> Result<(), Failure> {
        let d = self.device()?;
        let Some(st) = d.store().state_store().filter(|_| self.persistent) else {
            return Ok(());
        };
        let profile = json!({
            "name": d.address().name(),
            "device_id": d.address().device_id(),
            "trust_all": self.trust_all,
        });
        Ok(st.save_state(PROFILE_KIND, PROFILE_KEY, profile.to_string().as_bytes())?)
    }

    /// Resumes the device kept in `store`, if it has an identity and a profile.
    fn resume(&mut self, store: S) -> Result<(), Failure> {
        let Some(st) = store.state_store() else {
            return Ok(());
        };
        let Some(bytes) = st.state(PROFILE_KIND, PROFILE_KEY)? else {
            return Ok(());
        };
        let p: Value = serde_json::from_slice(&bytes)
            .map_err(|_| Failure::new("Store", "stored profile is corrupt"))?;
        let name = as_str(field(&p, "name")?, "name")?.to_string();
        self.trust_all = p.get("trust_all").and_then(Value::as_bool).unwrap_or(false);
        let device = self.new_device(store, &name, u32_field(&p, "device_id")?);
        device.identity_key()?;
        self.device = Some(device);
        Ok(())
    }

    fn handle(&mut self, op: &str, req: &Value) -> Reply {
        self.clock.set(system_now());
        match op {
            "hello" => self.hello(),
            "generate_identity" => self.generate_identity(req),
            "bundle" => self.bundle(req),
            "process_bundle" => self.process_bundle(req),
            "encrypt" => {
                let addr = address(req, "address")?;
                let msg = self.device()?.encrypt_raw(&addr, &payload(req)?)?;
                Ok(
                    json!({ "type": msg.message_type(), "ciphertext": hex::encode(msg.serialized()) }),
                )
            }
            "decrypt" => self.decrypt(req),
            "has_session" => {
                let addr = address(req, "address")?;
                Ok(json!({ "has_session": self.device()?.has_session(&addr)? }))
            }
            "sign" => {
                let message = hex_field(req, "message")?;
                let identity = self.device()?.store().local_identity()?;
                // The protocol's raw signing op: the hazmat call, on purpose.
                let signature = confide::hazmat::xeddsa_sign(
                    identity.private_key(),
                    &mut SystemRng::new(),
                    &message,
                );
                Ok(json!({ "signature": hex::encode(signature) }))
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

    fn hello(&self) -> Reply {
        let mut reply = json!({
            "impl": "confide",
            "version": env!("CARGO_PKG_VERSION"),
            "message_version": if self.v4 { 4 } else { 3 },
            "sender_keys": true,
            "sealed_sender": true,
            "persistent": self.persistent,
        });
        if let (Some(d), Value::Object(map)) = (&self.device, &mut reply) {
            map.insert("name".into(), json!(d.address().name()));
            map.insert("device_id".into(), json!(d.address().device_id()));
            map.insert(
                "identity_key".into(),
                json!(hex::encode(d.identity_key()?.serialize())),
            );
        }
        Ok(reply)
    }

    fn generate_identity(&mut self, req: &Value) -> Reply {
        let name = as_str(field(req, "name")?, "name")?.to_string();
        let device_id = device_id(field(req, "device_id")?)?;
        let mut rng = SystemRng::new();
        let identity = match opt(req, "identity_private") {
            Some(v) => IdentityKeyPair::from_private(PrivateKey::from_bytes(key32(
                &as_hex(v, "identity_private")?,
                "identity_private",
            )?)),
            None => IdentityKeyPair::generate(&mut rng),
        };
        let registration_id = match opt_u32(req, "registration_id")? {
            Some(id) => id,
            None => generate_registration_id(&mut rng),
        };
        let trust_all = opt_bool(req, "trust_all")?.unwrap_or(false);
        let reply = json!({
            "name": name,
            "device_id": device_id,
            "registration_id": registration_id,
            "identity_key": hex::encode(identity.identity_key().serialize()),
            "identity_private": hex::encode(identity.private_key().to_bytes().as_ref()),
        });
        // The old device (and its database connection) goes before the new one opens.
        self.device = None;
        let store = (self.open)(&identity, registration_id)?;
        self.device = Some(self.new_device(store, &name, device_id));
        self.trust_all = trust_all;
        self.save_profile()?;
        Ok(reply)
    }

    /// A bundle from new keys: the device's own unless the request names ids or gives
    /// private keys (made elsewhere, e.g. test vectors), which are saved as the records
    /// the library builds from them.
    fn bundle(&self, req: &Value) -> Reply {
        let signed_id = opt_u32(req, "signed_prekey_id")?;
        let pre_key_id = opt_u32(req, "prekey_id")?;
        let one_time = opt_bool(req, "one_time")?.unwrap_or(true);
        let key_pair = |name: &str| -> Result<Option<KeyPair>, Failure> {
            opt(req, name)
                .map(|v| key32(&as_hex(v, name)?, name))
                .transpose()
                .map(|k| k.map(|k| KeyPair::from_private(PrivateKey::from_bytes(k))))
        };
        let signed_pair = key_pair("signed_prekey_private")?;
        let pre_key_pair = key_pair("prekey_private")?;
        // v4 mode: a Kyber prekey id and secret key may be given too.
        let kyber_id = opt_u32(req, "kyber_prekey_id")?.filter(|_| self.v4);
        let kyber_last_resort = opt_bool(req, "kyber_last_resort")?.unwrap_or(true);
        let kyber_pair = match opt(req, "kyber_prekey_private").filter(|_| self.v4) {
            Some(v) => Some(
                KemSecretKey::from_bytes(&as_hex(v, "kyber_prekey_private")?)
                    .and_then(KemKeyPair::from_secret)
                    .map_err(|e| Failure::new(e.code(), e.to_string()))?,
            ),
            None => None,
        };
        let d = self.device()?;
        let explicit = [signed_id, pre_key_id, kyber_id]
            .iter()
            .any(Option::is_some)
            || signed_pair.is_some()
            || pre_key_pair.is_some()
            || kyber_pair.is_some()
            || (self.v4 && !kyber_last_resort);
        let mut bundle = match explicit {
            // The device's own ids and keys.
            false => d.publish_bundle()?,
            // The ids the request names (default 1; one in use is refused), then the
            // keys it gives in place of the fresh ones, under those ids.
            true => {
                let spec = BundleSpec::new(d.address().device_id(), signed_id.unwrap_or(1))
                    .with_pre_key(one_time.then(|| pre_key_id.unwrap_or(1)))
                    .with_kyber_pre_key(self.v4.then(|| kyber_id.unwrap_or(1)), kyber_last_resort);
                let made =
                    cipher::publish_bundle(d.store(), &mut SystemRng::new(), &spec, d.now())?;
                let made = self.import_keys(made, signed_pair, pre_key_pair)?;
                self.import_kyber(made, kyber_pair, kyber_last_resort)?
            }
        };
        if !one_time {
            bundle.pre_key = None;
        }
        let spk = bundle.signed_pre_key;
        let kyber = bundle.kyber_pre_key.as_ref();
        Ok(json!({ "bundle": {
            "registration_id": bundle.registration_id,
            "device_id": bundle.device_id,
            "identity_key": hex::encode(bundle.identity_key.serialize()),
            "signed_prekey_id": spk.id,
            "signed_prekey": hex::encode(spk.key.serialize()),
            "signed_prekey_signature": hex::encode(spk.signature),
            "prekey_id": bundle.pre_key.map(|p| p.id),
            "prekey": bundle.pre_key.map(|p| hex::encode(p.key.serialize())),
            "kyber_prekey_id": kyber.map(|k| k.id),
            "kyber_prekey": kyber.map(|k| hex::encode(k.key.serialize())),
            "kyber_prekey_signature": kyber.map(|k| hex::encode(k.signature)),
        }}))
    }

    /// `bundle` with the given Kyber key pair in place of the one just made under its
    /// id, signed and saved as the record the library builds from it.
    fn import_kyber(
        &self,
        mut bundle: PreKeyBundle,
        pair: Option<KemKeyPair>,
        last_resort: bool,
    ) -> Result<PreKeyBundle, Failure> {
        let (Some(pair), Some(made)) = (pair, bundle.kyber_pre_key.as_ref()) else {
            return Ok(bundle);
        };
        let d = self.device()?;
        let kyber = d
            .store()
            .kyber_pre_keys()
            .ok_or_else(|| Failure::new("NoKyberStore", "the store keeps no Kyber prekeys"))?;
        let identity = d.store().local_identity()?;
        let record = KyberPreKeyRecord::from_key_pair(
            &mut SystemRng::new(),
            &identity,
            made.id,
            pair,
            d.now(),
        );
        kyber.save_kyber_pre_key(record.id(), &record.to_bytes(), last_resort)?;
        bundle.kyber_pre_key = Some(record.public());
        Ok(bundle)
    }

    /// `bundle` with the given key pairs in place of the ones just made under its ids
    /// (which nobody has seen yet), saved as the records the library builds from them.
    fn import_keys(
        &self,
        mut bundle: PreKeyBundle,
        signed: Option<KeyPair>,
        pre_key: Option<KeyPair>,
    ) -> Result<PreKeyBundle, Failure> {
        let d = self.device()?;
        let store = d.store();
        if let Some(pair) = signed {
            let identity = store.local_identity()?;
            let id = bundle.signed_pre_key.id;
            let mut rng = SystemRng::new();
            let record = SignedPreKeyRecord::from_key_pair(&mut rng, &identity, id, pair, d.now());
            store.save_signed_pre_key(&record)?;
            bundle.signed_pre_key = record.public();
        }
        if let (Some(pair), Some(made)) = (pre_key, bundle.pre_key) {
            let record = PreKeyRecord::new(made.id, pair);
            store.save_pre_key(&record)?;
            bundle.pre_key = Some(record.public());
        }
        Ok(bundle)
    }

    fn process_bundle(&self, req: &Value) -> Reply {
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
        let kyber = (
            opt(b, "kyber_prekey_id"),
            opt(b, "kyber_prekey"),
            opt(b, "kyber_prekey_signature"),
        );
        match kyber {
            (Some(id), Some(key), Some(sig)) => {
                let key = KemPublicKey::from_bytes(&as_hex(key, "kyber_prekey")?)
                    .map_err(|e| Failure::new(e.code(), e.to_string()))?;
                let sig = as_hex(sig, "kyber_prekey_signature")?;
                let signature = <[u8; 64]>::try_from(&sig[..])
                    .map_err(|_| Failure::new("InvalidSignature", "signature must be 64 bytes"))?;
                bundle = bundle.with_kyber_pre_key(KyberPreKeyPublic {
                    id: as_u32(id, "kyber_prekey_id")?,
                    key,
                    signature,
                });
            }
            (None, None, None) => {}
            _ => {
                return Err(Failure::bad_request(
                    "kyber_prekey_id, kyber_prekey and kyber_prekey_signature go together",
                ));
            }
        }
        let d = self.device()?;
        if self.trust_all {
            d.accept_identity(&addr, &bundle.identity_key)?;
        }
        d.start_session(&addr, &bundle)?;
        Ok(json!({}))
    }

    fn decrypt(&self, req: &Value) -> Reply {
        let addr = address(req, "address")?;
        let ty = u32_field(req, "type")?;
        let bytes = hex_field(req, "ciphertext")?;
        let ty = u8::try_from(ty).map_err(|_| Failure::new("InvalidMessage", "unknown type"))?;
        let msg = CiphertextMessage::from_parts(ty, &bytes)?;
        let d = self.device()?;
        if let (true, CiphertextMessage::PreKey(p)) = (self.trust_all, &msg) {
            d.accept_identity(&addr, p.identity_key())?;
        }
        let got = d.decrypt_raw(&addr, &msg)?;
        Ok(json::decrypted(&got.plaintext, got.redelivered))
    }
}

/// Answers requests from stdin until EOF or `quit`.
fn serve<S: ProtocolStore>(mut peer: Peer<S>) {
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
        if writeln!(stdout, "{}", json::response(id, reply))
            .and_then(|()| stdout.flush())
            .is_err()
            || quit
        {
            break;
        }
    }
}

/// Opens the database of `--db PATH --db-key HEX` and serves from it.
fn serve_persistent(path: String, key_hex: &str) -> Result<(), String> {
    let key = hex::decode(key_hex)
        .ok()
        .map(zeroize::Zeroizing::new)
        .and_then(|b| StoreKey::try_from(b.as_slice()).ok())
        .ok_or("--db-key must be 32 bytes of hex")?;
    let store = SqliteStore::open(&path, &key, &mut SystemRng::new())
        .map_err(|e| format!("cannot open the store: {e}"))?;
    let resumable = store
        .has_local_identity()
        .map_err(|e| format!("cannot read the store: {e}"))?;
    let open: OpenStore<SqliteStore> = Box::new(move |identity, registration_id| {
        let store = SqliteStore::open(&path, &key, &mut SystemRng::new())
            .map_err(|e| Failure::new("Store", e))?;
        store.set_local_identity(identity, registration_id)?;
        Ok(store)
    });
    let mut peer = Peer::new(open, true);
    if resumable {
        peer.resume(store)
            .map_err(|f| format!("cannot resume: {}", f.error))?;
    }
    serve(peer);
    Ok(())
}

fn main() -> std::process::ExitCode {
    // `CONFIDE_PEER_VERSION=4` speaks v4 (see `Peer::v4`); anything else but 3 is
    // reported and read as v3.
    if std::env::var("CONFIDE_PEER_VERSION").is_ok_and(|v| v != "3" && v != "4") {
        eprintln!("peer: unknown CONFIDE_PEER_VERSION; speaking v3");
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let result = match (arg("--db"), arg("--db-key")) {
        (None, None) => {
            let open: OpenStore<InMemoryStore> = Box::new(|identity, registration_id| {
                Ok(InMemoryStore::new(identity.clone(), registration_id))
            });
            serve(Peer::new(open, false));
            Ok(())
        }
        (Some(path), Some(key_hex)) => serve_persistent(path, &key_hex),
        _ => Err("--db and --db-key go together".to_string()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("peer: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
