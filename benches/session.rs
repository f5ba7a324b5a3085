//! Session benches: confide against vodozemac 0.11's Olm (v1) and against the floor.
//!
//! Names read as a table: `encrypt/{confide,vodozemac,floor}/<bytes>`, the same for
//! `decrypt`, `ratchet_pingpong/{confide,vodozemac,floor}` (one message per iteration,
//! alternating direction, each decrypt running a DH ratchet step), and
//! `setup/{confide,vodozemac,floor}` (bundle or key processing, the first message's
//! encryption and the responder's decryption of it; `*_bob` is the responder alone).
//! `*_store` and `*_from_bytes` are references through `confide::session::cipher` and from wire
//! bytes; `primitive/*` are single primitives, to attribute differences.
//!
//! The floor is the v3 computation with nothing around it: per message two chain HMACs
//! under one keying, HKDF-SHA256 to 80 bytes (empty salt set up once), AES-256-CBC/PKCS7
//! in place in the one output buffer and one HMAC over both identity keys and the message;
//! per DH ratchet step one key generation, two agreements and two HKDFs; for setup the
//! XEdDSA check of the signed prekey, X3DH's DHs and HKDF on both sides and both initial
//! ratchet steps. Each primitive comes from the fastest of aws-lc-rs, ring, x25519-dalek and
//! RustCrypto (aes + cbc) here, used as cheaply as its API allows; `primitive/<p>/<backend>`
//! shows the candidates side by side (`primitive/<p>` alone is the floor's choice). Short
//! runs (0.5 s warm-up, 1-3 s, a 2-core machine shared with builds), medians:
//! - X25519 agreement: aws-lc-rs with the private key held parsed, 20-26 µs; x25519-dalek
//!   44-59 µs. (`x25519_dh/aws_lc_from_bytes`, the key loaded per call as confide does:
//!   25-36 µs.)
//! - X25519 key generation from 32 drawn bytes: aws-lc-rs 7.3-8.0 µs, x25519-dalek 17 µs
//!   (`aws_lc_generate`, AWS-LC's own RNG: 6.6-7.7 µs, but not the caller's draw).
//! - HMAC-SHA256, key set up per call: ring, 1 B 235-278 ns vs aws-lc-rs 367-432; the chain
//!   step 440 vs 526 ns; 266 B 425 vs 552 ns.
//! - HKDF-SHA256: ring; 80 B with the empty salt a tie (ring 794-812 ns, aws-lc-rs
//!   765-954), with a 32-byte salt ring 677-798 vs 737-848 ns.
//! - AES-256-CBC/PKCS7, key schedule per message: RustCrypto below 1 KiB (140 B encrypt
//!   229-254 vs 327-360 ns, decrypt 165-198 vs 224-278; 512 B 694 vs 732 ns), aws-lc-rs
//!   encryption from 1 KiB (1.26 vs 1.29 µs; 947 vs 797 MiB/s at 1 MiB), RustCrypto
//!   decryption throughout (1 KiB 304 vs 357 ns; level at 1 MiB, see `media`).
//!
//! Steady-state decrypt times only the decryption: messages are encrypted in chunks
//! outside the timing and delivered in order on one chain (no ratchet step, no skipped
//! keys). Every bench times chunks of runs and reports the median chunk (see [`timed`]),
//! so preemption by other work on a small shared machine does not pass for cost.
//!
//! Run with `cargo bench --bench session`; medians are in
//! `target/criterion/<group>/<impl>/<size>/new/estimates.json`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::RefCell;
use std::hint::black_box;
use std::time::{Duration, Instant};

use confide::keys::{PreKeyRecord, SignedPreKeyRecord};
use confide::session::LocalKeys;
use confide::session::Versions;
use confide::session::cipher::{self, BundleSpec};
use confide::store::InMemoryStore;
use confide::wire::{PreKeySignalMessage, SignalMessage};
use confide::{
    Address, CiphertextMessage, IdentityKeyPair, PreKeyBundle, SessionRecord, Timestamp,
};
use criterion::{BenchmarkId, Criterion, Throughput};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use vodozemac::olm::{Account, OlmMessage, PreKeyMessage, Session as OlmSession, SessionConfig};

/// Payload sizes of the steady-state benches.
const SIZES: [usize; 4] = [32, 140, 1024, 64 * 1024];

/// The payload of the ping-pong, setup and store benches.
const REF_SIZE: usize = 140;

fn now() -> Timestamp {
    Timestamp::from_millis(1_700_000_000_000)
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
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

// ---------------------------------------------------------------------------------------
// confide

/// Bob's published keys, with the private halves he needs to answer.
struct ConfideBob {
    identity: IdentityKeyPair,
    signed: SignedPreKeyRecord,
    one_time: PreKeyRecord,
    bundle: PreKeyBundle,
}

impl ConfideBob {
    fn new(rng: &mut ChaCha20Rng) -> Self {
        let identity = IdentityKeyPair::generate(rng);
        let signed = SignedPreKeyRecord::generate(rng, &identity, 7, now());
        let one_time = PreKeyRecord::generate(rng, 9);
        let bundle = PreKeyBundle::new(2222, 1, *identity.identity_key(), signed.public())
            .with_pre_key(one_time.public());
        Self {
            identity,
            signed,
            one_time,
            bundle,
        }
    }

    fn local_keys(&self) -> LocalKeys<'_> {
        LocalKeys::new(&self.identity, 2222)
            .with_signed_pre_key(Some(&self.signed))
            .with_pre_key(Some(&self.one_time))
    }
}

/// An established confide session: both sides acknowledged (plain `SignalMessage`s
/// only), and Bob already holds the receiving chain for Alice's current ratchet key.
struct ConfidePair {
    alice: SessionRecord,
    bob: SessionRecord,
    rng: ChaCha20Rng,
}

fn confide_pair(seed: u64) -> ConfidePair {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let alice_id = IdentityKeyPair::generate(&mut rng);
    let bob_keys = ConfideBob::new(&mut rng);
    let mut alice = SessionRecord::new();
    alice
        .start_session(
            (&alice_id, 1111),
            &bob_keys.bundle,
            Versions::V3AndV4,
            &mut rng,
            now(),
        )
        .unwrap();
    let first = prekey(
        alice
            .encrypt(b"hello", &mut confide::SystemRng::new())
            .unwrap(),
    );
    let mut bob = SessionRecord::new();
    bob.decrypt_prekey(&first, &bob_keys.local_keys(), &mut rng)
        .unwrap();
    let reply = signal(bob.encrypt(b"hi", &mut confide::SystemRng::new()).unwrap());
    alice.decrypt(&reply, &mut rng).unwrap();
    let again = signal(
        alice
            .encrypt(b"again", &mut confide::SystemRng::new())
            .unwrap(),
    );
    bob.decrypt(&again, &mut rng).unwrap();
    ConfidePair { alice, bob, rng }
}

/// Alice's and Bob's stores with an established, acknowledged session.
struct StorePair {
    alice: InMemoryStore,
    bob: InMemoryStore,
    alice_addr: Address,
    bob_addr: Address,
    rng: ChaCha20Rng,
}

