//! Replays the committed fuzz corpus (`tests/fuzz/corpus/<target>/*`) through the code
//! the fuzz targets run (`tests/fuzz/targets.rs`), as ordinary tests: no panic, and no
//! state change on any error. Corpus and target bodies live under `tests/` so the
//! published package carries them (the cargo-fuzz crate in `fuzz/` is not packaged).
//!
//! To regenerate the seed files after a change to the fixture or the wire format:
//! `cargo test --test fuzz_corpus -- --ignored regenerate_seed_corpus`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "fuzz/actions.rs"]
mod actions;
#[path = "fuzz/parsers.rs"]
mod parsers;
#[path = "fuzz/targets.rs"]
mod targets;
#[path = "fuzz/v4.rs"]
mod v4;

use std::path::PathBuf;

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz/corpus")
        .join(target)
}

/// The files of one target's corpus, sorted by name.
fn files(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

fn replay(target: &str) {
    let files = files(target);
    assert!(!files.is_empty(), "no corpus for {target}");
    for (name, bytes) in &files {
        let result = std::panic::catch_unwind(|| targets::run(target, bytes));
        match result {
            Ok(known) => assert!(known, "unknown target {target}"),
            Err(_) => panic!("tests/fuzz/corpus/{target}/{name} failed (see the panic above)"),
        }
    }
}

#[test]
fn corpus_parse_signal_message() {
    replay("parse_signal_message");
}

#[test]
fn corpus_parse_prekey_message() {
    replay("parse_prekey_message");
}

#[test]
fn corpus_parse_records() {
    replay("parse_records");
}

#[test]
fn corpus_decrypt_signal() {
    replay("decrypt_signal");
}

#[test]
fn corpus_decrypt_prekey() {
    replay("decrypt_prekey");
}

#[test]
fn corpus_actions() {
    replay("actions");
}

#[test]
fn corpus_parse_group() {
    replay("parse_group");
}

#[test]
fn corpus_decrypt_group() {
    replay("decrypt_group");
}

#[test]
fn corpus_parse_sealed() {
    replay("parse_sealed");
}

#[test]
fn corpus_parse_content() {
    replay("parse_content");
}

#[test]
fn corpus_parse_privacy() {
    replay("parse_privacy");
}

#[test]
fn corpus_parse_signal_message_v4() {
    replay("parse_signal_message_v4");
}

#[test]
fn corpus_parse_prekey_message_v4() {
    replay("parse_prekey_message_v4");
}

#[test]
fn corpus_parse_kyber() {
    replay("parse_kyber");
}

#[test]
fn corpus_decrypt_signal_v4() {
    replay("decrypt_signal_v4");
}

#[test]
fn corpus_decrypt_prekey_v4() {
    replay("decrypt_prekey_v4");
}

#[test]
fn corpus_decrypt_pq_ratchet() {
    replay("decrypt_pq_ratchet");
}

/// Every target has a corpus; in a checkout (not in the published package, which leaves
/// the cargo-fuzz crate out) every target also has its cargo-fuzz binary.
#[test]
fn every_target_has_a_corpus_directory_and_a_binary() {
    let fuzz_crate = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let checkout = fuzz_crate.join("Cargo.toml").is_file();
    for target in targets::TARGETS {
        assert!(
            corpus_dir(target).is_dir(),
            "missing tests/fuzz/corpus/{target}"
        );
        if checkout {
            let bin = fuzz_crate.join("fuzz_targets").join(format!("{target}.rs"));
            assert!(bin.is_file(), "missing {}", bin.display());
        }
    }
}

/// The committed seed files are what [`targets::corpus`] makes today. If the fixture
/// session changes (a change in key derivation or in how randomness is drawn), the
/// genuine messages in the decrypt corpora would silently stop decrypting and the
/// fuzzer would lose its best seeds: regenerate them (see the module docs).
#[test]
fn seed_corpus_is_current() {
    let mut stale = Vec::new();
    for (target, name, bytes) in targets::corpus() {
        let path = corpus_dir(target).join(&name);
        if std::fs::read(&path).ok().as_deref() != Some(&bytes[..]) {
            stale.push(format!("{target}/{name}"));
        }
    }
    assert!(
        stale.is_empty(),
        "seed corpus out of date ({} files, e.g. {:?}); run \
         `cargo test --test fuzz_corpus -- --ignored regenerate_seed_corpus`",
        stale.len(),
        &stale[..stale.len().min(5)]
    );
}

/// The genuine pending messages in the decrypt corpora really decrypt (so the fuzzer
/// starts from inputs that reach the end of the decrypt path), and the delivered ones
/// are refused as duplicates.
#[test]
fn genuine_seeds_decrypt() {
    let fixture = targets::Fixture::get();
    for m in &fixture.sent {
        let store = fixture.bob_store();
        let mut rng = <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::seed_from_u64(4);
        let got = actions::receive(
            &store,
            &fixture.bob,
            &fixture.alice,
            m.message_type,
            &m.bytes,
            &mut rng,
        );
        match (m.delivered, got) {
            (false, Ok(plaintext)) => assert_eq!(plaintext, m.plaintext, "{}", m.name),
            (true, Err(confide::DecryptError::DuplicateMessage { .. })) => {}
            (true, Err(confide::DecryptError::PostQuantumRatchet))
                if ["a0", "a1", "a2"].contains(&m.name.as_str()) => {}
            (_, other) => panic!("{}: {other:?}", m.name),
        }
    }
}

/// The genuine seeds of the group, sealed sender, content and privacy targets reach the
/// end of their paths (see `parsers::check_seeds`).
#[test]
fn genuine_parser_seeds_work() {
    parsers::check_seeds();
}

/// The hand-made v4 parser and Kyber seeds are what their names say (see
/// `v4::check_parse_seeds`).
#[test]
fn v4_parser_seeds_work() {
    v4::check_parse_seeds();
}

/// Writes the seed corpus (`tests/fuzz/corpus/<target>/<name>`); files the fuzzer added
/// are left alone.
#[test]
#[ignore = "writes tests/fuzz/corpus; run explicitly to regenerate"]
fn regenerate_seed_corpus() {
    for (target, name, bytes) in targets::corpus() {
        let dir = corpus_dir(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

/// The v4 fixture's genuine messages behave as recorded (pending ones decrypt at
/// Bob's, delivered ones are duplicates), and its warm-up moved SPQR past epoch 2, so
/// the decrypt seeds carry a later epoch's keys. a0-a2's receiving chain was pushed out
/// by the warm-up's DH ratchet steps: a redelivery starts a fresh chain, whose SPQR
/// step (an epoch no longer kept) refuses it before the MAC would.
#[test]
fn genuine_v4_seeds_decrypt() {
    let fixture = v4::Fixture4::get();
    eprintln!(
        "v4 fixture: Alice's highest SPQR epoch {}",
        fixture.max_epoch
    );
    assert!(fixture.max_epoch >= 3, "epoch {}", fixture.max_epoch);
    for m in &fixture.sent {
        let store = fixture.bob_store();
        let mut rng = <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::seed_from_u64(4);
        let got = v4::receive_as(
            &store,
            &fixture.bob,
            &fixture.alice,
            m.message_type,
            &m.bytes,
            &mut rng,
        );
        match (m.delivered, got) {
            (false, Ok(plaintext)) => assert_eq!(plaintext, m.plaintext, "{}", m.name),
            (true, Err(confide::DecryptError::DuplicateMessage { .. })) => {}
            (true, Err(confide::DecryptError::PostQuantumRatchet))
                if ["a0", "a1", "a2"].contains(&m.name.as_str()) => {}
            (_, other) => panic!("{}: {other:?}", m.name),
        }
    }
}
