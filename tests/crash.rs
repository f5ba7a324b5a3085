//! Crash test: a child process floods send/receive between two SqliteStores on real
//! database files (1:1 both ways, and Alice's group messages to Bob through
//! [`Device`]) while this process SIGKILLs it at seeded random moments, many times.
//! After every kill: every message delivered exactly once and in order, each with the
//! plaintext its sender meant, no (ratchet key, counter) pair and no (chain id,
//! iteration) pair used by two ciphertexts, both databases pass `integrity_check` and
//! open every row, and the message table agrees with the app's delivery log.
//!
//! The child is this same test binary re-run with `CONFIDE_CRASH_DIR` set (see
//! [`crash_child_entry`]). Kills: `CONFIDE_CRASH_KILLS` (default 240), seed:
//! `CONFIDE_CRASH_SEED`.
//!
//! The child's "app" is what a messenger does: the network is an append-only log per
//! direction (fsynced lines `type:hex`), the app's own inbox is a delivery log per
//! receiver. Sending message n = encrypt, then append to the network log; receiving =
//! decrypt the next network entry, then append it to the inbox. A crash between the
//! store's commit and the log append is exactly the window the store must survive:
//! the re-sent message takes a fresh counter, the re-received one comes back from the
//! store marked `redelivered`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(unix)]

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use confide::cipher::{self, BundleSpec};
use confide::device::{Device, FixedClock};
use confide::group::{DistributionId, Layout, SenderKeyMessage};
use confide::store::{MessageId, SenderKeyStore, SessionStore, SqliteStore, StoreKey};
use confide::{Address, CiphertextMessage, IdentityKeyPair, Timestamp};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

const KEY: [u8; 32] = [0x42; 32];
const NOW: Timestamp = Timestamp::from_millis(1_700_000_000_000);
const GROUP: DistributionId = DistributionId::from_bytes([0x6e; 16]);

type CrashDevice = Device<SqliteStore, ChaCha20Rng, FixedClock>;

fn bob() -> Address {
    Address::new("bob", 1)
}

/// One direction of traffic: sender, receiver, their files; 1:1 or the group.
struct Lane {
    from: &'static str,
    to: &'static str,
    group: bool,
}

const LANES: [Lane; 3] = [
    Lane {
        from: "alice",
        to: "bob",
        group: false,
    },
    Lane {
        from: "bob",
        to: "alice",
        group: false,
    },
    Lane {
        from: "alice",
        to: "bob",
        group: true,
    },
];

impl Lane {
    fn kind(&self) -> &'static str {
        if self.group { "group" } else { "direct" }
    }
    fn wire(&self, dir: &Path) -> PathBuf {
        dir.join(format!("{}2{}.{}.log", self.from, self.to, self.kind()))
    }
    fn inbox(&self, dir: &Path) -> PathBuf {
        dir.join(format!("{}.{}.inbox", self.to, self.kind()))
    }
    fn text(&self, n: usize) -> String {
        format!("{}-{}-{n}", self.from, self.kind())
    }
    /// The store's id of a wire line, and the message key it used: (ratchet key,
    /// counter) for 1:1, (chain id, iteration) for the group.
    fn id_and_key(&self, line: &str) -> (MessageId, (Vec<u8>, u32)) {
        if self.group {
            let m = parse_group(line);
            let key = (m.chain_id().to_be_bytes().to_vec(), m.iteration());
            (MessageId::of_group(GROUP, &m), key)
        } else {
            let m = parse(line);
            (MessageId::of(&m), key_of(&m))
        }
    }
}

/// The complete lines of a log (a torn last line, from a kill mid-write, is not one).
fn lines(path: &Path) -> Vec<String> {
    let mut s = String::new();
    if let Ok(mut f) = File::open(path) {
        f.read_to_string(&mut s).unwrap();
    }
    let complete = s.rfind('\n').map_or("", |i| &s[..=i]);
    complete.lines().map(str::to_string).collect()
}

/// Cuts a torn last line off, so the next append starts a line.
fn repair(path: &Path) {
    let Ok(mut f) = OpenOptions::new().read(true).write(true).open(path) else {
        return;
    };
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).unwrap();
    let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if keep != bytes.len() {
        f.set_len(keep as u64).unwrap();
        f.sync_all().unwrap();
    }
}

fn append(path: &Path, line: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(format!("{line}\n").as_bytes()).unwrap();
    f.sync_data().unwrap();
}

fn parse(line: &str) -> CiphertextMessage {
    let (t, h) = line.split_once(':').unwrap();
    CiphertextMessage::from_parts(t.parse().unwrap(), &hex::decode(h).unwrap()).unwrap()
}

fn parse_group(line: &str) -> SenderKeyMessage {
    SenderKeyMessage::parse(&hex::decode(line).unwrap(), Layout::Current).unwrap()
}

fn key_of(m: &CiphertextMessage) -> (Vec<u8>, u32) {
    let sm = match m {
        CiphertextMessage::Signal(sm) => sm,
        CiphertextMessage::PreKey(p) => p.message(),
        _ => panic!("unexpected message kind"),
    };
    (sm.ratchet_key().serialize().to_vec(), sm.counter())
}

