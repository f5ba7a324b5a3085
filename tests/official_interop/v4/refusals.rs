//! What must be refused over a v4 session, each way, and that a refusal changes
//! nothing (the genuine messages still open afterwards): replays, corrupted
//! `pq_ratchet` bytes (flipped in place: the MAC is left as it was, re-MACing would
//! need the message keys), a message with `pq_ratchet` stripped (its MAC no longer fits
//! either; a message without `pq_ratchet` whose MAC *is* right is in `derivation`). Then
//! sealed sender v1 and v2 around v4 1:1 messages, both ways.

use confide::device::{SealAs, SealVersion};
use confide::keys::KeyPair;
use confide::sealed::{ContentType, SenderCertificate, SenderInfo, ServerCertificate, TrustRoots};
use confide::{DecryptError, Timestamp};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{Value, json};

use super::wire;
use super::{CONFIDE_NAME, Pair, Wire, addr_json, unhex};

/// A session both sides have answered on, so every further message is a SignalMessage.
fn established(seed: u64, confide_initiates: bool) -> Pair {
    let mut p = Pair::new(seed);
    if confide_initiates {
        p.confide_starts(true, true);
        let w = p.c_sends();
        p.l_reads(&w);
        let w = p.l_sends();
        p.c_reads(&w);
    } else {
        p.libsignal_starts(true, true);
        let w = p.l_sends();
        p.c_reads(&w);
        let w = p.c_sends();
        p.l_reads(&w);
    }
    for _ in 0..3 {
        let w = p.c_sends();
        p.l_reads(&w);
        let w = p.l_sends();
        p.c_reads(&w);
    }
    p
}

/// A replayed message is refused by confide (`DuplicateMessage`) and by libsignal
/// (`DuplicatedMessage`), and the session goes on. The very first prekey message
/// replayed after the session was answered is refused too.
#[test]
fn v4_replays_refused() {
    let mut p = Pair::new(41);
    p.libsignal_starts(true, false);
    let first = p.l_sends();
    p.c_reads(&first);
    let w = p.c_sends();
    p.l_reads(&w);
    let ws: Vec<Wire> = (0..5).map(|_| p.l_sends()).collect();
    for w in ws.iter().rev() {
        p.c_reads(w);
    }
    for w in &ws {
        let e = p.c_reads_raw(w.ty, &w.bytes).unwrap_err();
        assert!(
            matches!(e, DecryptError::DuplicateMessage { .. }),
            "replay to confide: {e:?}"
        );
    }
    let e = p.c_reads_raw(first.ty, &first.bytes).unwrap_err();
    assert!(
        matches!(e, DecryptError::DuplicateMessage { .. }),
        "replayed prekey message: {e:?}"
    );
    let ws: Vec<Wire> = (0..5).map(|_| p.c_sends()).collect();
    for w in &ws {
        p.l_reads(w);
    }
    for w in &ws {
        let r = p.l_reads_raw(w.ty, &w.bytes);
        assert_eq!(r["ok"], json!(false), "libsignal accepted a replay: {r}");
        assert_eq!(r["code"], json!("DuplicatedMessage"), "{r}");
    }
    let w = p.l_sends();
    p.c_reads(&w);
    let w = p.c_sends();
    p.l_reads(&w);
}

/// Offsets into a `pq_ratchet` value to corrupt: the version byte, the epoch, the key
/// index, the message type, and the chunk index and data when there is a chunk.
fn pq_offsets(pq: &[u8]) -> Vec<(usize, u8)> {
    let mut v = vec![(0, 0x01), (1, 0x01), (2, 0x01), (3, 0x01)];
    if pq.len() > 8 {
        v.extend([(4, 0x02), (pq.len() / 2, 0x10), (pq.len() - 1, 0x80)]);
    }
    v.retain(|&(at, _)| at < pq.len());
    v
}

