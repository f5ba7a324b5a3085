//! Interop of confide's older group layout (`group::Layout::Legacy`) with Baileys' own
//! sender-key code (npm `baileys` 6.17.16, `WASignalGroup`), run by `group_driver.js`
//! in a separate Node process: distribution messages and group messages both
//! directions, shuffled, many, replays, corruption, rotation.
//!
//! What Baileys does differently (asserted here so a change shows up, never copied):
//! - Its sender skips every other iteration: after the first message (iteration 0) it
//!   sends 2, 4, 6, ... (`GroupCipher.encrypt` asks for `iteration + 1`). A receiver
//!   keeps one skipped key per message; confide's bound of 2,000 keys per chain only
//!   drops keys that are never used.
//! - Its receiver refuses a message more than 2,000 iterations ahead (confide: 25,000).
//! - Stored through JSON the way its file-based auth state stores records, a record
//!   loses its skipped message keys (their objects serialize as `{}`), so Baileys
//!   then refuses any message older than the newest one. Kept in memory with every
//!   field, it reads shuffled delivery.
//! - It does not check the version byte of a distribution message (confide refuses
//!   anything but 0x33).

use confide::Address;
use confide::group::{
    DistributionId, GroupDecryptError, GroupSessions, GroupWireError, Layout,
    SenderKeyDistributionMessage, SenderKeyMessage,
};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use serde_json::{Value, json};

use crate::driver::Driver;

const GROUP: &str = "120363000000000001@g.us";

fn unhex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap_or_else(|| panic!("hex string: {v}"))).unwrap()
}

fn shuffle<T>(v: &mut [T], rng: &mut ChaCha20Rng) {
    for i in (1..v.len()).rev() {
        let j = (rng.next_u32() as usize) % (i + 1);
        v.swap(i, j);
    }
}

fn addr_json(a: &Address) -> Value {
    json!({"name": a.name(), "device_id": a.device_id()})
}

fn start() -> Driver {
    let mut d = Driver::spawn("group_driver.js");
    let hello = d.ok(json!({"op": "hello"}));
    assert_eq!(hello["baileys"], "6.17.16", "{hello}");
    d
}

/// Baileys' side of one (group, sender) record.
struct Baileys<'a> {
    d: &'a mut Driver,
    sender: Value,
}

impl Baileys<'_> {
    fn req(&self, op: &str, extra: Value) -> Value {
        let mut r = json!({"op": op, "group": GROUP, "sender": self.sender});
        if let Value::Object(m) = extra {
            r.as_object_mut().unwrap().extend(m);
        }
        r
    }
    fn create(&mut self, rotate: bool) -> Vec<u8> {
        let r = self.req("group_create", json!({"rotate": rotate}));
        unhex(&self.d.ok(r)["skdm"])
    }
    fn process(&mut self, skdm: &[u8], store: &str) -> Value {
        let r = self.req(
            "group_process",
            json!({"skdm": hex::encode(skdm), "store": store}),
        );
        self.d.call(r)
    }
    fn encrypt(&mut self, text: &str) -> Vec<u8> {
        let r = self.req("group_encrypt", json!({"plaintext": hex::encode(text)}));
        unhex(&self.d.ok(r)["ciphertext"])
    }
    fn decrypt(&mut self, ct: &[u8]) -> Value {
        let r = self.req("group_decrypt", json!({"ciphertext": hex::encode(ct)}));
        self.d.call(r)
    }
}

fn opened(reply: &Value) -> String {
    assert_eq!(reply["ok"], json!(true), "Baileys refused: {reply}");
    String::from_utf8(unhex(&reply["plaintext"])).unwrap()
}

/// confide as receiver of one Baileys sender.
struct Receiver {
    sessions: GroupSessions,
    sender: Address,
    dist: DistributionId,
}

impl Receiver {
    fn new(sender: &Address, dist: DistributionId, skdm: &[u8]) -> Self {
        let mut sessions = GroupSessions::new();
        let skdm = SenderKeyDistributionMessage::parse_legacy(skdm).unwrap();
        assert_eq!(skdm.layout(), Layout::Legacy);
        assert_eq!(skdm.distribution_id(), None);
        sessions.process(sender, dist, &skdm).unwrap();
        Self {
            sessions,
            sender: sender.clone(),
            dist,
        }
    }

