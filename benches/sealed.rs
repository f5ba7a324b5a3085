//! Sealed sender: v1 seal and open; v2 seal for 1, 10, 100 and 1000 recipients, with
//! one X25519 agreement alongside for the per-recipient cost.

// Benches may unwrap; criterion_group! makes undocumented functions.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use confide::Timestamp;
use confide::keys::{IdentityKeyPair, KeyPair};
use confide::sealed::{
    self, ContentHint, ContentType, Recipient, SenderCertificate, SenderInfo, ServerCertificate,
    ServiceId, ServiceIdKind, UnidentifiedSenderMessageContent,
};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::hint::black_box;

fn sealed_benches(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let root = KeyPair::generate(&mut rng);
    let server = KeyPair::generate(&mut rng);
    let alice = IdentityKeyPair::generate(&mut rng);
    let bob = IdentityKeyPair::generate(&mut rng);
    let sc = ServerCertificate::new(1, server.public, &root.private, &mut rng);
    let info = SenderInfo {
        uuid: "9d0652a3-dcc3-4d11-975f-74d61598733f".into(),
        e164: None,
        device_id: 1,
        identity_key: *alice.identity_key(),
        expiration: Timestamp::from_millis(u64::MAX),
    };
    let cert = SenderCertificate::new(info, sc, &server.private, &mut rng);
    let content = UnidentifiedSenderMessageContent::new(
        ContentType::SenderKey,
        cert,
        vec![0x33; 240],
        ContentHint::Default,
        None,
    );
    let now = Timestamp::from_millis(1);
    let mut g = c.benchmark_group("sealed");
    g.bench_function("v1_seal", |b| {
        b.iter(|| {
            black_box(sealed::seal_v1(&content, &alice, bob.identity_key(), &mut rng).unwrap())
        })
    });
    let v1 = sealed::seal_v1(&content, &alice, bob.identity_key(), &mut rng).unwrap();
    g.bench_function("v1_open", |b| {
        b.iter(|| black_box(sealed::open(&v1, &bob, &root.public, now).unwrap()))
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
        g.bench_function(BenchmarkId::new("v2_seal", n), |b| {
            b.iter(|| black_box(sealed::seal_v2(&content, &alice, &recipients, &mut rng).unwrap()))
        });
    }
    let a = KeyPair::generate(&mut rng);
    let bpub = KeyPair::generate(&mut rng).public;
    g.bench_function("x25519_agreement", |b| {
        b.iter(|| {
            black_box(
                x25519_dalek::StaticSecret::from(*a.private.to_bytes())
                    .diffie_hellman(&x25519_dalek::PublicKey::from(*bpub.x25519_bytes())),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, sealed_benches);
criterion_main!(benches);
