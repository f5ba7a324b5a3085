//! The bodies of the fuzz targets, and the seed corpus they start from.
//!
//! Shared, unchanged, by the cargo-fuzz binaries in `fuzz/fuzz_targets/` and by
//! `tests/fuzz_corpus.rs`, which replays every file of `tests/fuzz/corpus/<target>/` through
//! [`run`] as an ordinary test and regenerates the corpus from [`corpus`].
//!
//! The decrypt targets work against [`Fixture`]: a live session between Alice and Bob,
//! built deterministically from a fixed seed, in which Bob holds a current and a
//! previous session state, skipped message keys in both, and unused prekeys; the
//! corpus holds the messages of that session, so they stay decryptable only while the
//! fixture is the same (`tests/fuzz_corpus.rs` checks that).
#![allow(dead_code, unreachable_pub)]

use std::sync::OnceLock;

use confide::keys::{PreKeyBundle, PreKeyRecord, SignedPreKeyRecord};
use confide::session::Versions;
use confide::session::cipher::{self, BundleSpec};
use confide::store::{IdentityStore, InMemoryStore, PreKeyStore, SessionStore, SignedPreKeyStore};
use confide::wire::{PREKEY_MESSAGE_TYPE, PreKeySignalMessage, SIGNAL_MESSAGE_TYPE, SignalMessage};
use confide::{
    Address, CiphertextMessage, DecryptError, IdentityKey, IdentityKeyPair, SessionRecord,
};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use crate::actions::{self, Action, Corruption, NOW, Scenario, Setup, Side};
use crate::{parsers, v4};

/// The fuzz targets, by name (also the names of their corpus directories).
pub const TARGETS: [&str; 17] = [
    "parse_signal_message",
    "parse_prekey_message",
    "parse_records",
    "decrypt_signal",
    "decrypt_prekey",
    "actions",
    "parse_group",
    "decrypt_group",
    "parse_sealed",
    "parse_content",
    "parse_privacy",
    "parse_signal_message_v4",
    "parse_prekey_message_v4",
    "parse_kyber",
    "decrypt_signal_v4",
    "decrypt_prekey_v4",
    "decrypt_pq_ratchet",
];

/// The seed the fixture session is built from.
pub const FIXTURE_SEED: u64 = 0x636f_6e66_6964_6531;

/// The seed the `actions` target runs every scenario from.
pub const ACTIONS_SEED: u64 = 0x6163_7469_6f6e_7331;

/// Runs the target `name` on one input; `false` for an unknown name.
pub fn run(name: &str, data: &[u8]) -> bool {
    match name {
        "parse_signal_message" => parse_signal_message(data),
        "parse_prekey_message" => parse_prekey_message(data),
        "parse_records" => parse_records(data),
        "decrypt_signal" => decrypt_signal(data),
        "decrypt_prekey" => decrypt_prekey(data),
        "actions" => run_actions(data),
        "parse_group" => parsers::parse_group(data),
        "decrypt_group" => parsers::decrypt_group(data),
        "parse_sealed" => parsers::parse_sealed(data),
        "parse_content" => parsers::parse_content(data),
        "parse_privacy" => parsers::parse_privacy(data),
        "parse_signal_message_v4" => v4::parse_signal_message_v4(data),
        "parse_prekey_message_v4" => v4::parse_prekey_message_v4(data),
        "parse_kyber" => v4::parse_kyber(data),
        "decrypt_signal_v4" => v4::decrypt_signal_v4(data),
        "decrypt_prekey_v4" => v4::decrypt_prekey_v4(data),
        "decrypt_pq_ratchet" => v4::decrypt_pq_ratchet(data),
        _ => return false,
    }
    true
}

/// `SignalMessage::try_from`: never panics; what parses keeps its bytes and parses
/// again to the same message.
pub fn parse_signal_message(data: &[u8]) {
    let parsed = SignalMessage::try_from(data);
    if let Ok(m) = &parsed {
        assert_eq!(m.serialized(), data);
        assert_eq!(SignalMessage::try_from(m.serialized()).as_ref(), Ok(m));
    }
    let via_parts = CiphertextMessage::from_parts(SIGNAL_MESSAGE_TYPE, data);
    assert_eq!(via_parts.is_ok(), parsed.is_ok());
}

