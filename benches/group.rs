//! Group (sender-key) encrypt and decrypt at 140 B and 64 KiB, against vodozemac's
//! Megolm and against the floor in the same run.
//!
//! The floor is what any implementation of the scheme must do per message: the chain
//! step (two HMACs) and the HKDF to IV and key, AES-256-CBC (encryption with padding,
//! or decryption with the padding check), and one XEdDSA signature or verification
//! over the message as sent. Every bench times exactly one message. Each primitive comes
//! from the fastest backend in session's `primitive/<p>/<backend>` and media's
//! `primitive/<p>_1MiB/<backend>` rows: HMAC and HKDF from ring (the empty salt set up
//! once), AES-256-CBC from RustCrypto (aes + cbc) below 1 KiB and aws-lc-rs's encryption
//! from 1 KiB on (RustCrypto's decryption throughout), XEdDSA from confide (the only one
//! at hand). Megolm is vodozemac 0.11's, version 1.
//!
//! `CONFIDE_GROUP_MIN_OF=<rounds>` instead runs confide, the floor and Megolm
//! interleaved, each over a batch of messages, `rounds` times, and prints the fastest
//! round of each per message with confide's ratio to the floor: on a machine shared
//! with other work, the fastest round estimates an idle one.

// Benches may unwrap; criterion_group! makes undocumented functions.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use confide::group::{DistributionId, Layout, SenderKeyMessage, SenderKeyRecord};
use confide::keys::KeyPair;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use std::hint::black_box;

