//! Protocol v4 (PQXDH + SPQR) against v3, vodozemac and the floor, in one run.
//!
//! Run with `cargo bench --bench v4`. The binary prints the bytes table first (confide's
//! own messages, then `node benches/v4_bytes.js` for libsignal 0.103 when
//! `tests/official_interop/node_modules` is installed), then runs the benches, then prints
//! the time table from `target/criterion/<group>/<id>/new/estimates.json` (medians).
//!
//! The table of one run (`cargo bench --bench v4`, 2026-12-04, 2 shared cores, load
//! average about 2; medians; three earlier runs under load 6-9 moved every row by up to
//! ±30%, the decrypt rows most):
//!
//! ```text
//! row                                        time      floor   ratio  target
//! setup v4 (bundle + first message, both)  535.1 µs  415.0 µs  1.29x  1.15  (v3 345.8 + Kyber 69.4)
//!   v4 vs v3 + everything v4 adds          535.1 µs  533.0 µs  1.00x        (+ sig 50.9, torsion 40.0, keygen 27.8)
//! steady encrypt v4, 140 B                   5.88 µs   3.80 µs  1.55x  1.3
//! steady decrypt v4, 140 B (DH step incl.)  66.9 µs   74.0 µs   0.90x  1.3   (noise > SPQR's share)
//! ping-pong v4, per round trip             189.1 µs  162.3 µs   1.17x
//! steady encrypt v3                          2.65 µs   2.24 µs  1.18x
//! steady decrypt v3 (DH step incl.)         60.9 µs   59.8 µs   1.02x
//! ping-pong v3, per round trip             164.3 µs  160.5 µs   1.02x
//! vodozemac: setup 354 µs, encrypt 71.3 µs (it ratchets on send), decrypt 55.6 µs, round trip 354 µs
//! per epoch (M = 86.9 messages): ML-KEM-768 keygen 27.8, validate 1.7, encaps 25.3, decaps 25.7 µs
//!   (libcrux; RustCrypto ml-kem 89.0 / 78.2 / 123.9 µs), SPQR epoch symmetric 8.2 µs
//! bytes beyond v3 (confide = libsignal 0.103, byte for byte): PreKeySignalMessage +1613;
//!   200 ping-pong mean +34.55, max 39; 200 one-way mean +39.73, max 41
//! ```
//!
//! Where v4 encrypt's time goes beyond the floor (`perf record --call-graph dwarf` of
//! `steady_encrypt/v4`): SPQR's `State::send` returns a new state, so every message clones
//! the whole state and drops the old one, whose skipped-key store is zeroized over its
//! whole capacity (the drop is 19% of `encrypt`, the memset alone 14%); the erasure
//! encoder is rebuilt per message (`Encoder::resume`, barycentric weights of N = 36
//! points, 8%) although a systematic chunk is a copy; confide's HKDF and HMAC are
//! AWS-LC's, about 20% dearer per call than ring's (the floor's, as in v3). v4 setup's
//! excess over the issue's floor is what the protocol adds besides the Kyber operations:
//! the Kyber prekey's XEdDSA signature check, the base key's torsion check and SPQR's
//! first ML-KEM-768 key generation (Alice sends the header in her first message); with
//! them in the floor the ratio is 1.00x.
//!
//! Rows:
//! - `setup/{v3,v4,vodozemac}`: Alice checks Bob's bundle and starts the session, encrypts
//!   140 bytes, Bob decrypts the PreKeySignalMessage (fresh records each time, Bob's
//!   prekeys reused). v4 includes parsing the bundle's Kyber public key from its 1569
//!   bytes (`KemPublicKey::from_bytes`, the only place confide checks it), so the floor's
//!   key check is in both. Floor of v4: `setup/v3` + `setup/kyber1024_floor` (one
//!   libcrux `kyber1024::validate_public_key`, `encapsulate` and `decapsulate`); target
//!   ≤ 1.15x.
//! - `steady_encrypt`, `steady_decrypt`: 140-byte messages of an established,
//!   acknowledged session in an alternating ping-pong (A→B, B→A, ...), which keeps SPQR's
//!   epochs turning; only the encrypt (resp. the decrypt) of each message is timed. Each
//!   sample runs whole blocks of [`BLOCK_MESSAGES`] messages (about 12 SPQR epochs) and
//!   reports the median block's mean, so an epoch's ML-KEM work lands in the mean it
//!   belongs to while a preempted block is dropped.
//! - `pingpong`: the same alternating run, everything timed, per round trip (two
//!   messages, each encrypted and decrypted), over blocks of many epochs.
//!
//! Floors (the v4 computation with nothing around it; the fastest backend of each
//! primitive as `benches/session.rs` picked them: ring HMAC/HKDF, aws-lc-rs X25519,
//! RustCrypto AES-CBC; libcrux ML-KEM):
//! - `floor_sym_v4` (`floor` module, a minimal two-party model run in the same
//!   ping-pong): per message the chain step (two HMACs under one keying), SPQR's chain
//!   key (`HKDF(0, next, ctr ‖ "Signal PQ Ratchet V1 Chain Next")` → 64 B) on each side,
//!   the message keys `HKDF(salt = SPQR key, seed, "WhisperMessageKeys")` → 80 B,
//!   AES-256-CBC/PKCS#7 of 140 B, the 8-byte HMAC-SHA256 MAC over both identities and
//!   the whole body (pq_ratchet field of 37 bytes included), and the erasure code's
//!   share: in this ping-pong every chunk SPQR sends is systematic (index < N; checked
//!   with `v4_bytes.js --trace` on libsignal and by the chunk census below on confide),
//!   so encoding and decoding are 32-byte copies into and out of the message. Each
//!   decrypt of the alternating run also makes the DH ratchet step (X25519 key
//!   generation, two agreements, two salted HKDFs), as v3's does: that is in the decrypt
//!   floor (v3 and v4 alike).
//! - `floor_sym_v3`: the same without SPQR (empty-salt HKDF, no pq_ratchet field).
//! - amortised ML-KEM-768 per message: one `generate_key_pair`, one
//!   `validate_public_key` and one `encapsulate` per epoch on the encrypting side, one
//!   `decapsulate` on the decrypting side (libcrux `mlkem768`, timed as
//!   `primitive/mlkem768_*`; RustCrypto `ml-kem` rows beside them, the faster of the two
//!   is taken), divided by M = messages per epoch of the ping-pong (both directions
//!   counted), measured from the SPQR epochs the run's own messages carry.
//! - SPQR's per-epoch symmetric work (`primitive/spqr_epoch_symmetric`: on both sides
//!   the epoch-secret HKDF, the authenticator update, the header and ciphertext MACs, the
//!   chain's add-epoch HKDF), divided by 2M for each of encrypt and decrypt.
//! - floor of a round trip: `pingpong/floor_sym_v4` (two messages, each encrypted
//!   and decrypted) plus 2/M of one epoch's ML-KEM and SPQR symmetric work.
//!
//! Short runs (0.3 s warm-up, 1.2 s measurement, 20 samples; two cores shared with
//! builds): the whole binary takes a few minutes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::RefCell;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use confide::keys::{
    KemPublicKey, KyberPreKeyPublic, KyberPreKeyRecord, PreKeyRecord, SignedPreKeyRecord,
};
use confide::session::{LocalKeys, Versions};
use confide::wire::{PreKeySignalMessage, SignalMessage};
use confide::{CiphertextMessage, IdentityKeyPair, PreKeyBundle, SessionRecord, Timestamp};
use criterion::Criterion;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use vodozemac::olm::{Account, OlmMessage, PreKeyMessage, Session as OlmSession, SessionConfig};

