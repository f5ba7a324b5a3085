//! v4 sessions from either side's bundle, and long conversations over them: ping-pong
//! (a DH-ratchet step every message), bursts delivered shuffled with messages held back
//! across SPQR epochs and delivered reversed, and long one-way runs of which only a
//! scattered part arrives (SPQR's erasure code rebuilding its payload from parity
//! chunks). Every message is checked to be v4 (`0x44`) with a `pq_ratchet`, and the SPQR
//! epochs both sides' messages carry must advance.

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use serde_json::json;

use super::wire::{self, parse_prekey};
use super::{
    CONFIDE_NAME, Confide, LIBSIGNAL_NAME, Libsignal, Pair, Wire, addr_json, bundle_to_json,
    confide_bundle, shuffle,
};

/// The first messages of the initiator: prekey messages that repeat the same base key,
/// Kyber id and ciphertext until answered (facts §1.4).
/// The inner SignalMessage's `addresses` field, when present (libsignal always fills it
/// between ServiceId-named devices), names (sender, recipient).
fn check_prekey_messages(ws: &[Wire], one_time: bool, addresses: &[u8]) {
    let first = parse_prekey(&ws[0].bytes).1;
    for w in ws {
        let inner = wire::parse_signal(&wire::inner_signal(w.ty, &w.bytes)).1;
        if let Some(a) = inner.addresses {
            assert_eq!(hex::encode(a), hex::encode(addresses), "field 6");
        }
        assert_eq!(w.ty, 3, "unacknowledged: a PreKeySignalMessage");
        assert_eq!(w.bytes[0], wire::V4);
        let pb = parse_prekey(&w.bytes).1;
        assert_eq!(pb.base_key, first.base_key);
        assert_eq!(pb.kyber_pre_key_id, first.kyber_pre_key_id);
        let ct = pb
            .kyber_ciphertext
            .clone()
            .expect("field 8 kyber_ciphertext");
        assert_eq!((ct.len(), ct[0]), (1569, 0x08));
        assert_eq!(pb.kyber_ciphertext, first.kyber_ciphertext);
        assert_eq!(pb.pre_key_id.is_some(), one_time, "one-time EC prekey id");
    }
}

/// Both sides speak: three unanswered prekey messages from the initiator, read
/// out of order, then answers and a few more rounds.
fn converse(p: &mut Pair, confide_initiates: bool, one_time: bool) {
    if confide_initiates {
        let ws: Vec<Wire> = (0..3).map(|_| p.c_sends()).collect();
        let a = wire::addresses((CONFIDE_NAME, 1), (LIBSIGNAL_NAME, 1));
        let inner = wire::parse_signal(&wire::inner_signal(3, &ws[0].bytes)).1;
        assert!(
            inner.addresses.is_some(),
            "confide fills field 6 as libsignal does"
        );
        check_prekey_messages(&ws, one_time, &a);
        for i in [1, 0, 2] {
            p.l_reads(&ws[i]);
        }
        for _ in 0..3 {
            let w = p.l_sends();
            assert_eq!(w.ty, 2);
            p.c_reads(&w);
        }
    } else {
        let ws: Vec<Wire> = (0..3).map(|_| p.l_sends()).collect();
        let a = wire::addresses((LIBSIGNAL_NAME, 1), (CONFIDE_NAME, 1));
        let inner = wire::parse_signal(&wire::inner_signal(3, &ws[0].bytes)).1;
        assert!(inner.addresses.is_some(), "libsignal fills field 6");
        check_prekey_messages(&ws, one_time, &a);
        for i in [2, 0, 1] {
            p.c_reads(&ws[i]);
        }
        for _ in 0..3 {
            let w = p.c_sends();
            assert_eq!(w.ty, 2);
            p.l_reads(&w);
        }
    }
    for _ in 0..4 {
        let w = p.c_sends();
        assert_eq!(w.ty, 2, "acknowledged: SignalMessages from now on");
        p.l_reads(&w);
        let w = p.l_sends();
        assert_eq!(w.ty, 2);
        p.c_reads(&w);
    }
}

