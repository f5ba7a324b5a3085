//! Group (sender-key) encrypt and decrypt at 140 B and 64 KiB, against vodozemac's
//! Megolm and against the floor (one XEdDSA sign or verify + the KDF + AES-CBC).

// Benches may unwrap; criterion_group! makes undocumented functions.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use confide::group::{DistributionId, Layout, SenderKeyMessage, SenderKeyRecord};
use confide::keys::KeyPair;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
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
        let skdm = sender.create_distribution(&mut rng);
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
            // Decrypt on a copy so each iteration decrypts a fresh message in order.
            b.iter_batched(
                || receiver.clone(),
                |mut r| {
                    for m in &msgs[..8] {
                        black_box(r.decrypt(m).unwrap());
                    }
                },
                criterion::BatchSize::SmallInput,
            )
        });

        // The floor: what every group message must cost.
        let signer = KeyPair::generate(&mut rng);
        let mut key = [0u8; 32];
        rng.fill_bytes(&mut key);
        let sig_msg = msgs[0].serialized().to_vec();
        let split = sig_msg.len() - 64;
        g.bench_function(BenchmarkId::new("floor_encrypt", label), |b| {
            b.iter(|| {
                let ct = floor_cbc(&key, &pt);
                black_box(signer.private.sign(&mut rng, &ct[..ct.len().min(split)]))
            })
        });
        let sig = signer.private.sign(&mut rng, &sig_msg[..split]);
        g.bench_function(BenchmarkId::new("floor_decrypt", label), |b| {
            b.iter(|| {
                black_box(signer.public.verify_signature(&sig_msg[..split], &sig));
                black_box(floor_cbc(&key, &pt))
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

/// HKDF of a seed into IV and key, then AES-256-CBC (what the floor encrypts with).
fn floor_cbc(seed: &[u8; 32], pt: &[u8]) -> Vec<u8> {
    use aes::cipher::{BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
    let prk = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, &[]).extract(seed);
    let mut okm = [0u8; 48];
    let info = [&b"WhisperGroup"[..]];
    prk.expand(&info, Len48).unwrap().fill(&mut okm).unwrap();
    let (iv, key) = okm.split_at(16);
    cbc::Encryptor::<aes::Aes256>::new(key.into(), iv.into()).encrypt_padded_vec_mut::<Pkcs7>(pt)
}

struct Len48;
impl ring::hkdf::KeyType for Len48 {
    fn len(&self) -> usize {
        48
    }
}

criterion_group!(benches, group);
criterion_main!(benches);