fn open_store(dir: &Path, name: &str, rng: &mut ChaCha20Rng) -> SqliteStore {
    let s = SqliteStore::open(
        dir.join(format!("{name}.db")),
        &StoreKey::from_bytes(KEY),
        rng,
    )
    .unwrap();
    if !s.has_local_identity().unwrap() {
        let id = IdentityKeyPair::generate(rng);
        s.set_local_identity(&id, 1 + (rng.next_u32() & 0x3fff))
            .unwrap();
    }
    s
}

/// The child: runs when `CONFIDE_CRASH_DIR` is set, otherwise passes at once.
#[test]
fn crash_child_entry() {
    let Some(dir) = std::env::var_os("CONFIDE_CRASH_DIR") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let seed: u64 = std::env::var("CONFIDE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let drain = std::env::var_os("CONFIDE_CRASH_DRAIN").is_some();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    for lane in &LANES {
        repair(&lane.wire(&dir));
        repair(&lane.inbox(&dir));
    }
    let a = open_store(&dir, "alice", &mut rng);
    let b = open_store(&dir, "bob", &mut rng);
    if a.session(&bob()).unwrap().is_none() {
        let spec = BundleSpec {
            device_id: 1,
            signed_pre_key_id: 1,
            pre_key_id: Some(1),
        };
        let bundle = cipher::new_bundle(&b, &mut rng, spec, NOW).unwrap();
        cipher::process_bundle(&a, &bob(), &bundle, &mut rng, NOW).unwrap();
    }
    let device = |store, name, rng: &mut ChaCha20Rng| -> CrashDevice {
        let own = ChaCha20Rng::seed_from_u64(rng.next_u64());
        Device::new(store, Address::new(name, 1), own, FixedClock::new(NOW))
    };
    let a = device(a, "alice", &mut rng);
    let b = device(b, "bob", &mut rng);
    let addr = |name: &str| Address::new(name, 1);
    // Alice's group chain reaches Bob once (in the set-up run; a kill in between
    // hands the same, unused chain over again).
    if b.store()
        .sender_key(&addr("alice"), GROUP)
        .unwrap()
        .is_none()
    {
        let skdm = a.group_distribution(GROUP).unwrap();
        b.group_process(a.address(), &skdm).unwrap();
    }
    let dev = |name: &str| if name == "alice" { &a } else { &b };
    loop {
        let mut idle = true;
        for (i, lane) in LANES.iter().enumerate() {
            let sent = lines(&lane.wire(&dir)).len();
            let got = lines(&lane.inbox(&dir)).len();
            // Receive: the next undelivered entry.
            if got < sent && (drain || rng.next_u32() % 2 == 0) {
                let line = &lines(&lane.wire(&dir))[got];
                let from = addr(lane.from);
                let d: Result<_, Box<dyn std::error::Error>> = if lane.group {
                    dev(lane.to)
                        .group_decrypt(&from, &parse_group(line))
                        .map_err(Into::into)
                } else {
                    let m = parse(line);
                    cipher::decrypt_message(dev(lane.to).store(), &from, &m, &mut rng, NOW)
                        .map_err(Into::into)
                };
                let d = d.unwrap_or_else(|e| panic!("lane {i} entry {got}: {e}"));
                let text = String::from_utf8(d.plaintext.to_vec()).unwrap();
                append(
                    &lane.inbox(&dir),
                    &format!("{got}:{}:{text}", u8::from(d.redelivered)),
                );
                idle = false;
            }
            // Send the next message (a sender only starts once it has a session: Bob
            // after Alice's first message reached him).
            let has = lane.group
                || dev(lane.from)
                    .store()
                    .session(&addr(lane.to))
                    .unwrap()
                    .is_some_and(|r| r.has_current_session());
            if !drain && has && rng.next_u32() % 2 == 0 {
                let text = lane.text(sent);
                let line = if lane.group {
                    let m = dev(lane.from)
                        .group_encrypt(GROUP, text.as_bytes())
                        .unwrap();
                    hex::encode(m.serialized())
                } else {
                    let m =
                        cipher::encrypt(dev(lane.from).store(), &addr(lane.to), text.as_bytes())
                            .unwrap();
                    format!("{}:{}", m.message_type(), hex::encode(m.serialized()))
                };
                append(&lane.wire(&dir), &line);
                idle = false;
            }
        }
        if drain && idle {
            return;
        }
    }
}

/// Messages delivered and how many of them were redeliveries, 1:1 and group.
#[derive(Default)]
struct Tally {
    delivered: usize,
    redelivered: usize,
    group_delivered: usize,
    group_redelivered: usize,
}