/// `PreKeySignalMessage::try_from`: never panics; what parses keeps its bytes, and its
/// inner message parses on its own to the same message.
pub fn parse_prekey_message(data: &[u8]) {
    let parsed = PreKeySignalMessage::try_from(data);
    if let Ok(m) = &parsed {
        assert_eq!(m.serialized(), data);
        assert_eq!(
            PreKeySignalMessage::try_from(m.serialized()).as_ref(),
            Ok(m)
        );
        let inner = SignalMessage::try_from(m.message().serialized());
        assert_eq!(inner.as_ref(), Ok(m.message()));
    }
    let via_parts = CiphertextMessage::from_parts(PREKEY_MESSAGE_TYPE, data);
    assert_eq!(via_parts.is_ok(), parsed.is_ok());
    if let Some((&ty, rest)) = data.split_first() {
        // Any type number: never panics.
        let _ = CiphertextMessage::from_parts(ty, rest);
    }
}

/// Every record loader on the same bytes. What loads re-encodes to bytes that load to
/// the same encoding again; a loaded session record is then used (encrypt, and decrypt
/// of a fixture message), and on error must be unchanged.
pub fn parse_records(data: &[u8]) {
    if let Ok(record) = SessionRecord::from_bytes(data) {
        let bytes = record.to_bytes();
        let again = SessionRecord::from_bytes(&bytes).expect("re-encoded record must load");
        assert!(
            again.to_bytes() == bytes,
            "session record encoding not stable"
        );
        use_record(record);
    }
    if let Ok(identity) = IdentityKeyPair::from_bytes(data) {
        let bytes = identity.to_bytes();
        let again = IdentityKeyPair::from_bytes(&bytes).expect("re-encoded identity must load");
        assert!(again.to_bytes() == bytes, "identity encoding not stable");
        assert_eq!(again.identity_key(), identity.identity_key());
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let signature = confide::hazmat::xeddsa_sign(identity.private_key(), &mut rng, data);
        assert!(
            identity.identity_key().verify_signature(data, &signature),
            "a loaded identity's signature does not verify"
        );
    }
    if let Ok(pre_key) = PreKeyRecord::from_bytes(data) {
        let bytes = pre_key.to_bytes();
        let again = PreKeyRecord::from_bytes(&bytes).expect("re-encoded prekey must load");
        assert!(again.to_bytes() == bytes, "prekey encoding not stable");
    }
    if let Ok(signed) = SignedPreKeyRecord::from_bytes(data) {
        let bytes = signed.to_bytes();
        let again =
            SignedPreKeyRecord::from_bytes(&bytes).expect("re-encoded signed prekey must load");
        assert!(
            again.to_bytes() == bytes,
            "signed prekey encoding not stable"
        );
    }
    if let Ok(bundle) = PreKeyBundle::from_bytes(data) {
        let again =
            PreKeyBundle::from_bytes(&bundle.to_bytes()).expect("re-encoded bundle must load");
        assert_eq!(again, bundle, "prekey bundle changes through its encoding");
    }
}

fn use_record(record: SessionRecord) {
    let fixture = Fixture::get();
    let before = record.to_bytes();
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    for (bytes, plaintext) in [&fixture.probe_current, &fixture.probe_previous] {
        let Ok(message) = SignalMessage::try_from(&bytes[..]) else {
            panic!("fixture probe does not parse")
        };
        let mut copy = record.clone();
        match copy.decrypt(&message, &mut rng) {
            Ok(got) => assert_eq!(&*got, plaintext, "a loaded record decrypted to other bytes"),
            Err(e) => assert!(
                copy.to_bytes() == before,
                "failed decrypt ({e:?}) changed a loaded record"
            ),
        }
    }
    let mut copy = record.clone();
    if let Err(e) = copy.encrypt(b"probe", &mut rng) {
        assert!(
            copy.to_bytes() == before,
            "failed encrypt ({e:?}) changed a loaded record"
        );
    }
}

/// Bytes decrypted as a type 2 message by Bob, from Alice, in the fixture session.
pub fn decrypt_signal(data: &[u8]) {
    decrypt_of_type(SIGNAL_MESSAGE_TYPE, data);
}

/// Bytes decrypted as a type 3 message by Bob, from Alice, in the fixture session.
pub fn decrypt_prekey(data: &[u8]) {
    decrypt_of_type(PREKEY_MESSAGE_TYPE, data);
}