/// The payload of every message here.
const LEN: usize = 140;

/// Messages per timed block of the steady and ping-pong benches: about 12 SPQR epochs of
/// the alternating ping-pong (an epoch there is about 87 messages).
const BLOCK_MESSAGES: u64 = 1024;

/// Messages of the byte table's runs (as `benches/v4_bytes.js`).
const BYTES_RUN: usize = 200;

fn now() -> Timestamp {
    Timestamp::from_millis(1_700_000_000_000)
}

fn payload() -> Vec<u8> {
    (0..LEN).map(|i| (i % 251) as u8).collect()
}

fn signal(message: CiphertextMessage) -> SignalMessage {
    match message {
        CiphertextMessage::Signal(m) => Some(m),
        _ => None,
    }
    .expect("a SignalMessage")
}

fn prekey(message: CiphertextMessage) -> PreKeySignalMessage {
    match message {
        CiphertextMessage::PreKey(m) => Some(m),
        _ => None,
    }
    .expect("a PreKeySignalMessage")
}

fn read_varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

/// SPQR's header in a `pq_ratchet`: (epoch, message type, chunk index if any).
fn spqr_header(pq: &[u8]) -> Option<(u64, u8, Option<u64>)> {
    let mut pos = 1;
    let epoch = read_varint(pq, &mut pos)?;
    let _index = read_varint(pq, &mut pos)?;
    let kind = *pq.get(pos)?;
    pos += 1;
    let chunk = if matches!(kind, 1 | 2 | 3 | 5 | 6) {
        Some(read_varint(pq, &mut pos)?)
    } else {
        None
    };
    Some((epoch, kind, chunk))
}

// ---------------------------------------------------------------------------------------
// confide

/// Bob's published keys, with the private halves he needs to answer.
struct Bob {
    identity: IdentityKeyPair,
    signed: SignedPreKeyRecord,
    one_time: PreKeyRecord,
    kyber: KyberPreKeyRecord,
    /// Without the Kyber prekey (v3).
    bundle_v3: PreKeyBundle,
    /// The Kyber prekey's id, serialized public key and signature, as a bundle from the
    /// server carries them.
    kyber_id: u32,
    kyber_bytes: Vec<u8>,
    kyber_signature: [u8; 64],
}

impl Bob {
    fn new(rng: &mut ChaCha20Rng) -> Self {
        let identity = IdentityKeyPair::generate(rng);
        let signed = SignedPreKeyRecord::generate(rng, &identity, 7, now());
        let one_time = PreKeyRecord::generate(rng, 9);
        let kyber = KyberPreKeyRecord::generate(rng, &identity, 11, now());
        let bundle_v3 = PreKeyBundle::new(2222, 1, *identity.identity_key(), signed.public())
            .with_pre_key(one_time.public());
        let public = kyber.public();
        Self {
            identity,
            signed,
            one_time,
            kyber_id: public.id,
            kyber_bytes: public.key.serialize(),
            kyber_signature: public.signature,
            kyber,
            bundle_v3,
        }
    }

    /// The v4 bundle, its Kyber key parsed (and so checked) from the wire bytes.
    fn bundle_v4(&self) -> PreKeyBundle {
        let key = KemPublicKey::from_bytes(&self.kyber_bytes).unwrap();
        self.bundle_v3
            .clone()
            .with_kyber_pre_key(KyberPreKeyPublic {
                id: self.kyber_id,
                key,
                signature: self.kyber_signature,
            })
    }

    fn bundle(&self, v4: bool) -> PreKeyBundle {
        if v4 {
            self.bundle_v4()
        } else {
            self.bundle_v3.clone()
        }
    }

    fn local_keys(&self) -> LocalKeys<'_> {
        LocalKeys::new(&self.identity, 2222)
            .with_signed_pre_key(Some(&self.signed))
            .with_pre_key(Some(&self.one_time))
            .with_kyber_pre_key(Some(&self.kyber))
    }
}

fn versions(v4: bool) -> Versions {
    if v4 {
        Versions::V4Only
    } else {
        Versions::V3Only
    }
}

/// An established, acknowledged confide session (A→B prekey message, B→A reply); the
/// next message goes A→B.
struct Pair {
    alice: SessionRecord,
    bob: SessionRecord,
    rng: ChaCha20Rng,
    bob_turn: bool,
    /// The sizes of the two establishing messages.
    first_sizes: [usize; 2],
}

fn pair(v4: bool, seed: u64) -> Pair {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let alice_id = IdentityKeyPair::generate(&mut rng);
    let bob_keys = Bob::new(&mut rng);
    let p = payload();
    let mut alice = SessionRecord::new();
    alice
        .start_session(
            (&alice_id, 1111),
            &bob_keys.bundle(v4),
            versions(v4),
            &mut rng,
            now(),
        )
        .unwrap();
    let first = prekey(alice.encrypt(&p, &mut rng).unwrap());
    let mut bob = SessionRecord::new();
    bob.decrypt_prekey(&first, &bob_keys.local_keys(), &mut rng)
        .unwrap();
    let reply = signal(bob.encrypt(&p, &mut rng).unwrap());
    alice.decrypt(&reply, &mut rng).unwrap();
    assert_eq!(first.version().version_byte() >> 4, if v4 { 4 } else { 3 });
    Pair {
        alice,
        bob,
        rng,
        bob_turn: false,
        first_sizes: [first.serialized().len(), reply.serialized().len()],
    }
}

/// Which operations of a message a run times.
#[derive(Clone, Copy)]
enum Part {
    Encrypt,
    Decrypt,
    Both,
}

/// Something that sends one message to the other side and delivers it.
trait Conversation {
    /// One message in the current direction (then the direction flips if `alternate`),
    /// returning the time of `part`.
    fn message(&mut self, plaintext: &[u8], part: Part, alternate: bool) -> Duration;
}

fn pick(part: Part, enc: Duration, dec: Duration) -> Duration {
    match part {
        Part::Encrypt => enc,
        Part::Decrypt => dec,
        Part::Both => enc + dec,
    }
}

