//! Interop scenarios, written over "peer A" (the initiator, alice) and
//! "peer B" (the responder, bob) so the same code runs for every pairing and
//! both directions.

use rand_chacha::ChaCha8Rng;
use serde_json::json;

use crate::device::{Device, Msg, below, random_bytes, short_hex, shuffle, test_rng};
use crate::harness::Impl;

pub(crate) struct Ctx {
    /// Initiator.
    pub(crate) a: Device,
    /// Responder.
    pub(crate) b: Device,
    pub(crate) rng: ChaCha8Rng,
}

/// Runs `scenario` with a fresh pair of peers: `a` initiates.
pub(crate) fn run(name: &str, a: Impl, b: Impl, scenario: fn(&mut Ctx)) {
    let what = format!(
        "scenario {name}: alice[{}] initiates, bob[{}] responds",
        a.label(),
        b.label()
    );
    let rng = test_rng(&what);
    let mut ctx = Ctx {
        a: Device::new(a, "alice", 1),
        b: Device::new(b, "bob", 7),
        rng,
    };
    scenario(&mut ctx);
}

/// Encrypts a random payload of `len` bytes.
pub(crate) fn send(rng: &mut ChaCha8Rng, from: &mut Device, to: &Device, len: usize) -> Msg {
    let pt = random_bytes(rng, len);
    from.encrypt(to, &pt)
}

/// A short random payload length, to vary message sizes a little.
fn some_len(rng: &mut ChaCha8Rng) -> usize {
    1 + below(rng, 64)
}

fn expect_type(m: &Msg, kind: u64, why: &str) {
    assert_eq!(
        m.kind, kind,
        "message {} should be type {kind} ({why}), is type {}",
        m.tag, m.kind
    );
}

/// Bob publishes a bundle, alice processes it and sends the first (prekey)
/// message, bob answers, alice answers back: a full round trip.
pub(crate) fn establish(c: &mut Ctx, one_time: bool) {
    assert!(
        !c.a.has_session(&c.b),
        "{} has a session before any bundle",
        c.a.label()
    );
    let bundle = c.b.bundle(one_time);
    c.a.start_session(&c.b, bundle);
    assert!(
        c.a.has_session(&c.b),
        "{} has no session after process_bundle",
        c.a.label()
    );
    let len = some_len(&mut c.rng);
    let m = send(&mut c.rng, &mut c.a, &c.b, len);
    expect_type(&m, 3, "first message of a new session");
    c.b.decrypt(&c.a, &m);
    assert!(
        c.b.has_session(&c.a),
        "{} has no session after decrypting a prekey message",
        c.b.label()
    );
    round_trip(c);
}

/// Bob sends, alice decrypts, alice sends, bob decrypts: all type 2.
pub(crate) fn round_trip(c: &mut Ctx) {
    let len = some_len(&mut c.rng);
    let r = send(&mut c.rng, &mut c.b, &c.a, len);
    expect_type(&r, 2, "reply in an established session");
    c.a.decrypt(&c.b, &r);
    let len = some_len(&mut c.rng);
    let m = send(&mut c.rng, &mut c.a, &c.b, len);
    expect_type(&m, 2, "after the responder's reply arrived");
    c.b.decrypt(&c.a, &m);
}

pub(crate) fn one_time_prekey(c: &mut Ctx) {
    establish(c, true);
    round_trip(c);
}

pub(crate) fn no_one_time_prekey(c: &mut Ctx) {
    establish(c, false);
    round_trip(c);
}

/// Several prekey messages before any reply, delivered shuffled.
pub(crate) fn prekey_messages_shuffled(c: &mut Ctx) {
    for one_time in [true, false] {
        if !one_time {
            // Start over with a fresh pair for the bundle without a one-time key.
            let (ka, kb) = (c.a.kind, c.b.kind);
            c.a = Device::new(ka, "alice", 1);
            c.b = Device::new(kb, "bob", 7);
        }
        let bundle = c.b.bundle(one_time);
        c.a.start_session(&c.b, bundle);
        let mut msgs: Vec<Msg> = (0..6)
            .map(|_| {
                let len = some_len(&mut c.rng);
                send(&mut c.rng, &mut c.a, &c.b, len)
            })
            .collect();
        for m in &msgs {
            expect_type(m, 3, "no reply received yet");
        }
        shuffle(&mut c.rng, &mut msgs);
        println!(
            "one_time={one_time}: delivery order {:?}",
            msgs.iter().map(|m| m.tag.as_str()).collect::<Vec<_>>()
        );
        for m in &msgs {
            c.b.decrypt(&c.a, m);
        }
        round_trip(c);
        round_trip(c);
    }
}

