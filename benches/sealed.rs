//! Sealed sender: v1 seal and open; v2 seal for 1, 10, 100 and 1000 recipients, cold
//! (`seal_v2`: two X25519 per recipient) and warm (a `SealV2Context` that has sealed to
//! the same recipients before: one X25519 per recipient), with the per-recipient
//! references in the same run: `x25519_agreement`, one X25519 agreement on the fastest
//! backend (aws-lc-rs with the private key held parsed: 19-26 µs against x25519-dalek's
//! 44-59 µs in session's `primitive/x25519_dh/*`), `x25519_agreement_from_bytes`, the same
//! with the key loaded from its 32 bytes per call as confide does, and
//! `v2_reference_x25519+kdfs`, the agreement plus the two per-recipient HKDFs (`DH` over
//! 98 input bytes to 32, `DH-sender` over 163 to 16; ring's, the faster HKDF there).
//!
//! How to read it: per extra recipient = (`v2_seal_warm/1000` − `v2_seal_warm/1`) / 999
//! (cold: the same with `v2_seal_cold`, two agreements per recipient); divided by
//! `x25519_agreement` it is the cost of one extra recipient in agreements (1.0 is the
//! floor, the HKDFs and the copy of the key share being on top), and divided by
//! `v2_reference_x25519+kdfs` its distance from the per-recipient floor.
//!
//! `primitive/<p>/<backend>` puts the ciphers' candidates side by side on 256 bytes, key
//! set up per message: AES-256-GCM-SIV (v2) aws-lc-rs 308 ns seal / 335 open against
//! RustCrypto's 756 / 806; AES-256-CTR (v1) RustCrypto 188 ns against aws-lc-rs's 271
//! (one short run each).
//!
//! `CONFIDE_SEALED_MIN_OF=<rounds>` instead runs v2 seal at 1 and 1000 recipients (cold
//! and warm) and 1000 reference iterations interleaved, `rounds` times, and prints the
//! per-extra-recipient cost from the fastest round of each against the reference and one
//! agreement: on a machine shared with other work, the fastest round estimates an idle
//! one.

// Benches may unwrap; criterion_group! makes undocumented functions.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use confide::Timestamp;
use confide::keys::{IdentityKeyPair, KeyPair};
use confide::sealed::{
    self, ContentHint, ContentType, Recipient, SealV2Context, SenderCertificate, SenderInfo,
    ServerCertificate, ServiceId, ServiceIdKind, TrustRoots, UnidentifiedSenderMessageContent,
};
use criterion::{BenchmarkId, Criterion, criterion_group};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::hint::black_box;

// The reference's backends, the winners of session's `primitive/*/*` (see the module
// docs): X25519 from aws-lc-rs (a private key parsed once, kept for its agreements), HKDF
// from `mac` (ring and aws-lc-rs share one API).
use aws_lc_rs::agreement::{self, PrivateKey, UnparsedPublicKey, X25519};
use mac::hkdf;
use ring as mac;

/// One X25519 agreement with a held key (AWS-LC refuses an all-zero result).
fn agree(ours: &PrivateKey, theirs: &[u8; 32]) -> [u8; 32] {
    agreement::agree(ours, UnparsedPublicKey::new(&X25519, theirs), (), |s| {
        <[u8; 32]>::try_from(s).map_err(|_| ())
    })
    .unwrap()
}

/// The agreement confide makes: the private key loaded from its 32 bytes for each call.
fn agree_from_bytes(ours: &[u8; 32], theirs: &[u8; 32]) -> [u8; 32] {
    agree(
        &PrivateKey::from_private_key(&X25519, ours).unwrap(),
        theirs,
    )
}

/// A sender and a 240-byte sender-key content with its certificate.
fn fixture(rng: &mut ChaCha20Rng) -> (UnidentifiedSenderMessageContent, IdentityKeyPair) {
    let root = KeyPair::generate(rng);
    fixture_under(&root, rng)
}