fn store_pair(seed: u64) -> StorePair {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let alice = InMemoryStore::generate(&mut rng);
    let bob = InMemoryStore::generate(&mut rng);
    let spec = BundleSpec::new(1, 1).with_pre_key(Some(1));
    let bundle = cipher::publish_bundle(&bob, &mut rng, &spec, now()).unwrap();
    let alice_addr = Address::new("alice", 1);
    let bob_addr = Address::new("bob", 1);
    cipher::start_session(
        &alice,
        &bob_addr,
        &bundle,
        Versions::V3AndV4,
        &mut rng,
        now(),
    )
    .unwrap();
    let m = cipher::encrypt(
        &alice,
        &alice_addr,
        &bob_addr,
        b"hello",
        &mut confide::SystemRng::new(),
        now(),
    )
    .unwrap();
    cipher::decrypt(&bob, &bob_addr, &alice_addr, &m, &mut rng, now()).unwrap();
    let m = cipher::encrypt(
        &bob,
        &bob_addr,
        &alice_addr,
        b"hi",
        &mut confide::SystemRng::new(),
        now(),
    )
    .unwrap();
    cipher::decrypt(&alice, &alice_addr, &bob_addr, &m, &mut rng, now()).unwrap();
    let m = cipher::encrypt(
        &alice,
        &alice_addr,
        &bob_addr,
        b"again",
        &mut confide::SystemRng::new(),
        now(),
    )
    .unwrap();
    cipher::decrypt(&bob, &bob_addr, &alice_addr, &m, &mut rng, now()).unwrap();
    StorePair {
        alice,
        bob,
        alice_addr,
        bob_addr,
        rng,
    }
}

// ---------------------------------------------------------------------------------------
// vodozemac

/// An established Olm session in the same state as [`ConfidePair`]. Olm v1 (8-byte MAC),
/// as Matrix uses and closest to the Signal v3 format.
struct OlmPair {
    alice: OlmSession,
    bob: OlmSession,
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
    let again = alice.encrypt(b"again").unwrap();
    bob.decrypt(&again).unwrap();
    OlmPair { alice, bob }
}

// ---------------------------------------------------------------------------------------
// The candidates for each primitive, each as cheaply as its API allows; `primitive/*/<name>`
// times them side by side and the floor takes the fastest.

mod cand {
    /// HKDF's output-length type, for ring and aws-lc-rs alike.
    pub(crate) struct Len(pub(crate) usize);

    impl ::ring::hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }

    impl aws_lc_rs::hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }

    /// aws-lc-rs: X25519 (a private key parsed once into an `EVP_PKEY`, kept for all its
    /// agreements), AES-256-CBC, HMAC-SHA256 and HKDF-SHA256.
    pub(crate) mod aws_lc {
        use std::sync::LazyLock;

        use aws_lc_rs::agreement::{self, PrivateKey, UnparsedPublicKey, X25519};
        use aws_lc_rs::cipher::{
            AES_256, DecryptionContext, EncryptingKey, EncryptionContext, PaddedBlockDecryptingKey,
            UnboundCipherKey,
        };
        use aws_lc_rs::iv::FixedLength;
        use aws_lc_rs::{hkdf, hmac};

        use super::Len;

        pub(crate) type Secret = PrivateKey;

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

        /// A chain step: `HMAC(chain, 0x01)` and `HMAC(chain, 0x02)` under one keying.
        pub(crate) fn chain_step(chain: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
            let key = hmac::Key::new(hmac::HMAC_SHA256, chain);
            let mut seed = [0u8; 32];
            let mut next = [0u8; 32];
            seed.copy_from_slice(hmac::sign(&key, &[0x01]).as_ref());
            next.copy_from_slice(hmac::sign(&key, &[0x02]).as_ref());
            (seed, next)
        }

        static EMPTY_SALT: LazyLock<hkdf::Salt> =
            LazyLock::new(|| hkdf::Salt::new(hkdf::HKDF_SHA256, &[]));

        pub(crate) fn hkdf(salt: &[u8], ikm: &[u8], info: &[u8], out: &mut [u8]) {
            let prk = if salt.is_empty() {
                EMPTY_SALT.extract(ikm)
            } else {
                hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm)
            };
            prk.expand(&[info], Len(out.len()))
                .unwrap()
                .fill(out)
                .unwrap();
        }

        /// A key pair from 32 drawn bytes (confide's way).
        pub(crate) fn keygen(bytes: &[u8; 32]) -> (Secret, [u8; 32]) {
            let key = PrivateKey::from_private_key(&X25519, bytes).unwrap();
            let mut public = [0u8; 32];
            public.copy_from_slice(key.compute_public_key().unwrap().as_ref());
            (key, public)
        }

        /// A key pair from AWS-LC's own generator (its RNG instead of the caller's).
        pub(crate) fn keygen_generate() -> (Secret, [u8; 32]) {
            let key = PrivateKey::generate(&X25519).unwrap();
            let mut public = [0u8; 32];
            public.copy_from_slice(key.compute_public_key().unwrap().as_ref());
            (key, public)
        }

        /// One agreement with a held key; AWS-LC refuses an all-zero result.
        pub(crate) fn dh(ours: &Secret, theirs: &[u8; 32]) -> [u8; 32] {
            agreement::agree(ours, UnparsedPublicKey::new(&X25519, theirs), (), |s| {
                <[u8; 32]>::try_from(s).map_err(|_| ())
            })
            .unwrap()
        }

        /// One agreement loading the private key from its bytes first, as confide does.
        pub(crate) fn dh_from_bytes(ours: &[u8; 32], theirs: &[u8; 32]) -> [u8; 32] {
            dh(
                &PrivateKey::from_private_key(&X25519, ours).unwrap(),
                theirs,
            )
        }

        /// PKCS#7-pads the first `len` bytes of `buf` to its whole length (a multiple of
        /// 16) and CBC-encrypts it in place.
        pub(crate) fn cbc_encrypt_padded(
            key: &[u8; 32],
            iv: &[u8; 16],
            buf: &mut [u8],
            len: usize,
        ) {
            let pad = buf.len() - len;
            buf[len..].fill(pad as u8);
            let key = EncryptingKey::cbc(UnboundCipherKey::new(&AES_256, key).unwrap()).unwrap();
            key.less_safe_encrypt(buf, EncryptionContext::Iv128(FixedLength::from(iv)))
                .unwrap();
        }

        /// CBC-decrypts into a new buffer and checks and strips the PKCS#7 padding.
        pub(crate) fn cbc_decrypt_padded(
            key: &[u8; 32],
            iv: &[u8; 16],
            ciphertext: &[u8],
        ) -> Option<Vec<u8>> {
            let key =
                PaddedBlockDecryptingKey::cbc_pkcs7(UnboundCipherKey::new(&AES_256, key).ok()?)
                    .ok()?;
            let mut out = ciphertext.to_vec();
            let len = key
                .decrypt(&mut out, DecryptionContext::Iv128(FixedLength::from(iv)))
                .ok()?
                .len();
            out.truncate(len);
            Some(out)
        }
    }

    /// ring: HMAC-SHA256 and HKDF-SHA256 (ring's X25519 keys are single-use ephemerals,
    /// which a ratchet key, used in two agreements, cannot be).
    pub(crate) mod ring {
        use std::sync::LazyLock;

        use ::ring::{hkdf, hmac};

        use super::Len;

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

        /// A chain step: `HMAC(chain, 0x01)` and `HMAC(chain, 0x02)` under one keying.
        pub(crate) fn chain_step(chain: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
            let key = hmac::Key::new(hmac::HMAC_SHA256, chain);
            let mut seed = [0u8; 32];
            let mut next = [0u8; 32];
            seed.copy_from_slice(hmac::sign(&key, &[0x01]).as_ref());
            next.copy_from_slice(hmac::sign(&key, &[0x02]).as_ref());
            (seed, next)
        }

        /// The RFC 5869 default salt, keyed once for the whole run.
        static EMPTY_SALT: LazyLock<hkdf::Salt> =
            LazyLock::new(|| hkdf::Salt::new(hkdf::HKDF_SHA256, &[]));

        pub(crate) fn hkdf(salt: &[u8], ikm: &[u8], info: &[u8], out: &mut [u8]) {
            let prk = if salt.is_empty() {
                EMPTY_SALT.extract(ikm)
            } else {
                hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm)
            };
            prk.expand(&[info], Len(out.len()))
                .unwrap()
                .fill(out)
                .unwrap();
        }
    }

    /// x25519-dalek (the curve25519-dalek 4 that confide also links).
    pub(crate) mod dalek {
        use x25519_dalek::{PublicKey, StaticSecret};

        pub(crate) fn keygen(bytes: &[u8; 32]) -> (StaticSecret, [u8; 32]) {
            let secret = StaticSecret::from(*bytes);
            let public = PublicKey::from(&secret).to_bytes();
            (secret, public)
        }

        pub(crate) fn dh(ours: &StaticSecret, theirs: &[u8; 32]) -> [u8; 32] {
            let shared = ours.diffie_hellman(&PublicKey::from(*theirs));
            assert!(shared.was_contributory());
            shared.to_bytes()
        }
    }

    /// The fastest AES-256-CBC per message in `primitive/aes256cbc_*`: RustCrypto's
    /// below 1 KiB (its key setup is cheaper), aws-lc-rs's encryption from 1 KiB (faster
    /// per byte); RustCrypto's decryption throughout (ahead when small, level at 1 MiB).
    pub(crate) mod fastest_cbc {
        /// From this padded length on, aws-lc-rs encrypts faster.
        const AWS_LC_FROM: usize = 1024;

        pub(crate) fn cbc_encrypt_padded(
            key: &[u8; 32],
            iv: &[u8; 16],
            buf: &mut [u8],
            len: usize,
        ) {
            if buf.len() >= AWS_LC_FROM {
                super::aws_lc::cbc_encrypt_padded(key, iv, buf, len);
            } else {
                super::rustcrypto::cbc_encrypt_padded(key, iv, buf, len);
            }
        }

        pub(crate) use super::rustcrypto::cbc_decrypt_padded;
    }

    /// RustCrypto's aes + cbc.
    pub(crate) mod rustcrypto {
        use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};

        type Enc = cbc::Encryptor<aes::Aes256>;
        type Dec = cbc::Decryptor<aes::Aes256>;

        /// PKCS#7-pads the first `len` bytes of `buf` and CBC-encrypts it in place.
        pub(crate) fn cbc_encrypt_padded(
            key: &[u8; 32],
            iv: &[u8; 16],
            buf: &mut [u8],
            len: usize,
        ) {
            Enc::new(key.into(), iv.into())
                .encrypt_padded_mut::<Pkcs7>(buf, len)
                .unwrap();
        }

        pub(crate) fn cbc_decrypt_padded(
            key: &[u8; 32],
            iv: &[u8; 16],
            ciphertext: &[u8],
        ) -> Option<Vec<u8>> {
            Dec::new(key.into(), iv.into())
                .decrypt_padded_vec_mut::<Pkcs7>(ciphertext)
                .ok()
        }
    }
}