impl Pair {
    /// One message, returning its wire bytes (for the byte table and the census).
    fn send(&mut self, plaintext: &[u8], alternate: bool) -> SignalMessage {
        let (tx, rx) = if self.bob_turn {
            (&mut self.bob, &mut self.alice)
        } else {
            (&mut self.alice, &mut self.bob)
        };
        if alternate {
            self.bob_turn = !self.bob_turn;
        }
        let m = signal(tx.encrypt(plaintext, &mut self.rng).unwrap());
        assert_eq!(*rx.decrypt(&m, &mut self.rng).unwrap(), *plaintext);
        m
    }
}

impl Conversation for Pair {
    fn message(&mut self, plaintext: &[u8], part: Part, alternate: bool) -> Duration {
        let (tx, rx) = if self.bob_turn {
            (&mut self.bob, &mut self.alice)
        } else {
            (&mut self.alice, &mut self.bob)
        };
        if alternate {
            self.bob_turn = !self.bob_turn;
        }
        let t0 = Instant::now();
        let m = black_box(tx.encrypt(plaintext, &mut self.rng).unwrap());
        let t1 = Instant::now();
        let m = signal(m);
        let t2 = Instant::now();
        black_box(rx.decrypt(&m, &mut self.rng).unwrap());
        let t3 = Instant::now();
        pick(part, t1 - t0, t3 - t2)
    }
}

// ---------------------------------------------------------------------------------------
// vodozemac

/// An established Olm v1 session in the same state as [`Pair`].
struct OlmPair {
    alice: OlmSession,
    bob: OlmSession,
    bob_turn: bool,
}

fn olm_prekey(message: OlmMessage) -> PreKeyMessage {
    match message {
        OlmMessage::PreKey(m) => Some(m),
        OlmMessage::Normal(_) => None,
    }
    .expect("an Olm pre-key message")
}

fn one_time_key(account: &mut Account) -> vodozemac::Curve25519PublicKey {
    let key = account
        .generate_one_time_keys(1)
        .created
        .into_iter()
        .next()
        .unwrap();
    account.mark_keys_as_published();
    key
}

fn olm_pair() -> OlmPair {
    let alice_account = Account::new();
    let mut bob_account = Account::new();
    let otk = one_time_key(&mut bob_account);
    let mut alice = alice_account
        .create_outbound_session(
            SessionConfig::version_1(),
            bob_account.curve25519_key(),
            otk,
        )
        .unwrap();
    let first = olm_prekey(alice.encrypt(b"hello").unwrap());
    let mut bob = bob_account
        .create_inbound_session(
            SessionConfig::version_1(),
            alice_account.curve25519_key(),
            &first,
        )
        .unwrap()
        .session;
    let reply = bob.encrypt(b"hi").unwrap();
    alice.decrypt(&reply).unwrap();
    OlmPair {
        alice,
        bob,
        bob_turn: false,
    }
}

impl Conversation for OlmPair {
    fn message(&mut self, plaintext: &[u8], part: Part, alternate: bool) -> Duration {
        let (tx, rx) = if self.bob_turn {
            (&mut self.bob, &mut self.alice)
        } else {
            (&mut self.alice, &mut self.bob)
        };
        if alternate {
            self.bob_turn = !self.bob_turn;
        }
        let t0 = Instant::now();
        let m = black_box(tx.encrypt(plaintext).unwrap());
        let t1 = Instant::now();
        black_box(rx.decrypt(&m).unwrap());
        let t2 = Instant::now();
        pick(part, t1 - t0, t2 - t1)
    }
}

// ---------------------------------------------------------------------------------------
// The floor

mod floor {
    use std::sync::LazyLock;
    use std::time::{Duration, Instant};

    use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
    use aws_lc_rs::agreement::{self, PrivateKey, UnparsedPublicKey, X25519};
    use rand_chacha::ChaCha20Rng;
    use rand_core::RngCore;
    use ring::{hkdf, hmac};
    use subtle::ConstantTimeEq;

    use super::{Conversation, Part, pick};

    /// HKDF's output-length type for ring.
    struct Len(usize);

