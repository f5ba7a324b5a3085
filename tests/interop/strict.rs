//! Strictness with confide as the RECEIVER of bad input: replays, corrupted
//! bytes, relabelled versions and wrong type numbers must all be rejected,
//! and rejecting them must leave the session state untouched, so the genuine
//! message and every later one still decrypt. The node libraries are never
//! the receiver here: they are known to accept relabelled versions and to
//! damage sessions after a failed decrypt, and confide is not weakened to
//! match them.

use rand_chacha::ChaCha8Rng;

use crate::device::{Device, Msg, below, short_hex, test_rng};
use crate::harness::Impl;
use crate::scenarios::send;
use crate::wire::{self, PreKeyMsg, Val};

struct Strict {
    snd: Device,
    rcv: Device,
    rng: ChaCha8Rng,
}

/// A corrupted copy of a message: what was done, type number, bytes.
struct Bad {
    what: String,
    kind: u64,
    ct: Vec<u8>,
}

fn bad(what: impl Into<String>, kind: u64, ct: Vec<u8>) -> Bad {
    Bad {
        what: what.into(),
        kind,
        ct,
    }
}

fn flip(rng: &mut ChaCha8Rng, v: &[u8], range: std::ops::Range<usize>) -> (usize, u8, Vec<u8>) {
    let i = range.start + below(rng, range.len());
    let bit = 1u8 << below(rng, 8);
    let mut v = v.to_vec();
    v[i] ^= bit;
    (i, bit, v)
}

fn relabel(ct: &[u8], version: u8) -> Vec<u8> {
    let mut v = ct.to_vec();
    v[0] = version;
    v
}

/// Corruptions of a SignalMessage: version ‖ protobuf ‖ 8-byte MAC.
fn signal_corruptions(rng: &mut ChaCha8Rng, ct: &[u8]) -> Vec<Bad> {
    let n = ct.len();
    assert!(n > 9, "SignalMessage too short: {n}");
    let mut v = Vec::new();
    for _ in 0..3 {
        let (i, bit, c) = flip(rng, ct, 1..n - 8);
        v.push(bad(format!("body byte {i} ^= {bit:#04x}"), 2, c));
    }
    for _ in 0..2 {
        let (i, bit, c) = flip(rng, ct, n - 8..n);
        v.push(bad(format!("MAC byte {i} ^= {bit:#04x}"), 2, c));
    }
    v.push(bad("truncated by 1 byte", 2, ct[..n - 1].to_vec()));
    v.push(bad("MAC cut off", 2, ct[..n - 8].to_vec()));
    v.push(bad("only the version byte", 2, ct[..1].to_vec()));
    v.push(bad("empty", 2, Vec::new()));
    v.push(bad("one byte appended", 2, [ct, &[0]].concat()));
    for ver in [0x23, 0x43, 0x32, 0x34, 0x00] {
        v.push(bad(
            format!("version byte 0x33 -> {ver:#04x}"),
            2,
            relabel(ct, ver),
        ));
    }
    for kind in [3, 1, 7] {
        v.push(bad(format!("delivered as type {kind}"), kind, ct.to_vec()));
    }
    v
}