// ---------------------------------------------------------------------------------------
// The floor: the v3 computations with nothing around them.

mod floor {
    use rand_chacha::ChaCha20Rng;
    use rand_core::RngCore;
    use subtle::ConstantTimeEq;

    // The winners of `primitive/*/*` (see the module docs).
    use super::cand::aws_lc as x25519;
    use super::cand::fastest_cbc as aes_cbc;
    use super::cand::ring as mac;

    /// An X25519 private key, held parsed by its backend for all its agreements.
    pub(crate) type Secret = x25519::Secret;
    /// An X25519 public key.
    pub(crate) type Public = [u8; 32];

    /// One HMAC-SHA256, key set up per call.
    pub(crate) fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        mac::hmac(key, parts)
    }

    /// One HKDF-SHA256 (extract and expand); the empty salt is set up once.
    pub(crate) fn hkdf(salt: &[u8], ikm: &[u8], info: &[u8], out: &mut [u8]) {
        mac::hkdf(salt, ikm, info, out);
    }

    /// A fresh X25519 key pair, drawn as confide draws one.
    pub(crate) fn keygen(rng: &mut ChaCha20Rng) -> (Secret, Public) {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        x25519::keygen(&bytes)
    }

    /// One agreement; panics on an all-zero (non-contributory) result.
    pub(crate) fn dh(ours: &Secret, theirs: &Public) -> [u8; 32] {
        x25519::dh(ours, theirs)
    }

    /// A symmetric chain.
    #[derive(Clone)]
    pub(crate) struct Chain {
        key: [u8; 32],
        index: u32,
    }

    impl Chain {
        pub(crate) fn new(key: [u8; 32]) -> Self {
            Self { key, index: 0 }
        }

        /// Two HMACs under one keying (seed, next chain key) and the 80-byte HKDF.
        fn step(&mut self) -> ([u8; 32], [u8; 32], [u8; 16]) {
            let (seed, next) = mac::chain_step(&self.key);
            self.key = next;
            self.index += 1;
            let mut okm = [0u8; 80];
            hkdf(&[], &seed, b"WhisperMessageKeys", &mut okm);
            let mut cipher = [0u8; 32];
            let mut mac = [0u8; 32];
            let mut iv = [0u8; 16];
            cipher.copy_from_slice(&okm[..32]);
            mac.copy_from_slice(&okm[32..64]);
            iv.copy_from_slice(&okm[64..]);
            (cipher, mac, iv)
        }
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

    /// `0x33` ‖ ratchet key, counter, previous counter, ciphertext (v3 protobuf layout)
    /// ‖ 8-byte MAC over both identities and the message, in one allocation.
    pub(crate) fn encrypt(
        chain: &mut Chain,
        ratchet: &Public,
        ids: (&[u8; 33], &[u8; 33]),
        plaintext: &[u8],
    ) -> Vec<u8> {
        let counter = chain.index;
        let (cipher_key, mac_key, iv) = chain.step();
        let padded = (plaintext.len() / 16 + 1) * 16;
        let mut out = Vec::with_capacity(56 + padded);
        out.extend_from_slice(&[0x33, 0x0a, 33, 0x05]);
        out.extend_from_slice(ratchet);
        out.push(0x10);
        varint(&mut out, counter);
        out.push(0x18);
        varint(&mut out, 0);
        out.push(0x22);
        varint(&mut out, padded as u32);
        let start = out.len();
        out.extend_from_slice(plaintext);
        out.resize(start + padded, 0);
        aes_cbc::cbc_encrypt_padded(&cipher_key, &iv, &mut out[start..], plaintext.len());
        let mac = hmac(&mac_key, &[ids.0, ids.1, &out]);
        out.extend_from_slice(&mac[..8]);
        out
    }

    /// The sender's ratchet key in a message made by [`encrypt`].
    pub(crate) fn ratchet_key(message: &[u8]) -> Public {
        let mut k = [0u8; 32];
        k.copy_from_slice(&message[4..36]);
        k
    }

    /// Verifies and decrypts the next message of `chain` (in order, no skipped keys).
    pub(crate) fn decrypt(
        chain: &mut Chain,
        ids: (&[u8; 33], &[u8; 33]),
        message: &[u8],
    ) -> Option<Vec<u8>> {
        let (body, tag) = message.split_at(message.len() - 8);
        let mut pos = 37;
        let counter = read_varint(body, &mut pos);
        pos += 1;
        let _previous = read_varint(body, &mut pos);
        pos += 1;
        let len = read_varint(body, &mut pos) as usize;
        let ciphertext = &body[pos..pos + len];
        if counter != chain.index {
            return None;
        }
        let (cipher_key, mac_key, iv) = chain.step();
        let mac = hmac(&mac_key, &[ids.0, ids.1, body]);
        if !bool::from(mac[..8].ct_eq(tag)) {
            return None;
        }
        aes_cbc::cbc_decrypt_padded(&cipher_key, &iv, ciphertext)
    }

    /// One root-key step: DH, then HKDF(salt = root) to a new root and a chain.
    pub(crate) fn root_step(root: &mut [u8; 32], ours: &Secret, theirs: &Public) -> Chain {
        let shared = dh(ours, theirs);
        let mut okm = [0u8; 64];
        hkdf(&root[..], &shared, b"WhisperRatchet", &mut okm);
        root.copy_from_slice(&okm[..32]);
        let mut chain = [0u8; 32];
        chain.copy_from_slice(&okm[32..]);
        Chain::new(chain)
    }

    /// One side of a minimal Double Ratchet, as the floor of a DH ratchet step.
    pub(crate) struct Party {
        pub(crate) id: [u8; 33],
        pub(crate) peer_id: [u8; 33],
        root: [u8; 32],
        secret: Secret,
        public: Public,
        send: Chain,
        recv: Option<(Public, Chain)>,
    }

    impl Party {
        pub(crate) fn encrypt(&mut self, plaintext: &[u8]) -> Vec<u8> {
            encrypt(
                &mut self.send,
                &self.public,
                (&self.id, &self.peer_id),
                plaintext,
            )
        }

        /// Runs a DH ratchet step (keygen, two agreements, two HKDFs) when the sender
        /// moved to a new ratchet key, then decrypts.
        pub(crate) fn decrypt(&mut self, rng: &mut ChaCha20Rng, message: &[u8]) -> Option<Vec<u8>> {
            let theirs = ratchet_key(message);
            let known = matches!(&self.recv, Some((k, _)) if *k == theirs);
            if !known {
                let receiving = root_step(&mut self.root, &self.secret, &theirs);
                let (secret, public) = keygen(rng);
                self.send = root_step(&mut self.root, &secret, &theirs);
                self.secret = secret;
                self.public = public;
                self.recv = Some((theirs, receiving));
            }
            let (_, chain) = self.recv.as_mut()?;
            decrypt(chain, (&self.peer_id, &self.id), message)
        }
    }

    /// Two parties as after X3DH: Alice has ratcheted once, Bob ratchets on receipt.
    pub(crate) fn pair(rng: &mut ChaCha20Rng) -> (Party, Party) {
        let alice_id = [0x05; 33];
        let mut bob_id = [0x05; 33];
        bob_id[1] = 0x42;
        let root = [0x11; 32];
        let (bob_secret, bob_public) = keygen(rng);
        let (alice_secret, alice_public) = keygen(rng);
        let mut alice_root = root;
        let send = root_step(&mut alice_root, &alice_secret, &bob_public);
        let alice = Party {
            id: alice_id,
            peer_id: bob_id,
            root: alice_root,
            secret: alice_secret,
            public: alice_public,
            send,
            recv: None,
        };
        let bob = Party {
            id: bob_id,
            peer_id: alice_id,
            root,
            secret: bob_secret,
            public: bob_public,
            send: Chain::new([0; 32]),
            recv: None,
        };
        (alice, bob)
    }

    /// Bob's published keys for the setup floor.
    pub(crate) struct Bob {
        pub(crate) id: [u8; 33],
        pub(crate) identity: Secret,
        pub(crate) identity_public: Public,
        pub(crate) signed: Secret,
        pub(crate) signed_public: Public,
        pub(crate) one_time: Secret,
        pub(crate) one_time_public: Public,
    }

    impl Bob {
        pub(crate) fn new(rng: &mut ChaCha20Rng) -> Self {
            let (identity, identity_public) = keygen(rng);
            let (signed, signed_public) = keygen(rng);
            let (one_time, one_time_public) = keygen(rng);
            let mut id = [0x05; 33];
            id[1..].copy_from_slice(&identity_public);
            Self {
                id,
                identity,
                identity_public,
                signed,
                signed_public,
                one_time,
                one_time_public,
            }
        }
    }

    /// What Alice sends: her identity and base keys and the wrapped first message.
    pub(crate) struct PreKeyMessage {
        pub(crate) identity: Public,
        pub(crate) base: Public,
        pub(crate) bytes: Vec<u8>,
    }

    fn x3dh_secret(dhs: [[u8; 32]; 4]) -> ([u8; 32], Chain) {
        let mut ikm = [0xFFu8; 32 * 5];
        for (i, d) in dhs.iter().enumerate() {
            ikm[32 * (i + 1)..32 * (i + 2)].copy_from_slice(d);
        }
        let mut okm = [0u8; 64];
        hkdf(&[], &ikm, b"WhisperText", &mut okm);
        let mut root = [0u8; 32];
        let mut chain = [0u8; 32];
        root.copy_from_slice(&okm[..32]);
        chain.copy_from_slice(&okm[32..]);
        (root, Chain::new(chain))
    }

    /// Alice's side: 4 DH and the X3DH HKDF, a ratchet key (keygen, DH, HKDF), the first
    /// message and its prekey wrapper. The bundle's signature check is the caller's.
    pub(crate) fn alice_setup(
        rng: &mut ChaCha20Rng,
        alice: &(Secret, Public, [u8; 33]),
        bob: &Bob,
        plaintext: &[u8],
    ) -> PreKeyMessage {
        let (base, base_public) = keygen(rng);
        let (root, _receiving) = x3dh_secret([
            dh(&alice.0, &bob.signed_public),
            dh(&base, &bob.identity_public),
            dh(&base, &bob.signed_public),
            dh(&base, &bob.one_time_public),
        ]);
        let mut root = root;
        let (ratchet, ratchet_public) = keygen(rng);
        let mut sending = root_step(&mut root, &ratchet, &bob.signed_public);
        let inner = encrypt(
            &mut sending,
            &ratchet_public,
            (&alice.2, &bob.id),
            plaintext,
        );
        let mut bytes = Vec::with_capacity(inner.len() + 90);
        bytes.extend_from_slice(&[0x33, 0x08, 0x09, 0x12, 33, 0x05]);
        bytes.extend_from_slice(&base_public);
        bytes.extend_from_slice(&[0x1a, 33]);
        bytes.extend_from_slice(&alice.2);
        bytes.push(0x22);
        varint(&mut bytes, inner.len() as u32);
        bytes.extend_from_slice(&inner);
        bytes.extend_from_slice(&[0x28, 0x01, 0x30, 0x07]);
        PreKeyMessage {
            identity: alice.1,
            base: base_public,
            bytes,
        }
    }

    /// Bob's side: 4 DH and the X3DH HKDF, the ratchet step on the first message
    /// (DH, HKDF, keygen, DH, HKDF) and its decryption.
    pub(crate) fn bob_setup(
        rng: &mut ChaCha20Rng,
        bob: &Bob,
        alice_id: &[u8; 33],
        message: &PreKeyMessage,
    ) -> Option<Vec<u8>> {
        let (mut root, _sending) = x3dh_secret([
            dh(&bob.signed, &message.identity),
            dh(&bob.identity, &message.base),
            dh(&bob.signed, &message.base),
            dh(&bob.one_time, &message.base),
        ]);
        let mut pos = 2 + 3 + 1 + 32 + 2 + 33 + 1;
        let len = read_varint(&message.bytes, &mut pos) as usize;
        let inner = &message.bytes[pos..pos + len];
        let theirs = ratchet_key(inner);
        let mut receiving = root_step(&mut root, &bob.signed, &theirs);
        let (ratchet, _ratchet_public) = keygen(rng);
        let _sending = root_step(&mut root, &ratchet, &theirs);
        decrypt(&mut receiving, (alice_id, &bob.id), inner)
    }
}

