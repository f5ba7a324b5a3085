//! The protocol v4 fuzz targets (PQXDH prekey messages, SPQR-carrying messages, Kyber
//! keys and records, v4 decrypt against a live session) and their seeds.
//!
//! Shared, unchanged, by the cargo-fuzz binaries in `fuzz/fuzz_targets/` and by
//! `tests/fuzz_corpus.rs`, through [`crate::targets::run`] and
//! [`crate::targets::corpus`].
//!
//! SPQR is crate-private: its parser and state machine are reached through v4 decrypt.
//! [`decrypt_pq_ratchet`] puts the fuzzer's bytes into the `pq_ratchet` field (5) of a
//! genuine pending message; SPQR reads them before the MAC is checked (facts §2.8), so
//! the whole receive path runs on them, and the refusal must change nothing.
#![allow(dead_code, unreachable_pub)]

use std::sync::OnceLock;

use confide::keys::{
    KemCiphertext, KemPublicKey, KemSecretKey, KeyPair, KyberPreKeyRecord, PreKeyBundle,
    PreKeyRecord, SignedPreKeyRecord,
};
use confide::session::ProtocolVersion;
use confide::session::Versions;
use confide::session::cipher::{self, BundleSpec};
use confide::store::{
    IdentityStore, InMemoryStore, KyberPreKeyUse, PreKeyStore, SessionStore, SignedPreKeyStore,
};
use confide::wire::{PREKEY_MESSAGE_TYPE, PreKeySignalMessage, SIGNAL_MESSAGE_TYPE, SignalMessage};
use confide::{
    Address, CiphertextMessage, DecryptError, IdentityKey, IdentityKeyPair, SessionRecord,
};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use crate::actions::{self, NOW};

/// The v4 version byte.
pub const V4: u8 = 0x44;

/// The seed the v4 fixture session is built from.
pub const FIXTURE4_SEED: u64 = 0x636f_6e66_6964_6534;

/// `SignalMessage::try_from` on v4 input: the v3 target's checks, and a parsed message
/// carries post-quantum fields only in v4 (a v3 one never has them).
pub fn parse_signal_message_v4(data: &[u8]) {
    crate::targets::parse_signal_message(data);
    if let Ok(m) = SignalMessage::try_from(data) {
        check_signal(&m);
    }
}

fn check_signal(m: &SignalMessage) {
    assert_eq!(m.serialized().first(), Some(&m.version().version_byte()));
    if m.version() == ProtocolVersion::V3 {
        assert!(m.pq_ratchet().is_empty(), "v3 message with a pq_ratchet");
        assert!(m.addresses().is_none(), "v3 message with addresses");
    }
    if !m.pq_ratchet().is_empty() {
        assert!(
            find(m.serialized(), m.pq_ratchet()).is_some(),
            "pq_ratchet is not the bytes sent"
        );
    }
    if let Some(a) = m.addresses() {
        assert!(
            find(m.serialized(), a).is_some(),
            "addresses are not the bytes sent"
        );
    }
}

/// `PreKeySignalMessage::try_from` on v4 input: the v3 target's checks, and the Kyber
/// id and ciphertext are there exactly in v4, the ciphertext as sent (`0x08` ‖ 1568
/// bytes), and outer and inner message speak one version.
pub fn parse_prekey_message_v4(data: &[u8]) {
    crate::targets::parse_prekey_message(data);
    if let Ok(m) = PreKeySignalMessage::try_from(data) {
        let v4 = m.version() == ProtocolVersion::V4;
        assert_eq!(m.kyber_pre_key_id().is_some(), v4);
        assert_eq!(m.kyber_ciphertext().is_some(), v4);
        assert_eq!(m.message().version(), m.version());
        assert_eq!(data.first(), Some(&m.version().version_byte()));
        if let Some(ct) = m.kyber_ciphertext() {
            let bytes = ct.serialize();
            assert_eq!(bytes.len(), confide::keys::KEM_CIPHERTEXT_LEN);
            assert!(
                find(data, &bytes).is_some(),
                "ciphertext is not the bytes sent"
            );
        }
        check_signal(m.message());
    }
}

/// Every Kyber loader on the same bytes: `KemPublicKey`, `KemCiphertext`,
/// `KemSecretKey`, `KyberPreKeyRecord` and `PreKeyBundle`. What loads re-encodes to the
/// same bytes (keys) or to bytes that load equal (records, bundles); a bundle with
/// valid signatures starts a session (PQXDH on the fuzzer's Kyber key) without panic.
pub fn parse_kyber(data: &[u8]) {
    if let Ok(k) = KemPublicKey::from_bytes(data) {
        assert_eq!(k.serialize(), data);
    }
    if let Ok(c) = KemCiphertext::from_bytes(data) {
        assert_eq!(c.serialize(), data);
    }
    if let Ok(s) = KemSecretKey::from_bytes(data) {
        assert_eq!(&s.serialize()[..], data);
        assert_eq!(format!("{s:?}"), "KemSecretKey(***)");
    }
    if let Ok(record) = KyberPreKeyRecord::from_bytes(data) {
        let bytes = record.to_bytes();
        let again = KyberPreKeyRecord::from_bytes(&bytes).expect("re-encoded record must load");
        assert!(
            again.to_bytes() == bytes,
            "Kyber record encoding not stable"
        );
        assert_eq!(again.public(), record.public());
        let public = record.public();
        assert_eq!(public.key, record.key_pair().public);
        let _ = public.has_valid_signature(fixed_identity().identity_key());
        assert!(format!("{record:?}").contains("KemSecretKey(***)"));
    }
    if let Ok(bundle) = PreKeyBundle::from_bytes(data) {
        let again =
            PreKeyBundle::from_bytes(&bundle.to_bytes()).expect("re-encoded bundle must load");
        assert_eq!(again, bundle, "prekey bundle changes through its encoding");
        if bundle.has_valid_signature() {
            let identity = fixed_identity();
            let mut record = SessionRecord::new();
            let mut rng = ChaCha20Rng::seed_from_u64(5);
            if record
                .start_session((&identity, 7), &bundle, Versions::V3AndV4, &mut rng, NOW)
                .is_ok()
            {
                let expected = if bundle.kyber_pre_key.is_some() {
                    ProtocolVersion::V4
                } else {
                    ProtocolVersion::V3
                };
                let state = record.current().expect("a started session is current");
                assert_eq!(state.version(), expected.number());
            }
        }
    }
}