/// Sends `n` messages one way and delivers them shuffled.
fn one_way_shuffled(rng: &mut ChaCha8Rng, from: &mut Device, to: &mut Device, n: usize) {
    let mut msgs: Vec<Msg> = (0..n)
        .map(|_| {
            let len = some_len(rng);
            send(rng, from, to, len)
        })
        .collect();
    shuffle(rng, &mut msgs);
    for m in &msgs {
        to.decrypt(from, m);
    }
}

/// A 60-message chain each way, delivered shuffled.
pub(crate) fn long_chain_shuffled(c: &mut Ctx) {
    establish(c, true);
    one_way_shuffled(&mut c.rng, &mut c.a, &mut c.b, 60);
    one_way_shuffled(&mut c.rng, &mut c.b, &mut c.a, 60);
    round_trip(c);
}

/// Messages (including a prekey message) held back while the session
/// ratchets through several steps, then delivered.
pub(crate) fn held_across_ratchet_steps(c: &mut Ctx) {
    let bundle = c.b.bundle(true);
    c.a.start_session(&c.b, bundle);
    let mut held_for_b = Vec::new();
    let mut held_for_a = Vec::new();

    // Alice's prekey chain: deliver p0, p1; hold p2 (a prekey message).
    let p: Vec<Msg> = (0..3)
        .map(|_| send(&mut c.rng, &mut c.a, &c.b, 20))
        .collect();
    c.b.decrypt(&c.a, &p[0]);
    c.b.decrypt(&c.a, &p[1]);
    held_for_b.push(p[2].clone());

    // Bob's first chain: hold r1, r3.
    let r: Vec<Msg> = (0..4)
        .map(|_| send(&mut c.rng, &mut c.b, &c.a, 20))
        .collect();
    c.a.decrypt(&c.b, &r[0]);
    c.a.decrypt(&c.b, &r[2]);
    held_for_a.extend([r[1].clone(), r[3].clone()]);

    // Alice's second chain: hold s0, s2.
    let s: Vec<Msg> = (0..4)
        .map(|_| send(&mut c.rng, &mut c.a, &c.b, 20))
        .collect();
    c.b.decrypt(&c.a, &s[1]);
    c.b.decrypt(&c.a, &s[3]);
    held_for_b.extend([s[0].clone(), s[2].clone()]);

    // Two more round trips: four more ratchet steps. (libsignal keeps five
    // receiving chains; this stays within that.)
    for _ in 0..2 {
        let x: Vec<Msg> = (0..2)
            .map(|_| send(&mut c.rng, &mut c.b, &c.a, 20))
            .collect();
        for m in &x {
            c.a.decrypt(&c.b, m);
        }
        let y: Vec<Msg> = (0..2)
            .map(|_| send(&mut c.rng, &mut c.a, &c.b, 20))
            .collect();
        for m in &y {
            c.b.decrypt(&c.a, m);
        }
    }

    shuffle(&mut c.rng, &mut held_for_b);
    shuffle(&mut c.rng, &mut held_for_a);
    for m in &held_for_b {
        c.b.decrypt(&c.a, m);
    }
    for m in &held_for_a {
        c.a.decrypt(&c.b, m);
    }
    round_trip(c);
}

/// Exact plaintext round trip for edge-case sizes, both ways, including in
/// the prekey messages themselves.
pub(crate) fn payload_sizes(c: &mut Ctx) {
    const SIZES: [usize; 5] = [0, 1, 140, 1024, 65536];
    let bundle = c.b.bundle(true);
    c.a.start_session(&c.b, bundle);
    for len in SIZES {
        let m = send(&mut c.rng, &mut c.a, &c.b, len);
        expect_type(&m, 3, "no reply received yet");
        c.b.decrypt(&c.a, &m);
    }
    for len in SIZES {
        let r = send(&mut c.rng, &mut c.b, &c.a, len);
        c.a.decrypt(&c.b, &r);
    }
    for len in SIZES {
        let m = send(&mut c.rng, &mut c.a, &c.b, len);
        expect_type(&m, 2, "after a reply");
        c.b.decrypt(&c.a, &m);
    }
    // Text (UTF-8) path of encrypt/decrypt too.
    let text = "héllo wörld ✓";
    let r =
        c.a.peer
            .ok("encrypt", json!({ "address": c.b.address(), "text": text }));
    let d = c.b.peer.ok(
        "decrypt",
        json!({ "address": c.a.address(), "type": r["type"], "ciphertext": r["ciphertext"] }),
    );
    assert_eq!(d["text"], json!(text), "text round trip");
    assert_eq!(
        d["plaintext"],
        json!(hex::encode(text)),
        "text as plaintext hex"
    );
}