    impl hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }

    /// RFC 5869's absent salt (= 32 zero bytes), keyed once for the run.
    static EMPTY_SALT: LazyLock<hkdf::Salt> =
        LazyLock::new(|| hkdf::Salt::new(hkdf::HKDF_SHA256, &[]));

    /// One HMAC-SHA256 (ring), key set up per call.
    pub(crate) fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        let key = hmac::Key::new(hmac::HMAC_SHA256, key);
        let mut ctx = hmac::Context::with_key(&key);
        for p in parts {
            ctx.update(p);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }

    /// One HKDF-SHA256 (ring); an empty salt is the cached zero salt.
    pub(crate) fn hkdf(salt: &[u8], ikm: &[u8], info: &[&[u8]], out: &mut [u8]) {
        let prk = if salt.is_empty() {
            EMPTY_SALT.extract(ikm)
        } else {
            hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm)
        };
        prk.expand(info, Len(out.len())).unwrap().fill(out).unwrap();
    }

    type Secret = PrivateKey;
    type Public = [u8; 32];

    fn keygen(rng: &mut ChaCha20Rng) -> (Secret, Public) {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        let key = PrivateKey::from_private_key(&X25519, &bytes).unwrap();
        let mut public = [0u8; 32];
        public.copy_from_slice(key.compute_public_key().unwrap().as_ref());
        (key, public)
    }

    fn dh(ours: &Secret, theirs: &Public) -> [u8; 32] {
        agreement::agree(ours, UnparsedPublicKey::new(&X25519, theirs), (), |s| {
            <[u8; 32]>::try_from(s).map_err(|_| ())
        })
        .unwrap()
    }

    /// A Double Ratchet chain.
    struct Chain {
        key: [u8; 32],
        index: u32,
    }

    impl Chain {
        /// The chain step (two HMACs under one keying) and the 80-byte message keys,
        /// salted with SPQR's key when there is one.
        fn step(&mut self, salt: Option<&[u8; 32]>) -> ([u8; 32], [u8; 32], [u8; 16]) {
            let key = hmac::Key::new(hmac::HMAC_SHA256, &self.key);
            let mut seed = [0u8; 32];
            seed.copy_from_slice(hmac::sign(&key, &[0x01]).as_ref());
            self.key.copy_from_slice(hmac::sign(&key, &[0x02]).as_ref());
            self.index += 1;
            let mut okm = [0u8; 80];
            hkdf(
                salt.map_or(&[][..], |s| &s[..]),
                &seed,
                &[b"WhisperMessageKeys"],
                &mut okm,
            );
            let (mut c, mut m, mut iv) = ([0u8; 32], [0u8; 32], [0u8; 16]);
            c.copy_from_slice(&okm[..32]);
            m.copy_from_slice(&okm[32..64]);
            iv.copy_from_slice(&okm[64..]);
            (c, m, iv)
        }
    }

    /// One direction of SPQR's symmetric chain: `ctr += 1`, `HKDF(0, next, ctr BE ‖
    /// label)` → (next', key).
    struct PqChain {
        next: [u8; 32],
        ctr: u32,
    }

    impl PqChain {
        fn key(&mut self) -> [u8; 32] {
            self.ctr += 1;
            let mut okm = [0u8; 64];
            hkdf(
                &[],
                &self.next,
                &[&self.ctr.to_be_bytes(), b"Signal PQ Ratchet V1 Chain Next"],
                &mut okm,
            );
            self.next.copy_from_slice(&okm[..32]);
            let mut key = [0u8; 32];
            key.copy_from_slice(&okm[32..]);
            key
        }
    }

    /// One side's SPQR floor state: both chains and the payloads it codes (always
    /// systematic chunks in the alternating run: a copy in, a copy out).
    struct Pq {
        send: PqChain,
        recv: PqChain,
        outgoing: [u8; 1152],
        incoming: [u8; 1152],
        chunk: usize,
    }

    fn varint(out: &mut Vec<u8>, mut v: u32) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn read_varint(bytes: &[u8], pos: &mut usize) -> u32 {
        let mut v = 0u32;
        let mut shift = 0;
        loop {
            let b = bytes[*pos];
            *pos += 1;
            v |= u32::from(b & 0x7f) << shift;
            if b < 0x80 {
                return v;
            }
            shift += 7;
        }
    }

    /// One side of the minimal triple ratchet (the Double Ratchet, plus SPQR's chain and
    /// chunk copies when `pq`).
    pub(crate) struct Party {
        id: [u8; 33],
        peer_id: [u8; 33],
        root: [u8; 32],
        secret: Secret,
        public: Public,
        send: Chain,
        recv: Option<(Public, Chain)>,
        pq: Option<Pq>,
    }

    fn root_step(root: &mut [u8; 32], ours: &Secret, theirs: &Public) -> Chain {
        let shared = dh(ours, theirs);
        let mut okm = [0u8; 64];
        hkdf(&root[..], &shared, &[b"WhisperRatchet"], &mut okm);
        root.copy_from_slice(&okm[..32]);
        let mut key = [0u8; 32];
        key.copy_from_slice(&okm[32..]);
        Chain { key, index: 0 }
    }

    impl Party {
        /// `version ‖ ratchet key, counter, previous counter, ciphertext[, pq_ratchet] ‖
        /// MAC(8)`, the pq_ratchet (v4) being SPQR's 5-byte header and a 32-byte chunk.
        fn encrypt(&mut self, plaintext: &[u8]) -> Vec<u8> {
            let (spqr_key, pq_bytes) = match &mut self.pq {
                Some(pq) => {
                    let key = pq.send.key();
                    let mut bytes = Vec::with_capacity(37);
                    bytes.extend_from_slice(&[0x01, 0x02]);
                    varint(&mut bytes, pq.send.ctr);
                    bytes.extend_from_slice(&[0x02, (pq.chunk % 36) as u8]);
                    let at = (pq.chunk % 36) * 32;
                    bytes.extend_from_slice(&pq.outgoing[at..at + 32]);
                    pq.chunk += 1;
                    (Some(key), Some(bytes))
                }
                None => (None, None),
            };
            let counter = self.send.index;
            let (cipher_key, mac_key, iv) = self.send.step(spqr_key.as_ref());
            let padded = (plaintext.len() / 16 + 1) * 16;
            let mut out = Vec::with_capacity(100 + padded);
            let version = if self.pq.is_some() { 0x44 } else { 0x33 };
            out.extend_from_slice(&[version, 0x0a, 33, 0x05]);
            out.extend_from_slice(&self.public);
            out.push(0x10);
            varint(&mut out, counter);
            out.push(0x18);
            varint(&mut out, 0);
            out.push(0x22);
            varint(&mut out, padded as u32);
            let start = out.len();
            out.extend_from_slice(plaintext);
            out.resize(start + padded, 0);
            cbc::Encryptor::<aes::Aes256>::new(&cipher_key.into(), &iv.into())
                .encrypt_padded_mut::<Pkcs7>(&mut out[start..], plaintext.len())
                .unwrap();
            if let Some(pq) = pq_bytes {
                out.push(0x2a);
                varint(&mut out, pq.len() as u32);
                out.extend_from_slice(&pq);
            }
            let mac = hmac(&mac_key, &[&self.id, &self.peer_id, &out]);
            out.extend_from_slice(&mac[..8]);
            out
        }

        /// The DH ratchet step when the sender's key is new (key generation, two
        /// agreements, two HKDFs), then SPQR's key and chunk copy, the message keys, the
        /// MAC check and the decryption.
        fn decrypt(&mut self, rng: &mut ChaCha20Rng, message: &[u8]) -> Option<Vec<u8>> {
            let (body, tag) = message.split_at(message.len() - 8);
            let mut theirs = [0u8; 32];
            theirs.copy_from_slice(&body[4..36]);
            let mut pos = 37;
            let counter = read_varint(body, &mut pos);
            pos += 1;
            let _previous = read_varint(body, &mut pos);
            pos += 1;
            let len = read_varint(body, &mut pos) as usize;
            let ciphertext = &body[pos..pos + len];
            pos += len;
            if !matches!(&self.recv, Some((k, _)) if *k == theirs) {
                let receiving = root_step(&mut self.root, &self.secret, &theirs);
                let (secret, public) = keygen(rng);
                self.send = root_step(&mut self.root, &secret, &theirs);
                self.secret = secret;
                self.public = public;
                self.recv = Some((theirs, receiving));
            }
            let spqr_key = match &mut self.pq {
                Some(pq) => {
                    pos += 2;
                    let pq_bytes = &body[pos..];
                    let mut p = 2;
                    let ctr = read_varint(pq_bytes, &mut p);
                    p += 1;
                    let chunk = usize::from(pq_bytes[p]);
                    p += 1;
                    if ctr != pq.recv.ctr + 1 {
                        return None;
                    }
                    let key = pq.recv.key();
                    pq.incoming[chunk * 32..chunk * 32 + 32].copy_from_slice(&pq_bytes[p..p + 32]);
                    Some(key)
                }
                None => None,
            };
            let (_, chain) = self.recv.as_mut()?;
            if counter != chain.index {
                return None;
            }
            let (cipher_key, mac_key, iv) = chain.step(spqr_key.as_ref());
            let mac = hmac(&mac_key, &[&self.peer_id, &self.id, body]);
            if !bool::from(mac[..8].ct_eq(tag)) {
                return None;
            }
            cbc::Decryptor::<aes::Aes256>::new(&cipher_key.into(), &iv.into())
                .decrypt_padded_vec_mut::<Pkcs7>(ciphertext)
                .ok()
        }
    }

    /// Two parties as after the handshake, alternating, with SPQR's chains when `pq`.
    pub(crate) struct Pair {
        alice: Party,
        bob: Party,
        rng: ChaCha20Rng,
        bob_turn: bool,
    }

    pub(crate) fn pair(pq: bool, rng: &mut ChaCha20Rng) -> Pair {
        let alice_id = [0x05; 33];
        let mut bob_id = [0x05; 33];
        bob_id[1] = 0x42;
        let root = [0x11; 32];
        let (bob_secret, bob_public) = keygen(rng);
        let (alice_secret, alice_public) = keygen(rng);
        let mut alice_root = root;
        let send = root_step(&mut alice_root, &alice_secret, &bob_public);
        let pq_side = |send: u8, recv: u8| Pq {
            send: PqChain {
                next: [send; 32],
                ctr: 0,
            },
            recv: PqChain {
                next: [recv; 32],
                ctr: 0,
            },
            outgoing: [send; 1152],
            incoming: [0; 1152],
            chunk: 0,
        };
        let alice = Party {
            id: alice_id,
            peer_id: bob_id,
            root: alice_root,
            secret: alice_secret,
            public: alice_public,
            send,
            recv: None,
            pq: pq.then(|| pq_side(0xA2, 0xB2)),
        };
        let bob = Party {
            id: bob_id,
            peer_id: alice_id,
            root,
            secret: bob_secret,
            public: bob_public,
            send: Chain {
                key: [0; 32],
                index: 0,
            },
            recv: None,
            pq: pq.then(|| pq_side(0xB2, 0xA2)),
        };
        let mut pair = Pair {
            alice,
            bob,
            rng: ChaCha20Rng::seed_from_u64(rng.next_u64()),
            bob_turn: false,
        };
        // Bob answers once, as the established confide pair has.
        let p = super::payload();
        for _ in 0..2 {
            pair.message(&p, Part::Both, true);
        }
        pair
    }

    use rand_core::SeedableRng;

    impl Conversation for Pair {
        fn message(&mut self, plaintext: &[u8], part: Part, alternate: bool) -> Duration {
            let (tx, rx) = if self.bob_turn {
                (&mut self.bob, &mut self.alice)
            } else {
                (&mut self.alice, &mut self.bob)
            };
            if alternate {
                self.bob_turn = !self.bob_turn;
            }
            let t0 = Instant::now();
            let m = std::hint::black_box(tx.encrypt(plaintext));
            let t1 = Instant::now();
            let out = rx.decrypt(&mut self.rng, &m).unwrap();
            let t2 = Instant::now();
            assert_eq!(out.len(), plaintext.len());
            pick(part, t1 - t0, t2 - t1)
        }
    }

    /// SPQR's symmetric work of one epoch, both sides: the epoch-secret HKDF, the
    /// authenticator update, the header MAC (made, checked), the ciphertext MAC (made,
    /// checked) and the chain's add-epoch HKDF.
    pub(crate) fn spqr_epoch_symmetric(ss: &[u8; 32], hdr: &[u8; 64], ct: &[u8; 1088]) -> u8 {
        let ep = 7u64.to_be_bytes();
        let mut acc = 0u8;
        for _side in 0..2 {
            let mut secret = [0u8; 32];
            hkdf(
                &[],
                ss,
                &[b"Signal_PQCKA_V1_MLKEM768:SCKA Key", &ep],
                &mut secret,
            );
            let mut auth = [0u8; 64];
            let mut ikm = [0u8; 64];
            ikm[32..].copy_from_slice(&secret);
            hkdf(
                &[],
                &ikm,
                &[b"Signal_PQCKA_V1_MLKEM768:Authenticator Update", &ep],
                &mut auth,
            );
            let h = hmac(
                &auth[32..],
                &[b"Signal_PQCKA_V1_MLKEM768:ekheader", &ep, hdr],
            );
            let c = hmac(
                &auth[32..],
                &[b"Signal_PQCKA_V1_MLKEM768:ciphertext", &ep, ct],
            );
            let mut chains = [0u8; 96];
            hkdf(
                &auth[..32],
                &secret,
                &[b"Signal PQ Ratchet V1 Chain Add Epoch"],
                &mut chains,
            );
            acc ^= h[0] ^ c[0] ^ chains[0];
        }
        acc
    }
}