    fn record(&self) -> Vec<u8> {
        self.sessions
            .record(&self.sender, self.dist)
            .unwrap()
            .to_bytes()
            .to_vec()
    }

    fn decrypt(&mut self, bytes: &[u8]) -> Result<Vec<u8>, GroupDecryptError> {
        let m = SenderKeyMessage::parse_legacy(bytes).unwrap();
        self.sessions
            .decrypt(&self.sender, self.dist, &m)
            .map(|p| p.to_vec())
    }

    /// A refused message must leave the record byte for byte as it was.
    fn refuses(&mut self, bytes: &[u8], want: GroupDecryptError, what: &str) {
        let before = self.record();
        let got = match SenderKeyMessage::parse_legacy(bytes) {
            Ok(m) => self
                .sessions
                .decrypt(&self.sender, self.dist, &m)
                .map(|p| p.to_vec()),
            Err(e) => panic!("{what}: parse failed first ({e})"),
        };
        assert_eq!(got, Err(want), "{what}");
        assert_eq!(self.record(), before, "{what} changed the record");
    }
}

/// Many Baileys messages, shuffled, read by confide; every replay refused with the
/// record unchanged; corrupted messages refused with the record unchanged.
#[test]
fn legacy_group_baileys_to_confide() {
    let mut rng = ChaCha20Rng::seed_from_u64(61);
    let mut d = start();
    let them = Address::new("15550001111", 3);
    let mut b = Baileys {
        d: &mut d,
        sender: addr_json(&them),
    };
    let dist = DistributionId::random(&mut rng);
    let skdm = b.create(false);
    // The older layout carries no distribution id: the current parser refuses it.
    assert!(SenderKeyDistributionMessage::try_from(&skdm[..]).is_err());
    let mut me = Receiver::new(&them, dist, &skdm);

    let mut msgs: Vec<(Vec<u8>, String)> = (0..300)
        .map(|i| {
            let text = format!("baileys group message {i}");
            (b.encrypt(&text), text)
        })
        .collect();
    // Baileys' iterations: 0, 2, 4, ... (see the module comment).
    for (i, (ct, _)) in msgs.iter().enumerate() {
        let m = SenderKeyMessage::parse_legacy(ct).unwrap();
        assert_eq!(m.iteration(), 2 * i as u32, "Baileys message {i}");
        assert!(SenderKeyMessage::try_from(&ct[..]).is_err());
    }
    let last = msgs.pop().unwrap();
    shuffle(&mut msgs, &mut rng);
    for (ct, text) in &msgs {
        assert_eq!(me.decrypt(ct).unwrap(), text.as_bytes());
    }
    shuffle(&mut msgs, &mut rng);
    for (ct, _) in &msgs {
        let it = SenderKeyMessage::parse_legacy(ct).unwrap().iteration();
        me.refuses(
            ct,
            GroupDecryptError::DuplicateMessage { iteration: it },
            "replay",
        );
    }

    // Corruption of the held-back message, then the intact one opens.
    let (ct, text) = last;
    let n = ct.len();
    let chain = SenderKeyMessage::parse_legacy(&ct).unwrap().chain_id();
    for pos in [n / 2, n - 70, n - 1] {
        let mut bad = ct.clone();
        bad[pos] ^= 0x01;
        me.refuses(
            &bad,
            GroupDecryptError::InvalidMessage,
            &format!("byte {pos} of {n} flipped"),
        );
    }
    // The key id (field 1, bytes 2..) names another chain.
    let mut bad = ct.clone();
    bad[2] ^= 0x01;
    let other = SenderKeyMessage::parse_legacy(&bad).unwrap().chain_id();
    assert_ne!(other, chain);
    me.refuses(
        &bad,
        GroupDecryptError::NoSenderKey { chain_id: other },
        "key id flipped",
    );
    let mut bad = ct.clone();
    bad[0] = 0x32;
    assert!(matches!(
        SenderKeyMessage::parse_legacy(&bad),
        Err(GroupWireError::UnsupportedVersion { found: 0x32 })
    ));
    assert_eq!(me.decrypt(&ct).unwrap(), text.as_bytes());
}