fn sizes() -> [(&'static str, usize); 2] {
    [("140B", 140), ("64KiB", 64 * 1024)]
}

fn group(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let id = DistributionId::random(&mut rng);
    let mut g = c.benchmark_group("group");
    for (label, n) in sizes() {
        let pt = vec![0x5au8; n];
        g.throughput(Throughput::Bytes(n as u64));
        let mut sender = SenderKeyRecord::new(id, Layout::Current);
        let skdm = sender.distribution(&mut rng);
        g.bench_function(BenchmarkId::new("confide_encrypt", label), |b| {
            b.iter(|| black_box(sender.encrypt(&pt, &mut rng).unwrap()))
        });
        // A fresh chain, so the decrypts below start at its first message (the encrypt
        // bench above moved the first chain far ahead).
        let _ = skdm;
        let skdm = sender.rotate(&mut rng);
        let mut receiver = SenderKeyRecord::new(id, Layout::Current);
        receiver.process(&skdm).unwrap();
        let msgs: Vec<SenderKeyMessage> = (0..64)
            .map(|_| sender.encrypt(&pt, &mut rng).unwrap())
            .collect();
        g.bench_function(BenchmarkId::new("confide_decrypt", label), |b| {
            // Each iteration decrypts the chain's first message on a fresh copy of the
            // receiver (made and dropped outside the timing).
            b.iter_batched(
                || receiver.clone(),
                |mut r| {
                    // The plaintext is dropped in the timing, as the floor's is.
                    black_box(r.decrypt(&msgs[0]).unwrap());
                    r
                },
                criterion::BatchSize::SmallInput,
            )
        });

        // The floor: what every group message must cost.
        let signer = KeyPair::generate(&mut rng);
        let mut chain = [0u8; 32];
        rng.fill_bytes(&mut chain);
        let sent = msgs[0].serialized().to_vec();
        let split = sent.len() - 64;
        let header = split - msgs[0].ciphertext().len();
        g.bench_function(BenchmarkId::new("floor_encrypt", label), |b| {
            b.iter(|| {
                let mut body = sent[..header].to_vec();
                body.extend_from_slice(&floor_encrypt(&chain, &pt));
                let sig = confide::hazmat::xeddsa_sign(signer.private(), &mut rng, &body);
                body.extend_from_slice(&sig);
                black_box(body)
            })
        });
        let ct = floor_encrypt(&chain, &pt);
        let sig = confide::hazmat::xeddsa_sign(signer.private(), &mut rng, &sent[..split]);
        g.bench_function(BenchmarkId::new("floor_decrypt", label), |b| {
            b.iter(|| {
                assert!(signer.public().verify_signature(&sent[..split], &sig));
                black_box(floor_decrypt(&chain, &ct))
            })
        });

        // vodozemac Megolm.
        let mut outbound = vodozemac::megolm::GroupSession::new(Default::default());
        let mut inbound = vodozemac::megolm::InboundGroupSession::new(
            &outbound.session_key(),
            Default::default(),
        );
        g.bench_function(BenchmarkId::new("megolm_encrypt", label), |b| {
            b.iter(|| black_box(outbound.encrypt(&pt)))
        });
        let m = outbound.encrypt(&pt);
        g.bench_function(BenchmarkId::new("megolm_decrypt", label), |b| {
            b.iter(|| black_box(inbound.decrypt(&m).unwrap()))
        });
    }
    g.finish();
}

// The floor's backends, the winners of session's `primitive/*/*` and media's
// `primitive/*_1MiB/*` (see the module docs): HMAC and HKDF from `mac` (ring and
// aws-lc-rs share one API for both), AES-CBC as `floor_encrypt` and `floor_decrypt` say.
use ring as mac;

/// The RFC 5869 default salt, set up once for the whole run.
static EMPTY_SALT: std::sync::LazyLock<mac::hkdf::Salt> =
    std::sync::LazyLock::new(|| mac::hkdf::Salt::new(mac::hkdf::HKDF_SHA256, &[]));

/// The chain step and HKDF of one message: `HMAC(chain, 0x01)` (the seed),
/// `HMAC(chain, 0x02)` (the next chain key), then the seed expanded to IV ‖ key.
fn floor_keys(chain: &[u8; 32]) -> ([u8; 48], [u8; 32]) {
    let key = mac::hmac::Key::new(mac::hmac::HMAC_SHA256, chain);
    let seed = mac::hmac::sign(&key, &[1]);
    let mut next = [0u8; 32];
    next.copy_from_slice(mac::hmac::sign(&key, &[2]).as_ref());
    let prk = EMPTY_SALT.extract(seed.as_ref());
    let mut okm = [0u8; 48];
    let info = [&b"WhisperGroup"[..]];
    prk.expand(&info, Len48).unwrap().fill(&mut okm).unwrap();
    (okm, next)
}

/// From this length on aws-lc-rs encrypts faster than RustCrypto (session's
/// `primitive/aes256cbc_encrypt_*`); below it RustCrypto's cheaper key setup wins.
const AWS_LC_CBC_FROM: usize = 1024;

/// The floor's keys, then AES-256-CBC with PKCS#7: RustCrypto's for short messages,
/// aws-lc-rs's (padding appended in place in the output buffer) for long ones.
fn floor_encrypt(chain: &[u8; 32], pt: &[u8]) -> Vec<u8> {
    let (okm, next) = floor_keys(chain);
    black_box(next);
    let (iv, key) = okm.split_at(16);
    if pt.len() + 16 < AWS_LC_CBC_FROM {
        use aes::cipher::{BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
        return cbc::Encryptor::<aes::Aes256>::new(key.into(), iv.into())
            .encrypt_padded_vec_mut::<Pkcs7>(pt);
    }
    use aws_lc_rs::cipher::UnboundCipherKey;
    use aws_lc_rs::cipher::{AES_256, EncryptionContext, PaddedBlockEncryptingKey};
    let key =
        PaddedBlockEncryptingKey::cbc_pkcs7(UnboundCipherKey::new(&AES_256, key).unwrap()).unwrap();
    let mut out = Vec::with_capacity(pt.len() / 16 * 16 + 16);
    out.extend_from_slice(pt);
    let iv = aws_lc_rs::iv::FixedLength::try_from(iv).unwrap();
    key.less_safe_encrypt(&mut out, EncryptionContext::Iv128(iv))
        .unwrap();
    out
}

/// The floor's keys, then AES-256-CBC decryption and the padding check (RustCrypto's,
/// ahead of aws-lc-rs's for short messages and level with it at 1 MiB).
fn floor_decrypt(chain: &[u8; 32], ct: &[u8]) -> Vec<u8> {
    use aes::cipher::{BlockDecryptMut, KeyIvInit, block_padding::Pkcs7};
    let (okm, next) = floor_keys(chain);
    black_box(next);
    let (iv, key) = okm.split_at(16);
    cbc::Decryptor::<aes::Aes256>::new(key.into(), iv.into())
        .decrypt_padded_vec_mut::<Pkcs7>(ct)
        .unwrap()
}

struct Len48;
impl mac::hkdf::KeyType for Len48 {
    fn len(&self) -> usize {
        48
    }
}

/// The interleaved best-of measurement described in the module docs.
fn min_of(rounds: usize) {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let id = DistributionId::random(&mut rng);
    for (label, n) in sizes() {
        let batch = if n > 1024 { 16 } else { 128 };
        let pt = vec![0x5au8; n];
        let mut sender = SenderKeyRecord::new(id, Layout::Current);
        let skdm = sender.distribution(&mut rng);
        let mut receiver = SenderKeyRecord::new(id, Layout::Current);
        receiver.process(&skdm).unwrap();
        let first = sender.encrypt(&pt, &mut rng).unwrap();
        let signer = KeyPair::generate(&mut rng);
        let mut chain = [0u8; 32];
        rng.fill_bytes(&mut chain);
        let sent = first.serialized().to_vec();
        let split = sent.len() - 64;
        let header = split - first.ciphertext().len();
        let ct = floor_encrypt(&chain, &pt);
        let sig = confide::hazmat::xeddsa_sign(signer.private(), &mut rng, &sent[..split]);
        let mut outbound = vodozemac::megolm::GroupSession::new(Default::default());
        let mut inbound = vodozemac::megolm::InboundGroupSession::new(
            &outbound.session_key(),
            Default::default(),
        );
        let megolm_msg = outbound.encrypt(&pt);
        // confide enc, floor enc, megolm enc, confide dec, floor dec, megolm dec.
        let mut best = [f64::INFINITY; 6];
        for _ in 0..rounds {
            let mut copies: Vec<SenderKeyRecord> = (0..batch).map(|_| receiver.clone()).collect();
            let mut time = |slot: usize, f: &mut dyn FnMut()| {
                let t = std::time::Instant::now();
                f();
                let per = t.elapsed().as_secs_f64() / batch as f64;
                best[slot] = best[slot].min(per);
            };
            time(0, &mut || {
                for _ in 0..batch {
                    black_box(sender.encrypt(&pt, &mut rng).unwrap());
                }
            });
            time(1, &mut || {
                for _ in 0..batch {
                    let mut body = sent[..header].to_vec();
                    body.extend_from_slice(&floor_encrypt(&chain, &pt));
                    let s = confide::hazmat::xeddsa_sign(signer.private(), &mut rng, &body);
                    body.extend_from_slice(&s);
                    black_box(body);
                }
            });
            time(2, &mut || {
                for _ in 0..batch {
                    black_box(outbound.encrypt(&pt));
                }
            });
            // Each plaintext is dropped at once, as the floor's is.
            time(3, &mut || {
                for r in copies.iter_mut() {
                    black_box(r.decrypt(&first).unwrap());
                }
            });
            drop(copies);
            time(4, &mut || {
                for _ in 0..batch {
                    assert!(signer.public().verify_signature(&sent[..split], &sig));
                    black_box(floor_decrypt(&chain, &ct));
                }
            });
            time(5, &mut || {
                for _ in 0..batch {
                    black_box(inbound.decrypt(&megolm_msg).unwrap());
                }
            });
        }
        let us = |t: f64| t * 1e6;
        println!(
            "{label:6} encrypt: confide {:8.2} µs  floor {:8.2} µs  ratio {:.3}  megolm {:8.2} µs",
            us(best[0]),
            us(best[1]),
            best[0] / best[1],
            us(best[2])
        );
        println!(
            "{label:6} decrypt: confide {:8.2} µs  floor {:8.2} µs  ratio {:.3}  megolm {:8.2} µs",
            us(best[3]),
            us(best[4]),
            best[3] / best[4],
            us(best[5])
        );
    }
}

criterion_group!(benches, group);

fn main() {
    if let Some(rounds) = std::env::var("CONFIDE_GROUP_MIN_OF")
        .ok()
        .and_then(|r| r.parse().ok())
    {
        min_of(rounds);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