/// Both sides process each other's bundle and send prekey messages at once;
/// both are delivered, then they keep talking until both decrypt everything.
pub(crate) fn simultaneous_initiation(c: &mut Ctx) {
    const ROUNDS: usize = 8;
    /// Rounds after the crossing prekey messages in which a failure is
    /// tolerated while the two sides settle on one session.
    const SETTLE: usize = 2;

    let ba = c.a.bundle(true);
    let bb = c.b.bundle(true);
    c.a.start_session(&c.b, bb);
    c.b.start_session(&c.a, ba);
    let ma = send(&mut c.rng, &mut c.a, &c.b, 16);
    let mb = send(&mut c.rng, &mut c.b, &c.a, 16);
    expect_type(&ma, 3, "simultaneous initiation");
    expect_type(&mb, 3, "simultaneous initiation");
    c.b.decrypt(&c.a, &ma);
    c.a.decrypt(&c.b, &mb);

    let mut trace = Vec::new();
    let mut last_failure = None;
    for round in 0..ROUNDS {
        let x = send(&mut c.rng, &mut c.a, &c.b, 16);
        let rx = c.b.try_decrypt(&c.a, &x);
        let y = send(&mut c.rng, &mut c.b, &c.a, 16);
        let ry = c.a.try_decrypt(&c.b, &y);
        let ok_x = matches!(&rx, Ok(p) if *p == x.pt);
        let ok_y = matches!(&ry, Ok(p) if *p == y.pt);
        trace.push(format!(
            "round {round}: alice->bob type {} {}; bob->alice type {} {}",
            x.kind,
            outcome(&rx),
            y.kind,
            outcome(&ry)
        ));
        if !(ok_x && ok_y) {
            last_failure = Some(round);
        }
    }
    let trace = trace.join("\n");
    println!("{trace}");
    if let Some(r) = last_failure {
        assert!(
            r < SETTLE,
            "no convergence: a message failed in round {r} (only rounds < {SETTLE} may fail)\n{trace}"
        );
    }
    round_trip(c);
}

fn outcome(r: &Result<Vec<u8>, crate::device::DecryptError>) -> String {
    match r {
        Ok(p) => format!("ok ({} bytes)", p.len()),
        Err(e) => format!("FAILED code={} error={}", e.code, e.error),
    }
}

fn sign(dev: &mut Device, msg: &[u8]) -> Vec<u8> {
    let r = dev.peer.ok("sign", json!({ "message": hex::encode(msg) }));
    let sig = hex::decode(r["signature"].as_str().unwrap_or("")).unwrap_or_default();
    if sig.len() != 64 {
        dev.peer
            .fail(&format!("sign returned a non-64-byte signature: {r}"));
    }
    sig
}

fn verify(dev: &mut Device, key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let r = dev.peer.ok(
        "verify",
        json!({ "public_key": hex::encode(key), "message": hex::encode(msg), "signature": hex::encode(sig) }),
    );
    match r["valid"] {
        serde_json::Value::Bool(v) => v,
        _ => dev
            .peer
            .fail(&format!("verify reply lacks bool valid: {r}")),
    }
}

fn flip_bit(rng: &mut ChaCha8Rng, v: &[u8]) -> Vec<u8> {
    let mut v = v.to_vec();
    let i = below(rng, v.len());
    v[i] ^= 1 << below(rng, 8);
    v
}

/// XEdDSA signatures made by one implementation verify in the other, and
/// a flipped bit in signature or message, or the wrong key, fails.
pub(crate) fn sign_verify(c: &mut Ctx) {
    sign_verify_one_way(&mut c.rng, &mut c.a, &mut c.b);
    sign_verify_one_way(&mut c.rng, &mut c.b, &mut c.a);
}

fn sign_verify_one_way(rng: &mut ChaCha8Rng, signer: &mut Device, verifier: &mut Device) {
    for len in [0usize, 1, 32, 1024] {
        let msg = random_bytes(rng, len);
        let sig = sign(signer, &msg);
        let key = signer.identity_key.clone();
        let ctx = format!(
            "{} signed {len} bytes {} -> {}; verified by {}",
            signer.label(),
            short_hex(&msg),
            short_hex(&sig),
            verifier.label()
        );
        assert!(verify(signer, &key, &msg, &sig), "self-verify: {ctx}");
        assert!(verify(verifier, &key, &msg, &sig), "cross-verify: {ctx}");
        for _ in 0..3 {
            let bad = flip_bit(rng, &sig);
            assert!(
                !verify(verifier, &key, &msg, &bad),
                "flipped signature bit verified: {ctx}, bad sig {}",
                hex::encode(&bad)
            );
        }
        if !msg.is_empty() {
            let bad = flip_bit(rng, &msg);
            assert!(
                !verify(verifier, &key, &bad, &sig),
                "flipped message bit verified: {ctx}"
            );
        }
        let other = verifier.identity_key.clone();
        assert!(
            !verify(verifier, &other, &msg, &sig),
            "verified under the wrong key: {ctx}"
        );
    }
}