/// confide's older-layout messages, many and shuffled, read by Baileys, which refuses
/// replays and corrupted messages; with its JSON store Baileys reads them in order only.
#[test]
fn legacy_group_confide_to_baileys() {
    let mut rng = ChaCha20Rng::seed_from_u64(62);
    let mut d = start();
    let me = Address::new("15550002222", 1);
    let dist = DistributionId::random(&mut rng);
    let mut mine = GroupSessions::new();
    let skdm = mine.distribution(&me, dist, Layout::Legacy, &mut rng);
    assert_eq!(skdm.layout(), Layout::Legacy);
    assert_eq!(skdm.serialized()[0], 0x33);

    let mut encrypt = |mine: &mut GroupSessions, text: &str| {
        let m = mine.encrypt(&me, dist, text.as_bytes(), &mut rng).unwrap();
        assert_eq!(m.layout(), Layout::Legacy);
        m.serialized().to_vec()
    };
    // Two Baileys receivers in one process: one keeps records whole, one stores them
    // through JSON like Baileys' file-based auth state.
    let mut whole = Baileys {
        d: &mut d,
        sender: addr_json(&me),
    };
    let r = whole.process(skdm.serialized(), "clone");
    assert_eq!(r["ok"], json!(true), "{r}");
    let msgs: Vec<(Vec<u8>, String)> = (0..300)
        .map(|i| {
            let text = format!("confide group message {i}");
            (encrypt(&mut mine, &text), text)
        })
        .collect();
    let mut order = msgs.clone();
    shuffle(&mut order, &mut ChaCha20Rng::seed_from_u64(620));
    for (ct, text) in &order {
        assert_eq!(opened(&whole.decrypt(ct)), *text);
    }
    for (ct, _) in order.iter().take(40) {
        let r = whole.decrypt(ct);
        assert_eq!(r["ok"], json!(false), "Baileys accepted a replay: {r}");
        assert!(r["error"].as_str().unwrap().contains("old counter"), "{r}");
    }
    let (ct, text) = (encrypt(&mut mine, "corrupted"), "corrupted");
    let n = ct.len();
    for pos in [3, n / 2, n - 70, n - 1] {
        let mut bad = ct.clone();
        bad[pos] ^= 0x01;
        let r = whole.decrypt(&bad);
        assert_eq!(
            r["ok"],
            json!(false),
            "Baileys accepted byte {pos} flipped: {r}"
        );
    }
    assert_eq!(opened(&whole.decrypt(&ct)), text);

    // Through JSON: in order everything opens; out of order the older one fails.
    // (Another sender name keeps this record apart from the first.)
    let mut json_store = Baileys {
        d: whole.d,
        sender: json!({"name": "15550002222-json-store", "device_id": 1}),
    };
    let r = json_store.process(skdm.serialized(), "json");
    assert_eq!(r["ok"], json!(true), "{r}");
    for (ct, text) in msgs.iter().take(50) {
        assert_eq!(opened(&json_store.decrypt(ct)), *text);
    }
    let r = json_store.decrypt(&msgs[60].0);
    assert_eq!(opened(&r), msgs[60].1);
    let r = json_store.decrypt(&msgs[55].0);
    assert_eq!(
        r["ok"],
        json!(false),
        "Baileys' JSON store kept a skipped key after all: {r}"
    );
}