fn pq_of(w: &Wire) -> Vec<u8> {
    let (_, pb, _) = wire::parse_signal(&wire::inner_signal(w.ty, &w.bytes));
    pb.pq_ratchet.expect("pq_ratchet")
}

/// Corrupted `pq_ratchet` bytes are refused by confide, which keeps its state: the
/// two genuine messages still open, the later first. Over several SPQR phases (the
/// corrupted message is sometimes a chunk of a payload, sometimes a bare header).
#[test]
fn v4_corrupted_pq_ratchet_refused_by_confide() {
    for confide_initiates in [true, false] {
        let mut p = established(if confide_initiates { 51 } else { 52 }, confide_initiates);
        for round in 0..30 {
            let m1 = p.l_sends();
            let m2 = p.l_sends();
            if round % 6 == 0 {
                let pq = pq_of(&m1);
                for (at, mask) in pq_offsets(&pq) {
                    let bad = wire::flip_pq(&m1.bytes, at, mask);
                    let e = p.c_reads_raw(m1.ty, &bad);
                    assert!(
                        matches!(
                            e,
                            Err(DecryptError::InvalidMessage | DecryptError::PostQuantumRatchet)
                        ),
                        "confide on pq_ratchet byte {at} of {} flipped ({}): {e:?}",
                        pq.len(),
                        hex::encode(&pq[..pq.len().min(6)])
                    );
                }
            }
            p.c_reads(&m2);
            p.c_reads(&m1);
            let w = p.c_sends();
            p.l_reads(&w);
        }
    }
}

/// The same corruption of confide's messages is refused by libsignal, which then still
/// opens the genuine ones; its error codes are printed for the report.
#[test]
fn v4_corrupted_pq_ratchet_refused_by_libsignal() {
    let mut p = established(53, true);
    for round in 0..30 {
        let m1 = p.c_sends();
        let m2 = p.c_sends();
        if round % 6 == 0 {
            let pq = pq_of(&m1);
            for (at, mask) in pq_offsets(&pq) {
                let bad = wire::flip_pq(&m1.bytes, at, mask);
                let r = p.l_reads_raw(m1.ty, &bad);
                assert_eq!(
                    r["ok"],
                    json!(false),
                    "libsignal accepted pq byte {at} flipped: {r}"
                );
                eprintln!(
                    "libsignal refuses pq_ratchet byte {at} flipped: {}",
                    r["error"]
                );
            }
        }
        p.l_reads(&m2);
        p.l_reads(&m1);
        let w = p.l_sends();
        p.c_reads(&w);
    }
}

/// `pq_ratchet` stripped (the MAC then fails too, as it covers the field): refused by
/// both, nothing changed.
#[test]
fn v4_stripped_pq_ratchet_refused() {
    let mut p = established(54, false);
    let m = p.l_sends();
    let e = p.c_reads_raw(m.ty, &wire::strip_pq(&m.bytes));
    assert!(
        matches!(
            e,
            Err(DecryptError::InvalidMessage | DecryptError::PostQuantumRatchet)
        ),
        "{e:?}"
    );
    p.c_reads(&m);
    let m = p.c_sends();
    let r = p.l_reads_raw(m.ty, &wire::strip_pq(&m.bytes));
    assert_eq!(r["ok"], json!(false), "{r}");
    p.l_reads(&m);
}

fn confide_cert(p: &Pair, rng: &mut ChaCha20Rng) -> (KeyPair, SenderCertificate) {
    let root = KeyPair::generate(rng);
    let server = KeyPair::generate(rng);
    let sc = ServerCertificate::new(3, server.public(), root.private(), rng);
    let info = SenderInfo {
        uuid: CONFIDE_NAME.into(),
        e164: None,
        device_id: 1,
        identity_key: p.c.identity_key(),
        expiration: Timestamp::from_millis(super::now().as_millis() + 3_600_000),
    };
    (
        root,
        SenderCertificate::new(info, sc, server.private(), rng),
    )
}