/// Corruptions of a PreKeySignalMessage: version ‖ protobuf, whose field 4 is
/// a whole SignalMessage. Only authenticated or key-selecting parts are
/// touched (a flipped registration id, say, is legitimately accepted).
fn prekey_corruptions(rng: &mut ChaCha8Rng, ct: &[u8]) -> Vec<Bad> {
    let m = PreKeyMsg::parse(ct).unwrap_or_else(|e| panic!("{e}: {}", short_hex(ct)));
    let inner = m.bytes(wire::MESSAGE).unwrap().clone();
    let n = inner.len();
    let mut v = Vec::new();
    for ver in [0x23, 0x43] {
        v.push(bad(
            format!("outer version 0x33 -> {ver:#04x}"),
            3,
            relabel(ct, ver),
        ));
        v.push(bad(
            format!("inner SignalMessage version 0x33 -> {ver:#04x}"),
            3,
            m.with_inner(|i| i[0] = ver).serialize(),
        ));
    }
    for _ in 0..2 {
        let (i, bit, c) = flip(rng, &inner, n - 8..n);
        v.push(bad(
            format!("inner MAC byte {i} ^= {bit:#04x}"),
            3,
            m.with(wire::MESSAGE, Val::Bytes(c)).serialize(),
        ));
        let (i, bit, c) = flip(rng, &inner, 1..n - 8);
        v.push(bad(
            format!("inner body byte {i} ^= {bit:#04x}"),
            3,
            m.with(wire::MESSAGE, Val::Bytes(c)).serialize(),
        ));
    }
    v.push(bad(
        "inner SignalMessage truncated by 1 byte",
        3,
        m.with_inner(|i| {
            i.pop();
        })
        .serialize(),
    ));
    v.push(bad("truncated by 1 byte", 3, ct[..ct.len() - 1].to_vec()));
    v.push(bad("truncated to half", 3, ct[..ct.len() / 2].to_vec()));
    v.push(bad("only the version byte", 3, ct[..1].to_vec()));
    if let Some(id) = m.varint(wire::PREKEY_ID) {
        v.push(bad(
            format!("unknown one-time prekey id {}", id + 1000),
            3,
            m.with(wire::PREKEY_ID, Val::Varint(id + 1000)).serialize(),
        ));
    }
    if let Some(id) = m.varint(wire::SIGNED_PREKEY_ID) {
        v.push(bad(
            format!("unknown signed prekey id {}", id + 1000),
            3,
            m.with(wire::SIGNED_PREKEY_ID, Val::Varint(id + 1000))
                .serialize(),
        ));
    }
    if let Some(key) = m.bytes(wire::IDENTITY_KEY) {
        // A low bit of the key: a flipped top bit would be ignored by X25519.
        let mut k = key.clone();
        k[5] ^= 0x01;
        v.push(bad(
            "sender identity key altered",
            3,
            m.with(wire::IDENTITY_KEY, Val::Bytes(k)).serialize(),
        ));
    }
    v.push(bad("delivered as type 2", 2, ct.to_vec()));
    v.push(bad("delivered as type 7", 7, ct.to_vec()));
    v
}

impl Strict {
    fn expect_rejected(&mut self, m: &Msg, b: &Bad) {
        match self.rcv.try_decrypt_raw(&self.snd, b.kind, &b.ct) {
            Err(e) => println!("  {} {}: rejected ({})", m.tag, b.what, e.code),
            Ok(pt) => self.rcv.peer.fail(&format!(
                "ACCEPTED corrupted message {} ({}): type {} bytes {} decrypted to {}",
                m.tag,
                b.what,
                b.kind,
                hex::encode(&b.ct),
                short_hex(&pt)
            )),
        }
    }

    fn expect_duplicate(&mut self, m: &Msg) {
        match self.rcv.try_decrypt(&self.snd, m) {
            Err(e) if e.code == "DuplicateMessage" => {
                println!("  {} replay: rejected (DuplicateMessage)", m.tag)
            }
            Err(e) => self.rcv.peer.fail(&format!(
                "replayed message {} (type {}) rejected with code {:?} (error {:?}), want DuplicateMessage",
                m.tag, m.kind, e.code, e.error
            )),
            Ok(_) => self.rcv.peer.fail(&format!(
                "replayed message {} (type {}) was decrypted a second time",
                m.tag, m.kind
            )),
        }
    }

    /// Every corruption of `m` is rejected; then `m` itself decrypts.
    fn battery(&mut self, m: &Msg) {
        let bads = if m.kind == 3 {
            prekey_corruptions(&mut self.rng, &m.ct)
        } else {
            signal_corruptions(&mut self.rng, &m.ct)
        };
        for b in &bads {
            self.expect_rejected(m, b);
        }
        self.rcv.decrypt(&self.snd, m);
    }

    fn send_to_rcv(&mut self) -> Msg {
        send(&mut self.rng, &mut self.snd, &self.rcv, 24)
    }