// ---------------------------------------------------------------------------------------
// Benches

/// Bounded run time on a small machine: about 2.5 s per bench plus input generation,
/// no plots (`target/criterion/*/*/new/estimates.json` has the numbers).
fn configure() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(60)
        .nresamples(20_000)
        .without_plots()
}

/// Runs per timed chunk: long enough (tens of µs) that the clock's cost vanishes, short
/// enough that most chunks run without being preempted.
fn chunk_for(len: usize) -> u64 {
    if len > 4096 { 1 } else { 16 }
}

/// Times `iters` runs of `routine`, on inputs made by `setup` outside the timing, in
/// chunks of `chunk` runs, and returns `iters` times the median per-run time over the
/// chunks. On an idle machine this is the plain mean; on a shared one (this crate is
/// benchmarked on 2 cores next to builds) a chunk that was preempted is an outlier the
/// median drops, where criterion's per-sample mean would absorb it.
fn timed<I, O>(
    iters: u64,
    chunk: u64,
    mut setup: impl FnMut() -> I,
    mut routine: impl FnMut(I) -> O,
) -> Duration {
    let chunk = chunk.max(1);
    let mut per_run = Vec::with_capacity(iters.div_ceil(chunk) as usize);
    let mut inputs = Vec::with_capacity(chunk as usize);
    let mut outputs = Vec::with_capacity(chunk as usize);
    let mut left = iters;
    while left > 0 {
        let n = chunk.min(left);
        inputs.extend((0..n).map(|_| setup()));
        let start = Instant::now();
        for input in inputs.drain(..) {
            outputs.push(black_box(routine(black_box(input))));
        }
        let elapsed = start.elapsed();
        outputs.clear();
        per_run.push(elapsed.as_secs_f64() / n as f64);
        left -= n;
    }
    per_run.sort_by(f64::total_cmp);
    let median = per_run[per_run.len() / 2];
    Duration::from_secs_f64(median * iters as f64)
}