/// An identity for [`parse_kyber`]'s sessions: the same in every run.
fn fixed_identity() -> IdentityKeyPair {
    IdentityKeyPair::generate(&mut ChaCha20Rng::seed_from_u64(6))
}

pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > haystack.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A minimal protobuf writer, for hand-made edge cases.
#[derive(Default)]
pub(crate) struct Pb(pub(crate) Vec<u8>);

impl Pb {
    pub(crate) fn varint(&mut self, mut v: u64) -> &mut Self {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(b);
                return self;
            }
            self.0.push(b | 0x80);
        }
    }

    pub(crate) fn uint(&mut self, field: u32, v: u64) -> &mut Self {
        self.varint(u64::from(field) << 3).varint(v)
    }

    pub(crate) fn bytes(&mut self, field: u32, b: &[u8]) -> &mut Self {
        self.varint(u64::from(field) << 3 | 2)
            .varint(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }
}

/// An SPQR message in its wire encoding (facts §2.5): version, epoch, key index, type,
/// and for the chunk-carrying types a chunk index and 32 bytes.
pub fn spqr_message(
    version: u8,
    epoch: u64,
    index: u64,
    kind: u8,
    chunk: Option<(u64, u8)>,
) -> Vec<u8> {
    let mut pb = Pb(vec![version]);
    pb.varint(epoch).varint(index);
    pb.0.push(kind);
    if let Some((at, fill)) = chunk {
        pb.varint(at);
        pb.0.extend([fill; 32]);
    }
    pb.0
}

/// The fields of a v3/v4 SignalMessage, to re-encode with changes (MAC kept as given).
#[derive(Clone, Debug)]
pub struct SignalFields {
    pub version: u8,
    pub ratchet_key: Vec<u8>,
    pub counter: Option<u32>,
    pub previous_counter: Option<u32>,
    pub ciphertext: Vec<u8>,
    pub pq_ratchet: Option<Vec<u8>>,
    pub addresses: Option<Vec<u8>>,
    pub mac: Vec<u8>,
}