    fn send_to_snd(&mut self) -> Msg {
        send(&mut self.rng, &mut self.rcv, &self.snd, 24)
    }

    /// rcv replies, snd decrypts, snd sends one more, rcv decrypts.
    fn round_trip(&mut self) {
        let r = self.send_to_snd();
        self.snd.decrypt(&self.rcv, &r);
        let m = self.send_to_rcv();
        self.rcv.decrypt(&self.snd, &m);
    }
}

/// Runs the strictness checks with `sender` (a node library) sending to
/// confide. `sender_initiates` picks who processes whose bundle.
pub(crate) fn run(sender: Impl, sender_initiates: bool) {
    let what = format!(
        "strict: bob[{}] sends to alice[confide], {} initiates",
        sender.label(),
        if sender_initiates {
            "sender"
        } else {
            "confide"
        }
    );
    let rng = test_rng(&what);
    let mut s = Strict {
        snd: Device::new(sender, "bob", 2),
        rcv: Device::new(Impl::Confide, "alice", 1),
        rng,
    };

    let first_prekey_msg = if sender_initiates {
        let bundle = s.rcv.bundle(true);
        s.snd.start_session(&s.rcv, bundle);
        let p0 = s.send_to_rcv();
        let p1 = s.send_to_rcv();
        assert_eq!((p0.kind, p1.kind), (3, 3), "sender's first messages");
        // Failures must not consume the one-time prekey or create a session.
        s.battery(&p0);
        s.expect_duplicate(&p0);
        s.rcv.decrypt(&s.snd, &p1);
        s.expect_duplicate(&p1);
        Some(p0)
    } else {
        let bundle = s.snd.bundle(true);
        s.rcv.start_session(&s.snd, bundle);
        let p = s.send_to_snd();
        assert_eq!(p.kind, 3, "confide's first message");
        s.snd.decrypt(&s.rcv, &p);
        // The sender's first reply makes confide take its first ratchet step.
        let r0 = s.send_to_rcv();
        assert_eq!(r0.kind, 2, "reply");
        s.battery(&r0);
        s.expect_duplicate(&r0);
        None
    };
    s.round_trip();

    // Mid-chain, out of order: m1 before m0, each after its corruptions.
    let m: Vec<Msg> = (0..4).map(|_| s.send_to_rcv()).collect();
    s.battery(&m[1]);
    s.expect_duplicate(&m[1]);
    s.battery(&m[0]); // from a skipped message key
    s.expect_duplicate(&m[0]);
    s.rcv.decrypt(&s.snd, &m[3]);
    s.rcv.decrypt(&s.snd, &m[2]);
    s.expect_duplicate(&m[2]);

    if let Some(p0) = &first_prekey_msg {
        // The prekey message replayed after the session moved on.
        let p0 = p0.clone();
        s.expect_duplicate(&p0);
    }

    // A message that starts a new sending chain: receiving it takes a DH
    // ratchet step, which every failed attempt must roll back.
    for _ in 0..2 {
        let r = s.send_to_snd();
        s.snd.decrypt(&s.rcv, &r);
        let n0 = s.send_to_rcv();
        let n1 = s.send_to_rcv();
        s.battery(&n1); // skips n0 across the new step
        s.battery(&n0);
        s.expect_duplicate(&n0);
        s.expect_duplicate(&n1);
    }
    s.round_trip();

    // A different identity claiming the sender's address must not be
    // trusted (no trust_all was given), and must not disturb the session.
    let mut impostor = Device::new(sender, "bob", 2);
    let bundle = s.rcv.bundle(true);
    impostor.start_session(&s.rcv, bundle);
    let fake = send(&mut s.rng, &mut impostor, &s.rcv, 24);
    if let Ok(pt) = s.rcv.try_decrypt(&impostor, &fake) {
        s.rcv.peer.fail(&format!(
            "ACCEPTED a prekey message from a new identity key for an address with a known one ({} bytes)",
            pt.len()
        ));
    }
    s.round_trip();
    assert!(s.rcv.has_session(&s.snd));
}
