//! confide's `examples/peer` started with `CONFIDE_PEER_VERSION=4` against peer.js
//! (libsignal 0.103.0), wired only through PEER_PROTOCOL: each introduces itself by
//! its bundle (confide's now carries a Kyber prekey, so peer.js needs no help), then
//! pairwise traffic (prekey messages, ping-pong, bursts delivered shuffled, replays and
//! corruption refused with the refusals' codes pinned) and sealed sender v1 and v2 around
//! 1:1 messages, every scenario in both directions.

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{Value, json};

use super::{shuffle, unhex};
use crate::harness::Node;

const CONFIDE: &str = "c0ff1de0-8888-4000-8000-00000000c0f8";
const LIBSIGNAL: &str = "11b51911-8888-4000-8000-0000000011b8";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Confide,
    Libsignal,
}

struct Dev {
    side: Side,
    p: Node,
    addr: Value,
}

impl Dev {
    fn new(side: Side) -> Dev {
        let (mut p, name) = match side {
            Side::Confide => (Node::spawn_confide_v4(), CONFIDE),
            Side::Libsignal => (Node::spawn_script("peer.js"), LIBSIGNAL),
        };
        let hello = p.ok("hello", json!({}));
        assert_eq!(
            hello["message_version"],
            json!(4),
            "{side:?} in v4 mode: {hello}"
        );
        p.ok(
            "generate_identity",
            json!({"name": name, "device_id": 1, "registration_id": 600}),
        );
        Dev {
            side,
            p,
            addr: json!({"name": name, "device_id": 1}),
        }
    }

    fn encrypt(&mut self, to: &Value, text: &str) -> Value {
        let r = self.p.ok("encrypt", json!({"address": to, "text": text}));
        let ct = unhex(&r["ciphertext"]);
        assert_eq!(ct[0], 0x44, "{:?} sends v4: {r}", self.side);
        r
    }

    fn decrypt(&mut self, from: &Value, m: &Value) -> Value {
        self.p.call(
            "decrypt",
            json!({"address": from, "type": m["type"], "ciphertext": m["ciphertext"]}),
        )
    }

    fn expect(&mut self, from: &Value, m: &Value, text: &str) {
        let r = self.decrypt(from, m);
        assert_eq!(r["ok"], json!(true), "{:?} refused {text}: {r}", self.side);
        assert_eq!(r["text"], json!(text));
    }

    fn refuses(&mut self, from: &Value, m: &Value, confide: &str, libsignal: &str, what: &str) {
        let r = self.decrypt(from, m);
        assert_eq!(
            r["ok"],
            json!(false),
            "{:?} accepted {what}: {r}",
            self.side
        );
        let want = match self.side {
            Side::Confide => confide,
            Side::Libsignal => libsignal,
        };
        assert_eq!(
            r["code"],
            json!(want),
            "{:?} refusing {what}: {r}",
            self.side
        );
    }
}

/// `s` starts a session from `r`'s bundle (its Kyber prekey one-time or last-resort).
fn pair(sender: Side, one_time: bool, last_resort: bool) -> (Dev, Dev) {
    let other = match sender {
        Side::Confide => Side::Libsignal,
        Side::Libsignal => Side::Confide,
    };
    let (mut s, mut r) = (Dev::new(sender), Dev::new(other));
    let b = r.p.ok(
        "bundle",
        json!({"one_time": one_time, "kyber_last_resort": last_resort}),
    )["bundle"]
        .clone();
    let kyber = unhex(&b["kyber_prekey"]);
    assert_eq!(
        (kyber.len(), kyber[0]),
        (1569, 0x08),
        "{:?}'s bundle: {b}",
        r.side
    );
    s.p.ok("process_bundle", json!({"address": r.addr, "bundle": b}));
    (s, r)
}