fn fixture_under(
    root: &KeyPair,
    rng: &mut ChaCha20Rng,
) -> (UnidentifiedSenderMessageContent, IdentityKeyPair) {
    let server = KeyPair::generate(rng);
    let alice = IdentityKeyPair::generate(rng);
    let sc = ServerCertificate::new(1, server.public(), root.private(), rng);
    let info = SenderInfo {
        uuid: "9d0652a3-dcc3-4d11-975f-74d61598733f".into(),
        e164: None,
        device_id: 1,
        identity_key: *alice.identity_key(),
        expiration: Timestamp::from_millis(u64::MAX),
    };
    let cert = SenderCertificate::new(info, sc, server.private(), rng);
    let content = UnidentifiedSenderMessageContent::new(
        ContentType::SenderKey,
        cert,
        vec![0x33; 240],
        ContentHint::Default,
        None,
    );
    (content, alice)
}

fn sealed_benches(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let root = KeyPair::generate(&mut rng);
    let (content, alice) = fixture_under(&root, &mut rng);
    let bob = IdentityKeyPair::generate(&mut rng);
    let now = Timestamp::from_millis(1);
    let mut g = c.benchmark_group("sealed");
    g.bench_function("v1_seal", |b| {
        b.iter(|| {
            black_box(sealed::seal_v1(&content, &alice, bob.identity_key(), &mut rng).unwrap())
        })
    });
    let v1 = sealed::seal_v1(&content, &alice, bob.identity_key(), &mut rng).unwrap();
    let trust = TrustRoots::new(root.public());
    g.bench_function("v1_open", |b| {
        b.iter(|| black_box(sealed::open(&v1, &bob, &trust, now).unwrap()))
    });
    for n in [1usize, 10, 100, 1000] {
        let recipients: Vec<Recipient> = (0..n)
            .map(|i| Recipient {
                service_id: ServiceId::new(ServiceIdKind::Aci, (i as u128).to_be_bytes()),
                device_id: 1,
                registration_id: 1,
                identity_key: *IdentityKeyPair::generate(&mut rng).identity_key(),
            })
            .collect();
        g.bench_function(BenchmarkId::new("v2_seal_cold", n), |b| {
            b.iter(|| black_box(sealed::seal_v2(&content, &alice, &recipients, &mut rng).unwrap()))
        });
        let mut ctx = SealV2Context::new(&alice);
        ctx.seal(&content, &recipients, &mut rng).unwrap();
        g.bench_function(BenchmarkId::new("v2_seal_warm", n), |b| {
            b.iter(|| black_box(ctx.seal(&content, &recipients, &mut rng).unwrap()))
        });
    }
    let a = KeyPair::generate(&mut rng);
    let bpub = KeyPair::generate(&mut rng).public();
    let private = *a.private().to_bytes();
    let secret = PrivateKey::from_private_key(&X25519, &private).unwrap();
    let their = *bpub.x25519_bytes();
    g.bench_function("x25519_agreement", |b| {
        b.iter(|| black_box(agree(black_box(&secret), black_box(&their))))
    });
    // The same with the private key loaded per call, as confide loads it.
    g.bench_function("x25519_agreement_from_bytes", |b| {
        b.iter(|| black_box(agree_from_bytes(black_box(&private), black_box(&their))))
    });
    // The per-recipient floor: one agreement, then the two HKDFs of a key share over
    // inputs of the real lengths (the empty salt set up once).
    let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, &[]);
    g.bench_function("v2_reference_x25519+kdfs", |b| {
        b.iter(|| black_box(reference(&secret, &their, &salt)))
    });
    g.finish();
}