/// What the parent checks after every kill; returns what was delivered so far.
fn check(dir: &Path, rng: &mut ChaCha20Rng) -> Tally {
    let a = open_store(dir, "alice", rng);
    let b = open_store(dir, "bob", rng);
    let store = |name: &str| if name == "alice" { &a } else { &b };
    let mut tally = Tally::default();
    // Message rows each store should hold: (alice, bob).
    let mut expected = (0, 0);
    for lane in &LANES {
        let wire = lines(&lane.wire(dir));
        let inbox = lines(&lane.inbox(dir));
        let mut keys = HashSet::new();
        let ids: Vec<MessageId> = wire
            .iter()
            .enumerate()
            .map(|(n, l)| {
                let (id, key) = lane.id_and_key(l);
                assert!(
                    keys.insert(key),
                    "{} {}: message key of entry {n} used twice",
                    lane.from,
                    lane.kind()
                );
                id
            })
            .collect();
        assert!(inbox.len() <= wire.len());
        for (n, l) in inbox.iter().enumerate() {
            let mut parts = l.splitn(3, ':');
            let idx: usize = parts.next().unwrap().parse().unwrap();
            let again = parts.next().unwrap() == "1";
            let text = parts.next().unwrap();
            assert_eq!(
                idx,
                n,
                "{} {}: inbox out of order or duplicated",
                lane.to,
                lane.kind()
            );
            assert_eq!(
                text,
                lane.text(n),
                "{} {}: wrong plaintext",
                lane.to,
                lane.kind()
            );
            tally.redelivered += usize::from(again);
            if lane.group {
                tally.group_redelivered += usize::from(again);
            }
        }
        tally.delivered += inbox.len();
        if lane.group {
            tally.group_delivered += inbox.len();
        }
        // The receiver committed every inbox entry (the last one checked here, all of
        // them by the count below) and at most the next one, whose inbox append a kill
        // cut off; nothing beyond.
        let st = store(lane.to);
        let from = Address::new(lane.from, 1);
        let stored = |n: usize| ids.get(n).and_then(|id| st.message(&from, id).unwrap());
        if let Some(last) = inbox.len().checked_sub(1) {
            let m = stored(last).expect("a delivered message is in the store");
            assert_eq!(m.plaintext.unwrap().as_slice(), lane.text(last).as_bytes());
        }
        let pending = usize::from(stored(inbox.len()).is_some());
        assert!(
            stored(inbox.len() + 1).is_none(),
            "decrypted ahead of the inbox"
        );
        if lane.to == "alice" {
            expected.0 += inbox.len() + pending;
        } else {
            expected.1 += inbox.len() + pending;
        }
    }
    let (sa, sb) = (a.verify().unwrap(), b.verify().unwrap());
    assert_eq!(
        (sa.messages, sb.messages),
        expected,
        "message tables vs inboxes"
    );
    for s in [sa, sb] {
        assert!(s.sessions <= 1);
        // Alice's own chain; Bob's copy of it.
        assert_eq!(s.sender_keys, 1);
    }
    tally
}

fn run_child(dir: &Path, seed: u64, drain: bool) -> std::process::Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "crash_child_entry",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("CONFIDE_CRASH_DIR", dir)
    .env("CONFIDE_CRASH_SEED", seed.to_string())
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    if drain {
        cmd.env("CONFIDE_CRASH_DRAIN", "1");
    }
    cmd.spawn().unwrap()
}

#[test]
fn sigkill_at_random_points_loses_and_duplicates_nothing() {
    if std::env::var_os("CONFIDE_CRASH_DIR").is_some() {
        return;
    }
    let kills: usize = std::env::var("CONFIDE_CRASH_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(240);
    let seed: u64 = std::env::var("CONFIDE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let started = Instant::now();
    // Set both devices up (identities, bundle, session) once without a kill.
    let mut setup = run_child(dir, seed, true);
    assert!(setup.wait().unwrap().success());
    for k in 0..kills {
        let mut child = run_child(
            dir,
            seed.wrapping_mul(1_000_003).wrapping_add(k as u64),
            false,
        );
        // Kill somewhere in 40..240 ms: mostly mid-flood (a start on an existing
        // database takes some 50 ms of fsyncs here), sometimes during start-up.
        let delay = Duration::from_micros(40_000 + rng.next_u64() % 200_000);
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_some() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("child exited before the kill (run {k}):\n{err}");
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        check(dir, &mut rng);
    }
    // Finally let it drain without a kill: everything sent arrives.
    let mut child = run_child(dir, seed ^ 0xd4a1, true);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(child.wait().unwrap().success(), "drain failed:\n{err}");
    let tally = check(dir, &mut rng);
    for lane in &LANES {
        assert_eq!(
            lines(&lane.wire(dir)).len(),
            lines(&lane.inbox(dir)).len(),
            "everything sent was delivered"
        );
    }
    eprintln!(
        "crash test: {kills} SIGKILLs, {} messages delivered exactly once \
         ({} of them redelivered from the store after a kill); of these, group: {} \
         ({} redelivered); {:.1}s",
        tally.delivered,
        tally.redelivered,
        tally.group_delivered,
        tally.group_redelivered,
        started.elapsed().as_secs_f64()
    );
    assert!(tally.delivered > kills, "the flood made progress");
    assert!(tally.group_delivered > 0, "the group lane made progress");
}