const CASES: [(bool, bool); 4] = [(true, false), (true, true), (false, false), (false, true)];

/// confide processes libsignal's bundle (with and without a one-time EC prekey, with a
/// one-time and with a last-resort Kyber prekey). A second confide device then starts
/// from the same bundle: libsignal accepts it only when nothing one-time was in it.
#[test]
fn v4_confide_starts_from_libsignal_bundles() {
    for (i, (one_time, last_resort)) in CASES.into_iter().enumerate() {
        let what = format!("one-time EC {one_time}, last-resort Kyber {last_resort}");
        let mut p = Pair::new(100 + i as u64);
        let b = p.l.bundle(one_time, last_resort);
        let bundle = super::bundle_from_json(&b);
        p.c.dev.start_session(&p.l.addr, &bundle).unwrap();
        converse(&mut p, true, one_time);

        let other = Confide::new("c0ff1de0-4444-4000-8000-0000000000c5", 200 + i as u64);
        other.dev.start_session(&p.l.addr, &bundle).unwrap();
        let m = other.dev.encrypt_raw(&p.l.addr, b"second session").unwrap();
        let r = p.l.p.call(
            "decrypt",
            json!({"address": addr_json(other.addr()), "type": m.message_type(),
                   "ciphertext": hex::encode(m.serialized())}),
        );
        let reusable = !one_time && last_resort;
        assert_eq!(
            r["ok"],
            json!(reusable),
            "{what}: second session from one bundle: {r}"
        );
        if reusable {
            assert_eq!(r["text"], json!("second session"));
        } else {
            // Refused because the used one-time key is gone from peer.js's store (a
            // store callback's error, which libsignal 0.103 reports as Generic).
            assert!(
                r["error"].as_str().unwrap_or("").contains("no key with id"),
                "{what}: {r}"
            );
        }
        // The first session is unaffected.
        let w = p.c_sends();
        p.l_reads(&w);
    }
}

/// libsignal processes confide's bundle, in the same four kinds. A second libsignal
/// device then starts from the same bundle: confide accepts it only when nothing
/// one-time was in it.
#[test]
fn v4_libsignal_starts_from_confide_bundles() {
    for (i, (one_time, last_resort)) in CASES.into_iter().enumerate() {
        let what = format!("one-time EC {one_time}, last-resort Kyber {last_resort}");
        let mut p = Pair::new(300 + i as u64);
        let json = p.libsignal_starts(one_time, last_resort);
        converse(&mut p, false, one_time);

        let mut other = Libsignal::new("11b51911-4444-4000-8000-0000000011b5");
        other.p.ok(
            "process_bundle",
            json!({"address": addr_json(p.c.addr()), "bundle": json}),
        );
        let r = other.p.ok(
            "encrypt",
            json!({"address": addr_json(p.c.addr()), "text": "second session"}),
        );
        let m = confide::CiphertextMessage::from_parts(
            u8::try_from(r["type"].as_u64().unwrap()).unwrap(),
            &super::unhex(&r["ciphertext"]),
        )
        .unwrap();
        let got = p.c.dev.decrypt_raw(&other.addr, &m);
        let reusable = !one_time && last_resort;
        match got {
            Ok(d) => {
                assert!(reusable, "{what}: confide accepted a one-time key twice");
                assert_eq!(&d.plaintext[..], b"second session");
            }
            Err(e) => {
                assert!(
                    !reusable,
                    "{what}: confide refused a last-resort key's second session: {e:?}"
                );
                if one_time {
                    assert!(
                        matches!(e, confide::DecryptError::UnknownPreKey { .. }),
                        "{what}: {e:?}"
                    );
                } else {
                    assert!(
                        matches!(e, confide::DecryptError::UnknownKyberPreKey { .. }),
                        "{what}: {e:?}"
                    );
                }
            }
        }
        let w = p.l_sends();
        p.c_reads(&w);
    }
}