/// On error Bob's stored state must be unchanged. On success the (inner) message must
/// be one Alice sent, the plaintext hers, and a second delivery a duplicate that again
/// changes nothing; so must be a delivery of each genuine message with that inner
/// message (exactly once: a changed copy that was accepted counts as the delivery).
fn decrypt_of_type(message_type: u8, data: &[u8]) -> Option<Vec<u8>> {
    let fixture = Fixture::get();
    let store = fixture.bob_store();
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let before = fixture.snapshot(&store);
    match actions::receive(
        &store,
        &fixture.bob,
        &fixture.alice,
        message_type,
        data,
        &mut rng,
    ) {
        Err(e) => {
            assert!(
                fixture.snapshot(&store) == before,
                "failed decrypt ({e:?}) changed Bob's state"
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
            let sent = fixture
                .sent
                .iter()
                .find(|s| s.inner == inner)
                .unwrap_or_else(|| panic!("accepted a message Alice never sent: {data:02x?}"));
            assert_eq!(plaintext, sent.plaintext, "decrypted to other bytes");
            let after = fixture.snapshot(&store);
            match actions::receive(
                &store,
                &fixture.bob,
                &fixture.alice,
                message_type,
                data,
                &mut rng,
            ) {
                Err(DecryptError::DuplicateMessage { .. }) => {}
                other => panic!("second delivery gave {other:?}"),
            }
            assert!(
                fixture.snapshot(&store) == after,
                "a duplicate changed Bob's state"
            );
            for m in fixture.sent.iter().filter(|m| m.inner == inner) {
                match actions::receive(
                    &store,
                    &fixture.bob,
                    &fixture.alice,
                    m.message_type,
                    &m.bytes,
                    &mut rng,
                ) {
                    Err(DecryptError::DuplicateMessage { .. }) => {}
                    other => panic!(
                        "after this input was accepted, genuine {} gave {other:?}",
                        m.name
                    ),
                }
                assert!(
                    fixture.snapshot(&store) == after,
                    "a duplicate changed Bob's state"
                );
            }
            Some(plaintext)
        }
    }
}

/// Decodes a [`Scenario`] and runs it with [`actions::run`].
pub fn run_actions(data: &[u8]) {
    actions::run(&Scenario::decode(data), ACTIONS_SEED);
}

/// A message Alice sent in the fixture.
#[derive(Clone, Debug)]
pub struct FixtureMessage {
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

/// Bob's side of a deterministic session with Alice, and what Alice sent in it.
///
/// Built from [`FIXTURE_SEED`]:
/// 1. Alice starts session A from a bundle with one-time prekey 1001 and sends a0-a2
///    (prekey messages); Bob gets a0 and a2. Bob answers; Alice sends a3-a5 (type 2)
///    on a new chain; Bob gets a4.
/// 2. Alice starts session C (one-time prekey 1002), sends c0, c1; Bob gets c0 and
///    answers; Alice sends c2-c4; Bob gets c3. Bob's current state is C, A is previous.
/// 3. Alice starts D (one-time prekey 1003) and sends d0, d1, then E (no one-time
///    prekey) and sends e0; Bob gets none of them, so he still holds prekey 1003.
pub struct Fixture {
    /// Alice's address, as Bob knows it.
    pub alice: Address,
    /// Bob's address.
    pub bob: Address,
    bob_identity: IdentityKeyPair,
    bob_registration_id: u32,
    bob_record: SessionRecord,
    bob_pre_keys: Vec<PreKeyRecord>,
    bob_signed_pre_keys: Vec<SignedPreKeyRecord>,
    alice_identity: IdentityKey,
    /// Every message Alice sent, in order.
    pub sent: Vec<FixtureMessage>,
    /// Alice's session record at the end.
    pub alice_record: Vec<u8>,
    /// Alice's identity, serialized.
    pub alice_identity_bytes: Vec<u8>,
    /// Undelivered type 2 message (c4) in Bob's current state, with its plaintext.
    pub probe_current: (Vec<u8>, Vec<u8>),
    /// Undelivered type 2 message (a5) in Bob's previous state, with its plaintext.
    pub probe_previous: (Vec<u8>, Vec<u8>),
    /// The first prekey bundle Alice processed, serialized.
    pub bundle: Vec<u8>,
}

const PRE_KEY_IDS: [u32; 3] = [1001, 1002, 1003];
const SIGNED_PRE_KEY_IDS: [u32; 4] = [1, 2, 3, 4];

impl Fixture {
    /// The fixture, built once per process.
    pub fn get() -> &'static Fixture {
        static FIXTURE: OnceLock<Fixture> = OnceLock::new();
        FIXTURE.get_or_init(Fixture::build)
    }

    fn build() -> Fixture {
        let mut rng = ChaCha20Rng::seed_from_u64(FIXTURE_SEED);
        let alice = InMemoryStore::generate(&mut rng);
        let bob = InMemoryStore::generate(&mut rng);
        let alice_addr = Address::new("alice", 1);
        let bob_addr = Address::new("bob", 1);
        let mut sent: Vec<(String, CiphertextMessage, Vec<u8>, bool)> = Vec::new();

        let start = |id: u32, one_time: bool, rng: &mut ChaCha20Rng| {
            let spec = BundleSpec::new(1, id).with_pre_key(one_time.then_some(1000 + id));
            let bundle = cipher::publish_bundle(&bob, rng, &spec, NOW).expect("bundle");
            cipher::start_session(&alice, &bob_addr, &bundle, Versions::V3AndV4, rng, NOW)
                .expect("process");
            bundle.to_bytes()
        };
        let send = |name: &str, sent: &mut Vec<_>, rng: &mut ChaCha20Rng| {
            let plaintext = format!("fixture message {name}").into_bytes();
            let m = cipher::encrypt(&alice, &alice_addr, &bob_addr, &plaintext, rng, NOW)
                .expect("encrypt");
            sent.push((name.to_string(), m, plaintext, false));
        };
        let deliver = |name: &str,
                       sent: &mut Vec<(String, CiphertextMessage, Vec<u8>, bool)>,
                       rng: &mut ChaCha20Rng| {
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

        let bundle = start(1, true, &mut rng);
        for n in ["a0", "a1", "a2"] {
            send(n, &mut sent, &mut rng);
        }
        deliver("a0", &mut sent, &mut rng);
        deliver("a2", &mut sent, &mut rng);
        answer(&mut rng);
        for n in ["a3", "a4", "a5"] {
            send(n, &mut sent, &mut rng);
        }
        deliver("a4", &mut sent, &mut rng);

        start(2, true, &mut rng);
        for n in ["c0", "c1"] {
            send(n, &mut sent, &mut rng);
        }
        deliver("c0", &mut sent, &mut rng);
        answer(&mut rng);
        for n in ["c2", "c3", "c4"] {
            send(n, &mut sent, &mut rng);
        }
        deliver("c3", &mut sent, &mut rng);

        start(3, true, &mut rng);
        for n in ["d0", "d1"] {
            send(n, &mut sent, &mut rng);
        }
        start(4, false, &mut rng);
        send("e0", &mut sent, &mut rng);

        let sent: Vec<FixtureMessage> = sent
            .into_iter()
            .map(|(name, m, plaintext, delivered)| {
                let inner = match &m {
                    CiphertextMessage::PreKey(p) => p.message().serialized().to_vec(),
                    other => other.serialized().to_vec(),
                };
                FixtureMessage {
                    name,
                    message_type: m.message_type(),
                    bytes: m.serialized().to_vec(),
                    inner,
                    plaintext,
                    delivered,
                }
            })
            .collect();
        let probe = |name: &str| {
            let m = sent.iter().find(|m| m.name == name).expect("probe");
            assert_eq!(m.message_type, SIGNAL_MESSAGE_TYPE);
            (m.bytes.clone(), m.plaintext.clone())
        };
        let (probe_current, probe_previous) = (probe("c4"), probe("a5"));
        let bob_record = bob.session(&alice_addr).expect("store").expect("record");
        assert_eq!(bob_record.previous_count(), 1);
        Fixture {
            bob_identity: bob.local_identity().expect("store"),
            bob_registration_id: bob.local_registration_id().expect("store"),
            bob_record,
            bob_pre_keys: PRE_KEY_IDS
                .iter()
                .filter_map(|&id| bob.pre_key(id).expect("store"))
                .collect(),
            bob_signed_pre_keys: SIGNED_PRE_KEY_IDS
                .iter()
                .filter_map(|&id| bob.signed_pre_key(id).expect("store"))
                .collect(),
            alice_identity: *alice.local_identity().expect("store").identity_key(),
            alice_identity_bytes: alice.local_identity().expect("store").to_bytes().to_vec(),
            alice_record: alice
                .session(&bob_addr)
                .expect("store")
                .expect("record")
                .to_bytes()
                .to_vec(),
            sent,
            alice: alice_addr,
            bob: bob_addr,
            probe_current,
            probe_previous,
            bundle,
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
        store
            .save_identity(&self.alice, &self.alice_identity)
            .expect("store");
        store
    }

    /// Bob's state as far as a decrypt from Alice may touch it.
    pub fn snapshot(&self, store: &InMemoryStore) -> Vec<u8> {
        actions::snapshot(store, &self.alice, &PRE_KEY_IDS, &SIGNED_PRE_KEY_IDS)
    }

    /// Bob's session record, serialized.
    pub fn bob_record_bytes(&self) -> Vec<u8> {
        self.bob_record.to_bytes().to_vec()
    }

    fn message(&self, name: &str) -> &FixtureMessage {
        self.sent
            .iter()
            .find(|m| m.name == name)
            .expect("no such fixture message")
    }
}

/// A minimal protobuf writer, for hand-made edge cases.
#[derive(Default)]
struct Pb(Vec<u8>);

impl Pb {
    fn varint(&mut self, mut v: u64) -> &mut Self {
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

    fn uint(&mut self, field: u32, v: u64) -> &mut Self {
        self.varint(u64::from(field) << 3).varint(v)
    }

    fn bytes(&mut self, field: u32, b: &[u8]) -> &mut Self {
        self.varint(u64::from(field) << 3 | 2)
            .varint(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }
}

/// The fields of a prekey message, to re-encode with changes.
#[derive(Clone)]
struct PreKeyFields {
    pre_key_id: Option<u32>,
    base_key: Vec<u8>,
    identity_key: Vec<u8>,
    message: Vec<u8>,
    registration_id: Option<u32>,
    signed_pre_key_id: Option<u32>,
}

impl PreKeyFields {
    fn of(bytes: &[u8]) -> PreKeyFields {
        let p = PreKeySignalMessage::try_from(bytes).expect("fixture prekey message");
        PreKeyFields {
            pre_key_id: p.pre_key_id(),
            base_key: p.base_key().serialize().to_vec(),
            identity_key: p.identity_key().serialize().to_vec(),
            message: p.message().serialized().to_vec(),
            registration_id: Some(p.registration_id()),
            signed_pre_key_id: Some(p.signed_pre_key_id()),
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut pb = Pb(vec![0x33]);
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
        pb.0
    }
}

/// A hand-made type 2 message: version byte, body, 8 zero bytes of MAC.
fn signal_message(ratchet_key: &[u8], counter: Option<u64>, ciphertext: &[u8]) -> Vec<u8> {
    let mut pb = Pb(vec![0x33]);
    pb.bytes(1, ratchet_key);
    if let Some(c) = counter {
        pb.uint(2, c);
    }
    pb.uint(3, 0).bytes(4, ciphertext);
    pb.0.extend([0u8; 8]);
    pb.0
}

fn flip(bytes: &[u8], at: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let at = at.min(out.len() - 1);
    out[at] ^= 0x01;
    out
}

fn key(prefix: u8, fill: u8) -> Vec<u8> {
    let mut k = vec![fill; 33];
    k[0] = prefix;
    k
}

/// The seed corpus: `(target, file name, bytes)`, deterministic.
pub fn corpus() -> Vec<(&'static str, String, Vec<u8>)> {
    let f = Fixture::get();
    let mut out: Vec<(&'static str, String, Vec<u8>)> = Vec::new();

    // Type 2 messages: the genuine ones (plain and the inner ones of prekey messages),
    // then damaged and hand-made ones.
    let mut signal: Vec<(String, Vec<u8>)> = Vec::new();
    for m in &f.sent {
        let state = if m.delivered { "delivered" } else { "pending" };
        let kind = if m.message_type == SIGNAL_MESSAGE_TYPE {
            "genuine"
        } else {
            "inner"
        };
        signal.push((format!("{kind}-{}-{state}", m.name), m.inner.clone()));
    }
    let c4 = &f.message("c4").bytes;
    let ratchet = SignalMessage::try_from(&c4[..])
        .expect("fixture")
        .ratchet_key()
        .serialize();
    let mut relabelled = c4.clone();
    relabelled[0] = 0x23;
    signal.extend([
        ("empty".to_string(), vec![]),
        ("version-only".to_string(), vec![0x33]),
        ("too-short".to_string(), vec![0x33; 8]),
        ("relabelled".to_string(), relabelled),
        ("mac-flipped".to_string(), flip(c4, c4.len() - 1)),
        ("ciphertext-flipped".to_string(), flip(c4, c4.len() - 12)),
        ("truncated".to_string(), c4[..c4.len() - 1].to_vec()),
        (
            "counter-max".to_string(),
            signal_message(&ratchet, Some(u64::from(u32::MAX)), &[0; 16]),
        ),
        (
            "counter-far-ahead".to_string(),
            signal_message(&ratchet, Some(25_010), &[0; 16]),
        ),
        (
            "counter-skips-100".to_string(),
            signal_message(&ratchet, Some(100), &[0; 16]),
        ),
        (
            "no-counter".to_string(),
            signal_message(&ratchet, None, &[0; 16]),
        ),
        (
            "low-order-ratchet-key".to_string(),
            signal_message(&key(0x05, 0), Some(0), &[0; 16]),
        ),
        (
            "unknown-key-type".to_string(),
            signal_message(&key(0x06, 7), Some(0), &[0; 16]),
        ),
        (
            "empty-ciphertext".to_string(),
            signal_message(&ratchet, Some(5), &[]),
        ),
    ]);
    for (name, bytes) in &signal {
        out.push(("parse_signal_message", name.clone(), bytes.clone()));
        out.push(("decrypt_signal", name.clone(), bytes.clone()));
    }

    // Type 3 messages.
    let mut prekey: Vec<(String, Vec<u8>)> = Vec::new();
    for m in f
        .sent
        .iter()
        .filter(|m| m.message_type == PREKEY_MESSAGE_TYPE)
    {
        let state = if m.delivered { "delivered" } else { "pending" };
        prekey.push((format!("genuine-{}-{state}", m.name), m.bytes.clone()));
    }
    let d0 = PreKeyFields::of(&f.message("d0").bytes);
    let a1 = PreKeyFields::of(&f.message("a1").bytes);
    let e0 = PreKeyFields::of(&f.message("e0").bytes);
    let variants: Vec<(&str, PreKeyFields)> = vec![
        (
            "d0-unknown-pre-key",
            PreKeyFields {
                pre_key_id: Some(9999),
                ..d0.clone()
            },
        ),
        (
            "d0-no-pre-key",
            PreKeyFields {
                pre_key_id: None,
                ..d0.clone()
            },
        ),
        (
            "d0-unknown-signed-pre-key",
            PreKeyFields {
                signed_pre_key_id: Some(99),
                ..d0.clone()
            },
        ),
        (
            "d0-no-signed-pre-key",
            PreKeyFields {
                signed_pre_key_id: None,
                ..d0.clone()
            },
        ),
        (
            "d0-other-registration-id",
            PreKeyFields {
                registration_id: Some(4242),
                ..d0.clone()
            },
        ),
        (
            "d0-no-registration-id",
            PreKeyFields {
                registration_id: None,
                ..d0.clone()
            },
        ),
        (
            "d0-low-order-base-key",
            PreKeyFields {
                base_key: key(0x05, 0),
                ..d0.clone()
            },
        ),
        (
            "d0-other-identity",
            PreKeyFields {
                identity_key: key(0x05, 9),
                ..d0.clone()
            },
        ),
        (
            "d0-inner-from-e0",
            PreKeyFields {
                message: e0.message.clone(),
                ..d0.clone()
            },
        ),
        (
            "a1-inner-from-c4",
            PreKeyFields {
                message: c4.clone(),
                ..a1.clone()
            },
        ),
        (
            "a1-other-pre-key",
            PreKeyFields {
                pre_key_id: Some(1003),
                ..a1.clone()
            },
        ),
        (
            "e0-with-pre-key",
            PreKeyFields {
                pre_key_id: Some(1003),
                ..e0.clone()
            },
        ),
    ];
    for (name, fields) in variants {
        prekey.push((name.to_string(), fields.encode()));
    }
    // Base key with bit 255 flipped: refused as non-canonical when parsed.
    for name in ["a0", "d0", "e0"] {
        let mut fields = PreKeyFields::of(&f.message(name).bytes);
        fields.base_key[32] ^= 0x80;
        prekey.push((format!("{name}-base-key-top-bit"), fields.encode()));
    }
    let d0_bytes = &f.message("d0").bytes;
    let mut relabelled = d0_bytes.clone();
    relabelled[0] = 0x23;
    let mut inner_relabelled = d0.clone();
    inner_relabelled.message[0] = 0x32;
    prekey.extend([
        ("empty".to_string(), vec![]),
        ("version-only".to_string(), vec![0x33]),
        ("relabelled".to_string(), relabelled),
        ("inner-relabelled".to_string(), inner_relabelled.encode()),
        (
            "truncated".to_string(),
            d0_bytes[..d0_bytes.len() - 1].to_vec(),
        ),
        ("inner-mac-flipped".to_string(), {
            let mut v = d0.clone();
            let last = v.message.len() - 1;
            v.message[last] ^= 1;
            v.encode()
        }),
    ]);
    for (name, bytes) in &prekey {
        out.push(("parse_prekey_message", name.clone(), bytes.clone()));
        out.push(("decrypt_prekey", name.clone(), bytes.clone()));
    }

    // Stored records.
    let bob_record = f.bob_record_bytes();
    let mut records: Vec<(String, Vec<u8>)> = vec![
        ("session-bob".to_string(), bob_record.clone()),
        ("session-alice".to_string(), f.alice_record.clone()),
        (
            "session-empty".to_string(),
            SessionRecord::new().to_bytes().to_vec(),
        ),
        (
            "session-truncated".to_string(),
            bob_record[..bob_record.len() / 2].to_vec(),
        ),
        ("identity".to_string(), f.bob_identity.to_bytes().to_vec()),
        ("identity-alice".to_string(), f.alice_identity_bytes.clone()),
        ("empty".to_string(), vec![]),
        ("format-version-2".to_string(), vec![0x08, 0x02]),
    ];
    for k in &f.bob_pre_keys {
        records.push((format!("pre-key-{}", k.id()), k.to_bytes().to_vec()));
    }
    for k in &f.bob_signed_pre_keys {
        records.push((format!("signed-pre-key-{}", k.id()), k.to_bytes().to_vec()));
    }
    for (name, bytes) in records {
        out.push(("parse_records", name, bytes));
    }
    out.push(("parse_records", "bundle".to_string(), f.bundle.clone()));

    // Action scenarios.
    for (name, scenario) in scenarios() {
        out.push(("actions", name, scenario.encode()));
    }
    out.extend(parsers::corpus());
    out.extend(v4::parse_corpus());
    out.extend(v4::kyber_corpus());
    out.extend(v4::decrypt_corpus());
    out
}

/// Hand-written scenarios plus a few pseudo-random ones, for the `actions` corpus.
pub fn scenarios() -> Vec<(String, Scenario)> {
    use Action::*;
    use Side::*;
    let setup = |initiator, one_time, simultaneous| Setup {
        initiator,
        one_time,
        simultaneous,
        v4: false,
    };
    let send = |from, text: &str| Send {
        from,
        payload: text.as_bytes().to_vec(),
    };
    let mut out = vec![
        (
            "ping-pong".to_string(),
            Scenario {
                setup: setup(Alice, true, None),
                actions: vec![send(Alice, "hi"), Deliver(0), send(Bob, "hey"), Deliver(0)],
            },
        ),
        (
            "reverse-order".to_string(),
            Scenario {
                setup: setup(Bob, false, None),
                actions: vec![
                    send(Bob, "1"),
                    send(Bob, "2"),
                    send(Bob, "3"),
                    Deliver(2),
                    Deliver(1),
                    Deliver(0),
                    Duplicate(1),
                ],
            },
        ),
        (
            "simultaneous".to_string(),
            Scenario {
                setup: setup(Alice, true, Some(true)),
                actions: vec![
                    send(Alice, "a"),
                    send(Bob, "b"),
                    Deliver(1),
                    Deliver(0),
                    send(Alice, "a2"),
                    send(Bob, "b2"),
                    Deliver(0),
                    Deliver(0),
                ],
            },
        ),
        (
            "corruptions".to_string(),
            Scenario {
                setup: setup(Alice, true, None),
                actions: vec![
                    send(Alice, "x"),
                    Corrupt {
                        delivered: false,
                        pick: 0,
                        how: Corruption::FlipBit(100),
                    },
                    Corrupt {
                        delivered: false,
                        pick: 0,
                        how: Corruption::Truncate(30),
                    },
                    Corrupt {
                        delivered: false,
                        pick: 0,
                        how: Corruption::Relabel(0x32),
                    },
                    Corrupt {
                        delivered: false,
                        pick: 0,
                        how: Corruption::RelabelInner(0x34),
                    },
                    Corrupt {
                        delivered: false,
                        pick: 0,
                        how: Corruption::WrongType,
                    },
                    Deliver(0),
                    send(Bob, "y"),
                    Corrupt {
                        delivered: false,
                        pick: 0,
                        how: Corruption::FlipBit(7),
                    },
                    Deliver(0),
                    Corrupt {
                        delivered: true,
                        pick: 1,
                        how: Corruption::Truncate(9),
                    },
                ],
            },
        ),
        (
            "reinit-with-old-in-flight".to_string(),
            Scenario {
                setup: setup(Alice, true, None),
                actions: vec![
                    send(Alice, "old"),
                    Reinit {
                        from: Alice,
                        one_time: false,
                        v4: false,
                    },
                    send(Alice, "new"),
                    Deliver(1),
                    send(Bob, "reply"),
                    Deliver(1),
                    Deliver(0),
                ],
            },
        ),
    ];
    // A message held back while its chain is pushed out by six round trips.
    let mut evict = vec![send(Alice, "first"), Deliver(0), send(Alice, "held")];
    for i in 0..6 {
        evict.extend([
            send(Bob, &format!("b{i}")),
            Deliver(1),
            send(Alice, &format!("a{i}")),
            Deliver(1),
        ]);
    }
    evict.push(Deliver(0));
    out.push((
        "held-past-chain-limit".to_string(),
        Scenario {
            setup: setup(Alice, false, None),
            actions: evict,
        },
    ));
    let mut rng = ChaCha20Rng::seed_from_u64(FIXTURE_SEED);
    for i in 0..12 {
        out.push((format!("random-{i:02}"), random_scenario(&mut rng, 40)));
    }
    out.extend(scenarios_v4());
    out
}

/// v4 scenarios for the `actions` corpus: alternating bursts that take SPQR into its
/// second epoch with a message held back across it, v4 re-initiations, and random
/// scenarios with either version at every initiation.
pub fn scenarios_v4() -> Vec<(String, Scenario)> {
    use Action::*;
    use Side::*;
    let setup = |initiator, one_time, simultaneous, v4| Setup {
        initiator,
        one_time,
        simultaneous,
        v4,
    };
    let send = |from, text: String| Send {
        from,
        payload: text.into_bytes(),
    };
    let mut bursts = vec![send(Alice, "held".to_string())];
    for b in 0..6 {
        let from = if b % 2 == 0 { Alice } else { Bob };
        for i in 0..40 {
            bursts.push(send(from, format!("{b}.{i}")));
        }
        for _ in 0..40 {
            bursts.push(Deliver(1));
        }
    }
    let mut out = vec![
        (
            "v4-ping-pong".to_string(),
            Scenario {
                setup: setup(Alice, true, None, true),
                actions: vec![
                    send(Alice, "hi".to_string()),
                    Deliver(0),
                    send(Bob, "hey".to_string()),
                    Deliver(0),
                ],
            },
        ),
        (
            "v4-bursts-to-epoch-2".to_string(),
            Scenario {
                setup: setup(Alice, false, None, true),
                actions: bursts,
            },
        ),
        (
            "v4-reinit-v3-then-v4".to_string(),
            Scenario {
                setup: setup(Bob, true, Some(false), false),
                actions: vec![
                    send(Bob, "v3".to_string()),
                    Reinit {
                        from: Alice,
                        one_time: true,
                        v4: true,
                    },
                    send(Alice, "v4".to_string()),
                    Deliver(1),
                    send(Bob, "back".to_string()),
                    Deliver(0),
                    Reinit {
                        from: Bob,
                        one_time: false,
                        v4: true,
                    },
                    send(Bob, "last resort".to_string()),
                    Deliver(u16::MAX),
                    Duplicate(0),
                    Corrupt {
                        delivered: true,
                        pick: 1,
                        how: Corruption::FlipBit(900),
                    },
                ],
            },
        ),
    ];
    let mut rng = ChaCha20Rng::seed_from_u64(FIXTURE_SEED ^ 4);
    for i in 0..6 {
        let mut s = random_scenario(&mut rng, 60);
        s.setup.v4 = i % 2 == 0;
        for a in &mut s.actions {
            if let Reinit { v4, .. } = a {
                *v4 = rng.next_u32() % 2 == 0;
            }
        }
        out.push((format!("v4-random-{i:02}"), s));
    }
    out
}

/// A pseudo-random scenario of `len` actions.
pub fn random_scenario(rng: &mut ChaCha20Rng, len: usize) -> Scenario {
    let side = |b: u32| if b & 1 == 0 { Side::Alice } else { Side::Bob };
    let r = rng.next_u32();
    let setup = Setup {
        initiator: side(r),
        one_time: r & 2 != 0,
        simultaneous: (r & 4 != 0).then_some(r & 8 != 0),
        v4: false,
    };
    let actions = (0..len)
        .map(|_| {
            let r = rng.next_u32();
            let pick = (r >> 16) as u16;
            match r % 16 {
                0..=4 => {
                    let mut payload = vec![0u8; (r >> 8) as usize % 64];
                    rng.fill_bytes(&mut payload);
                    Action::Send {
                        from: side(r >> 4),
                        payload,
                    }
                }
                5..=9 => Action::Deliver(pick),
                10 => Action::Drop(pick),
                11 => Action::Duplicate(pick),
                12..=14 => Action::Corrupt {
                    delivered: r & 16 != 0,
                    pick,
                    how: match (r >> 5) % 5 {
                        0 => Corruption::FlipBit(rng.next_u32() as u16),
                        1 => Corruption::Truncate(rng.next_u32() as u16),
                        2 => Corruption::Relabel(rng.next_u32() as u8),
                        3 => Corruption::RelabelInner(rng.next_u32() as u8),
                        _ => Corruption::WrongType,
                    },
                },
                _ => Action::Reinit {
                    from: side(r >> 4),
                    one_time: r & 32 != 0,
                    v4: false,
                },
            }
        })
        .collect();
    Scenario { setup, actions }
}
