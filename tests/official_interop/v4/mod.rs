//! Protocol v4 (PQXDH + SPQR) 1:1 sessions between confide's `Device` and the official
//! libsignal 0.103.0 (peer.js in its own Node process): sessions from either side's
//! bundle, long conversations with DH-ratchet steps and SPQR epochs advancing, held-back
//! and reordered delivery, replays and corrupted or missing `pq_ratchet` refused, sealed
//! sender around v4 messages, a byte-for-byte derivation check against libsignal's
//! session record, and confide's `examples/peer` in v4 mode against peer.js.

mod derivation;
mod peer;
mod refusals;
mod sessions;
pub(crate) mod wire;

use confide::device::{Device, FixedClock};
use confide::keys::{KemPublicKey, KyberPreKeyPublic, PreKeyPublic, PublicKey, SignedPreKeyPublic};
use confide::session::Versions;
use confide::{
    Address, CiphertextMessage, DecryptError, IdentityKey, IdentityKeyPair, InMemoryStore,
    PreKeyBundle, Timestamp,
};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use serde_json::{Value, json};

use crate::harness::Node;

pub(crate) const CONFIDE_NAME: &str = "c0ff1de0-4444-4000-8000-0000000000c4";
pub(crate) const LIBSIGNAL_NAME: &str = "11b51911-4444-4000-8000-0000000011b4";

pub(crate) type Dev = Device<InMemoryStore, ChaCha20Rng, FixedClock>;

pub(crate) fn unhex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap_or_else(|| panic!("hex string: {v}"))).expect("hex")
}

pub(crate) fn addr_json(a: &Address) -> Value {
    json!({"name": a.name(), "device_id": a.device_id()})
}

pub(crate) fn now() -> Timestamp {
    Timestamp::from_system_time(std::time::SystemTime::now())
}

pub(crate) fn shuffle<T>(v: &mut [T], rng: &mut ChaCha20Rng) {
    for i in (1..v.len()).rev() {
        let j = (rng.next_u32() as usize) % (i + 1);
        v.swap(i, j);
    }
}

/// A confide device (v4 only, the default) on an in-memory store.
pub(crate) struct Confide {
    pub(crate) dev: Dev,
    pub(crate) identity: IdentityKeyPair,
}

impl Confide {
    pub(crate) fn new(name: &str, seed: u64) -> Confide {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let identity = IdentityKeyPair::generate(&mut rng);
        let registration_id = 1000 + (seed as u32 % 1000);
        Self::with_identity(name, identity, registration_id, rng)
    }

    pub(crate) fn with_identity(
        name: &str,
        identity: IdentityKeyPair,
        registration_id: u32,
        rng: ChaCha20Rng,
    ) -> Confide {
        let store = InMemoryStore::new(identity.clone(), registration_id);
        let dev = Device::new(store, Address::new(name, 1), rng, FixedClock::new(now()))
            .with_versions(Versions::V4Only);
        Confide { dev, identity }
    }

    pub(crate) fn addr(&self) -> &Address {
        self.dev.address()
    }

    pub(crate) fn identity_key(&self) -> IdentityKey {
        *self.identity.identity_key()
    }
}

/// libsignal's device: peer.js and what its `generate_identity` said.
pub(crate) struct Libsignal {
    pub(crate) p: Node,
    pub(crate) addr: Address,
    pub(crate) identity: IdentityKey,
}

impl Libsignal {
    pub(crate) fn new(name: &str) -> Libsignal {
        let mut p = Node::spawn_script("peer.js");
        let r = p.ok(
            "generate_identity",
            json!({"name": name, "device_id": 1, "registration_id": 4321}),
        );
        let identity =
            IdentityKey::new(PublicKey::try_from(&unhex(&r["identity_key"])[..]).unwrap());
        Libsignal {
            p,
            addr: Address::new(name, 1),
            identity,
        }
    }

    /// A bundle from libsignal: `one_time` EC prekey or not, its Kyber prekey one-time
    /// or last-resort.
    pub(crate) fn bundle(&mut self, one_time: bool, kyber_last_resort: bool) -> Value {
        self.p.ok(
            "bundle",
            json!({"one_time": one_time, "kyber_last_resort": kyber_last_resort}),
        )["bundle"]
            .clone()
    }
}