/// confide's v4 bundle itself: a last-resort Kyber prekey, 0x08 ‖ 1568 bytes, signed
/// by the identity over its serialized form, and one-time ones from the top-up, all
/// accepted by libsignal (whose `process_bundle` checks both signatures).
#[test]
fn v4_confide_bundle_is_what_libsignal_wants() {
    let c = Confide::new(super::CONFIDE_NAME, 7);
    let b = confide_bundle(&c, true, false);
    let j = bundle_to_json(&b);
    assert_eq!(super::unhex(&j["kyber_prekey"]).len(), 1569);
    let mut l = Libsignal::new(super::LIBSIGNAL_NAME);
    l.p.ok(
        "process_bundle",
        json!({"address": addr_json(c.addr()), "bundle": j}),
    );
    // A bad Kyber signature is refused by libsignal (and by confide for its own).
    let mut bad = j.clone();
    let mut sig = super::unhex(&j["kyber_prekey_signature"]);
    sig[10] ^= 1;
    bad["kyber_prekey_signature"] = json!(hex::encode(sig));
    let mut l2 = Libsignal::new(super::LIBSIGNAL_NAME);
    let r = l2.p.call(
        "process_bundle",
        json!({"address": addr_json(c.addr()), "bundle": bad}),
    );
    assert_eq!(r["ok"], json!(false), "{r}");
    let mut theirs = l.bundle(true, true);
    let mut sig = super::unhex(&theirs["kyber_prekey_signature"]);
    sig[10] ^= 1;
    theirs["kyber_prekey_signature"] = json!(hex::encode(sig));
    let c2 = Confide::new(super::CONFIDE_NAME, 8);
    assert!(
        c2.dev
            .start_session(&l.addr, &super::bundle_from_json(&theirs))
            .is_err(),
        "confide accepted a bundle whose Kyber signature is bad"
    );
    assert!(!c2.dev.has_session(&l.addr).unwrap());
}

/// 120 rounds of ping-pong: every message a DH-ratchet step, SPQR epochs advancing.
#[test]
fn v4_ping_pong() {
    for confide_initiates in [true, false] {
        let mut p = Pair::new(if confide_initiates { 11 } else { 12 });
        if confide_initiates {
            p.confide_starts(true, true);
        } else {
            p.libsignal_starts(true, true);
        }
        for _ in 0..120 {
            if confide_initiates {
                let w = p.c_sends();
                p.l_reads(&w);
                let w = p.l_sends();
                p.c_reads(&w);
            } else {
                let w = p.l_sends();
                p.c_reads(&w);
                let w = p.c_sends();
                p.l_reads(&w);
            }
        }
        eprintln!(
            "ping-pong: SPQR epochs confide {}, libsignal {}",
            p.max_epoch_c, p.max_epoch_l
        );
        // libsignal↔libsignal ping-pong moves to epoch 3 after about 90 rounds.
        assert!(
            p.max_epoch_c >= 3 && p.max_epoch_l >= 3,
            "SPQR epochs did not advance: confide {}, libsignal {}",
            p.max_epoch_c,
            p.max_epoch_l
        );
    }
}

