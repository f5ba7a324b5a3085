//! confide's backup format through its public API: round trips, and every kind of
//! damage gives its typed error.
#![cfg(feature = "backup")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};

use confide::backup::{BackupKey, BackupReader, BackupWriter, KeyKind, ReadError};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

fn rng() -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(15)
}

fn key(seed: u8) -> BackupKey {
    BackupKey::from_bytes([seed; 32])
}

fn write(
    key: &BackupKey,
    kind: KeyKind,
    generation: u64,
    data: &[u8],
    chunk: usize,
) -> (Vec<u8>, confide::backup::BackupStamp) {
    let mut w = BackupWriter::new(Vec::new(), key, kind, generation, &mut rng()).unwrap();
    for part in data.chunks(chunk.max(1)) {
        w.write_all(part).unwrap();
    }
    w.finish().unwrap()
}

fn read_all(
    file: &[u8],
    key: &BackupKey,
    chunk: usize,
) -> Result<(Vec<u8>, KeyKind, u64, confide::backup::BackupStamp), ReadError> {
    let mut r = BackupReader::open(file, key)?;
    let (kind, generation, stamp) = (r.kind(), r.generation(), r.stamp());
    let mut out = Vec::new();
    let mut buf = vec![0u8; chunk];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    assert_eq!(r.finish()?, stamp);
    Ok((out, kind, generation, stamp))
}

fn message_like(len: usize) -> Vec<u8> {
    let words = [
        "hello",
        "see you at",
        "the meeting",
        "ok",
        "👍",
        "tomorrow",
        "lunch?",
        "sure",
        "\n",
    ];
    let mut r = rng();
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        out.extend_from_slice(words[(r.next_u32() as usize) % words.len()].as_bytes());
        out.push(b' ');
    }
    out.truncate(len);
    out
}

#[test]
fn round_trips_empty_small_and_large() {
    let k = key(1);
    let mut random = vec![0u8; 5 << 20];
    rng().fill_bytes(&mut random);
    let cases: Vec<(Vec<u8>, usize, usize)> = vec![
        (Vec::new(), 1, 7),
        (b"hi".to_vec(), 1, 1),
        (message_like(100_000), 997, 13),
        (random, 70_001, 65_537),
        (message_like(5 << 20), 12_345, 4_099),
    ];
    for (i, (data, wchunk, rchunk)) in cases.into_iter().enumerate() {
        let kind = if i % 2 == 0 {
            KeyKind::DigitKey
        } else {
            KeyKind::Vault
        };
        let (file, stamp) = write(&k, kind, i as u64 + 1, &data, wchunk);
        let (out, got_kind, generation, got_stamp) = read_all(&file, &k, rchunk).unwrap();
        assert!(out == data, "case {i}");
        assert_eq!(got_kind, kind);
        assert_eq!(generation, i as u64 + 1);
        assert_eq!(got_stamp, stamp);
        assert_eq!(stamp.generation, i as u64 + 1);
    }
}

#[test]
fn compressible_data_shrinks() {
    let data = message_like(1 << 20);
    let (file, _) = write(&key(1), KeyKind::DigitKey, 1, &data, 4096);
    assert!(file.len() < data.len() / 3, "{}", file.len());
}

fn error_of(file: &[u8], key: &BackupKey) -> ReadError {
    read_all(file, key, 100).map(|_| ()).unwrap_err()
}

#[test]
fn every_header_byte_flip_is_a_typed_error() {
    let k = key(2);
    let (file, _) = write(&k, KeyKind::DigitKey, 7, &message_like(3000), 100);
    for pos in 0..52 {
        for bit in [0x01u8, 0x80] {
            let mut bad = file.clone();
            bad[pos] ^= bit;
            let err = error_of(&bad, &k);
            match pos {
                0..=9 => assert!(matches!(err, ReadError::NotABackup), "{pos}: {err:?}"),
                10 => assert!(
                    matches!(err, ReadError::UnsupportedVersion { .. }),
                    "{pos}: {err:?}"
                ),
                11 => assert!(
                    matches!(err, ReadError::UnknownKeyKind { .. } | ReadError::WrongKey),
                    "{pos}: {err:?}"
                ),
                _ => assert!(matches!(err, ReadError::WrongKey), "{pos}: {err:?}"),
            }
        }
    }
}

