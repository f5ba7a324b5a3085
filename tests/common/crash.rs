//! The SIGKILL crash test, for any durable store: a child process floods send/receive
//! between Alice's and Bob's stores (1:1 both ways, and Alice's group messages to Bob
//! through [`Device`]) while the parent SIGKILLs it at seeded random moments, many
//! times. After every kill: every message delivered exactly once and in order, each
//! with the plaintext its sender meant, no (ratchet key, counter) pair and no (chain
//! id, iteration) pair used by two ciphertexts, every row of both stores opens, and the
//! message tables agree with the app's delivery log.
//!
//! tests/crash.rs (SQLite files) and tests/postgres.rs (one PostgreSQL database, with
//! server crashes on top) are the callers: each says how to open a store for a run,
//! how to start its child, and how to kill it. Included with
//! `#[path = "common/crash.rs"] mod crash;` beside `mod stores;` (tests/common/stores.rs).
//! Kills: `CONFIDE_CRASH_KILLS` (default 240), seed: `CONFIDE_CRASH_SEED`.
//!
//! With `CONFIDE_CRASH_VERSION=4` the 1:1 session is a v4 one (PQXDH from a bundle with
//! a Kyber prekey; SPQR in every message): SPQR epochs then advance while the child
//! is killed, and the checks add that no (SPQR epoch, key index) pair is used by two
//! of a sender's ciphertexts and report the highest epoch reached.
//!
//! The child's "app" is what a messenger does: the network is an append-only log per
//! direction (fsynced lines `type:hex`), the app's own inbox is a delivery log per
//! receiver. Sending message n = encrypt, then append to the network log; receiving =
//! decrypt the next network entry, then append it to the inbox. A crash between the
//! store's commit and the log append is exactly the window the store must survive:
//! the re-sent message takes a fresh counter, the re-received one comes back from the
//! store marked `redelivered`.
// The items are `pub` so the including test files can reach them.
#![allow(unreachable_pub)]

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use confide::device::{Device, FixedClock};
use confide::group::{DistributionId, Layout, SenderKeyMessage};
use confide::session::Versions;
use confide::session::cipher::{self, BundleSpec};
use confide::store::MessageId;
use confide::{Address, CiphertextMessage};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use crate::stores::{NOW, RowStore, key_of, with_identity};

/// The store key of both devices' stores.
pub const KEY: [u8; 32] = [0x42; 32];
const GROUP: DistributionId = DistributionId::from_bytes([0x6e; 16]);

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

