//! Backup export and import throughput against the floor: flate2 zlib at the same level
//! plus AWS-LC's one-shot AES-256-GCM (96-bit nonce) over the same bytes.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::io::{Read, Write};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use confide::backup::{BACKUP_COMPRESSION_LEVEL, BackupKey, BackupReader, BackupWriter, KeyKind};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flate2::Compression;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

const SIZE: usize = 8 << 20;

/// Message-like text: short lines from a vocabulary, with ids and timestamps.
fn messages() -> Vec<u8> {
    let words = [
        "hello", "see", "you", "at", "the", "meeting", "ok", "tomorrow", "lunch?", "sure",
        "thanks", "running", "late", "sounds", "good", "call", "me", "when", "free", "❤️",
    ];
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let mut out = Vec::with_capacity(SIZE + 256);
    let mut id = 0u64;
    while out.len() < SIZE {
        id += 1;
        let ts = 1_700_000_000 + id * 37;
        out.extend_from_slice(
            format!("{id}\t{ts}\t+4915{:08}\t", rng.next_u32() % 100_000_000).as_bytes(),
        );
        for _ in 0..(3 + rng.next_u32() % 12) {
            out.extend_from_slice(words[(rng.next_u32() as usize) % words.len()].as_bytes());
            out.push(b' ');
        }
        out.push(b'\n');
    }
    out.truncate(SIZE);
    out
}

fn bench(c: &mut Criterion) {
    let data = messages();
    let key = BackupKey::from_bytes([7; 32]);
    let level = Compression::new(BACKUP_COMPRESSION_LEVEL);
    let aead = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[9; 32]).unwrap());

    let export = |data: &[u8]| {
        let mut w = BackupWriter::new(
            Vec::with_capacity(SIZE / 2),
            &key,
            KeyKind::DigitKey,
            1,
            &mut ChaCha20Rng::seed_from_u64(2),
        )
        .unwrap();
        for chunk in data.chunks(64 * 1024) {
            w.write_all(chunk).unwrap();
        }
        w.finish().unwrap().0
    };
    let floor_export = |data: &[u8]| {
        let mut z = ZlibEncoder::new(Vec::with_capacity(SIZE / 2), level);
        z.write_all(data).unwrap();
        let mut out = z.finish().unwrap();
        aead.seal_in_place_append_tag(
            Nonce::assume_unique_for_key([3; 12]),
            Aad::from(&[0u8; 52]),
            &mut out,
        )
        .unwrap();
        out
    };
    let file = export(&data);
    let sealed = floor_export(&data);
    eprintln!(
        "8 MiB of messages -> {} bytes ({:.1}%)",
        file.len(),
        100.0 * file.len() as f64 / SIZE as f64
    );

    let mut g = c.benchmark_group("backup");
    g.throughput(Throughput::Bytes(SIZE as u64));
    g.sample_size(10);
    g.bench_function("export", |b| b.iter(|| black_box(export(black_box(&data)))));
    g.bench_function("export_floor_flate2_awslc", |b| {
        b.iter(|| black_box(floor_export(black_box(&data))))
    });
    g.bench_function("import", |b| {
        b.iter(|| {
            let mut r = BackupReader::open(black_box(&file[..]), &key).unwrap();
            let mut out = Vec::with_capacity(SIZE);
            r.read_to_end(&mut out).unwrap();
            r.finish().unwrap();
            black_box(out)
        })
    });
    g.bench_function("import_floor_flate2_awslc", |b| {
        b.iter(|| {
            let mut buf = black_box(&sealed).clone();
            let plain = aead
                .open_in_place(
                    Nonce::assume_unique_for_key([3; 12]),
                    Aad::from(&[0u8; 52]),
                    &mut buf,
                )
                .unwrap();
            let mut out = Vec::with_capacity(SIZE);
            ZlibDecoder::new(&plain[..]).read_to_end(&mut out).unwrap();
            black_box(out)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