/// The sealed-sender ciphers' candidates side by side, `primitive/<primitive>/<backend>`,
/// on a 256-byte message with the key set up per message, as confide does: AES-256-GCM-SIV
/// (v2, zero nonce, no associated data) and AES-256-CTR (v1, zero IV).
fn primitives(c: &mut Criterion) {
    use aes::cipher::{KeyIvInit, StreamCipher};
    use aes_gcm_siv::aead::{AeadInPlace, KeyInit};
    use aws_lc_rs::aead::{AES_256_GCM_SIV, Aad, LessSafeKey, Nonce, UnboundKey};
    use aws_lc_rs::cipher::{AES_256, EncryptingKey, EncryptionContext, UnboundCipherKey};
    use aws_lc_rs::iv::FixedLength;

    let key = [0x5au8; 32];
    let msg = vec![0x33u8; 256];
    let mut g = c.benchmark_group("primitive");
    let aws_seal = |m: &[u8]| {
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM_SIV, &key).unwrap());
        let mut out = Vec::with_capacity(m.len() + 16);
        out.extend_from_slice(m);
        let nonce = Nonce::assume_unique_for_key([0u8; 12]);
        key.seal_in_place_append_tag(nonce, Aad::empty(), &mut out)
            .unwrap();
        out
    };
    let aws_open = |ct: &[u8]| {
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM_SIV, &key).unwrap());
        let mut out = ct.to_vec();
        let nonce = Nonce::assume_unique_for_key([0u8; 12]);
        let len = key
            .open_in_place(nonce, Aad::empty(), &mut out)
            .unwrap()
            .len();
        out.truncate(len);
        out
    };
    let rc_seal = |m: &[u8]| {
        let cipher = aes_gcm_siv::Aes256GcmSiv::new(&key.into());
        let mut out = Vec::with_capacity(m.len() + 16);
        out.extend_from_slice(m);
        cipher
            .encrypt_in_place(&Default::default(), b"", &mut out)
            .unwrap();
        out
    };
    let rc_open = |ct: &[u8]| {
        let cipher = aes_gcm_siv::Aes256GcmSiv::new(&key.into());
        let mut out = ct.to_vec();
        cipher
            .decrypt_in_place(&Default::default(), b"", &mut out)
            .unwrap();
        out
    };
    let sealed = aws_seal(&msg);
    assert_eq!(sealed, rc_seal(&msg));
    assert_eq!(aws_open(&sealed), msg);
    assert_eq!(rc_open(&sealed), msg);
    g.bench_function("aes256gcmsiv_seal_256B/aws_lc", |b| {
        b.iter(|| black_box(aws_seal(black_box(&msg))))
    });
    g.bench_function("aes256gcmsiv_seal_256B/rustcrypto", |b| {
        b.iter(|| black_box(rc_seal(black_box(&msg))))
    });
    g.bench_function("aes256gcmsiv_open_256B/aws_lc", |b| {
        b.iter(|| black_box(aws_open(black_box(&sealed))))
    });
    g.bench_function("aes256gcmsiv_open_256B/rustcrypto", |b| {
        b.iter(|| black_box(rc_open(black_box(&sealed))))
    });
    let iv = [0u8; 16];
    let aws_ctr = |data: &mut [u8]| {
        let key = EncryptingKey::ctr(UnboundCipherKey::new(&AES_256, &key).unwrap()).unwrap();
        key.less_safe_encrypt(data, EncryptionContext::Iv128(FixedLength::from(&iv)))
            .unwrap();
    };
    let rc_ctr = |data: &mut [u8]| {
        ctr::Ctr128BE::<aes::Aes256>::new(&key.into(), &iv.into()).apply_keystream(data);
    };
    let (mut a, mut r) = (msg.clone(), msg.clone());
    aws_ctr(&mut a);
    rc_ctr(&mut r);
    assert_eq!(a, r);
    g.bench_function("aes256ctr_256B/aws_lc", |b| {
        b.iter(|| aws_ctr(black_box(&mut a)))
    });
    g.bench_function("aes256ctr_256B/rustcrypto", |b| {
        b.iter(|| rc_ctr(black_box(&mut r)))
    });
    g.finish();
}

/// HKDF's output-length type.
struct Len(usize);

impl mac::hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn hkdf_into(salt: &hkdf::Salt, ikm: &[u8], info: &[u8], out: &mut [u8]) {
    let info = [info];
    salt.extract(ikm)
        .expand(&info, Len(out.len()))
        .unwrap()
        .fill(out)
        .unwrap();
}

