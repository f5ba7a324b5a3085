//! confide ↔ `@signalapp/libsignal-client` safety numbers: identical digits and
//! scannable bytes for random keys and identifiers, versions 1 and 2, and each side
//! accepting (or refusing) the other's scanned code.

use confide::IdentityKeyPair;
use confide::fingerprint::{Comparison, Fingerprint, Party};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use serde_json::{Value, json};

use crate::driver::driver;

struct Case {
    local_id: Vec<u8>,
    local_key: IdentityKeyPair,
    remote_id: Vec<u8>,
    remote_key: IdentityKeyPair,
}

/// Identifiers of the shapes clients use: an E.164 number, a UUID string, raw 16-
/// and 17-byte service ids, and arbitrary bytes (including empty).
fn random_id(rng: &mut ChaCha20Rng, style: u32) -> Vec<u8> {
    let mut bytes = vec![0u8; [0usize, 16, 17, 40][(style % 4) as usize]];
    rng.fill_bytes(&mut bytes);
    match style % 6 {
        4 => format!("+1415{:07}", rng.next_u32() % 10_000_000).into_bytes(),
        5 => {
            let h = hex::encode(&bytes[..16.min(bytes.len())]);
            format!("{h:0<32}").into_bytes()
        }
        _ => bytes,
    }
}

fn cases(seed: u64, n: u32) -> Vec<Case> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    (0..n)
        .map(|i| Case {
            local_id: random_id(&mut rng, i),
            local_key: IdentityKeyPair::generate(&mut rng),
            remote_id: random_id(&mut rng, i + 3),
            remote_key: IdentityKeyPair::generate(&mut rng),
        })
        .collect()
}

fn request(op: &str, c: &Case, version: u32, iterations: u32, swap: bool) -> Value {
    let (lid, lkey, rid, rkey) = if swap {
        (&c.remote_id, &c.remote_key, &c.local_id, &c.local_key)
    } else {
        (&c.local_id, &c.local_key, &c.remote_id, &c.remote_key)
    };
    json!({
        "op": op,
        "local_id_hex": hex::encode(lid),
        "local_key": hex::encode(lkey.identity_key().serialize()),
        "remote_id_hex": hex::encode(rid),
        "remote_key": hex::encode(rkey.identity_key().serialize()),
        "version": version,
        "iterations": iterations,
    })
}

fn confide_fp(c: &Case, version: u32, iterations: u32, swap: bool) -> Fingerprint {
    let a = Party::new(&c.local_id, c.local_key.identity_key());
    let b = Party::new(&c.remote_id, c.remote_key.identity_key());
    let (l, r) = if swap { (b, a) } else { (a, b) };
    Fingerprint::new(version, iterations, l, r).unwrap()
}

#[test]
fn same_digits_and_scannable_bytes() {
    let mut checked = 0;
    for (i, c) in cases(0x5afe, 12).iter().enumerate() {
        for version in [1u32, 2] {
            let iterations = if i % 3 == 0 { 1024 } else { 5200 };
            for swap in [false, true] {
                let ours = confide_fp(c, version, iterations, swap);
                let theirs = driver().ok(request("fingerprint", c, version, iterations, swap));
                let ctx = format!("case {i} v{version} x{iterations} swap={swap}");
                assert_eq!(
                    ours.displayable().to_string(),
                    theirs["displayable"].as_str().unwrap(),
                    "{ctx}"
                );
                assert_eq!(
                    hex::encode(ours.scannable().to_bytes()),
                    theirs["scannable"].as_str().unwrap(),
                    "{ctx}"
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 48);
}

/// PEER_PROTOCOL's string identifiers (UTF-8) give the same result as their bytes.
#[test]
fn string_identifiers() {
    let c = &cases(0x1d, 1)[0];
    let req = json!({
        "op": "fingerprint",
        "local_id": "+14152222222",
        "local_key": hex::encode(c.local_key.identity_key().serialize()),
        "remote_id": "e1e3b6d4-6f3c-4f5a-9c1e-2b8d7c1a0f00",
        "remote_key": hex::encode(c.remote_key.identity_key().serialize()),
    });
    let theirs = driver().ok(req);
    let ours = Fingerprint::with_defaults(
        Party::new(b"+14152222222", c.local_key.identity_key()),
        Party::new(
            b"e1e3b6d4-6f3c-4f5a-9c1e-2b8d7c1a0f00",
            c.remote_key.identity_key(),
        ),
    )
    .unwrap();
    assert_eq!(
        ours.displayable().to_string(),
        theirs["displayable"].as_str().unwrap()
    );
    assert_eq!(
        hex::encode(ours.scannable().to_bytes()),
        theirs["scannable"].as_str().unwrap()
    );
}

/// Each side scans the other's code: libsignal-client accepts confide's and confide
/// accepts libsignal-client's; a man in the middle and a version change show on both.
#[test]
fn each_side_accepts_the_others_scanned_code() {
    let all = cases(0x5ca7, 4);
    for (i, c) in all.iter().enumerate() {
        for version in [1u32, 2] {
            // confide shows the code on the remote user's phone; libsignal scans it.
            let shown_by_confide = confide_fp(c, version, 5200, true).scannable().to_bytes();
            let mut req = request("fingerprint_compare", c, version, 5200, false);
            req["scanned"] = json!(hex::encode(&shown_by_confide));
            assert_eq!(driver().ok(req)["result"], "match", "case {i} v{version}");

            // libsignal shows it; confide scans.
            let shown_by_libsignal = driver().ok(request("fingerprint", c, version, 5200, true));
            let scanned = hex::decode(shown_by_libsignal["scannable"].as_str().unwrap()).unwrap();
            assert_eq!(
                confide_fp(c, version, 5200, false)
                    .scannable()
                    .compare(&scanned)
                    .unwrap(),
                Comparison::Match
            );

            // A substituted key: both say mismatch.
            let mitm = Case {
                local_id: c.local_id.clone(),
                local_key: all[(i + 1) % all.len()].local_key.clone(),
                remote_id: c.remote_id.clone(),
                remote_key: c.remote_key.clone(),
            };
            let shown_to_victim = confide_fp(&mitm, version, 5200, true)
                .scannable()
                .to_bytes();
            let mut req = request("fingerprint_compare", c, version, 5200, false);
            req["scanned"] = json!(hex::encode(&shown_to_victim));
            assert_eq!(
                driver().ok(req)["result"],
                "mismatch",
                "case {i} v{version}"
            );
            assert_eq!(
                confide_fp(c, version, 5200, false)
                    .scannable()
                    .compare(&shown_to_victim)
                    .unwrap(),
                Comparison::Mismatch
            );
        }
        // Versions differ: libsignal-client throws a version-mismatch error; confide
        // reports which side is older.
        let v1_code = confide_fp(c, 1, 5200, true).scannable().to_bytes();
        let mut req = request("fingerprint_compare", c, 2, 5200, false);
        req["scanned"] = json!(hex::encode(&v1_code));
        let reply = driver().ok(req);
        assert_eq!(reply["result"], "error", "{reply}");
        assert!(
            reply["message"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("version"),
            "{reply}"
        );
        assert_eq!(
            confide_fp(c, 2, 5200, false)
                .scannable()
                .compare(&v1_code)
                .unwrap(),
            Comparison::OlderVersion { theirs: 1, ours: 2 }
        );
    }
}