fn bench_encrypt(c: &mut Criterion) {
    let mut group = c.benchmark_group("encrypt");
    for len in SIZES {
        let plaintext = payload(len);
        let chunk = chunk_for(len);
        group.throughput(Throughput::Bytes(len as u64));

        let mut s = confide_pair(1);
        group.bench_with_input(BenchmarkId::new("confide", len), &plaintext, |b, p| {
            b.iter_custom(|n| {
                timed(
                    n,
                    chunk,
                    || (),
                    |()| s.alice.encrypt(p, &mut confide::SystemRng::new()).unwrap(),
                )
            });
        });

        let mut o = olm_pair();
        group.bench_with_input(BenchmarkId::new("vodozemac", len), &plaintext, |b, p| {
            b.iter_custom(|n| timed(n, chunk, || (), |()| o.alice.encrypt(p).unwrap()));
        });

        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let (mut alice, _bob) = floor::pair(&mut rng);
        group.bench_with_input(BenchmarkId::new("floor", len), &plaintext, |b, p| {
            b.iter_custom(|n| timed(n, chunk, || (), |()| alice.encrypt(p)));
        });
    }

    let plaintext = payload(REF_SIZE);
    group.throughput(Throughput::Bytes(REF_SIZE as u64));
    let s = store_pair(4);
    group.bench_with_input(
        BenchmarkId::new("confide_store", REF_SIZE),
        &plaintext,
        |b, p| {
            b.iter_custom(|n| {
                timed(
                    n,
                    16,
                    || (),
                    |()| {
                        cipher::encrypt(
                            &s.alice,
                            &s.alice_addr,
                            &s.bob_addr,
                            p,
                            &mut confide::SystemRng::new(),
                            now(),
                        )
                        .unwrap()
                    },
                )
            });
        },
    );
    group.finish();
}

fn bench_decrypt(c: &mut Criterion) {
    let mut group = c.benchmark_group("decrypt");
    for len in SIZES {
        let plaintext = payload(len);
        let chunk = chunk_for(len);
        group.throughput(Throughput::Bytes(len as u64));

        let mut s = confide_pair(5);
        group.bench_with_input(BenchmarkId::new("confide", len), &plaintext, |b, p| {
            b.iter_custom(|n| {
                timed(
                    n,
                    chunk,
                    || signal(s.alice.encrypt(p, &mut confide::SystemRng::new()).unwrap()),
                    |m| s.bob.decrypt(&m, &mut s.rng).unwrap(),
                )
            });
        });

        let mut o = olm_pair();
        group.bench_with_input(BenchmarkId::new("vodozemac", len), &plaintext, |b, p| {
            b.iter_custom(|n| {
                timed(
                    n,
                    chunk,
                    || o.alice.encrypt(p).unwrap(),
                    |m| o.bob.decrypt(&m).unwrap(),
                )
            });
        });

        let mut rng = ChaCha20Rng::seed_from_u64(6);
        let (mut alice, mut bob) = floor::pair(&mut rng);
        // The first message moves Bob onto Alice's chain; after that, in-order delivery.
        let first = alice.encrypt(&plaintext);
        bob.decrypt(&mut rng, &first).unwrap();
        group.bench_with_input(BenchmarkId::new("floor", len), &plaintext, |b, p| {
            b.iter_custom(|n| {
                timed(
                    n,
                    chunk,
                    || alice.encrypt(p),
                    |m| bob.decrypt(&mut rng, &m).unwrap(),
                )
            });
        });
    }

    let plaintext = payload(REF_SIZE);
    group.throughput(Throughput::Bytes(REF_SIZE as u64));

    // The same, but from the bytes on the wire: parsing included.
    let mut s = confide_pair(7);
    group.bench_with_input(
        BenchmarkId::new("confide_from_bytes", REF_SIZE),
        &plaintext,
        |b, p| {
            b.iter_custom(|n| {
                timed(
                    n,
                    16,
                    || {
                        s.alice
                            .encrypt(p, &mut confide::SystemRng::new())
                            .unwrap()
                            .serialized()
                            .to_vec()
                    },
                    |bytes| {
                        let m = SignalMessage::try_from(&bytes[..]).unwrap();
                        s.bob.decrypt(&m, &mut s.rng).unwrap()
                    },
                )
            });
        },
    );
    let mut o = olm_pair();
    group.bench_with_input(
        BenchmarkId::new("vodozemac_from_bytes", REF_SIZE),
        &plaintext,
        |b, p| {
            b.iter_custom(|n| {
                timed(
                    n,
                    16,
                    || o.alice.encrypt(p).unwrap().to_parts(),
                    |(kind, bytes)| {
                        let m = OlmMessage::from_parts(kind, &bytes).unwrap();
                        o.bob.decrypt(&m).unwrap()
                    },
                )
            });
        },
    );

    let mut st = store_pair(8);
    group.bench_with_input(
        BenchmarkId::new("confide_store", REF_SIZE),
        &plaintext,
        |b, p| {
            b.iter_custom(|n| {
                timed(
                    n,
                    16,
                    || {
                        cipher::encrypt(
                            &st.alice,
                            &st.alice_addr,
                            &st.bob_addr,
                            p,
                            &mut confide::SystemRng::new(),
                            now(),
                        )
                        .unwrap()
                    },
                    |m| {
                        cipher::decrypt(
                            &st.bob,
                            &st.bob_addr,
                            &st.alice_addr,
                            &m,
                            &mut st.rng,
                            now(),
                        )
                        .unwrap()
                    },
                )
            });
        },
    );
    group.finish();
}