#[test]
fn every_body_and_tag_flip_is_tampered() {
    let k = key(3);
    let (file, _) = write(&k, KeyKind::Vault, 1, &message_like(2000), 100);
    // A flip in the body can make zlib read on past where the stream really ends, and
    // then the file looks cut short: the one ambiguity (the length is not in the
    // header, so the writer can stream). Every flip must be caught, and a flip in the
    // tag is always Tampered.
    let mut truncated = 0;
    for pos in 52..file.len() {
        let mut bad = file.clone();
        bad[pos] ^= 0x04;
        let err = error_of(&bad, &k);
        match err {
            ReadError::Tampered => {}
            ReadError::Truncated if pos < file.len() - 16 => truncated += 1,
            _ => panic!("{pos}/{}: {err:?}", file.len()),
        }
    }
    assert!(truncated < 20, "{truncated}");
}

#[test]
fn every_truncation_is_an_error() {
    let k = key(4);
    let (file, _) = write(&k, KeyKind::DigitKey, 1, &message_like(1500), 100);
    for len in 0..file.len() {
        let err = error_of(&file[..len], &k);
        match len {
            0 => assert!(
                matches!(err, ReadError::NotABackup | ReadError::Truncated),
                "{len}: {err:?}"
            ),
            _ => assert!(matches!(err, ReadError::Truncated), "{len}: {err:?}"),
        }
    }
}

#[test]
fn wrong_key_version_and_trailing_data() {
    let k = key(5);
    let (file, _) = write(&k, KeyKind::DigitKey, 1, b"payload", 3);
    assert!(matches!(error_of(&file, &key(6)), ReadError::WrongKey));
    let mut v2 = file.clone();
    v2[10] = 2;
    assert!(matches!(
        error_of(&v2, &k),
        ReadError::UnsupportedVersion { version: 2 }
    ));
    let mut kind = file.clone();
    kind[11] = 9;
    assert!(matches!(
        error_of(&kind, &k),
        ReadError::UnknownKeyKind { kind: 9 }
    ));
    for extra in [&b"x"[..], &[0u8; 100][..]] {
        let mut longer = file.clone();
        longer.extend_from_slice(extra);
        assert!(matches!(error_of(&longer, &k), ReadError::TrailingData));
    }
    assert!(matches!(
        error_of(b"not a backup at all, just text", &k),
        ReadError::NotABackup
    ));
}

#[test]
fn a_failed_read_is_invalid_data_and_finish_is_typed() {
    let k = key(7);
    let (mut file, _) = write(&k, KeyKind::DigitKey, 1, &message_like(10_000), 1000);
    let last = file.len() - 1;
    file[last] ^= 1;
    let mut r = BackupReader::open(&file[..], &k).unwrap();
    let mut out = Vec::new();
    let err = r.read_to_end(&mut out).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert!(matches!(
        err.get_ref().and_then(|e| e.downcast_ref::<ReadError>()),
        Some(ReadError::Tampered)
    ));
    assert!(matches!(r.finish(), Err(ReadError::Tampered)));
}

#[test]
fn two_backups_of_the_same_data_differ_by_iv() {
    let k = key(8);
    let mut a = BackupWriter::new(
        Vec::new(),
        &k,
        KeyKind::DigitKey,
        1,
        &mut ChaCha20Rng::seed_from_u64(1),
    )
    .unwrap();
    a.write_all(b"same").unwrap();
    let (a, sa) = a.finish().unwrap();
    let mut b = BackupWriter::new(
        Vec::new(),
        &k,
        KeyKind::DigitKey,
        1,
        &mut ChaCha20Rng::seed_from_u64(2),
    )
    .unwrap();
    b.write_all(b"same").unwrap();
    let (b, sb) = b.finish().unwrap();
    assert_ne!(a, b);
    assert_ne!(sa.digest, sb.digest);
}