/// A libsignal bundle (peer.js's JSON) as confide's `PreKeyBundle`.
pub(crate) fn bundle_from_json(b: &Value) -> PreKeyBundle {
    let key = |f: &str| PublicKey::try_from(&unhex(&b[f])[..]).unwrap();
    let id = |f: &str| u32::try_from(b[f].as_u64().unwrap()).unwrap();
    let signed = SignedPreKeyPublic {
        id: id("signed_prekey_id"),
        key: key("signed_prekey"),
        signature: unhex(&b["signed_prekey_signature"]).try_into().unwrap(),
    };
    let mut bundle = PreKeyBundle::new(
        id("registration_id"),
        id("device_id"),
        IdentityKey::new(key("identity_key")),
        signed,
    );
    if !b["prekey"].is_null() {
        bundle = bundle.with_pre_key(PreKeyPublic {
            id: id("prekey_id"),
            key: key("prekey"),
        });
    }
    let kyber = unhex(&b["kyber_prekey"]);
    assert_eq!(kyber.len(), 1569, "libsignal's Kyber prekey is 0x08 ‖ 1568");
    assert_eq!(kyber[0], 0x08);
    bundle.with_kyber_pre_key(KyberPreKeyPublic {
        id: id("kyber_prekey_id"),
        key: KemPublicKey::from_bytes(&kyber).unwrap(),
        signature: unhex(&b["kyber_prekey_signature"]).try_into().unwrap(),
    })
}

/// confide's bundle as PEER_PROTOCOL's JSON, for peer.js's `process_bundle`.
pub(crate) fn bundle_to_json(b: &PreKeyBundle) -> Value {
    let kyber = b
        .kyber_pre_key
        .as_ref()
        .expect("a v4 bundle has a Kyber prekey");
    json!({
        "registration_id": b.registration_id,
        "device_id": b.device_id,
        "identity_key": hex::encode(b.identity_key.serialize()),
        "signed_prekey_id": b.signed_pre_key.id,
        "signed_prekey": hex::encode(b.signed_pre_key.key.serialize()),
        "signed_prekey_signature": hex::encode(b.signed_pre_key.signature),
        "prekey_id": b.pre_key.map(|p| p.id),
        "prekey": b.pre_key.map(|p| hex::encode(p.key.serialize())),
        "kyber_prekey_id": kyber.id,
        "kyber_prekey": hex::encode(kyber.key.serialize()),
        "kyber_prekey_signature": hex::encode(kyber.signature),
    })
}

/// One 1:1 message on the wire.
#[derive(Clone, Debug)]
pub(crate) struct Wire {
    pub(crate) ty: u8,
    pub(crate) bytes: Vec<u8>,
    pub(crate) text: String,
}

/// confide and libsignal with a v4 session between them (once `start` ran), and the
/// SPQR epochs each side's messages were seen to carry.
pub(crate) struct Pair {
    pub(crate) c: Confide,
    pub(crate) l: Libsignal,
    pub(crate) max_epoch_c: u64,
    pub(crate) max_epoch_l: u64,
    pub(crate) sent: u32,
}

impl Pair {
    pub(crate) fn new(seed: u64) -> Pair {
        Pair {
            c: Confide::new(CONFIDE_NAME, seed),
            l: Libsignal::new(LIBSIGNAL_NAME),
            max_epoch_c: 0,
            max_epoch_l: 0,
            sent: 0,
        }
    }

    /// confide starts the session from libsignal's bundle.
    pub(crate) fn confide_starts(&mut self, one_time: bool, kyber_last_resort: bool) {
        let b = self.l.bundle(one_time, kyber_last_resort);
        let bundle = bundle_from_json(&b);
        self.c.dev.start_session(&self.l.addr, &bundle).unwrap();
    }

    /// libsignal starts the session from confide's bundle (`one_time` EC prekey or not;
    /// a one-time Kyber prekey from `top_up_kyber_pre_keys`, or the bundle's last-resort
    /// one). Returns the bundle as given to libsignal.
    pub(crate) fn libsignal_starts(&mut self, one_time: bool, kyber_last_resort: bool) -> Value {
        let bundle = confide_bundle(&self.c, one_time, kyber_last_resort);
        let json = bundle_to_json(&bundle);
        self.l.p.ok(
            "process_bundle",
            json!({"address": addr_json(self.c.addr()), "bundle": json}),
        );
        json
    }