/// Bursts of 20 each way, delivered shuffled; two of each burst held back two rounds
/// (four DH steps; SPQR moves an epoch about every 3.5 rounds here, so many cross an
/// epoch) and then delivered in reverse order of sending.
#[test]
fn v4_bursts_with_held_back_messages_across_epochs() {
    for confide_initiates in [true, false] {
        let mut rng = ChaCha20Rng::seed_from_u64(if confide_initiates { 21 } else { 22 });
        let mut p = Pair::new(rng.next_u64());
        if confide_initiates {
            p.confide_starts(false, true);
        } else {
            p.libsignal_starts(false, false);
        }
        let mut held: Vec<(usize, bool, Wire)> = Vec::new();
        let mut crossed = 0;
        for round in 0..16 {
            for confide_sends in [confide_initiates, !confide_initiates] {
                let mut ws: Vec<Wire> = (0..20)
                    .map(|_| {
                        if confide_sends {
                            p.c_sends()
                        } else {
                            p.l_sends()
                        }
                    })
                    .collect();
                let late = ws.remove(13);
                let early = ws.remove(4);
                held.push((round + 2, confide_sends, early));
                held.push((round + 2, confide_sends, late));
                if round == 0 {
                    // The first burst's first message carries the session; read it first.
                    let first = ws.remove(0);
                    if confide_sends {
                        p.l_reads(&first)
                    } else {
                        p.c_reads(&first)
                    }
                }
                shuffle(&mut ws, &mut rng);
                for w in &ws {
                    if confide_sends {
                        p.l_reads(w)
                    } else {
                        p.c_reads(w)
                    }
                }
            }
            let (due, rest): (Vec<_>, Vec<_>) = held.drain(..).partition(|h| h.0 == round);
            held = rest;
            for (_, confide_sent, w) in due.into_iter().rev() {
                let h = wire::spqr_of(w.ty, &w.bytes);
                let now = if confide_sent {
                    p.max_epoch_l
                } else {
                    p.max_epoch_c
                };
                if h.epoch < now {
                    crossed += 1;
                }
                if confide_sent {
                    p.l_reads(&w)
                } else {
                    p.c_reads(&w)
                }
            }
        }
        assert!(
            p.max_epoch_c >= 4 && p.max_epoch_l >= 4,
            "epochs {} {}",
            p.max_epoch_c,
            p.max_epoch_l
        );
        eprintln!(
            "bursts: SPQR epochs confide {}, libsignal {}; {crossed} held-back messages crossed an epoch",
            p.max_epoch_c, p.max_epoch_l
        );
        assert!(
            crossed >= 4,
            "only {crossed} held-back messages crossed an SPQR epoch"
        );
    }
}

/// Long one-way runs (250 messages) in each direction, several times, at whatever
/// phase SPQR is in: only the last 40 of each run arrive, shuffled, so the receiver
/// rebuilds SPQR's chunked payload from chunk indices far past the payload's own
/// (parity). Between runs a few answers move the state on. The run's first message is
/// delivered too, so the DR skipped-key store holds a long gap.
#[test]
fn v4_long_one_way_runs() {
    let mut rng = ChaCha20Rng::seed_from_u64(31);
    let mut p = Pair::new(32);
    p.confide_starts(true, false);
    let w = p.c_sends();
    p.l_reads(&w);
    let w = p.l_sends();
    p.c_reads(&w);
    let mut max_chunk = 0;
    for run in 0..6 {
        let confide_sends = run % 2 == 0;
        let mut ws: Vec<Wire> = (0..250)
            .map(|_| {
                if confide_sends {
                    p.c_sends()
                } else {
                    p.l_sends()
                }
            })
            .collect();
        for w in &ws {
            if let Some(c) = wire::spqr_of(w.ty, &w.bytes).chunk {
                max_chunk = max_chunk.max(c);
            }
        }
        let first = ws.remove(0);
        let mut tail = ws.split_off(ws.len() - 40);
        shuffle(&mut tail, &mut rng);
        if confide_sends {
            p.l_reads(&first);
        } else {
            p.c_reads(&first);
        }
        for w in &tail {
            if confide_sends {
                p.l_reads(w)
            } else {
                p.c_reads(w)
            }
        }
        // A few answers each way.
        for _ in 0..6 {
            let w = p.l_sends();
            p.c_reads(&w);
            let w = p.c_sends();
            p.l_reads(&w);
        }
    }
    eprintln!(
        "one-way runs: chunk indices up to {max_chunk}; SPQR epochs confide {}, libsignal {}",
        p.max_epoch_c, p.max_epoch_l
    );
    assert!(max_chunk >= 200, "chunk indices reached only {max_chunk}");
    // The erasure-coded payloads arrived: the epochs moved on.
    assert!(
        p.max_epoch_c >= 3 && p.max_epoch_l >= 3,
        "epochs {} {}",
        p.max_epoch_c,
        p.max_epoch_l
    );
}