/// The SPQR (epoch, key index) of a v4 1:1 message (facts §2.5: version byte, then
/// both as LEB128 varints); `None` for v3.
pub fn spqr_key_of(m: &CiphertextMessage) -> Option<(u64, u64)> {
    let sm = match m {
        CiphertextMessage::Signal(m) => m,
        CiphertextMessage::PreKey(p) => p.message(),
        _ => return None,
    };
    let mut rest = sm.pq_ratchet().get(1..)?;
    let mut varint = || {
        let mut v = 0u64;
        for i in 0..10 {
            let (&b, tail) = rest.split_first()?;
            rest = tail;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    };
    Some((varint()?, varint()?))
}

/// Whether this run's 1:1 session is v4: `CONFIDE_CRASH_VERSION=4`.
pub fn v4() -> bool {
    env_or("CONFIDE_CRASH_VERSION", 3u8) == 4
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// How many times the parent kills the child: `CONFIDE_CRASH_KILLS`, default 240.
pub fn kills() -> usize {
    env_or("CONFIDE_CRASH_KILLS", 240)
}

/// The parent's seed: `CONFIDE_CRASH_SEED`, default 0x5eed.
pub fn seed() -> u64 {
    env_or("CONFIDE_CRASH_SEED", 0x5eed)
}

/// The child's flood over the logs in `dir`, on the stores `open(name, rng)` opens
/// (Alice's and Bob's; identities are added here). Seed and drain mode come from the
/// parent through `CONFIDE_CRASH_SEED` and `CONFIDE_CRASH_DRAIN`. Without drain it
/// runs until killed; with it, until everything sent is delivered.
pub fn child<S: RowStore>(dir: &Path, open: impl Fn(&str, &mut ChaCha20Rng) -> S) {
    let seed: u64 = env_or("CONFIDE_CRASH_SEED", 0);
    let drain = std::env::var_os("CONFIDE_CRASH_DRAIN").is_some();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    for lane in &LANES {
        repair(&lane.wire(dir));
        repair(&lane.inbox(dir));
    }
    let addr = |name: &str| Address::new(name, 1);
    let a = with_identity(open("alice", &mut rng), &mut rng);
    let b = with_identity(open("bob", &mut rng), &mut rng);
    if a.session(&addr("bob")).unwrap().is_none() {
        let spec = BundleSpec::new(1, 1)
            .with_pre_key(Some(1))
            .with_kyber_pre_key(v4().then_some(1), false);
        let bundle = cipher::publish_bundle(&b, &mut rng, &spec, NOW).unwrap();
        cipher::start_session(&a, &addr("bob"), &bundle, Versions::V3AndV4, &mut rng, NOW).unwrap();
    }
    let device = |store, name, rng: &mut ChaCha20Rng| -> Device<S, ChaCha20Rng, FixedClock> {
        let own = ChaCha20Rng::seed_from_u64(rng.next_u64());
        Device::new(store, addr(name), own, FixedClock::new(NOW))
    };
    let a = device(a, "alice", &mut rng);
    let b = device(b, "bob", &mut rng);
    // Alice's group chain reaches Bob once (in the set-up run, which is not killed;
    // were it, the next run would hand the same, unused chain over again).
    if b.store()
        .sender_key(&addr("alice"), GROUP)
        .unwrap()
        .is_none()
    {
        let skdm = a.group_distribution_raw(GROUP, Layout::Current).unwrap();
        b.group_process(a.address(), GROUP, &skdm).unwrap();
    }
    let dev = |name: &str| if name == "alice" { &a } else { &b };
    loop {
        let mut idle = true;
        for (i, lane) in LANES.iter().enumerate() {
            let sent = lines(&lane.wire(dir)).len();
            let got = lines(&lane.inbox(dir)).len();
            // Receive: the next undelivered entry.
            if got < sent && (drain || rng.next_u32() % 2 == 0) {
                let line = &lines(&lane.wire(dir))[got];
                let from = addr(lane.from);
                let d: Result<_, Box<dyn std::error::Error>> = if lane.group {
                    dev(lane.to)
                        .group_decrypt_raw(&from, GROUP, &parse_group(line))
                        .map_err(Into::into)
                } else {
                    let m = parse(line);
                    cipher::decrypt(
                        dev(lane.to).store(),
                        &addr(lane.to),
                        &from,
                        &m,
                        &mut rng,
                        NOW,
                    )
                    .map_err(Into::into)
                };
                let d = d.unwrap_or_else(|e| panic!("lane {i} entry {got}: {e}"));
                let text = String::from_utf8(d.plaintext.to_vec()).unwrap();
                append(
                    &lane.inbox(dir),
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
                        .group_encrypt_raw(GROUP, text.as_bytes())
                        .unwrap();
                    hex::encode(m.serialized())
                } else {
                    let m = cipher::encrypt(
                        dev(lane.from).store(),
                        &addr(lane.from),
                        &addr(lane.to),
                        text.as_bytes(),
                        &mut rng,
                        NOW,
                    )
                    .unwrap();
                    format!("{}:{}", m.message_type(), hex::encode(m.serialized()))
                };
                append(&lane.wire(dir), &line);
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
pub struct Tally {
    pub delivered: usize,
    pub redelivered: usize,
    pub group_delivered: usize,
    pub group_redelivered: usize,
    /// The highest SPQR epoch a 1:1 message carried (0: v3).
    pub max_epoch: u64,
    /// The whole run's time (set by [`Parent::run`]).
    pub elapsed: Duration,
}

impl Tally {
    /// The counts for the run's report line.
    pub fn summary(&self) -> String {
        format!(
            "{} messages delivered exactly once ({} of them redelivered from the store \
             after a kill); of these, group: {} ({} redelivered); highest SPQR epoch {}; \
             {:.1}s",
            self.delivered,
            self.redelivered,
            self.group_delivered,
            self.group_redelivered,
            self.max_epoch,
            self.elapsed.as_secs_f64()
        )
    }

    /// The flood got somewhere, on the group lane too (call after printing the report).
    pub fn assert_progress(&self, kills: usize) {
        assert!(self.delivered > kills, "the flood made progress");
        assert!(self.group_delivered > 0, "the group lane made progress");
    }
}

/// What the parent checks after every kill, on the stores `open(name, rng)` opens;
/// returns what was delivered so far. The 1:1 session's version is [`v4`]'s.
pub fn check<S: RowStore>(
    dir: &Path,
    rng: &mut ChaCha20Rng,
    open: impl Fn(&str, &mut ChaCha20Rng) -> S,
) -> Tally {
    check_version(dir, rng, v4(), open)
}

/// [`check`] of a run whose 1:1 session is v4 (`v4`) or v3.
pub fn check_version<S: RowStore>(
    dir: &Path,
    rng: &mut ChaCha20Rng,
    v4: bool,
    open: impl Fn(&str, &mut ChaCha20Rng) -> S,
) -> Tally {
    let a = with_identity(open("alice", rng), rng);
    let b = with_identity(open("bob", rng), rng);
    let store = |name: &str| if name == "alice" { &a } else { &b };
    let mut tally = Tally::default();
    // Message rows each store should hold: (alice, bob).
    let mut expected = (0, 0);
    for lane in &LANES {
        let wire = lines(&lane.wire(dir));
        let inbox = lines(&lane.inbox(dir));
        let mut keys = HashSet::new();
        let mut spqr_keys = HashSet::new();
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
                if !lane.group {
                    let m = parse(l);
                    assert_eq!(
                        spqr_key_of(&m).is_some(),
                        v4,
                        "{} {}: entry {n} is not of this run's version",
                        lane.from,
                        lane.kind()
                    );
                    if let Some(k) = spqr_key_of(&m) {
                        tally.max_epoch = tally.max_epoch.max(k.0);
                        assert!(
                            spqr_keys.insert(k),
                            "{} {}: SPQR key (epoch, index) {k:?} of entry {n} used twice",
                            lane.from,
                            lane.kind()
                        );
                    }
                }
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
        let stored = |n: usize| ids.get(n).and_then(|id| st.stored(&from, id));
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
    let (sa, sb) = (a.rows(), b.rows());
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

/// The child's stderr, for a failure message.
fn stderr_of(child: &mut Child) -> String {
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    err
}

/// How the parent starts its child: this same test binary, re-run for one test.
pub struct Parent<'a> {
    /// The logs' directory.
    pub dir: &'a Path,
    /// The test that is the child (it calls [`child`] when its variables are set).
    pub child_test: &'static str,
    /// The variables that make `child_test` the child, and tell it where to work.
    pub env: Vec<(&'static str, OsString)>,
    /// The earliest kill after a start; the latest is 200 ms later.
    pub min_delay: Duration,
}

impl Parent<'_> {
    /// Starts the child with `seed` (and in drain mode if `drain`).
    pub fn spawn(&self, seed: u64, drain: bool) -> Child {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            self.child_test,
            "--nocapture",
            "--test-threads=1",
        ])
        .envs(self.env.iter().map(|(k, v)| (k, v)))
        .env("CONFIDE_CRASH_SEED", seed.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        if drain {
            cmd.env("CONFIDE_CRASH_DRAIN", "1");
        }
        cmd.spawn().unwrap()
    }

    /// Runs the child to the end (no kill); it must succeed.
    fn run_through(&self, seed: u64, what: &str) {
        let mut child = self.spawn(seed, true);
        let err = stderr_of(&mut child);
        assert!(child.wait().unwrap().success(), "{what} failed:\n{err}");
    }

    /// The whole test: a set-up run without a kill (identities, bundle, session, the
    /// group chain), `kills` runs each ended by `kill(run, child)` and followed by
    /// `check(rng)`, and a final drain without a kill after which everything sent has
    /// arrived. Returns the last check's tally.
    pub fn run(
        &self,
        kills: usize,
        seed: u64,
        mut kill: impl FnMut(usize, &mut Child),
        mut check: impl FnMut(&mut ChaCha20Rng) -> Tally,
    ) -> Tally {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let started = Instant::now();
        self.run_through(seed, "setup");
        for k in 0..kills {
            let mut child = self.spawn(seed.wrapping_mul(1_000_003).wrapping_add(k as u64), false);
            let delay = self.min_delay + Duration::from_micros(rng.next_u64() % 200_000);
            std::thread::sleep(delay);
            if child.try_wait().unwrap().is_some() {
                let err = stderr_of(&mut child);
                panic!("child exited before the kill (run {k}):\n{err}");
            }
            kill(k, &mut child);
            check(&mut rng);
        }
        // Finally let it drain without a kill: everything sent arrives.
        self.run_through(seed ^ 0xd4a1, "drain");
        let mut tally = check(&mut rng);
        for lane in &LANES {
            assert_eq!(
                lines(&lane.wire(self.dir)).len(),
                lines(&lane.inbox(self.dir)).len(),
                "everything sent was delivered"
            );
        }
        tally.elapsed = started.elapsed();
        tally
    }
}