/// Rotation both ways: a new chain is unreadable before its distribution message and
/// readable after; a message of the old chain held back still opens once.
#[test]
fn legacy_group_rotation() {
    let mut rng = ChaCha20Rng::seed_from_u64(63);
    let mut d = start();
    let dist = DistributionId::random(&mut rng);

    // confide rotates; Baileys receives.
    let me = Address::new("15550003333", 1);
    let mut mine = GroupSessions::new();
    let skdm = mine.distribution(&me, dist, Layout::Legacy, &mut rng);
    let mut b = Baileys {
        d: &mut d,
        sender: addr_json(&me),
    };
    assert_eq!(b.process(skdm.serialized(), "clone")["ok"], json!(true));
    let old = mine.encrypt(&me, dist, b"old chain", &mut rng).unwrap();
    let first = mine.encrypt(&me, dist, b"before", &mut rng).unwrap();
    assert_eq!(opened(&b.decrypt(first.serialized())), "before");
    let rotated = mine.rotate(&me, dist, &mut rng);
    assert_eq!(rotated.layout(), Layout::Legacy);
    assert_ne!(rotated.chain_id(), skdm.chain_id());
    let new = mine.encrypt(&me, dist, b"after", &mut rng).unwrap();
    assert_eq!(new.chain_id(), rotated.chain_id());
    let r = b.decrypt(new.serialized());
    assert_eq!(r["ok"], json!(false), "new chain read before its SKDM: {r}");
    assert_eq!(b.process(rotated.serialized(), "clone")["ok"], json!(true));
    assert_eq!(opened(&b.decrypt(new.serialized())), "after");
    assert_eq!(opened(&b.decrypt(old.serialized())), "old chain");
    assert_eq!(b.decrypt(old.serialized())["ok"], json!(false));

    // Baileys rotates (drops its record and creates a new one); confide receives.
    let them = Address::new("15550004444", 2);
    let mut b = Baileys {
        d: b.d,
        sender: addr_json(&them),
    };
    let skdm = b.create(false);
    let mut rx = Receiver::new(&them, dist, &skdm);
    let held = b.encrypt("held back");
    let seen = b.encrypt("seen");
    assert_eq!(rx.decrypt(&seen).unwrap().as_slice(), b"seen");
    let skdm2 = b.create(true);
    let new = b.encrypt("new chain");
    let new_chain = SenderKeyMessage::parse_legacy(&new).unwrap().chain_id();
    assert_ne!(
        new_chain,
        SenderKeyDistributionMessage::parse_legacy(&skdm)
            .unwrap()
            .chain_id()
    );
    rx.refuses(
        &new,
        GroupDecryptError::NoSenderKey {
            chain_id: new_chain,
        },
        "new chain before its distribution message",
    );
    let skdm2 = SenderKeyDistributionMessage::parse_legacy(&skdm2).unwrap();
    rx.sessions.process(&them, dist, &skdm2).unwrap();
    assert_eq!(rx.decrypt(&new).unwrap().as_slice(), b"new chain");
    assert_eq!(rx.decrypt(&held).unwrap().as_slice(), b"held back");
    let it = SenderKeyMessage::parse_legacy(&held).unwrap().iteration();
    rx.refuses(
        &held,
        GroupDecryptError::DuplicateMessage { iteration: it },
        "old-chain replay",
    );
    // Processing the same distribution message again keeps the chain's progress.
    rx.sessions.process(&them, dist, &skdm2).unwrap();
    rx.refuses(
        &new,
        GroupDecryptError::DuplicateMessage { iteration: 0 },
        "replay after re-processing the distribution message",
    );
}

/// Where Baileys is more lenient or stricter than confide.
#[test]
fn legacy_group_differences() {
    let mut rng = ChaCha20Rng::seed_from_u64(64);
    let mut d = start();
    let me = Address::new("15550005555", 1);
    let dist = DistributionId::random(&mut rng);
    let mut mine = GroupSessions::new();
    let skdm = mine.distribution(&me, dist, Layout::Legacy, &mut rng);

    // A distribution message with another version byte: Baileys takes it, confide not.
    let mut odd = skdm.serialized().to_vec();
    odd[0] = 0x23;
    let mut b = Baileys {
        d: &mut d,
        sender: addr_json(&me),
    };
    assert_eq!(b.process(&odd, "clone")["ok"], json!(true));
    assert!(matches!(
        SenderKeyDistributionMessage::parse_legacy(&odd),
        Err(GroupWireError::UnsupportedVersion { found: 0x23 })
    ));
    // Baileys reads messages at most 2,000 iterations ahead; confide 25,000.
    let mut last = Vec::new();
    for _ in 0..2002 {
        last = mine
            .encrypt(&me, dist, b"far ahead", &mut rng)
            .unwrap()
            .serialized()
            .to_vec();
    }
    let r = b.decrypt(&last);
    assert_eq!(r["ok"], json!(false), "{r}");
    assert!(r["error"].as_str().unwrap().contains("2000"), "{r}");
    let mut rx = Receiver::new(&me, dist, skdm.serialized());
    assert_eq!(rx.decrypt(&last).unwrap().as_slice(), b"far ahead");
}