fn ls_sealed_decrypt(p: &mut Pair, ct: &[u8], root: &KeyPair) -> Value {
    p.l.p.call(
        "sealed_decrypt",
        json!({"ciphertext": hex::encode(ct), "trust_root": hex::encode(root.public().serialize())}),
    )
}

/// Sealed sender v1 and v2 around v4 1:1 messages, both ways, from the very first
/// (prekey) message on, whichever side started.
#[test]
fn v4_sealed_sender_both_ways() {
    for confide_initiates in [true, false] {
        let mut rng = ChaCha20Rng::seed_from_u64(61);
        let mut p = Pair::new(if confide_initiates { 62 } else { 63 });
        let (root, cert) = confide_cert(&p, &mut rng);
        let theirs = p.l.p.ok("sender_cert", json!({}));
        let their_root =
            confide::keys::PublicKey::try_from(&unhex(&theirs["trust_root"])[..]).unwrap();
        let trust = TrustRoots::new(their_root);
        if confide_initiates {
            p.confide_starts(true, false);
        } else {
            p.libsignal_starts(false, false);
        }
        let mut n = 0;
        for round in 0..12 {
            let version = if round % 2 == 0 { 1 } else { 2 };
            let first = confide_initiates == (round % 2 == 0);
            for confide_sends in [first, !first] {
                n += 1;
                let text = format!("sealed v{version} #{n}");
                if confide_sends {
                    let from = SealAs::new(&cert).version(if version == 1 {
                        SealVersion::V1
                    } else {
                        SealVersion::V2
                    });
                    let ct =
                        p.c.dev
                            .seal_message_raw(&p.l.addr, text.as_bytes(), &from)
                            .unwrap();
                    assert_eq!(ct[0], if version == 1 { 0x11 } else { 0x23 });
                    let ct = if version == 2 {
                        unhex(
                            &p.l.p.ok("split_multi", json!({"multi": hex::encode(&ct)}))["ciphertext"],
                        )
                    } else {
                        ct
                    };
                    let r = ls_sealed_decrypt(&mut p, &ct, &root);
                    assert_eq!(r["ok"], json!(true), "libsignal unsealing {text}: {r}");
                    assert_eq!(r["text"], json!(text));
                    assert_eq!(r["sender"]["name"], json!(CONFIDE_NAME));
                    let want = if confide_initiates && round == 0 {
                        3
                    } else {
                        2
                    };
                    assert_eq!(r["inner_type"], json!(want), "{r}");
                } else {
                    let r = p.l.p.ok(
                        "sealed_encrypt",
                        json!({"address": addr_json(p.c.addr()), "sender_cert": theirs["sender_cert"],
                               "version": version, "text": text}),
                    );
                    let u =
                        p.c.dev
                            .unseal(&unhex(&r["ciphertext"]), &trust)
                            .unwrap_or_else(|e| panic!("confide unsealing {text}: {e:?}"));
                    assert_eq!(&u.plaintext[..], text.as_bytes());
                    assert_eq!(&u.sender, &p.l.addr);
                    let want = if r["inner_type"] == json!(3) {
                        ContentType::PreKey
                    } else {
                        ContentType::Whisper
                    };
                    assert_eq!(u.content_type, want);
                }
            }
        }
        // And a sealed message under the wrong root is refused, changing nothing.
        let r = p.l.p.ok(
            "sealed_encrypt",
            json!({"address": addr_json(p.c.addr()), "sender_cert": theirs["sender_cert"],
                   "version": 1, "text": "wrong root"}),
        );
        let ct = unhex(&r["ciphertext"]);
        assert!(
            p.c.dev
                .unseal(&ct, &TrustRoots::new(root.public()))
                .is_err()
        );
        let u = p.c.dev.unseal(&ct, &trust).unwrap();
        assert_eq!(&u.plaintext[..], b"wrong root");
    }
}