// ---------------------------------------------------------------------------------------
// Timing

/// Short runs on a small shared machine; no plots.
fn configure() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1200))
        .sample_size(20)
        .nresamples(10_000)
        .without_plots()
}

/// A single message's part that took this long was preempted: no message's own work
/// comes near it (the dearest, a decrypt with a DH ratchet step and an ML-KEM
/// decapsulation, is under 150 µs on this machine), while a scheduler slice lost to
/// another process on a shared 2-core machine is milliseconds.
const PREEMPTED: Duration = Duration::from_micros(700);

/// Times `iters` units of `per_unit` messages of `c` (the part `part` of each), in blocks
/// of [`BLOCK_MESSAGES`] messages, and returns `iters` times the median block's mean per
/// unit. A block spans many SPQR epochs, so each epoch's lumpy work (an ML-KEM key
/// generation, encapsulation, decapsulation) is inside the mean it is amortised over,
/// while a block that was preempted is an outlier the median drops. A single message
/// slower than [`PREEMPTED`] is left out of its block's mean (see there).
fn run<C: Conversation>(
    c: &mut C,
    iters: u64,
    per_unit: u64,
    part: Part,
    alternate: bool,
    plaintext: &[u8],
) -> Duration {
    let block = (BLOCK_MESSAGES / per_unit).max(1);
    let mut per_unit_time = Vec::new();
    let mut left = iters;
    while left > 0 {
        let n = block.min(left);
        let mut sum = Duration::ZERO;
        let mut kept = 0u64;
        for _ in 0..n * per_unit {
            let t = c.message(plaintext, part, alternate);
            if t < PREEMPTED {
                sum += t;
                kept += 1;
            }
        }
        if kept > 0 {
            per_unit_time.push(sum.as_secs_f64() / kept as f64 * per_unit as f64);
        }
        left -= n;
    }
    per_unit_time.sort_by(f64::total_cmp);
    let median = per_unit_time.get(per_unit_time.len() / 2).copied();
    Duration::from_secs_f64(median.unwrap_or(0.0) * iters as f64)
}

/// Times `iters` calls of `routine` in chunks of `chunk`, returning `iters` times the
/// median chunk's mean (for the setup and primitive rows, whose cost is even).
fn timed<O>(iters: u64, chunk: u64, mut routine: impl FnMut() -> O) -> Duration {
    let mut per = Vec::new();
    let mut left = iters;
    while left > 0 {
        let n = chunk.min(left);
        let start = Instant::now();
        for _ in 0..n {
            black_box(routine());
        }
        per.push(start.elapsed().as_secs_f64() / n as f64);
        left -= n;
    }
    per.sort_by(f64::total_cmp);
    Duration::from_secs_f64(per[per.len() / 2] * iters as f64)
}