/// One message per iteration, alternating direction, so every decrypt runs a DH ratchet
/// step (checked before timing).
fn bench_pingpong(c: &mut Criterion) {
    let mut group = c.benchmark_group("ratchet_pingpong");
    group.sample_size(40);
    let plaintext = payload(REF_SIZE);

    // confide: the pair's last message went A→B, so B's reply carries a new key.
    let mut s = confide_pair(9);
    let mut bob_turn = true;
    let mut last_key = None;
    for _ in 0..6 {
        let (tx, rx) = if bob_turn {
            (&mut s.bob, &mut s.alice)
        } else {
            (&mut s.alice, &mut s.bob)
        };
        bob_turn = !bob_turn;
        let m = signal(
            tx.encrypt(&plaintext, &mut confide::SystemRng::new())
                .unwrap(),
        );
        assert_ne!(Some(*m.ratchet_key()), last_key, "no ratchet step");
        last_key = Some(*m.ratchet_key());
        assert_eq!(*rx.decrypt(&m, &mut s.rng).unwrap(), plaintext);
    }
    group.bench_function("confide", |b| {
        b.iter_custom(|n| {
            timed(
                n,
                1,
                || (),
                |()| {
                    let (tx, rx) = if bob_turn {
                        (&mut s.bob, &mut s.alice)
                    } else {
                        (&mut s.alice, &mut s.bob)
                    };
                    bob_turn = !bob_turn;
                    let m = signal(
                        tx.encrypt(&plaintext, &mut confide::SystemRng::new())
                            .unwrap(),
                    );
                    rx.decrypt(&m, &mut s.rng).unwrap()
                },
            )
        });
    });

    let mut o = olm_pair();
    let mut bob_turn = true;
    group.bench_function("vodozemac", |b| {
        b.iter_custom(|n| {
            timed(
                n,
                1,
                || (),
                |()| {
                    let (tx, rx) = if bob_turn {
                        (&mut o.bob, &mut o.alice)
                    } else {
                        (&mut o.alice, &mut o.bob)
                    };
                    bob_turn = !bob_turn;
                    let m = tx.encrypt(&plaintext).unwrap();
                    rx.decrypt(&m).unwrap()
                },
            )
        });
    });

    let mut rng = ChaCha20Rng::seed_from_u64(10);
    let (mut alice, mut bob) = floor::pair(&mut rng);
    let mut bob_turn = false;
    for _ in 0..6 {
        let (tx, rx) = if bob_turn {
            (&mut bob, &mut alice)
        } else {
            (&mut alice, &mut bob)
        };
        bob_turn = !bob_turn;
        let m = tx.encrypt(&plaintext);
        assert_eq!(rx.decrypt(&mut rng, &m).unwrap(), plaintext);
    }
    group.bench_function("floor", |b| {
        b.iter_custom(|n| {
            timed(
                n,
                1,
                || (),
                |()| {
                    let (tx, rx) = if bob_turn {
                        (&mut bob, &mut alice)
                    } else {
                        (&mut alice, &mut bob)
                    };
                    bob_turn = !bob_turn;
                    let m = tx.encrypt(&plaintext);
                    rx.decrypt(&mut rng, &m).unwrap()
                },
            )
        });
    });
    group.finish();
}