    fn note(&mut self, from_confide: bool, w: &Wire) {
        assert_eq!(
            w.bytes[0],
            wire::V4,
            "a v4 message: {}",
            hex::encode(&w.bytes[..4])
        );
        let h = wire::spqr_of(w.ty, &w.bytes);
        let m = if from_confide {
            &mut self.max_epoch_c
        } else {
            &mut self.max_epoch_l
        };
        *m = (*m).max(h.epoch);
    }

    /// confide encrypts one message for libsignal.
    pub(crate) fn c_sends(&mut self) -> Wire {
        self.sent += 1;
        let text = format!("confide → libsignal #{}", self.sent);
        let m = self
            .c
            .dev
            .encrypt_raw(&self.l.addr, text.as_bytes())
            .unwrap();
        let w = Wire {
            ty: m.message_type(),
            bytes: m.serialized().to_vec(),
            text,
        };
        self.note(true, &w);
        w
    }

    /// libsignal encrypts one message for confide.
    pub(crate) fn l_sends(&mut self) -> Wire {
        self.sent += 1;
        let text = format!("libsignal → confide #{}", self.sent);
        let r = self.l.p.ok(
            "encrypt",
            json!({"address": addr_json(self.c.addr()), "text": text}),
        );
        let w = Wire {
            ty: u8::try_from(r["type"].as_u64().unwrap()).unwrap(),
            bytes: unhex(&r["ciphertext"]),
            text,
        };
        self.note(false, &w);
        w
    }

    /// libsignal decrypts a message of confide's: the reply, ok or not.
    pub(crate) fn l_reads_raw(&mut self, ty: u8, bytes: &[u8]) -> Value {
        self.l.p.call(
            "decrypt",
            json!({"address": addr_json(self.c.addr()), "type": ty, "ciphertext": hex::encode(bytes)}),
        )
    }

    /// libsignal decrypts `w`, which must succeed with its text.
    pub(crate) fn l_reads(&mut self, w: &Wire) {
        let r = self.l_reads_raw(w.ty, &w.bytes);
        assert_eq!(r["ok"], json!(true), "libsignal refused {}: {r}", w.text);
        assert_eq!(r["text"], json!(w.text));
    }

    /// confide decrypts a message of libsignal's.
    pub(crate) fn c_reads_raw(&mut self, ty: u8, bytes: &[u8]) -> Result<Vec<u8>, DecryptError> {
        let m = CiphertextMessage::from_parts(ty, bytes).map_err(DecryptError::Wire)?;
        let d = self.c.dev.decrypt_raw(&self.l.addr, &m)?;
        assert!(!d.redelivered, "an in-memory store marks no redelivery");
        Ok(d.plaintext.to_vec())
    }

    /// confide decrypts `w`, which must succeed with its text.
    pub(crate) fn c_reads(&mut self, w: &Wire) {
        let got = self
            .c_reads_raw(w.ty, &w.bytes)
            .unwrap_or_else(|e| panic!("confide refused {}: {e:?}", w.text));
        assert_eq!(got, w.text.as_bytes());
    }
}

/// confide's bundle for libsignal: `one_time` EC prekey or not; with a one-time Kyber
/// prekey (from `top_up_kyber_pre_keys`) unless `kyber_last_resort`, when the bundle's
/// own last-resort Kyber prekey stays.
pub(crate) fn confide_bundle(c: &Confide, one_time: bool, kyber_last_resort: bool) -> PreKeyBundle {
    let mut bundle = c.dev.publish_bundle().unwrap();
    let last_resort = bundle
        .kyber_pre_key
        .clone()
        .expect("a v4 device's bundle carries a last-resort Kyber prekey");
    assert!(last_resort.has_valid_signature(&bundle.identity_key));
    assert_eq!(last_resort.key.serialize().len(), 1569);
    if !one_time {
        bundle.pre_key = None;
    }
    if !kyber_last_resort {
        let fresh = c.dev.top_up_kyber_pre_keys().unwrap();
        assert!(!fresh.is_empty(), "one-time Kyber prekeys on offer");
        assert!(fresh.iter().all(|k| k.id != last_resort.id));
        bundle = bundle.with_kyber_pre_key(fresh[0].clone());
    }
    bundle
}