// ---------------------------------------------------------------------------------------
// Benches

/// `steady_encrypt`, `steady_decrypt` and `pingpong`: the same alternating run, timing
/// the encrypts, the decrypts, or everything per round trip.
fn bench_steady(c: &mut Criterion) {
    let plaintext = payload();
    for (group_name, part, per_unit) in [
        ("steady_encrypt", Part::Encrypt, 1),
        ("steady_decrypt", Part::Decrypt, 1),
        ("pingpong", Part::Both, 2),
    ] {
        let mut group = c.benchmark_group(group_name);
        for (name, v4) in [("v3", false), ("v4", true)] {
            let mut s = pair(v4, 21);
            group.bench_function(name, |b| {
                b.iter_custom(|n| run(&mut s, n, per_unit, part, true, &plaintext));
            });
        }
        let mut o = olm_pair();
        group.bench_function("vodozemac", |b| {
            b.iter_custom(|n| run(&mut o, n, per_unit, part, true, &plaintext));
        });
        let mut rng = ChaCha20Rng::seed_from_u64(22);
        for (name, pq) in [("floor_sym_v3", false), ("floor_sym_v4", true)] {
            let mut f = floor::pair(pq, &mut rng);
            group.bench_function(name, |b| {
                b.iter_custom(|n| run(&mut f, n, per_unit, part, true, &plaintext));
            });
        }
        group.finish();
    }
}

fn bench_setup(c: &mut Criterion) {
    let mut group = c.benchmark_group("setup");
    let plaintext = payload();
    let mut rng = ChaCha20Rng::seed_from_u64(31);
    let alice_id = IdentityKeyPair::generate(&mut rng);
    let bob = Bob::new(&mut rng);
    let bob_keys = bob.local_keys();
    for (name, v4) in [("v3", false), ("v4", true)] {
        group.bench_function(name, |b| {
            b.iter_custom(|n| {
                timed(n, 1, || {
                    let bundle = bob.bundle(v4);
                    let mut alice = SessionRecord::new();
                    alice
                        .start_session((&alice_id, 1111), &bundle, versions(v4), &mut rng, now())
                        .unwrap();
                    let m = prekey(alice.encrypt(&plaintext, &mut rng).unwrap());
                    let mut bob_record = SessionRecord::new();
                    let out = bob_record.decrypt_prekey(&m, &bob_keys, &mut rng).unwrap();
                    (alice, bob_record, out)
                })
            });
        });
    }

    // The floor of what v4 adds: one Kyber1024 key check, encapsulation, decapsulation.
    use libcrux_ml_kem::kyber1024;
    use libcrux_ml_kem::mlkem1024::{MlKem1024Ciphertext, MlKem1024PublicKey};
    let mut seed = [0u8; 64];
    rng.fill_bytes(&mut seed);
    let kyber_pair = kyber1024::generate_key_pair(seed);
    let raw: [u8; 1568] = *kyber_pair.pk();
    let kyber_floor = |rng: &mut ChaCha20Rng| {
        let pk = MlKem1024PublicKey::from(raw);
        assert!(kyber1024::validate_public_key(&pk));
        let mut coins = [0u8; 32];
        rng.fill_bytes(&mut coins);
        let (ct, ss) = kyber1024::encapsulate(&pk, coins);
        let ct = MlKem1024Ciphertext::from(*ct.as_slice());
        let back = kyber1024::decapsulate(kyber_pair.private_key(), &ct);
        assert_eq!(ss, back);
        back
    };
    group.bench_function("kyber1024_floor", |b| {
        b.iter_custom(|n| timed(n, 4, || kyber_floor(&mut rng)));
    });

    // vodozemac, for reference: Alice's outbound session and first message, Bob's
    // inbound session (one-time key made outside the timing).
    let alice_account = Account::new();
    let bob_account = RefCell::new(Account::new());
    let bob_curve = bob_account.borrow().curve25519_key();
    let alice_curve = alice_account.curve25519_key();
    group.bench_function("vodozemac", |b| {
        b.iter_custom(|n| {
            let otks: Vec<_> = (0..n)
                .map(|_| one_time_key(&mut bob_account.borrow_mut()))
                .collect();
            let mut otks = otks.into_iter();
            timed(n, 1, || {
                let otk = otks.next().unwrap();
                let mut alice = alice_account
                    .create_outbound_session(SessionConfig::version_1(), bob_curve, otk)
                    .unwrap();
                let m = olm_prekey(alice.encrypt(&plaintext).unwrap());
                let inbound = bob_account
                    .borrow_mut()
                    .create_inbound_session(SessionConfig::version_1(), alice_curve, &m)
                    .unwrap();
                (alice, inbound)
            })
        });
    });
    group.finish();
}