fn bench_setup(c: &mut Criterion) {
    let mut group = c.benchmark_group("setup");
    group.sample_size(40);
    let plaintext = payload(REF_SIZE);

    // confide: Alice processes the bundle (signature check, X3DH, first ratchet) and
    // encrypts; Bob runs X3DH and decrypts the PreKeySignalMessage (with his first
    // ratchet step). Fresh records each time; Bob's prekeys are reused.
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let alice_id = IdentityKeyPair::generate(&mut rng);
    let bob = ConfideBob::new(&mut rng);
    let bob_keys = bob.local_keys();
    group.bench_function("confide", |b| {
        b.iter_custom(|n| {
            timed(
                n,
                1,
                || (),
                |()| {
                    let mut alice = SessionRecord::new();
                    alice
                        .start_session(
                            (&alice_id, 1111),
                            &bob.bundle,
                            Versions::V3AndV4,
                            &mut rng,
                            now(),
                        )
                        .unwrap();
                    let m = prekey(
                        alice
                            .encrypt(&plaintext, &mut confide::SystemRng::new())
                            .unwrap(),
                    );
                    let mut bob_record = SessionRecord::new();
                    let out = bob_record.decrypt_prekey(&m, &bob_keys, &mut rng).unwrap();
                    (alice, bob_record, out)
                },
            )
        });
    });

    let rng_cell = RefCell::new(ChaCha20Rng::seed_from_u64(12));
    group.bench_function("confide_bob", |b| {
        b.iter_custom(|n| {
            timed(
                n,
                1,
                || {
                    let mut alice = SessionRecord::new();
                    let rng = &mut *rng_cell.borrow_mut();
                    alice
                        .start_session(
                            (&alice_id, 1111),
                            &bob.bundle,
                            Versions::V3AndV4,
                            rng,
                            now(),
                        )
                        .unwrap();
                    prekey(
                        alice
                            .encrypt(&plaintext, &mut confide::SystemRng::new())
                            .unwrap(),
                    )
                },
                |m| {
                    let mut bob_record = SessionRecord::new();
                    let out = bob_record
                        .decrypt_prekey(&m, &bob_keys, &mut *rng_cell.borrow_mut())
                        .unwrap();
                    (bob_record, out)
                },
            )
        });
    });

    // vodozemac: Alice creates the outbound session and encrypts; Bob creates the
    // inbound session (3DH, decrypt). Bob's one-time key is made outside the timing, as
    // confide's prekeys are. `_verified` adds the Ed25519 check of the signed one-time
    // key that a Matrix client makes before using it, the analogue of the bundle check.
    let alice_account = Account::new();
    let bob_account = RefCell::new(Account::new());
    let bob_curve = bob_account.borrow().curve25519_key();
    let bob_ed = bob_account.borrow().ed25519_key();
    let alice_curve = alice_account.curve25519_key();
    let vodozemac_setup = |otk: vodozemac::Curve25519PublicKey| {
        let mut alice = alice_account
            .create_outbound_session(SessionConfig::version_1(), bob_curve, otk)
            .unwrap();
        let m = olm_prekey(alice.encrypt(&plaintext).unwrap());
        let inbound = bob_account
            .borrow_mut()
            .create_inbound_session(SessionConfig::version_1(), alice_curve, &m)
            .unwrap();
        (alice, inbound)
    };
    group.bench_function("vodozemac", |b| {
        b.iter_custom(|n| {
            timed(
                n,
                1,
                || one_time_key(&mut bob_account.borrow_mut()),
                vodozemac_setup,
            )
        });
    });
    group.bench_function("vodozemac_verified", |b| {
        b.iter_custom(|n| {
            timed(
                n,
                1,
                || {
                    let otk = one_time_key(&mut bob_account.borrow_mut());
                    let signed = format!("{{\"key\":\"{}\"}}", otk.to_base64());
                    let signature = bob_account.borrow().sign(&signed);
                    (otk, signed, signature)
                },
                |(otk, signed, signature)| {
                    bob_ed.verify(signed.as_bytes(), &signature).unwrap();
                    vodozemac_setup(otk)
                },
            )
        });
    });
    group.bench_function("vodozemac_bob", |b| {
        b.iter_custom(|n| {
            timed(
                n,
                1,
                || {
                    let otk = one_time_key(&mut bob_account.borrow_mut());
                    let mut alice = alice_account
                        .create_outbound_session(SessionConfig::version_1(), bob_curve, otk)
                        .unwrap();
                    olm_prekey(alice.encrypt(&plaintext).unwrap())
                },
                |m| {
                    bob_account
                        .borrow_mut()
                        .create_inbound_session(SessionConfig::version_1(), alice_curve, &m)
                        .unwrap()
                },
            )
        });
    });

    // floor: XEdDSA verify of the signed prekey (confide's, the only XEdDSA at hand) plus
    // the DHs, keygens and HKDFs of both sides and the first message's crypto.
    let mut rng = ChaCha20Rng::seed_from_u64(13);
    let floor_bob = floor::Bob::new(&mut rng);
    let (alice_secret, alice_public) = floor::keygen(&mut rng);
    let mut alice_floor_id = [0x05; 33];
    alice_floor_id[1..].copy_from_slice(&alice_public);
    let floor_alice = (alice_secret, alice_public, alice_floor_id);
    let spk_serialized = bob.bundle.signed_pre_key.key.serialize();
    let spk_signature = bob.bundle.signed_pre_key.signature;
    let bob_identity = *bob.bundle.identity_key.public_key();
    let check = floor::alice_setup(&mut rng, &floor_alice, &floor_bob, &plaintext);
    assert_eq!(
        floor::bob_setup(&mut rng, &floor_bob, &alice_floor_id, &check).unwrap(),
        plaintext
    );
    group.bench_function("floor", |b| {
        b.iter_custom(|n| {
            timed(
                n,
                1,
                || (),
                |()| {
                    assert!(bob_identity.verify_signature(&spk_serialized, &spk_signature));
                    let m = floor::alice_setup(&mut rng, &floor_alice, &floor_bob, &plaintext);
                    floor::bob_setup(&mut rng, &floor_bob, &alice_floor_id, &m).unwrap()
                },
            )
        });
    });
    let rng_cell = RefCell::new(rng);
    group.bench_function("floor_bob", |b| {
        b.iter_custom(|n| {
            timed(
                n,
                1,
                || {
                    floor::alice_setup(
                        &mut rng_cell.borrow_mut(),
                        &floor_alice,
                        &floor_bob,
                        &plaintext,
                    )
                },
                |m| {
                    floor::bob_setup(&mut rng_cell.borrow_mut(), &floor_bob, &alice_floor_id, &m)
                        .unwrap()
                },
            )
        });
    });
    group.finish();
}

/// Single primitives, to attribute the differences above.
fn bench_primitives(c: &mut Criterion) {
    let mut group = c.benchmark_group("primitive");
    group.measurement_time(Duration::from_millis(1500));
    let mut rng = ChaCha20Rng::seed_from_u64(14);
    let key = [7u8; 32];
    group.bench_function("hmac_sha256_1B", |b| {
        b.iter_custom(|n| timed(n, 64, || (), |()| floor::hmac(&key, &[&[0x01]])));
    });
    group.bench_function("hkdf_sha256_80B", |b| {
        b.iter_custom(|n| {
            timed(
                n,
                32,
                || (),
                |()| {
                    let mut out = [0u8; 80];
                    floor::hkdf(&[], &key, b"WhisperMessageKeys", &mut out);
                    out
                },
            )
        });
    });
    let (secret, public) = floor::keygen(&mut rng);
    group.bench_function("x25519_keygen", |b| {
        b.iter_custom(|n| timed(n, 1, || (), |()| floor::keygen(&mut rng)));
    });
    group.bench_function("x25519_dh", |b| {
        b.iter_custom(|n| timed(n, 1, || (), |()| floor::dh(&secret, &public)));
    });
    bench_candidates(&mut group, &mut rng);
    let identity = IdentityKeyPair::generate(&mut rng);
    let message = [0x05u8; 33];
    let signature = confide::hazmat::xeddsa_sign(identity.private_key(), &mut rng, &message);
    group.bench_function("xeddsa_verify", |b| {
        b.iter_custom(|n| {
            timed(
                n,
                1,
                || (),
                |()| {
                    identity
                        .identity_key()
                        .verify_signature(&message, &signature)
                },
            )
        });
    });
    let account = Account::new();
    let ed_signature = account.sign(message);
    let ed_key = account.ed25519_key();
    group.bench_function("ed25519_verify", |b| {
        b.iter_custom(|n| timed(n, 1, || (), |()| ed_key.verify(&message, &ed_signature)));
    });
    let s = confide_pair(15);
    group.bench_function("confide_record_clone", |b| {
        b.iter_custom(|n| timed(n, 64, || (), |()| s.bob.clone()));
    });
    group.finish();
}