impl SignalFields {
    pub fn of(bytes: &[u8]) -> SignalFields {
        let m = SignalMessage::try_from(bytes).expect("fixture message");
        SignalFields {
            version: bytes[0],
            ratchet_key: m.ratchet_key().serialize().to_vec(),
            counter: Some(m.counter()),
            previous_counter: Some(m.previous_counter()),
            ciphertext: m.ciphertext().to_vec(),
            pq_ratchet: (!m.pq_ratchet().is_empty()).then(|| m.pq_ratchet().to_vec()),
            addresses: m.addresses().map(|a| a.to_vec()),
            mac: bytes[bytes.len() - 8..].to_vec(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut pb = Pb(vec![self.version]);
        pb.bytes(1, &self.ratchet_key);
        if let Some(c) = self.counter {
            pb.uint(2, c.into());
        }
        if let Some(c) = self.previous_counter {
            pb.uint(3, c.into());
        }
        pb.bytes(4, &self.ciphertext);
        if let Some(p) = &self.pq_ratchet {
            pb.bytes(5, p);
        }
        if let Some(a) = &self.addresses {
            pb.bytes(6, a);
        }
        pb.0.extend_from_slice(&self.mac);
        pb.0
    }
}

/// The fields of a v3/v4 prekey message, to re-encode with changes.
#[derive(Clone, Debug)]
pub struct PreKeyFields4 {
    pub version: u8,
    pub pre_key_id: Option<u32>,
    pub base_key: Vec<u8>,
    pub identity_key: Vec<u8>,
    pub message: Vec<u8>,
    pub registration_id: Option<u32>,
    pub signed_pre_key_id: Option<u32>,
    pub kyber_pre_key_id: Option<u32>,
    pub kyber_ciphertext: Option<Vec<u8>>,
}

impl PreKeyFields4 {
    pub fn of(bytes: &[u8]) -> PreKeyFields4 {
        let p = PreKeySignalMessage::try_from(bytes).expect("fixture prekey message");
        PreKeyFields4 {
            version: bytes[0],
            pre_key_id: p.pre_key_id(),
            base_key: p.base_key().serialize().to_vec(),
            identity_key: p.identity_key().serialize().to_vec(),
            message: p.message().serialized().to_vec(),
            registration_id: Some(p.registration_id()),
            signed_pre_key_id: Some(p.signed_pre_key_id()),
            kyber_pre_key_id: p.kyber_pre_key_id(),
            kyber_ciphertext: p.kyber_ciphertext().map(KemCiphertext::serialize),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut pb = Pb(vec![self.version]);
        if let Some(v) = self.pre_key_id {
            pb.uint(1, v.into());
        }
        pb.bytes(2, &self.base_key)
            .bytes(3, &self.identity_key)
            .bytes(4, &self.message);
        if let Some(v) = self.registration_id {
            pb.uint(5, v.into());
        }
        if let Some(v) = self.signed_pre_key_id {
            pb.uint(6, v.into());
        }
        if let Some(v) = self.kyber_pre_key_id {
            pb.uint(7, v.into());
        }
        if let Some(ct) = &self.kyber_ciphertext {
            pb.bytes(8, ct);
        }
        pb.0
    }
}

/// Hand-made seeds for the two v4 parsers (no session needed): well-formed v4 messages
/// with every SPQR message type, and each way a v4 field can be wrong.
pub fn parse_corpus() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut rng = ChaCha20Rng::seed_from_u64(FIXTURE4_SEED ^ 1);
    let ratchet = KeyPair::generate(&mut rng).public().serialize().to_vec();
    let base = KeyPair::generate(&mut rng).public().serialize().to_vec();
    let identity = IdentityKeyPair::generate(&mut rng)
        .identity_key()
        .serialize()
        .to_vec();
    let mut ct = vec![0x08];
    ct.extend((0..1568).map(|_| rng.next_u32() as u8));
    let mut addresses = vec![0u8; 36];
    rng.fill_bytes(&mut addresses);
    addresses[0] = 0;
    addresses[18] = 1;
    let spqr = spqr_message(1, 1, 1, 1, Some((0, 0x11)));
    let signal = SignalFields {
        version: V4,
        ratchet_key: ratchet,
        counter: Some(3),
        previous_counter: Some(1),
        ciphertext: vec![0x5a; 32],
        pq_ratchet: Some(spqr.clone()),
        addresses: None,
        mac: vec![0xee; 8],
    };
    let mut s: Vec<(String, Vec<u8>)> = Vec::new();
    let kinds = ["none", "hdr", "ek", "ekct1ack", "ct1ack", "ct1", "ct2"];
    for (kind, name) in kinds.iter().enumerate() {
        let chunk = [1, 2, 3, 5, 6]
            .contains(&kind)
            .then_some((kind as u64, kind as u8));
        let f = SignalFields {
            pq_ratchet: Some(spqr_message(1, 2, 7, kind as u8, chunk)),
            ..signal.clone()
        };
        s.push((format!("spqr-{name}"), f.encode()));
    }
    let with = |pq: Option<Vec<u8>>, addr: Option<Vec<u8>>, version: u8| {
        SignalFields {
            pq_ratchet: pq,
            addresses: addr,
            version,
            ..signal.clone()
        }
        .encode()
    };
    s.extend([
        ("no-pq-ratchet".to_string(), with(None, None, V4)),
        ("empty-pq-ratchet".to_string(), with(Some(vec![]), None, V4)),
        (
            "with-addresses".to_string(),
            with(Some(spqr.clone()), Some(addresses.clone()), V4),
        ),
        (
            "addresses-35".to_string(),
            with(Some(spqr.clone()), Some(addresses[..35].to_vec()), V4),
        ),
        ("addresses-37".to_string(), {
            let mut a = addresses.clone();
            a.push(0);
            with(Some(spqr.clone()), Some(a), V4)
        }),
        (
            "v3-with-pq-ratchet".to_string(),
            with(Some(spqr.clone()), None, 0x33),
        ),
        (
            "v3-with-addresses".to_string(),
            with(None, Some(addresses.clone()), 0x33),
        ),
        (
            "version-43".to_string(),
            with(Some(spqr.clone()), None, 0x43),
        ),
        (
            "version-34".to_string(),
            with(Some(spqr.clone()), None, 0x34),
        ),
        (
            "version-54".to_string(),
            with(Some(spqr.clone()), None, 0x54),
        ),
        ("spqr-long-varints".to_string(), {
            let mut p = vec![1];
            p.extend([0xff; 9]);
            p.push(0x01);
            p.extend([0xff, 0xff, 0xff, 0xff, 0x0f, 4]);
            with(Some(p), None, V4)
        }),
        (
            "spqr-epoch-0".to_string(),
            with(Some(spqr_message(1, 0, 1, 0, None)), None, V4),
        ),
        (
            "spqr-version-0".to_string(),
            with(Some(spqr_message(0, 1, 1, 0, None)), None, V4),
        ),
        (
            "spqr-version-2".to_string(),
            with(Some(spqr_message(2, 1, 1, 0, None)), None, V4),
        ),
        (
            "spqr-type-7".to_string(),
            with(Some(spqr_message(1, 1, 1, 7, None)), None, V4),
        ),
        (
            "spqr-chunk-65536".to_string(),
            with(Some(spqr_message(1, 1, 1, 5, Some((65_536, 3)))), None, V4),
        ),
        ("spqr-short-chunk".to_string(), {
            let mut p = spqr_message(1, 1, 1, 2, Some((0, 9)));
            p.truncate(p.len() - 1);
            with(Some(p), None, V4)
        }),
        ("spqr-trailing".to_string(), {
            let mut p = spqr_message(1, 1, 1, 4, None);
            p.extend([0xab; 5]);
            with(Some(p), None, V4)
        }),
    ]);
    let mut out = Vec::new();
    for (name, bytes) in &s {
        out.push(("parse_signal_message_v4", name.clone(), bytes.clone()));
    }

    let inner = with(Some(spqr.clone()), Some(addresses.clone()), V4);
    let prekey = PreKeyFields4 {
        version: V4,
        pre_key_id: Some(1001),
        base_key: base,
        identity_key: identity,
        message: inner,
        registration_id: Some(77),
        signed_pre_key_id: Some(1),
        kyber_pre_key_id: Some(2001),
        kyber_ciphertext: Some(ct.clone()),
    };
    let mut p: Vec<(String, Vec<u8>)> = vec![("well-formed".to_string(), prekey.encode())];
    let variants: Vec<(&str, PreKeyFields4)> = vec![
        (
            "no-kyber-id",
            PreKeyFields4 {
                kyber_pre_key_id: None,
                ..prekey.clone()
            },
        ),
        (
            "no-kyber-ciphertext",
            PreKeyFields4 {
                kyber_ciphertext: None,
                ..prekey.clone()
            },
        ),
        (
            "no-kyber",
            PreKeyFields4 {
                kyber_pre_key_id: None,
                kyber_ciphertext: None,
                ..prekey.clone()
            },
        ),
        (
            "mlkem-ciphertext",
            PreKeyFields4 {
                kyber_ciphertext: Some({
                    let mut c = ct.clone();
                    c[0] = 0x0a;
                    c
                }),
                ..prekey.clone()
            },
        ),
        (
            "ciphertext-1568",
            PreKeyFields4 {
                kyber_ciphertext: Some(ct[..1568].to_vec()),
                ..prekey.clone()
            },
        ),
        (
            "ciphertext-1570",
            PreKeyFields4 {
                kyber_ciphertext: Some({
                    let mut c = ct.clone();
                    c.push(0);
                    c
                }),
                ..prekey.clone()
            },
        ),
        (
            "v3-outer-with-kyber",
            PreKeyFields4 {
                version: 0x33,
                ..prekey.clone()
            },
        ),
        (
            "v3-outer-v4-inner",
            PreKeyFields4 {
                version: 0x33,
                kyber_pre_key_id: None,
                kyber_ciphertext: None,
                ..prekey.clone()
            },
        ),
        (
            "v4-outer-v3-inner",
            PreKeyFields4 {
                message: with(None, None, 0x33),
                ..prekey.clone()
            },
        ),
        (
            "no-signed-pre-key",
            PreKeyFields4 {
                signed_pre_key_id: None,
                ..prekey.clone()
            },
        ),
        (
            "no-one-time-pre-key",
            PreKeyFields4 {
                pre_key_id: None,
                ..prekey.clone()
            },
        ),
        (
            "inner-no-pq-ratchet",
            PreKeyFields4 {
                message: with(None, Some(addresses.clone()), V4),
                ..prekey.clone()
            },
        ),
    ];
    for (name, f) in variants {
        p.push((name.to_string(), f.encode()));
    }
    for (name, bytes) in &p {
        out.push(("parse_prekey_message_v4", name.clone(), bytes.clone()));
    }
    out
}

/// Seeds for [`parse_kyber`]: Kyber prekey records, their public keys and secret keys,
/// a ciphertext, v4 bundles (valid, with a foreign signature, with an ML-KEM type
/// byte), and damaged records.
pub fn kyber_corpus() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut rng = ChaCha20Rng::seed_from_u64(FIXTURE4_SEED ^ 2);
    let store = InMemoryStore::generate(&mut rng);
    let spec = BundleSpec::new(1, 1)
        .with_pre_key(Some(1001))
        .with_kyber_pre_key(Some(2001), false);
    let bundle = cipher::publish_bundle(&store, &mut rng, &spec, NOW).expect("bundle");
    let spec = BundleSpec::new(1, 2).with_kyber_pre_key(Some(2002), true);
    let bundle_last_resort = cipher::publish_bundle(&store, &mut rng, &spec, NOW).expect("bundle");
    let kyber = store.kyber_pre_keys().expect("kyber store");
    let record = kyber.kyber_pre_key(2001).expect("store").expect("record");
    let loaded = KyberPreKeyRecord::from_bytes(&record).expect("record");
    let mut out: Vec<(&'static str, String, Vec<u8>)> = Vec::new();
    let mut push = |name: &str, bytes: Vec<u8>| out.push(("parse_kyber", name.to_string(), bytes));
    push("record-2001", record.to_vec());
    push(
        "record-2002-last-resort",
        kyber
            .kyber_pre_key(2002)
            .expect("store")
            .expect("record")
            .to_vec(),
    );
    push("public-key", loaded.key_pair().public.serialize());
    push("secret-key", loaded.key_pair().secret.serialize().to_vec());
    let mut ct = vec![0x08];
    ct.extend((0..1568).map(|_| rng.next_u32() as u8));
    push("ciphertext", ct);
    push("bundle-v4", bundle.to_bytes());
    push("bundle-v4-last-resort", bundle_last_resort.to_bytes());
    let stranger = IdentityKeyPair::generate(&mut rng);
    let foreign = KyberPreKeyRecord::generate(&mut rng, &stranger, 2001, NOW);
    push(
        "bundle-v4-foreign-kyber-signature",
        bundle
            .clone()
            .with_kyber_pre_key(foreign.public())
            .to_bytes(),
    );
    let mut mlkem = bundle.to_bytes();
    let key = loaded.key_pair().public.serialize();
    let at = find(&mlkem, &key).expect("key in bundle");
    mlkem[at] = 0x0a;
    push("bundle-mlkem-type", mlkem);
    let mut out_of_range = bundle.to_bytes();
    out_of_range[at + 1] = 0xff;
    out_of_range[at + 2] = 0xff;
    push("bundle-key-out-of-range", out_of_range);
    let mut record_mismatch = record.to_vec();
    let other = KyberPreKeyRecord::generate(&mut rng, &stranger, 1, NOW)
        .key_pair()
        .public
        .serialize();
    let at = find(&record_mismatch, &key).expect("key in record");
    record_mismatch[at..at + key.len()].copy_from_slice(&other);
    push("record-other-public-key", record_mismatch);
    let mut truncated = record.to_vec();
    truncated.truncate(truncated.len() / 2);
    push("record-truncated", truncated);
    push("empty", vec![]);
    push("type-only", vec![0x08]);
    out
}

// ---------------------------------------------------------------------------------
// v4 decrypt against a live session.

/// A message Alice sent in the v4 fixture.
#[derive(Clone, Debug)]
pub struct Sent4 {
    /// A short name, used for corpus file names.
    pub name: String,
    /// libsignal type number.
    pub message_type: u8,
    /// The bytes as sent.
    pub bytes: Vec<u8>,
    /// The inner `SignalMessage` (the bytes themselves for type 2).
    pub inner: Vec<u8>,
    /// The plaintext.
    pub plaintext: Vec<u8>,
    /// Whether Bob already decrypted it.
    pub delivered: bool,
}

/// Alice's service id (an ACI), so v4 prekey messages carry and check addresses.
pub const ALICE_ACI: &str = "2ce7d0e4-6a3a-4c89-9a1b-1f3c5d7e9a0b";
/// Bob's service id.
pub const BOB_ACI: &str = "6a2f1b3c-5d4e-4f60-8a7b-9c0d1e2f3a4b";

/// Round trips of the SPQR warm-up in session A: enough for several epochs (an
/// epoch's ML-KEM exchange takes some 40 messages each way).
pub const WARM_UP_ROUNDS: usize = 90;

/// Bob's side of a deterministic v4 session with Alice, and what Alice sent in it.
///
/// Built from [`FIXTURE4_SEED`]:
/// 1. Session A: bundle with one-time EC prekey 1001 and one-time Kyber prekey 2001.
///    Alice sends a0-a2 (prekey messages), Bob gets all; then [`WARM_UP_ROUNDS`]
///    round trips move SPQR through several epochs; Alice sends a3-a5, Bob gets a4.
/// 2. Session C: no one-time EC prekey, last-resort Kyber prekey 2002. Alice sends c0,
///    c1; Bob gets c0 and answers; Alice sends c2-c4; Bob gets c3. Bob's current state
///    is C, A is previous.
/// 3. Session D: one-time EC prekey 1003 and the same last-resort Kyber prekey 2002
///    (a new handshake with it); E: Kyber one-time prekey 2004, no EC one-time prekey.
///    Alice sends d0, d1 and e0; Bob gets none of them.
pub struct Fixture4 {
    pub alice: Address,
    pub bob: Address,
    bob_identity: IdentityKeyPair,
    bob_registration_id: u32,
    bob_record: SessionRecord,
    bob_pre_keys: Vec<PreKeyRecord>,
    bob_signed_pre_keys: Vec<SignedPreKeyRecord>,
    /// (id, record bytes, last resort).
    bob_kyber_pre_keys: Vec<(u32, Vec<u8>, bool)>,
    bob_kyber_uses: Vec<KyberPreKeyUse>,
    alice_identity: IdentityKey,
    /// Every message Alice sent (the warm-up's left out), in order.
    pub sent: Vec<Sent4>,
    /// The highest SPQR epoch a message of Alice's carried.
    pub max_epoch: u64,
}

const PRE_KEY_IDS4: [u32; 3] = [1001, 1002, 1003];
const SIGNED_PRE_KEY_IDS4: [u32; 4] = [1, 2, 3, 4];
const KYBER_PRE_KEY_IDS4: [u32; 3] = [2001, 2002, 2004];

pub use crate::actions::{kyber_snapshot, kyber_use, spqr_epoch, spqr_epoch_of as message_epoch};

impl Fixture4 {
    /// The fixture, built once per process.
    pub fn get() -> &'static Fixture4 {
        static FIXTURE: OnceLock<Fixture4> = OnceLock::new();
        FIXTURE.get_or_init(Fixture4::build)
    }

    fn build() -> Fixture4 {
        let mut rng = ChaCha20Rng::seed_from_u64(FIXTURE4_SEED);
        let alice = InMemoryStore::generate(&mut rng);
        let bob = InMemoryStore::generate(&mut rng);
        let alice_addr = Address::new(ALICE_ACI, 1);
        let bob_addr = Address::new(BOB_ACI, 1);
        type Log = Vec<(String, CiphertextMessage, Vec<u8>, bool)>;
        let mut sent: Log = Vec::new();
        let mut max_epoch = 0;

        let start = |bundle: &PreKeyBundle, rng: &mut ChaCha20Rng| {
            cipher::start_session(&alice, &bob_addr, bundle, Versions::V3AndV4, rng, NOW)
                .expect("process");
        };
        let publish = |spec: BundleSpec, rng: &mut ChaCha20Rng| {
            cipher::publish_bundle(&bob, rng, &spec, NOW).expect("bundle")
        };
        let mut send = |name: &str, sent: &mut Log, rng: &mut ChaCha20Rng| {
            let plaintext = format!("v4 fixture message {name}").into_bytes();
            let m = cipher::encrypt(&alice, &alice_addr, &bob_addr, &plaintext, rng, NOW)
                .expect("encrypt");
            max_epoch = max_epoch.max(message_epoch(&m).expect("v4 message"));
            sent.push((name.to_string(), m, plaintext, false));
        };
        let deliver = |name: &str, sent: &mut Log, rng: &mut ChaCha20Rng| {
            let entry = sent.iter_mut().find(|e| e.0 == name).expect("sent");
            let got =
                cipher::decrypt(&bob, &bob_addr, &alice_addr, &entry.1, rng, NOW).expect("decrypt");
            assert_eq!(got.plaintext.as_slice(), entry.2.as_slice());
            entry.3 = true;
        };
        let answer = |rng: &mut ChaCha20Rng| {
            let m = cipher::encrypt(&bob, &bob_addr, &alice_addr, b"answer", rng, NOW)
                .expect("encrypt");
            cipher::decrypt(&alice, &alice_addr, &bob_addr, &m, rng, NOW).expect("decrypt");
        };

        let bundle_a = publish(
            BundleSpec::new(1, 1)
                .with_pre_key(Some(1001))
                .with_kyber_pre_key(Some(2001), false),
            &mut rng,
        );
        start(&bundle_a, &mut rng);
        for n in ["a0", "a1", "a2"] {
            send(n, &mut sent, &mut rng);
        }
        for n in ["a0", "a1", "a2"] {
            deliver(n, &mut sent, &mut rng);
        }
        for i in 0..WARM_UP_ROUNDS {
            answer(&mut rng);
            let name = format!("w{i}");
            send(&name, &mut sent, &mut rng);
            deliver(&name, &mut sent, &mut rng);
        }
        sent.retain(|e| !e.0.starts_with('w'));
        answer(&mut rng);
        for n in ["a3", "a4", "a5"] {
            send(n, &mut sent, &mut rng);
        }
        deliver("a4", &mut sent, &mut rng);

        let bundle_c = publish(
            BundleSpec::new(1, 2).with_kyber_pre_key(Some(2002), true),
            &mut rng,
        );
        start(&bundle_c, &mut rng);
        for n in ["c0", "c1"] {
            send(n, &mut sent, &mut rng);
        }
        deliver("c0", &mut sent, &mut rng);
        answer(&mut rng);
        for n in ["c2", "c3", "c4"] {
            send(n, &mut sent, &mut rng);
        }
        deliver("c3", &mut sent, &mut rng);

        let last_resort = bundle_c.kyber_pre_key.clone().expect("kyber");
        let mut bundle_d = publish(BundleSpec::new(1, 3).with_pre_key(Some(1003)), &mut rng);
        bundle_d = bundle_d.with_kyber_pre_key(last_resort);
        start(&bundle_d, &mut rng);
        for n in ["d0", "d1"] {
            send(n, &mut sent, &mut rng);
        }
        let bundle_e = publish(
            BundleSpec::new(1, 4).with_kyber_pre_key(Some(2004), false),
            &mut rng,
        );
        start(&bundle_e, &mut rng);
        send("e0", &mut sent, &mut rng);

        let sent: Vec<Sent4> = sent
            .into_iter()
            .map(|(name, m, plaintext, delivered)| {
                let inner = match &m {
                    CiphertextMessage::PreKey(p) => p.message().serialized().to_vec(),
                    other => other.serialized().to_vec(),
                };
                Sent4 {
                    name,
                    message_type: m.message_type(),
                    bytes: m.serialized().to_vec(),
                    inner,
                    plaintext,
                    delivered,
                }
            })
            .collect();
        let bob_record = bob.session(&alice_addr).expect("store").expect("record");
        assert_eq!(bob_record.previous_count(), 1);
        let kyber = bob.kyber_pre_keys().expect("kyber store");
        let bob_kyber_pre_keys = KYBER_PRE_KEY_IDS4
            .iter()
            .filter_map(|&id| {
                kyber
                    .kyber_pre_key(id)
                    .expect("store")
                    .map(|r| (id, r.to_vec(), id == 2002))
            })
            .collect();
        let bob_kyber_uses = kyber_uses_of(&sent)
            .into_iter()
            .filter(|u| kyber.kyber_pre_key_used(u).expect("store"))
            .collect();
        Fixture4 {
            bob_identity: bob.local_identity().expect("store"),
            bob_registration_id: bob.local_registration_id().expect("store"),
            bob_record,
            bob_pre_keys: PRE_KEY_IDS4
                .iter()
                .filter_map(|&id| bob.pre_key(id).expect("store"))
                .collect(),
            bob_signed_pre_keys: SIGNED_PRE_KEY_IDS4
                .iter()
                .filter_map(|&id| bob.signed_pre_key(id).expect("store"))
                .collect(),
            bob_kyber_pre_keys,
            bob_kyber_uses,
            alice_identity: *alice.local_identity().expect("store").identity_key(),
            sent,
            alice: alice_addr,
            bob: bob_addr,
            max_epoch,
        }
    }

    /// A fresh store holding Bob's state.
    pub fn bob_store(&self) -> InMemoryStore {
        let store = InMemoryStore::new(self.bob_identity.clone(), self.bob_registration_id);
        store
            .save_session(&self.alice, &self.bob_record)
            .expect("store");
        for k in &self.bob_pre_keys {
            store.save_pre_key(k).expect("store");
        }
        for k in &self.bob_signed_pre_keys {
            store.save_signed_pre_key(k).expect("store");
        }
        let kyber = store.kyber_pre_keys().expect("kyber store");
        for (id, record, last_resort) in &self.bob_kyber_pre_keys {
            kyber
                .save_kyber_pre_key(*id, record, *last_resort)
                .expect("store");
        }
        for u in &self.bob_kyber_uses {
            assert!(kyber.mark_kyber_pre_key_used(u).expect("store"));
        }
        store
            .save_identity(&self.alice, &self.alice_identity)
            .expect("store");
        store
    }

    /// Bob's state as far as a decrypt from Alice may touch it, with the Kyber prekeys
    /// and the recorded uses of every handshake Alice sent and of `input`'s (if it
    /// parses as a prekey message).
    pub fn snapshot(&self, store: &InMemoryStore, input: Option<&[u8]>) -> Vec<u8> {
        let mut out = actions::snapshot(store, &self.alice, &PRE_KEY_IDS4, &SIGNED_PRE_KEY_IDS4);
        let mut uses = kyber_uses_of(&self.sent);
        if let Some(p) = input.and_then(|b| PreKeySignalMessage::try_from(b).ok()) {
            uses.extend(kyber_use(&p));
        }
        out.extend(kyber_snapshot(store, &KYBER_PRE_KEY_IDS4, &uses));
        out
    }

    pub fn message(&self, name: &str) -> &Sent4 {
        self.sent
            .iter()
            .find(|m| m.name == name)
            .expect("no such fixture message")
    }
}

/// The distinct Kyber prekey uses of the prekey messages in `sent`.
fn kyber_uses_of(sent: &[Sent4]) -> Vec<KyberPreKeyUse> {
    let mut out: Vec<KyberPreKeyUse> = Vec::new();
    for u in sent
        .iter()
        .filter(|m| m.message_type == PREKEY_MESSAGE_TYPE)
        .filter_map(|m| kyber_use(&PreKeySignalMessage::try_from(&m.bytes[..]).ok()?))
    {
        if !out.contains(&u) {
            out.push(u);
        }
    }
    out
}

/// Parses bytes received with a type number and decrypts them at `local` (checking
/// v4 addresses), as a transport would.
pub fn receive_as(
    store: &InMemoryStore,
    local: &Address,
    from: &Address,
    message_type: u8,
    bytes: &[u8],
    rng: &mut ChaCha20Rng,
) -> Result<Vec<u8>, DecryptError> {
    let message = CiphertextMessage::from_parts(message_type, bytes)?;
    cipher::decrypt(store, local, from, &message, rng, NOW).map(|d| d.plaintext.to_vec())
}

/// Bytes decrypted as a v4 type 2 message by Bob, from Alice, in the v4 fixture.
pub fn decrypt_signal_v4(data: &[u8]) {
    decrypt4(SIGNAL_MESSAGE_TYPE, data);
}

/// Bytes decrypted as a v4 type 3 message by Bob, from Alice, in the v4 fixture.
pub fn decrypt_prekey_v4(data: &[u8]) {
    decrypt4(PREKEY_MESSAGE_TYPE, data);
}

/// The fuzzer's bytes as the `pq_ratchet` of a genuine pending message (picked by the
/// first byte), MAC and all else unchanged: SPQR parses and runs them, then the MAC
/// (which covers field 5) refuses the message, and nothing may change. The genuine
/// bytes themselves decrypt.
pub fn decrypt_pq_ratchet(data: &[u8]) {
    let f = Fixture4::get();
    let pending: Vec<&Sent4> = f
        .sent
        .iter()
        .filter(|m| !m.delivered && m.message_type == SIGNAL_MESSAGE_TYPE)
        .collect();
    let (pick, pq) = match data.split_first() {
        Some((&b, rest)) => (usize::from(b) % pending.len(), rest),
        None => (0, data),
    };
    let target = pending[pick];
    let mut fields = SignalFields::of(&target.bytes);
    fields.pq_ratchet = (!pq.is_empty()).then(|| pq.to_vec());
    decrypt4(SIGNAL_MESSAGE_TYPE, &fields.encode());
}

/// On error Bob's stored state must be unchanged. On success the (inner) message must
/// be one Alice sent, the plaintext hers, and a second delivery a duplicate that again
/// changes nothing, as must be a delivery of each genuine message with that inner
/// message.
fn decrypt4(message_type: u8, data: &[u8]) -> Option<Vec<u8>> {
    let f = Fixture4::get();
    let store = f.bob_store();
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let before = f.snapshot(&store, Some(data));
    let recv = |bytes: &[u8], ty: u8, rng: &mut ChaCha20Rng| {
        receive_as(&store, &f.bob, &f.alice, ty, bytes, rng)
    };
    match recv(data, message_type, &mut rng) {
        Err(e) => {
            assert!(
                f.snapshot(&store, Some(data)) == before,
                "failed v4 decrypt ({e:?}) changed Bob's state"
            );
            None
        }
        Ok(plaintext) => {
            let inner = if message_type == SIGNAL_MESSAGE_TYPE {
                data.to_vec()
            } else {
                PreKeySignalMessage::try_from(data)
                    .expect("decrypted but does not parse")
                    .message()
                    .serialized()
                    .to_vec()
            };
            let sent =
                f.sent.iter().find(|s| s.inner == inner).unwrap_or_else(|| {
                    panic!("accepted a v4 message Alice never sent: {data:02x?}")
                });
            assert!(!sent.delivered, "accepted {} a second time", sent.name);
            assert_eq!(plaintext, sent.plaintext, "decrypted to other bytes");
            let after = f.snapshot(&store, Some(data));
            match recv(data, message_type, &mut rng) {
                Err(DecryptError::DuplicateMessage { .. }) => {}
                other => panic!("second delivery gave {other:?}"),
            }
            assert!(
                f.snapshot(&store, Some(data)) == after,
                "a duplicate changed Bob's state"
            );
            for m in f.sent.iter().filter(|m| m.inner == inner) {
                match recv(&m.bytes, m.message_type, &mut rng) {
                    Err(DecryptError::DuplicateMessage { .. }) => {}
                    other => panic!(
                        "after this input was accepted, genuine {} gave {other:?}",
                        m.name
                    ),
                }
                assert!(
                    f.snapshot(&store, Some(data)) == after,
                    "a duplicate changed Bob's state"
                );
            }
            Some(plaintext)
        }
    }
}

/// Seeds of the v4 decrypt targets: the fixture's genuine messages, and damaged and
/// re-assembled ones (wrong Kyber id, another session's ciphertext, no pq_ratchet,
/// another message's pq_ratchet, foreign addresses).
pub fn decrypt_corpus() -> Vec<(&'static str, String, Vec<u8>)> {
    let f = Fixture4::get();
    let mut out: Vec<(&'static str, String, Vec<u8>)> = Vec::new();
    let state = |m: &Sent4| if m.delivered { "delivered" } else { "pending" };

    let mut signal: Vec<(String, Vec<u8>)> = Vec::new();
    for m in &f.sent {
        let kind = if m.message_type == SIGNAL_MESSAGE_TYPE {
            "genuine"
        } else {
            "inner"
        };
        signal.push((format!("{kind}-{}-{}", m.name, state(m)), m.inner.clone()));
    }
    let c4 = SignalFields::of(&f.message("c4").bytes);
    let a5 = SignalFields::of(&f.message("a5").bytes);
    signal.extend([
        (
            "c4-no-pq-ratchet".to_string(),
            SignalFields {
                pq_ratchet: None,
                ..c4.clone()
            }
            .encode(),
        ),
        (
            "c4-pq-ratchet-of-a5".to_string(),
            SignalFields {
                pq_ratchet: a5.pq_ratchet.clone(),
                ..c4.clone()
            }
            .encode(),
        ),
        (
            "a5-pq-ratchet-of-c4".to_string(),
            SignalFields {
                pq_ratchet: c4.pq_ratchet.clone(),
                ..a5.clone()
            }
            .encode(),
        ),
        (
            "c4-with-addresses".to_string(),
            SignalFields {
                addresses: SignalFields::of(&f.message("c1").inner).addresses,
                ..c4.clone()
            }
            .encode(),
        ),
        (
            "c4-as-v3".to_string(),
            SignalFields {
                version: 0x33,
                pq_ratchet: None,
                ..c4.clone()
            }
            .encode(),
        ),
    ]);
    for (name, bytes) in &signal {
        out.push((
            "parse_signal_message_v4",
            format!("fixture-{name}"),
            bytes.clone(),
        ));
        out.push(("decrypt_signal_v4", name.clone(), bytes.clone()));
    }

    let mut prekey: Vec<(String, Vec<u8>)> = Vec::new();
    for m in f
        .sent
        .iter()
        .filter(|m| m.message_type == PREKEY_MESSAGE_TYPE)
    {
        prekey.push((format!("genuine-{}-{}", m.name, state(m)), m.bytes.clone()));
    }
    let d0 = PreKeyFields4::of(&f.message("d0").bytes);
    let e0 = PreKeyFields4::of(&f.message("e0").bytes);
    let c1 = PreKeyFields4::of(&f.message("c1").bytes);
    let variants: Vec<(&str, PreKeyFields4)> = vec![
        (
            "d0-consumed-kyber-2001",
            PreKeyFields4 {
                kyber_pre_key_id: Some(2001),
                ..d0.clone()
            },
        ),
        (
            "d0-other-kyber-2004",
            PreKeyFields4 {
                kyber_pre_key_id: Some(2004),
                ..d0.clone()
            },
        ),
        (
            "d0-unknown-kyber",
            PreKeyFields4 {
                kyber_pre_key_id: Some(9999),
                ..d0.clone()
            },
        ),
        (
            "d0-ciphertext-of-e0",
            PreKeyFields4 {
                kyber_ciphertext: e0.kyber_ciphertext.clone(),
                ..d0.clone()
            },
        ),
        (
            "d0-ciphertext-of-c1",
            PreKeyFields4 {
                kyber_ciphertext: c1.kyber_ciphertext.clone(),
                ..d0.clone()
            },
        ),
        (
            "d0-no-kyber",
            PreKeyFields4 {
                kyber_pre_key_id: None,
                kyber_ciphertext: None,
                ..d0.clone()
            },
        ),
        (
            "d0-inner-from-e0",
            PreKeyFields4 {
                message: e0.message.clone(),
                ..d0.clone()
            },
        ),
        (
            "d0-other-registration-id",
            PreKeyFields4 {
                registration_id: Some(4242),
                ..d0.clone()
            },
        ),
        (
            "d0-base-key-of-c1",
            PreKeyFields4 {
                base_key: c1.base_key.clone(),
                ..d0.clone()
            },
        ),
        (
            "c1-replayed-handshake-new-inner",
            PreKeyFields4 {
                message: d0.message.clone(),
                ..c1.clone()
            },
        ),
        (
            "e0-with-pre-key",
            PreKeyFields4 {
                pre_key_id: Some(1003),
                ..e0.clone()
            },
        ),
        (
            "e0-inner-no-addresses",
            PreKeyFields4 {
                message: SignalFields {
                    addresses: None,
                    ..SignalFields::of(&e0.message)
                }
                .encode(),
                ..e0.clone()
            },
        ),
        (
            "e0-inner-swapped-addresses",
            PreKeyFields4 {
                message: {
                    let mut s = SignalFields::of(&e0.message);
                    if let Some(a) = &mut s.addresses {
                        a.rotate_left(18);
                    }
                    s.encode()
                },
                ..e0.clone()
            },
        ),
    ];
    for (name, fields) in variants {
        prekey.push((name.to_string(), fields.encode()));
    }
    for (name, bytes) in &prekey {
        out.push((
            "parse_prekey_message_v4",
            format!("fixture-{name}"),
            bytes.clone(),
        ));
        out.push(("decrypt_prekey_v4", name.clone(), bytes.clone()));
    }

    // pq_ratchet inputs: first byte picks the pending type 2 message.
    let pending: Vec<&Sent4> = f
        .sent
        .iter()
        .filter(|m| !m.delivered && m.message_type == SIGNAL_MESSAGE_TYPE)
        .collect();
    for (i, m) in pending.iter().enumerate() {
        let pq = SignalFields::of(&m.bytes).pq_ratchet.unwrap_or_default();
        let mut genuine = vec![i as u8];
        genuine.extend_from_slice(&pq);
        out.push(("decrypt_pq_ratchet", format!("genuine-{}", m.name), genuine));
        let epoch = spqr_epoch(&pq).unwrap_or(1);
        for (name, p) in [
            ("next-epoch", spqr_message(1, epoch + 1, 1, 0, None)),
            ("epoch-far-ahead", spqr_message(1, epoch + 100, 1, 0, None)),
            (
                "previous-epoch",
                spqr_message(1, epoch.saturating_sub(1).max(1), 1, 0, None),
            ),
            ("index-far-ahead", spqr_message(1, epoch, 30_000, 0, None)),
            ("hdr-chunk", spqr_message(1, epoch, 9, 1, Some((0, 0x42)))),
            ("ct2-chunk", spqr_message(1, epoch, 9, 6, Some((4, 0x17)))),
        ] {
            let mut b = vec![i as u8];
            b.extend(p);
            out.push(("decrypt_pq_ratchet", format!("{}-{name}", m.name), b));
        }
    }
    out.push(("decrypt_pq_ratchet", "empty".to_string(), vec![]));
    out.push(("decrypt_pq_ratchet", "no-pq-ratchet".to_string(), vec![0]));
    out
}

/// The hand-made parser and Kyber seeds do what their names say: the well-formed ones
/// parse (and a valid v4 bundle starts a v4 session), each broken one is refused.
pub fn check_parse_seeds() {
    let corpus: Vec<_> = parse_corpus().into_iter().chain(kyber_corpus()).collect();
    let get = |target: &str, name: &str| {
        corpus
            .iter()
            .find(|(t, n, _)| *t == target && n == name)
            .map(|(_, _, b)| b.clone())
            .unwrap_or_else(|| panic!("no seed {target}/{name}"))
    };
    for (name, _) in ["none", "hdr", "ek", "ekct1ack", "ct1ack", "ct1", "ct2"]
        .iter()
        .map(|n| (format!("spqr-{n}"), ()))
        .chain(
            [
                "no-pq-ratchet",
                "empty-pq-ratchet",
                "with-addresses",
                "spqr-long-varints",
                "spqr-trailing",
            ]
            .iter()
            .map(|n| (n.to_string(), ())),
        )
    {
        let m = SignalMessage::try_from(&get("parse_signal_message_v4", &name)[..])
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(m.version(), ProtocolVersion::V4, "{name}");
    }
    for name in [
        "addresses-35",
        "addresses-37",
        "v3-with-pq-ratchet",
        "v3-with-addresses",
        "version-43",
        "version-34",
        "version-54",
    ] {
        assert!(
            SignalMessage::try_from(&get("parse_signal_message_v4", name)[..]).is_err(),
            "{name} parsed"
        );
    }
    for name in ["well-formed", "no-one-time-pre-key", "inner-no-pq-ratchet"] {
        let m = PreKeySignalMessage::try_from(&get("parse_prekey_message_v4", name)[..])
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(m.kyber_pre_key_id(), Some(2001), "{name}");
    }
    for name in [
        "no-kyber-id",
        "no-kyber-ciphertext",
        "no-kyber",
        "mlkem-ciphertext",
        "ciphertext-1568",
        "ciphertext-1570",
        "v3-outer-with-kyber",
        "v3-outer-v4-inner",
        "v4-outer-v3-inner",
        "no-signed-pre-key",
    ] {
        assert!(
            PreKeySignalMessage::try_from(&get("parse_prekey_message_v4", name)[..]).is_err(),
            "{name} parsed"
        );
    }
    for name in ["record-2001", "record-2002-last-resort"] {
        KyberPreKeyRecord::from_bytes(&get("parse_kyber", name)).expect(name);
    }
    KemPublicKey::from_bytes(&get("parse_kyber", "public-key")).expect("public key");
    KemSecretKey::from_bytes(&get("parse_kyber", "secret-key")).expect("secret key");
    KemCiphertext::from_bytes(&get("parse_kyber", "ciphertext")).expect("ciphertext");
    for name in ["bundle-v4", "bundle-v4-last-resort"] {
        let bundle = PreKeyBundle::from_bytes(&get("parse_kyber", name)).expect(name);
        assert!(bundle.has_valid_signature(), "{name}");
        let mut record = SessionRecord::new();
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        record
            .start_session(
                (&fixed_identity(), 7),
                &bundle,
                Versions::V3AndV4,
                &mut rng,
                NOW,
            )
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(record.current().map(|s| s.version()), Some(4), "{name}");
    }
    let foreign =
        PreKeyBundle::from_bytes(&get("parse_kyber", "bundle-v4-foreign-kyber-signature"))
            .expect("loads");
    assert!(!foreign.has_valid_signature());
    for name in ["bundle-mlkem-type", "bundle-key-out-of-range"] {
        assert!(
            PreKeyBundle::from_bytes(&get("parse_kyber", name)).is_err(),
            "{name}"
        );
    }
    for name in ["record-other-public-key", "record-truncated"] {
        assert!(
            KyberPreKeyRecord::from_bytes(&get("parse_kyber", name)).is_err(),
            "{name}"
        );
    }
}