/// The interleaved best-of measurement described in the module docs.
fn min_of(rounds: usize) {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let (content, alice) = fixture(&mut rng);
    let make = |n: usize, rng: &mut ChaCha20Rng| -> Vec<Recipient> {
        (0..n)
            .map(|i| Recipient {
                service_id: ServiceId::new(ServiceIdKind::Aci, (i as u128).to_be_bytes()),
                device_id: 1,
                registration_id: 1,
                identity_key: *IdentityKeyPair::generate(rng).identity_key(),
            })
            .collect()
    };
    let one = make(1, &mut rng);
    let many = make(1000, &mut rng);
    let mut ctx = SealV2Context::new(&alice);
    ctx.seal(&content, &one, &mut rng).unwrap();
    ctx.seal(&content, &many, &mut rng).unwrap();
    let a = KeyPair::generate(&mut rng);
    let private = *a.private().to_bytes();
    let secret = PrivateKey::from_private_key(&X25519, &private).unwrap();
    let their = *KeyPair::generate(&mut rng).public().x25519_bytes();
    let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, &[]);
    let mut best = [f64::INFINITY; 7];
    for _ in 0..rounds {
        let mut time = |slot: usize, f: &mut dyn FnMut()| {
            let t = std::time::Instant::now();
            f();
            best[slot] = best[slot].min(t.elapsed().as_secs_f64());
        };
        time(0, &mut || {
            black_box(sealed::seal_v2(&content, &alice, &one, &mut rng).unwrap());
        });
        time(1, &mut || {
            black_box(sealed::seal_v2(&content, &alice, &many, &mut rng).unwrap());
        });
        time(2, &mut || {
            black_box(ctx.seal(&content, &one, &mut rng).unwrap());
        });
        time(3, &mut || {
            black_box(ctx.seal(&content, &many, &mut rng).unwrap());
        });
        time(4, &mut || {
            for _ in 0..1000 {
                black_box(reference(&secret, &their, &salt));
            }
        });
        time(5, &mut || {
            for _ in 0..1000 {
                black_box(agree(black_box(&secret), black_box(&their)));
            }
        });
    }
    let reference = best[4] / 1000.0;
    let x25519 = best[5] / 1000.0;
    let per = |t1: f64, t1000: f64| (t1000 - t1) / 999.0;
    let cold = per(best[0], best[1]);
    let warm = per(best[2], best[3]);
    println!("best of {rounds} rounds, per extra recipient = (t(1000) - t(1)) / 999:");
    println!("  x25519 alone (aws-lc-rs)     {:8.2} µs", x25519 * 1e6);
    println!("  reference x25519 + kdfs      {:8.2} µs", reference * 1e6);
    println!(
        "  v2 seal cold (seal_v2)       {:8.2} µs  {:.3}x reference  (t1 {:.1} µs, t1000 {:.2} ms)",
        cold * 1e6,
        cold / reference,
        best[0] * 1e6,
        best[1] * 1e3
    );
    println!(
        "  v2 seal warm (SealV2Context) {:8.2} µs  {:.3}x reference  {:.3}x x25519  (t1 {:.1} µs, t1000 {:.2} ms)",
        warm * 1e6,
        warm / reference,
        warm / x25519,
        best[2] * 1e6,
        best[3] * 1e3
    );
}

/// One reference iteration: the agreement and the two key-share HKDFs.
fn reference(secret: &PrivateKey, their: &[u8; 32], salt: &hkdf::Salt) -> ([u8; 32], [u8; 16]) {
    let shared = agree(black_box(secret), black_box(their));
    let mut share_ikm = [0x11u8; 98];
    share_ikm[..32].copy_from_slice(&shared);
    let mut c = [0u8; 32];
    hkdf_into(salt, &share_ikm, b"Sealed Sender v2: DH", &mut c);
    let mut tag_ikm = [0x22u8; 163];
    tag_ikm[..32].copy_from_slice(&shared);
    tag_ikm[65..97].copy_from_slice(&c);
    let mut at = [0u8; 16];
    hkdf_into(salt, &tag_ikm, b"Sealed Sender v2: DH-sender", &mut at);
    (c, at)
}

criterion_group!(benches, sealed_benches, primitives);

fn main() {
    if let Some(rounds) = std::env::var("CONFIDE_SEALED_MIN_OF")
        .ok()
        .and_then(|r| r.parse().ok())
    {
        min_of(rounds);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