fn pairwise(sender: Side, seed: u64) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    for (one_time, last_resort) in [(true, false), (false, true)] {
        let (mut s, mut r) = pair(sender, one_time, last_resort);
        let (sa, ra) = (s.addr.clone(), r.addr.clone());
        let firsts: Vec<(Value, String)> = (0..3)
            .map(|i| {
                let t = format!("{sender:?} prekey message {i}");
                (s.encrypt(&ra, &t), t)
            })
            .collect();
        for (m, t) in firsts.iter().rev() {
            assert_eq!(m["type"], json!(3));
            r.expect(&sa, m, t);
        }
        for i in 0..60 {
            let t = format!("answer {i}");
            let m = r.encrypt(&sa, &t);
            assert_eq!(m["type"], json!(2));
            s.expect(&ra, &m, &t);
            let t = format!("ping {i}");
            let m = s.encrypt(&ra, &t);
            assert_eq!(m["type"], json!(2));
            r.expect(&sa, &m, &t);
        }
        for round in 0..6 {
            for dir in 0..2 {
                let (a, b, from) = if dir == 0 {
                    (&mut s, &mut r, &sa)
                } else {
                    (&mut r, &mut s, &ra)
                };
                let to = if dir == 0 { ra.clone() } else { sa.clone() };
                let mut ms: Vec<(Value, String)> = (0..15)
                    .map(|i| {
                        let t = format!("burst {round}.{dir}.{i}");
                        (a.encrypt(&to, &t), t)
                    })
                    .collect();
                shuffle(&mut ms, &mut rng);
                for (m, t) in &ms {
                    b.expect(from, m, t);
                }
                for (m, _) in ms.iter().take(3) {
                    b.refuses(from, m, "DuplicateMessage", "DuplicatedMessage", "a replay");
                }
                let (m, t) = (a.encrypt(&to, "after corruption"), "after corruption");
                let mut bad = unhex(&m["ciphertext"]);
                let n = bad.len();
                bad[n / 2] ^= 0x01;
                let badm = json!({"type": m["type"], "ciphertext": hex::encode(&bad)});
                b.refuses(
                    from,
                    &badm,
                    "InvalidMessage",
                    "Generic",
                    "a corrupted message",
                );
                b.expect(from, &m, t);
            }
        }
    }
}

#[test]
fn peer_v4_pairwise_confide_to_libsignal() {
    pairwise(Side::Confide, 71);
}

#[test]
fn peer_v4_pairwise_libsignal_to_confide() {
    pairwise(Side::Libsignal, 72);
}

/// Sealed sender v1 and v2 around 1:1 v4 messages, from the first prekey message on,
/// each side sealing under its own certificate.
fn sealed(sender: Side) {
    let (mut s, mut r) = pair(sender, true, false);
    let (sa, ra) = (s.addr.clone(), r.addr.clone());
    let cs = s.p.ok("sender_cert", json!({}));
    let cr = r.p.ok("sender_cert", json!({}));
    for round in 0..8 {
        let version = 1 + round % 2;
        for dir in 0..2 {
            let (a, b, from, to, cert) = if dir == 0 {
                (&mut s, &mut r, &sa, &ra, &cs)
            } else {
                (&mut r, &mut s, &ra, &sa, &cr)
            };
            let text = format!("sealed v{version} round {round} dir {dir}");
            let e = a.p.ok(
                "sealed_encrypt",
                json!({"address": to, "sender_cert": cert["sender_cert"], "version": version,
                       "text": text, "content_hint": 1}),
            );
            let want = if round == 0 && dir == 0 { 3 } else { 2 };
            assert_eq!(e["inner_type"], json!(want), "{:?}: {e}", a.side);
            let ct = unhex(&e["ciphertext"]);
            assert_eq!(ct[0], if version == 1 { 0x11 } else { 0x22 });
            let o = b.p.call(
                "sealed_decrypt",
                json!({"ciphertext": e["ciphertext"], "trust_root": cert["trust_root"]}),
            );
            assert_eq!(o["ok"], json!(true), "{:?} unsealing {text}: {o}", b.side);
            assert_eq!(o["text"], json!(text));
            assert_eq!(&o["sender"], from);
            assert_eq!(o["inner_type"], json!(want));
        }
    }
}

#[test]
fn peer_v4_sealed_confide_to_libsignal() {
    sealed(Side::Confide);
}

#[test]
fn peer_v4_sealed_libsignal_to_confide() {
    sealed(Side::Libsignal);
}

/// A v4 peer refuses a bundle without a Kyber prekey (PEER_PROTOCOL), as libsignal does.
#[test]
fn peer_v4_bundle_without_kyber_refused() {
    for side in [Side::Confide, Side::Libsignal] {
        let mut owner = Dev::new(match side {
            Side::Confide => Side::Libsignal,
            Side::Libsignal => Side::Confide,
        });
        let mut b = owner.p.ok("bundle", json!({}))["bundle"].clone();
        for f in ["kyber_prekey_id", "kyber_prekey", "kyber_prekey_signature"] {
            b[f] = Value::Null;
        }
        let mut d = Dev::new(side);
        let r = d.p.call(
            "process_bundle",
            json!({"address": owner.addr, "bundle": b}),
        );
        assert_eq!(
            r["ok"],
            json!(false),
            "{side:?} took a bundle without Kyber: {r}"
        );
    }
}