/// Single primitives: the ML-KEM-768 operations amortised into the floors, and what v4
/// setup does beyond v3 besides the Kyber floor (to attribute a miss).
fn bench_primitives(c: &mut Criterion) {
    use libcrux_ml_kem::mlkem768;
    let mut group = c.benchmark_group("primitive");
    let mut rng = ChaCha20Rng::seed_from_u64(41);
    let mut seed = [0u8; 64];
    rng.fill_bytes(&mut seed);
    let pair = mlkem768::generate_key_pair(seed);
    let pk = pair.public_key().clone();
    let (ct, ss) = mlkem768::encapsulate(&pk, [5u8; 32]);
    assert_eq!(mlkem768::decapsulate(pair.private_key(), &ct), ss);
    group.bench_function("mlkem768_keygen/libcrux", |b| {
        b.iter_custom(|n| {
            timed(n, 4, || {
                rng.fill_bytes(&mut seed);
                mlkem768::generate_key_pair(seed)
            })
        });
    });
    group.bench_function("mlkem768_validate/libcrux", |b| {
        b.iter_custom(|n| timed(n, 16, || mlkem768::validate_public_key(&pk)));
    });
    group.bench_function("mlkem768_encaps/libcrux", |b| {
        b.iter_custom(|n| timed(n, 4, || mlkem768::encapsulate(&pk, [5u8; 32])));
    });
    group.bench_function("mlkem768_decaps/libcrux", |b| {
        b.iter_custom(|n| timed(n, 4, || mlkem768::decapsulate(pair.private_key(), &ct)));
    });

    // RustCrypto's ml-kem, the second implementation.
    {
        use ml_kem::{Decapsulate, DecapsulationKey768};
        let dk = DecapsulationKey768::from_seed(seed.into());
        let (rct, rss) = dk
            .encapsulation_key()
            .encapsulate_deterministic(&[5u8; 32].into());
        assert_eq!(dk.decapsulate(&rct), rss);
        group.bench_function("mlkem768_keygen/rustcrypto", |b| {
            b.iter_custom(|n| {
                timed(n, 4, || {
                    rng.fill_bytes(&mut seed);
                    DecapsulationKey768::from_seed(seed.into())
                })
            });
        });
        group.bench_function("mlkem768_encaps/rustcrypto", |b| {
            b.iter_custom(|n| {
                timed(n, 4, || {
                    dk.encapsulation_key()
                        .encapsulate_deterministic(&[5u8; 32].into())
                })
            });
        });
        group.bench_function("mlkem768_decaps/rustcrypto", |b| {
            b.iter_custom(|n| timed(n, 4, || dk.decapsulate(&rct)));
        });
    }

    let hdr = [3u8; 64];
    let mut ct_bytes = [0u8; 1088];
    ct_bytes.copy_from_slice(ct.as_slice());
    group.bench_function("spqr_epoch_symmetric", |b| {
        b.iter_custom(|n| timed(n, 8, || floor::spqr_epoch_symmetric(&ss, &hdr, &ct_bytes)));
    });

    // v4 setup's other extras: the Kyber prekey's XEdDSA signature over 1569 bytes, the
    // base key's torsion check, Kyber1024 key parsing.
    let identity = IdentityKeyPair::generate(&mut rng);
    let kyber = KyberPreKeyRecord::generate(&mut rng, &identity, 1, now());
    let kyber_bytes = kyber.public().key.serialize();
    let signature = kyber.public().signature;
    group.bench_function("xeddsa_verify_1569B", |b| {
        b.iter_custom(|n| {
            timed(n, 1, || {
                identity
                    .identity_key()
                    .verify_signature(&kyber_bytes, &signature)
            })
        });
    });
    let base = *IdentityKeyPair::generate(&mut rng)
        .identity_key()
        .public_key()
        .x25519_bytes();
    group.bench_function("x25519_torsion_check", |b| {
        b.iter_custom(|n| {
            timed(n, 1, || {
                curve25519_dalek::montgomery::MontgomeryPoint(base)
                    .to_edwards(0)
                    .is_some_and(|p| p.is_torsion_free())
            })
        });
    });
    group.bench_function("kyber1024_parse", |b| {
        b.iter_custom(|n| timed(n, 4, || KemPublicKey::from_bytes(&kyber_bytes).unwrap()));
    });
    group.finish();
}

// ---------------------------------------------------------------------------------------
// Bytes and the epoch census

/// Per-message sizes of a run: (v4 bytes, v3 bytes) for each message.
struct Sizes {
    first: [(usize, usize); 2],
    pingpong: Vec<(usize, usize)>,
    oneway: Vec<(usize, usize)>,
}

fn sizes() -> Sizes {
    let p = payload();
    let run = |alternate: bool| {
        let mut v3 = pair(false, 51);
        let mut v4 = pair(true, 51);
        let first = [
            (v4.first_sizes[0], v3.first_sizes[0]),
            (v4.first_sizes[1], v3.first_sizes[1]),
        ];
        let rows = (0..BYTES_RUN)
            .map(|_| {
                let a = v4.send(&p, alternate).serialized().len();
                let b = v3.send(&p, alternate).serialized().len();
                (a, b)
            })
            .collect::<Vec<_>>();
        (first, rows)
    };
    let (first, pingpong) = run(true);
    let (_, oneway) = run(false);
    Sizes {
        first,
        pingpong,
        oneway,
    }
}

fn extra_summary(rows: &[(usize, usize)]) -> (f64, i64, i64) {
    let extras: Vec<i64> = rows.iter().map(|&(a, b)| a as i64 - b as i64).collect();
    let mean = extras.iter().sum::<i64>() as f64 / extras.len() as f64;
    (
        mean,
        *extras.iter().max().unwrap(),
        *extras.iter().min().unwrap(),
    )
}

/// Prints confide's byte table, and libsignal's when `with_node` (under `cargo bench`
/// only: `cargo test --benches` never runs node).
fn print_bytes_table(with_node: bool) {
    let s = sizes();
    println!(
        "bytes beyond v3 per message, confide (140-byte plaintexts, same sequence as benches/v4_bytes.js)"
    );
    println!(
        "  PreKeySignalMessage   total {}  extra {}",
        s.first[0].0,
        s.first[0].0 as i64 - s.first[0].1 as i64
    );
    println!(
        "  first reply (B→A)     total {}  extra {}",
        s.first[1].0,
        s.first[1].0 as i64 - s.first[1].1 as i64
    );
    for (name, rows) in [("ping-pong 200", &s.pingpong), ("one-way 200", &s.oneway)] {
        let (mean, max, min) = extra_summary(rows);
        let total = rows.iter().map(|r| r.0).sum::<usize>() as f64 / rows.len() as f64;
        println!("  {name:<20}  mean extra {mean:.2}  max {max}  min {min}  mean total {total:.1}");
    }
    // libsignal's, for the same sequence, when the interop driver's packages are there.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if with_node && dir.join("tests/official_interop/node_modules").exists() {
        match std::process::Command::new("node")
            .arg(dir.join("benches/v4_bytes.js"))
            .output()
        {
            Ok(out) if out.status.success() => print!("{}", String::from_utf8_lossy(&out.stdout)),
            Ok(out) => println!(
                "  (benches/v4_bytes.js failed: {})",
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => println!("  (node not run: {e})"),
        }
    } else {
        println!(
            "  (libsignal's: `(cd tests/official_interop && npm ci) && node benches/v4_bytes.js`)"
        );
    }
}

/// M, the messages per SPQR epoch of the alternating run (both directions), from the
/// epochs the messages carry; also checks that every chunk sent is systematic (the
/// floor's erasure share is then a copy), returning the parity count seen.
fn epoch_census() -> (f64, usize) {
    const N: [u64; 7] = [0, 3, 36, 36, 0, 30, 5];
    let p = payload();
    let mut s = pair(true, 61);
    let mut first = None;
    let mut last = 0;
    let mut parity = 0;
    let total = 40 * 86;
    let mut at_first = 0;
    let mut at_last = 0;
    for i in 0..total {
        let m = s.send(&p, true);
        let (epoch, kind, chunk) = spqr_header(m.pq_ratchet()).expect("an SPQR message");
        if let Some(chunk) = chunk {
            if chunk >= N[usize::from(kind)] {
                parity += 1;
            }
        }
        // Epochs are counted on Alice's messages (Bob's lag by at most one message).
        if i % 2 == 0 {
            if first.is_none() {
                first = Some(epoch);
                at_first = i;
            }
            if epoch > last {
                last = epoch;
                at_last = i;
            }
        }
    }
    let first = first.unwrap();
    assert!(
        last > first + 5,
        "SPQR epochs do not advance: {first}..{last}"
    );
    let m = (at_last - at_first) as f64 / (last - first) as f64;
    (m, parity)
}