/// The candidates of each primitive side by side, `primitive/<primitive>/<backend>`; the
/// floor uses the fastest of each (the rows without a backend are the floor's).
fn bench_candidates(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rng: &mut ChaCha20Rng,
) {
    let key = [7u8; 32];
    let chain = [9u8; 32];
    group.bench_function("hmac_sha256_1B/aws_lc", |b| {
        b.iter_custom(|n| timed(n, 64, || (), |()| cand::aws_lc::hmac(&key, &[&[0x01]])));
    });
    group.bench_function("hmac_sha256_1B/ring", |b| {
        b.iter_custom(|n| timed(n, 64, || (), |()| cand::ring::hmac(&key, &[&[0x01]])));
    });
    group.bench_function("hmac_sha256_chain_step/aws_lc", |b| {
        b.iter_custom(|n| timed(n, 64, || (), |()| cand::aws_lc::chain_step(&chain)));
    });
    group.bench_function("hmac_sha256_chain_step/ring", |b| {
        b.iter_custom(|n| timed(n, 64, || (), |()| cand::ring::chain_step(&chain)));
    });
    // The message MAC: both identities and a 140-byte message's v3 body.
    let body = payload(33 + 33 + 200);
    group.bench_function("hmac_sha256_266B/aws_lc", |b| {
        b.iter_custom(|n| timed(n, 64, || (), |()| cand::aws_lc::hmac(&key, &[&body])));
    });
    group.bench_function("hmac_sha256_266B/ring", |b| {
        b.iter_custom(|n| timed(n, 64, || (), |()| cand::ring::hmac(&key, &[&body])));
    });
    type Hkdf = fn(&[u8], &[u8], &[u8], &mut [u8]);
    for (name, f) in [
        ("aws_lc", cand::aws_lc::hkdf as Hkdf),
        ("ring", cand::ring::hkdf as Hkdf),
    ] {
        group.bench_function(format!("hkdf_sha256_80B/{name}"), |b| {
            b.iter_custom(|n| {
                timed(
                    n,
                    32,
                    || (),
                    |()| {
                        let mut out = [0u8; 80];
                        f(&[], &key, b"WhisperMessageKeys", &mut out);
                        out
                    },
                )
            });
        });
        // The root step's HKDF: salt = the 32-byte root key, set up per call.
        group.bench_function(format!("hkdf_sha256_64B_salted/{name}"), |b| {
            b.iter_custom(|n| {
                timed(
                    n,
                    32,
                    || (),
                    |()| {
                        let mut out = [0u8; 64];
                        f(&chain, &key, b"WhisperRatchet", &mut out);
                        out
                    },
                )
            });
        });
    }
    let mut draw = || {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        bytes
    };
    group.bench_function("x25519_keygen/aws_lc", |b| {
        b.iter_custom(|n| timed(n, 1, &mut draw, |k| cand::aws_lc::keygen(&k)));
    });
    group.bench_function("x25519_keygen/aws_lc_generate", |b| {
        b.iter_custom(|n| timed(n, 1, || (), |()| cand::aws_lc::keygen_generate()));
    });
    group.bench_function("x25519_keygen/dalek", |b| {
        b.iter_custom(|n| timed(n, 1, &mut draw, |k| cand::dalek::keygen(&k)));
    });
    let ours = draw();
    let (_, theirs) = cand::dalek::keygen(&draw());
    let (aws_key, _) = cand::aws_lc::keygen(&ours);
    let (dalek_key, _) = cand::dalek::keygen(&ours);
    assert_eq!(
        cand::aws_lc::dh(&aws_key, &theirs),
        cand::dalek::dh(&dalek_key, &theirs)
    );
    group.bench_function("x25519_dh/aws_lc", |b| {
        b.iter_custom(|n| timed(n, 1, || (), |()| cand::aws_lc::dh(&aws_key, &theirs)));
    });
    group.bench_function("x25519_dh/aws_lc_from_bytes", |b| {
        b.iter_custom(|n| {
            timed(
                n,
                1,
                || (),
                |()| cand::aws_lc::dh_from_bytes(&ours, &theirs),
            )
        });
    });
    group.bench_function("x25519_dh/dalek", |b| {
        b.iter_custom(|n| timed(n, 1, || (), |()| cand::dalek::dh(&dalek_key, &theirs)));
    });
    // AES-256-CBC/PKCS#7 of one message, key schedule included (a key per message), at
    // the sizes where the per-call cost gives way to the per-byte one.
    let iv = [3u8; 16];
    type CbcEnc = fn(&[u8; 32], &[u8; 16], &mut [u8], usize);
    type CbcDec = fn(&[u8; 32], &[u8; 16], &[u8]) -> Option<Vec<u8>>;
    for (len, label) in [(REF_SIZE, "140B"), (512, "512B"), (1024, "1KiB")] {
        let plaintext = payload(len);
        let padded = (len / 16 + 1) * 16;
        let mut ciphertexts = Vec::new();
        for (name, enc, dec) in [
            (
                "aws_lc",
                cand::aws_lc::cbc_encrypt_padded as CbcEnc,
                cand::aws_lc::cbc_decrypt_padded as CbcDec,
            ),
            (
                "rustcrypto",
                cand::rustcrypto::cbc_encrypt_padded as CbcEnc,
                cand::rustcrypto::cbc_decrypt_padded as CbcDec,
            ),
        ] {
            let mut buf = plaintext.clone();
            buf.resize(padded, 0);
            enc(&key, &iv, &mut buf, len);
            assert_eq!(dec(&key, &iv, &buf).unwrap(), plaintext);
            ciphertexts.push(buf.clone());
            group.bench_function(format!("aes256cbc_encrypt_{label}/{name}"), |b| {
                b.iter_custom(|n| {
                    timed(
                        n,
                        32,
                        || (),
                        |()| {
                            buf[..len].copy_from_slice(&plaintext);
                            enc(&key, &iv, &mut buf, len);
                            buf[0]
                        },
                    )
                });
            });
            let ciphertext = ciphertexts[0].clone();
            group.bench_function(format!("aes256cbc_decrypt_{label}/{name}"), |b| {
                b.iter_custom(|n| timed(n, 32, || (), |()| dec(&key, &iv, &ciphertext).unwrap()));
            });
        }
        assert_eq!(ciphertexts[0], ciphertexts[1]);
    }
}

/// A forged `SignalMessage`: a ratchet key no state knows, `counter` on its new chain,
/// a zero MAC. Built from bytes, as an attacker sends it.
fn forged_message(rng: &mut ChaCha20Rng, counter: u32) -> SignalMessage {
    fn varint(out: &mut Vec<u8>, mut v: u32) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    let ratchet = IdentityKeyPair::generate(rng).identity_key().serialize();
    let mut bytes = vec![0x33, 0x0a, ratchet.len() as u8];
    bytes.extend_from_slice(&ratchet);
    bytes.push(0x10);
    varint(&mut bytes, counter);
    bytes.extend_from_slice(&[0x18, 0x00, 0x22, 16]);
    bytes.extend_from_slice(&[0u8; 16 + 8]);
    SignalMessage::try_from(&bytes[..]).unwrap()
}

/// `forged/confide/<n_states>`: one forged message (new ratchet key, counter at the
/// forward-jump limit, bad MAC) against a record of `n_states` states (current plus
/// `n_states - 1` previous ones, each from its own prekey message). Every state it can
/// be tried against makes it look like a legitimate worst case up to the MAC check, so
/// this row is the CPU a stranger can make a receiver spend per message; `.../1` is one
/// such trial.
fn bench_forged(c: &mut Criterion) {
    let mut group = c.benchmark_group("forged");
    group.sample_size(10);
    let mut rng = ChaCha20Rng::seed_from_u64(41);
    let bob = ConfideBob::new(&mut rng);
    let bob_keys = bob.local_keys();
    let alice_id = IdentityKeyPair::generate(&mut rng);
    for n_states in [1usize, confide::session::limits::MAX_PREVIOUS_STATES + 1] {
        let mut record = SessionRecord::new();
        for _ in 0..n_states {
            let mut alice = SessionRecord::new();
            alice
                .start_session(
                    (&alice_id, 1111),
                    &bob.bundle,
                    Versions::V3AndV4,
                    &mut rng,
                    now(),
                )
                .unwrap();
            let m = prekey(
                alice
                    .encrypt(b"hello", &mut confide::SystemRng::new())
                    .unwrap(),
            );
            record.decrypt_prekey(&m, &bob_keys, &mut rng).unwrap();
        }
        assert_eq!(record.previous_count() + 1, n_states);
        let forged = forged_message(&mut rng, confide::session::limits::MAX_FORWARD_JUMP);
        group.bench_function(BenchmarkId::new("confide", n_states), |b| {
            b.iter_custom(|n| {
                timed(
                    n,
                    1,
                    || (),
                    |()| record.decrypt(&forged, &mut rng).unwrap_err(),
                )
            });
        });
    }
    group.finish();
}

fn main() {
    let mut c = configure().configure_from_args();
    bench_encrypt(&mut c);
    bench_decrypt(&mut c);
    bench_pingpong(&mut c);
    bench_setup(&mut c);
    bench_primitives(&mut c);
    bench_forged(&mut c);
    c.final_summary();
}