// ---------------------------------------------------------------------------------------
// The table

fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("criterion")
}

/// The median of `group/id` in ns, if this run wrote it.
fn median(group: &str, id: &str) -> Option<f64> {
    // Criterion writes `a/b` function ids as `a_b` directories.
    let path = criterion_dir()
        .join(group)
        .join(id.replace('/', "_"))
        .join("new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["median"]["point_estimate"].as_f64()
}

fn us(ns: f64) -> String {
    format!("{:.2} µs", ns / 1000.0)
}

fn print_time_table(m: f64) {
    let min = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let keygen = min(
        median("primitive", "mlkem768_keygen/libcrux"),
        median("primitive", "mlkem768_keygen/rustcrypto"),
    );
    let encaps = min(
        median("primitive", "mlkem768_encaps/libcrux"),
        median("primitive", "mlkem768_encaps/rustcrypto"),
    );
    let decaps = min(
        median("primitive", "mlkem768_decaps/libcrux"),
        median("primitive", "mlkem768_decaps/rustcrypto"),
    );
    let validate = median("primitive", "mlkem768_validate/libcrux");
    let epoch_sym = median("primitive", "spqr_epoch_symmetric");
    let sum = |xs: &[Option<f64>]| xs.iter().copied().sum::<Option<f64>>();
    let diff = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a - b);
    let enc_epoch = sum(&[keygen, validate, encaps])
        .zip(epoch_sym)
        .map(|(k, e)| (k + e / 2.0) / m);
    let dec_epoch = decaps.zip(epoch_sym).map(|(d, e)| (d + e / 2.0) / m);

    let rows: Vec<(&str, Option<f64>, Option<f64>, &str)> = vec![
        (
            "setup v4 (bundle + first message, both sides)",
            median("setup", "v4"),
            sum(&[median("setup", "v3"), median("setup", "kyber1024_floor")]),
            "setup/v3 + setup/kyber1024_floor; target 1.15",
        ),
        (
            "  setup v4 vs v3 + all v4 adds",
            median("setup", "v4"),
            sum(&[
                median("setup", "v3"),
                median("setup", "kyber1024_floor"),
                median("primitive", "xeddsa_verify_1569B"),
                median("primitive", "x25519_torsion_check"),
                keygen,
            ]),
            "+ Kyber prekey signature, base key torsion check, SPQR's first ML-KEM-768 keygen",
        ),
        (
            "steady encrypt v4, 140 B",
            median("steady_encrypt", "v4"),
            sum(&[median("steady_encrypt", "floor_sym_v4"), enc_epoch]),
            "floor_sym_v4 + (keygen+validate+encaps + epoch_sym/2)/M; target 1.3",
        ),
        (
            "steady decrypt v4, 140 B",
            median("steady_decrypt", "v4"),
            sum(&[median("steady_decrypt", "floor_sym_v4"), dec_epoch]),
            "floor_sym_v4 (DH step incl.) + (decaps + epoch_sym/2)/M; target 1.3",
        ),
        (
            "ping-pong v4, per round trip",
            median("pingpong", "v4"),
            sum(&[
                median("pingpong", "floor_sym_v4"),
                enc_epoch.map(|x| 2.0 * x),
                dec_epoch.map(|x| 2.0 * x),
            ]),
            "floor_sym_v4 + 2 × per-message epoch share",
        ),
        (
            "  v4 − v3 encrypt (what SPQR adds)",
            diff(
                median("steady_encrypt", "v4"),
                median("steady_encrypt", "v3"),
            ),
            sum(&[
                diff(
                    median("steady_encrypt", "floor_sym_v4"),
                    median("steady_encrypt", "floor_sym_v3"),
                ),
                enc_epoch,
            ]),
            "floor_sym_v4 − floor_sym_v3 + epoch share",
        ),
        (
            "  v4 − v3 decrypt (what SPQR adds)",
            diff(
                median("steady_decrypt", "v4"),
                median("steady_decrypt", "v3"),
            ),
            sum(&[
                diff(
                    median("steady_decrypt", "floor_sym_v4"),
                    median("steady_decrypt", "floor_sym_v3"),
                ),
                dec_epoch,
            ]),
            "floor_sym_v4 − floor_sym_v3 + epoch share",
        ),
        ("setup v3", median("setup", "v3"), None, "(reference)"),
        (
            "steady encrypt v3, 140 B",
            median("steady_encrypt", "v3"),
            median("steady_encrypt", "floor_sym_v3"),
            "floor_sym_v3",
        ),
        (
            "steady decrypt v3, 140 B",
            median("steady_decrypt", "v3"),
            median("steady_decrypt", "floor_sym_v3"),
            "floor_sym_v3 (DH step incl.)",
        ),
        (
            "ping-pong v3, per round trip",
            median("pingpong", "v3"),
            median("pingpong", "floor_sym_v3"),
            "floor_sym_v3",
        ),
        (
            "vodozemac setup",
            median("setup", "vodozemac"),
            None,
            "(reference)",
        ),
    ];
    println!();
    println!("v4 time table (medians; M = {m:.1} messages per SPQR epoch)");
    println!(
        "{:<46} {:>11} {:>11} {:>7}  floor",
        "row", "time", "floor", "ratio"
    );
    for (name, t, f, how) in rows {
        let ratio = t
            .zip(f)
            .map_or("—".into(), |(t, f)| format!("{:.2}x", t / f));
        println!(
            "{:<46} {:>11} {:>11} {:>7}  {}",
            name,
            t.map_or("—".into(), us),
            f.map_or("—".into(), us),
            ratio,
            how
        );
    }
    let v = |g: &str| median(g, "vodozemac").map_or("—".into(), us);
    println!(
        "vodozemac: encrypt {}, decrypt {}, round trip {}",
        v("steady_encrypt"),
        v("steady_decrypt"),
        v("pingpong")
    );
    println!(
        "per epoch: mlkem768 keygen {} validate {} encaps {} decaps {}, SPQR epoch symmetric {}",
        keygen.map_or("—".into(), us),
        validate.map_or("—".into(), us),
        encaps.map_or("—".into(), us),
        decaps.map_or("—".into(), us),
        epoch_sym.map_or("—".into(), us),
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not (criterion then runs
    // each bench once as a test, and there is no table to print).
    let benching = std::env::args().any(|a| a == "--bench");
    print_bytes_table(benching);
    let (m, parity) = epoch_census();
    println!("SPQR in the alternating run: M = {m:.1} messages per epoch, {parity} parity chunks");
    let mut c = configure().configure_from_args();
    bench_setup(&mut c);
    bench_steady(&mut c);
    bench_primitives(&mut c);
    c.final_summary();
    if benching {
        print_time_table(m);
    }
}
