//! Action sequences between two devices, and an interpreter that checks every outcome
//! against a small model of the protocol.
//!
//! Shared, unchanged, by `tests/actions.rs` (proptest generates the actions), the
//! `actions` fuzz target (the actions are decoded from the fuzzer's bytes with
//! [`Scenario::decode`]) and `tests/fuzz_corpus.rs` (replays the committed corpus).
//!
//! What the interpreter asserts, for every action:
//! - a genuine message decrypts exactly once, to exactly the bytes that were sent, in
//!   any delivery order;
//! - a re-delivered message fails with `DuplicateMessage`;
//! - a corrupted copy (bit flip, truncation, relabelled version byte, wrong type
//!   number) fails, and every failure leaves the receiver's stored state (session
//!   record bytes, prekeys, trusted identity) byte-identical;
//! - at the end, every message still in flight decrypts, both sides can still talk,
//!   and both session records survive a storage round trip.
//!
//! The model knows one legitimate way for a genuine message to fail: each session state
//! keeps only the last [`MAX_RECEIVER_CHAINS`] receiving chains (one per remote ratchet
//! key, in order of first arrival), so a message from an older chain is undecryptable
//! once newer chains pushed its chain out. The model tracks, per receiver and per
//! session (named by its X3DH base key), the sender's ratchet keys in order of first
//! successful arrival, which is exactly the order the receiver keeps them in. The other
//! bounds (2000 skipped keys per chain, 40 previous states) are kept out of reach by
//! capping messages and re-initiations.
//!
//! Protocol v4 sessions (a [`Setup::v4`] or [`Action::Reinit`] with `v4`: the bundle
//! carries a Kyber prekey, one-time with a one-time EC prekey and last-resort without)
//! add SPQR, whose chains keep only one epoch before the receiver's own send epoch: a
//! genuine message whose SPQR epoch is two or more below the newest epoch the receiver
//! itself sent in that session is undecryptable too, and the model knows that (it
//! reads the epochs from the messages' `pq_ratchet`). The receiver's snapshot then also
//! holds its Kyber prekeys and the recorded uses of every handshake sent to it; a v4
//! prekey message that starts a session must consume a one-time Kyber prekey and
//! record a last-resort one's use.
//!
//! One kind of corruption may legitimately be accepted: the outer fields of a prekey
//! message (registration id; one-time and signed prekey ids once the session exists)
//! are not covered by the MAC in the v3 format, as in libsignal. A corrupted prekey
//! message is therefore accepted only when its inner (MACed) message, base key and
//! identity key are the original's, the original was still undelivered, and the
//! plaintext is the original's; it then counts as the original's delivery.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;

use confide::keys::PublicKey;
use confide::session::Versions;
use confide::session::cipher::{self, BundleSpec};
use confide::session::limits::MAX_RECEIVER_CHAINS;
use confide::store::{
    IdentityStore, InMemoryStore, KyberPreKeyUse, PreKeyStore, SessionStore, SignedPreKeyStore,
};
use confide::wire::{PREKEY_MESSAGE_TYPE, PreKeySignalMessage, SIGNAL_MESSAGE_TYPE, VERSION_BYTE};
use confide::{Address, CiphertextMessage, DecryptError, EncryptError, Timestamp};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// The time every bundle is made and processed at.
pub const NOW: Timestamp = Timestamp::from_millis(1_700_000_000_000);

/// Largest payload [`Action::Send`] carries (the decoder reduces lengths modulo this + 1).
pub const MAX_PAYLOAD: usize = 300;

/// Sends beyond this many are ignored, so no chain nears the 2000 skipped-key bound.
pub const MAX_MESSAGES: usize = 1000;

/// Session initiations per side beyond this many are ignored, so no state nears the
/// 40-previous-states bound (two sides' sessions share one record per side).
pub const MAX_INITIATIONS_PER_SIDE: usize = 8;

/// One of the two devices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The first device.
    Alice,
    /// The second device.
    Bob,
}

impl Side {
    fn index(self) -> usize {
        match self {
            Side::Alice => 0,
            Side::Bob => 1,
        }
    }

    /// The other device.
    pub fn other(self) -> Side {
        match self {
            Side::Alice => Side::Bob,
            Side::Bob => Side::Alice,
        }
    }

    fn from_bit(b: u8) -> Side {
        if b & 1 == 0 { Side::Alice } else { Side::Bob }
    }

    fn bit(self) -> u8 {
        self.index() as u8
    }
}

/// How the two devices first meet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setup {
    /// Processes the other's bundle first.
    pub initiator: Side,
    /// Whether that bundle has a one-time prekey.
    pub one_time: bool,
    /// `Some(one_time)`: the other side also processes a bundle of the initiator's
    /// (with or without a one-time prekey) before anything is sent.
    pub simultaneous: Option<bool>,
    /// Whether the setup's bundles carry Kyber prekeys (protocol v4 sessions).
    pub v4: bool,
}

/// How a copy of a message is damaged before it is delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Corruption {
    /// Flip bit `n % (8 * len)`.
    FlipBit(u16),
    /// Keep only the first `n % len` bytes.
    Truncate(u16),
    /// Replace the version byte with this one (`0x33` itself becomes `0x23`, and the
    /// byte already there, a v4 message's `0x44`, becomes `0x45`).
    Relabel(u8),
    /// Replace the version byte of the inner message of a prekey message (the outer
    /// one of a plain message) with this one (`0x33` itself becomes `0x43`, the byte
    /// already there that xor 1).
    RelabelInner(u8),
    /// Deliver a type 2 message as type 3 and the other way round.
    WrongType,
}

/// One step of a scenario. Indices pick from a list modulo its length; an action whose
/// list is empty does nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// `from` encrypts `payload` (at most [`MAX_PAYLOAD`] bytes); it goes in flight.
    Send {
        /// The sender.
        from: Side,
        /// The plaintext.
        payload: Vec<u8>,
    },
    /// Delivers the in-flight message at this index (so in any order).
    Deliver(u16),
    /// Loses the in-flight message at this index.
    Drop(u16),
    /// Delivers the already-delivered message at this index again.
    Duplicate(u16),
    /// Delivers a damaged copy of a message, which stays where it was.
    Corrupt {
        /// Pick from the delivered messages (else from those in flight); falls back to
        /// the other list when that one is empty.
        delivered: bool,
        /// The index.
        pick: u16,
        /// The damage.
        how: Corruption,
    },
    /// `from` starts a new session from a fresh bundle of the other side's (a
    /// re-initiation: the old states are kept as previous states).
    Reinit {
        /// Who processes the bundle.
        from: Side,
        /// Whether the bundle has a one-time prekey.
        one_time: bool,
        /// Whether the bundle carries a Kyber prekey (a v4 session).
        v4: bool,
    },
}

/// A setup and the actions that follow it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scenario {
    /// How the devices first meet.
    pub setup: Setup,
    /// What happens next.
    pub actions: Vec<Action>,
}

/// Reads bytes, yielding zeros once they run out.
struct Reader<'a> {
    data: &'a [u8],
}

impl Reader<'_> {
    fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head.to_vec()
    }
}

const OP_SEND: u8 = 0;
const OP_DELIVER: u8 = 1;
const OP_DROP: u8 = 2;
const OP_DUPLICATE: u8 = 3;
const OP_CORRUPT: u8 = 4;
const OP_REINIT: u8 = 5;
const OPS: u8 = 6;

impl Scenario {
    /// Decodes any bytes into a scenario (the fuzz target's input format):
    ///
    /// - byte 0, the setup: bit 0 initiator (0 Alice, 1 Bob), bit 1 one-time prekey,
    ///   bit 2 simultaneous, bit 3 the second bundle's one-time prekey, bit 4 v4;
    /// - then actions, each an opcode byte (taken modulo 6) and its operands:
    ///   `0` Send: side byte (bit 0), length u16 BE (modulo 301), the payload bytes;
    ///   `1` Deliver, `2` Drop, `3` Duplicate: index u16 BE;
    ///   `4` Corrupt: flags byte (bit 0 delivered, bits 1-3 kind modulo 5: flip,
    ///   truncate, relabel, relabel inner, wrong type), index u16 BE, argument u16 BE;
    ///   `5` Reinit: byte (bit 0 side, bit 1 one-time prekey, bit 2 v4).
    ///
    /// Missing operand bytes read as zero; a short payload is what is left.
    pub fn decode(data: &[u8]) -> Scenario {
        let mut r = Reader { data };
        let s = r.u8();
        let setup = Setup {
            initiator: Side::from_bit(s),
            one_time: s & 2 != 0,
            simultaneous: (s & 4 != 0).then_some(s & 8 != 0),
            v4: s & 16 != 0,
        };
        let mut actions = Vec::new();
        while !r.data.is_empty() {
            let action = match r.u8() % OPS {
                OP_SEND => {
                    let from = Side::from_bit(r.u8());
                    let len = usize::from(r.u16()) % (MAX_PAYLOAD + 1);
                    Action::Send {
                        from,
                        payload: r.bytes(len),
                    }
                }
                OP_DELIVER => Action::Deliver(r.u16()),
                OP_DROP => Action::Drop(r.u16()),
                OP_DUPLICATE => Action::Duplicate(r.u16()),
                OP_CORRUPT => {
                    let flags = r.u8();
                    let pick = r.u16();
                    let arg = r.u16();
                    let how = match (flags >> 1) % 5 {
                        0 => Corruption::FlipBit(arg),
                        1 => Corruption::Truncate(arg),
                        2 => Corruption::Relabel(arg as u8),
                        3 => Corruption::RelabelInner(arg as u8),
                        _ => Corruption::WrongType,
                    };
                    Action::Corrupt {
                        delivered: flags & 1 != 0,
                        pick,
                        how,
                    }
                }
                _ => {
                    let b = r.u8();
                    Action::Reinit {
                        from: Side::from_bit(b),
                        one_time: b & 2 != 0,
                        v4: b & 4 != 0,
                    }
                }
            };
            actions.push(action);
        }
        Scenario { setup, actions }
    }

    /// The bytes [`Scenario::decode`] turns back into this scenario (for payloads of at
    /// most [`MAX_PAYLOAD`] bytes).
    pub fn encode(&self) -> Vec<u8> {
        let s = &self.setup;
        let mut out = vec![
            s.initiator.bit()
                | u8::from(s.one_time) << 1
                | u8::from(s.simultaneous.is_some()) << 2
                | u8::from(s.simultaneous == Some(true)) << 3
                | u8::from(s.v4) << 4,
        ];
        for a in &self.actions {
            match a {
                Action::Send { from, payload } => {
                    out.extend([OP_SEND, from.bit()]);
                    let len = payload.len().min(MAX_PAYLOAD);
                    out.extend((len as u16).to_be_bytes());
                    out.extend_from_slice(&payload[..len]);
                }
                Action::Deliver(i) => push_op(&mut out, OP_DELIVER, *i),
                Action::Drop(i) => push_op(&mut out, OP_DROP, *i),
                Action::Duplicate(i) => push_op(&mut out, OP_DUPLICATE, *i),
                Action::Corrupt {
                    delivered,
                    pick,
                    how,
                } => {
                    let (kind, arg) = match how {
                        Corruption::FlipBit(n) => (0u8, *n),
                        Corruption::Truncate(n) => (1, *n),
                        Corruption::Relabel(v) => (2, u16::from(*v)),
                        Corruption::RelabelInner(v) => (3, u16::from(*v)),
                        Corruption::WrongType => (4, 0),
                    };
                    out.extend([OP_CORRUPT, kind << 1 | u8::from(*delivered)]);
                    out.extend(pick.to_be_bytes());
                    out.extend(arg.to_be_bytes());
                }
                Action::Reinit { from, one_time, v4 } => {
                    out.extend([
                        OP_REINIT,
                        from.bit() | u8::from(*one_time) << 1 | u8::from(*v4) << 2,
                    ]);
                }
            }
        }
        out
    }
}

fn push_op(out: &mut Vec<u8>, op: u8, index: u16) {
    out.push(op);
    out.extend(index.to_be_bytes());
}

/// What happened during a run, for coverage checks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages encrypted (including the final drain and liveness check).
    pub sent: usize,
    /// Genuine messages decrypted.
    pub delivered: usize,
    /// Of those, delivered while an older message from the same sender was in flight.
    pub out_of_order: usize,
    /// Of those, prekey (type 3) messages.
    pub prekey_delivered: usize,
    /// Messages dropped by the network.
    pub dropped: usize,
    /// Re-deliveries refused as duplicates.
    pub duplicates: usize,
    /// Corrupted copies refused.
    pub corruptions_refused: usize,
    /// Corrupted prekey messages accepted (only their unauthenticated outer fields
    /// differed; see the module docs).
    pub corruptions_accepted: usize,
    /// Genuine messages refused because their receiving chain was no longer kept.
    pub lost_to_chain_limit: usize,
    /// Successful decryptions that used a previous (not the current) session state,
    /// as seen by the state switching on the receiver's side.
    pub session_switches: usize,
    /// Session initiations, the setup's included.
    pub initiations: usize,
    /// Of those, v4 (PQXDH) ones.
    pub v4_initiations: usize,
    /// Genuine v4 messages decrypted.
    pub v4_delivered: usize,
    /// The highest SPQR epoch any message carried.
    pub max_epoch: u64,
    /// The highest SPQR epoch each side's messages carried (Alice, Bob).
    pub max_epoch_by_side: [u64; 2],
    /// Genuine messages refused because their SPQR epoch was no longer kept.
    pub lost_to_epoch_limit: usize,
}

struct Device {
    store: InMemoryStore,
    address: Address,
    next_id: u32,
    pre_key_ids: Vec<u32>,
    signed_pre_key_ids: Vec<u32>,
    /// The Kyber prekeys it published: (id, one-time).
    kyber_pre_keys: Vec<(u32, bool)>,
    /// The Kyber prekey uses of every v4 handshake sent to it.
    kyber_uses: Vec<KyberPreKeyUse>,
}

#[derive(Clone)]
struct Sent {
    id: usize,
    from: Side,
    payload: Vec<u8>,
    message: CiphertextMessage,
    /// The X3DH base key of the sender's session it was encrypted in.
    session: PublicKey,
    /// The sender's ratchet key in it.
    ratchet: PublicKey,
    /// Its SPQR epoch (v4 only).
    epoch: Option<u64>,
}

impl Sent {
    fn describe(&self) -> String {
        format!(
            "message #{} from {:?} (type {}, {} bytes, payload {} bytes)",
            self.id,
            self.from,
            self.message.message_type(),
            self.message.serialized().len(),
            self.payload.len()
        )
    }
}

/// What the model predicts for a genuine message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Decrypts,
    ChainGone,
    EpochGone,
}

/// Runs a scenario from `seed`, panicking with an explanation at the first outcome the
/// protocol does not allow.
pub fn run(scenario: &Scenario, seed: u64) -> Stats {
    let mut world = World::new(seed);
    world.setup(&scenario.setup);
    for (i, action) in scenario.actions.iter().enumerate() {
        world.step = Some(i);
        world.apply(action);
    }
    world.finish();
    world.stats
}

struct World {
    rng: ChaCha20Rng,
    devices: [Device; 2],
    in_flight: Vec<Sent>,
    delivered: Vec<Sent>,
    /// Per receiver: for each session (X3DH base key) it holds a state for, the
    /// sender's ratchet keys in order of first successful arrival.
    chains: [HashMap<PublicKey, Vec<PublicKey>>; 2],
    /// Per side: for each of its sessions, the highest SPQR epoch it sent in it.
    sent_epochs: [HashMap<PublicKey, u64>; 2],
    initiations: [usize; 2],
    next_message: usize,
    /// The action being applied; `None` during setup and the final checks.
    step: Option<usize>,
    stats: Stats,
}

impl World {
    fn new(seed: u64) -> World {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut device = |name: &str| Device {
            store: InMemoryStore::generate(&mut rng),
            address: Address::new(name, 1),
            next_id: 1,
            pre_key_ids: Vec::new(),
            signed_pre_key_ids: Vec::new(),
            kyber_pre_keys: Vec::new(),
            kyber_uses: Vec::new(),
        };
        let devices = [device("alice"), device("bob")];
        World {
            rng,
            devices,
            in_flight: Vec::new(),
            delivered: Vec::new(),
            chains: [HashMap::new(), HashMap::new()],
            sent_epochs: [HashMap::new(), HashMap::new()],
            initiations: [0, 0],
            next_message: 0,
            step: None,
            stats: Stats::default(),
        }
    }

    /// Where we are, for failure messages.
    fn at(&self) -> String {
        match self.step {
            Some(i) => format!("action #{i}"),
            None => "setup/final checks".to_string(),
        }
    }

    fn dev(&self, side: Side) -> &Device {
        &self.devices[side.index()]
    }

    fn setup(&mut self, setup: &Setup) {
        self.initiate(setup.initiator, setup.one_time, setup.v4);
        if let Some(one_time) = setup.simultaneous {
            self.initiate(setup.initiator.other(), one_time, setup.v4);
        }
    }

    fn apply(&mut self, action: &Action) {
        match action {
            Action::Send { from, payload } => {
                if self.next_message < MAX_MESSAGES {
                    self.send(*from, payload);
                }
            }
            Action::Deliver(i) => {
                if !self.in_flight.is_empty() {
                    let m = self
                        .in_flight
                        .remove(usize::from(*i) % self.in_flight.len());
                    self.deliver(m);
                }
            }
            Action::Drop(i) => {
                if !self.in_flight.is_empty() {
                    self.in_flight
                        .remove(usize::from(*i) % self.in_flight.len());
                    self.stats.dropped += 1;
                }
            }
            Action::Duplicate(i) => {
                if !self.delivered.is_empty() {
                    let m = self.delivered[usize::from(*i) % self.delivered.len()].clone();
                    self.duplicate(&m);
                }
            }
            Action::Corrupt {
                delivered,
                pick,
                how,
            } => {
                let from_delivered = if self.delivered.is_empty() {
                    false
                } else {
                    *delivered || self.in_flight.is_empty()
                };
                let list = if from_delivered {
                    &self.delivered
                } else {
                    &self.in_flight
                };
                if !list.is_empty() {
                    let m = list[usize::from(*pick) % list.len()].clone();
                    self.corrupt(&m, how, from_delivered);
                }
            }
            Action::Reinit { from, one_time, v4 } => {
                if self.initiations[from.index()] < MAX_INITIATIONS_PER_SIDE {
                    self.initiate(*from, *one_time, *v4);
                }
            }
        }
    }

    /// `from` processes a fresh bundle of the other side's: with `v4` it carries a
    /// Kyber prekey, one-time when the bundle has a one-time EC prekey, else last-resort.
    fn initiate(&mut self, from: Side, one_time: bool, v4: bool) {
        let to = from.other();
        let dev = &mut self.devices[to.index()];
        let id = dev.next_id;
        dev.next_id += 1;
        let spec = BundleSpec::new(1, id)
            .with_pre_key(one_time.then_some(id + 1000))
            .with_kyber_pre_key(v4.then_some(id + 2000), !one_time);
        let bundle = cipher::publish_bundle(&dev.store, &mut self.rng, &spec, NOW)
            .expect("publish_bundle failed");
        dev.signed_pre_key_ids.push(id);
        dev.pre_key_ids.extend(spec.pre_key_id);
        if v4 {
            dev.kyber_pre_keys.push((id + 2000, one_time));
            self.stats.v4_initiations += 1;
        }
        let peer = dev.address.clone();
        let initiator = &self.devices[from.index()];
        cipher::start_session(
            &initiator.store,
            &peer,
            &bundle,
            Versions::V3AndV4,
            &mut self.rng,
            NOW,
        )
        .expect("start_session failed");
        let base = *initiator
            .store
            .session(&peer)
            .expect("store")
            .and_then(|r| r.current().map(|s| *s.alice_base_key()))
            .as_ref()
            .expect("no current session after start_session");
        // The initiator's state starts with one receiving chain, for the responder's
        // signed prekey: it takes one of the MAX_RECEIVER_CHAINS slots.
        self.chains[from.index()].insert(base, vec![bundle.signed_pre_key.key]);
        self.initiations[from.index()] += 1;
        self.stats.initiations += 1;
    }

    /// `from` encrypts `payload`; `false` (and nothing changed) when it has no session
    /// yet: the responder has one only once a prekey message reached it.
    fn send(&mut self, from: Side, payload: &[u8]) -> bool {
        let sender = &self.devices[from.index()];
        let peer = self.devices[from.other().index()].address.clone();
        let Some(session) = self.current_base(from) else {
            let before = self.snapshot(from);
            let result = cipher::encrypt(
                &sender.store,
                &sender.address,
                &peer,
                payload,
                &mut self.rng,
                NOW,
            );
            assert!(
                matches!(result, Err(EncryptError::NoSession)),
                "{}: encrypt without a session gave {result:?}",
                self.at()
            );
            self.assert_unchanged(from, &before, "encrypt without a session");
            return false;
        };
        let message = cipher::encrypt(
            &sender.store,
            &sender.address,
            &peer,
            payload,
            &mut self.rng,
            NOW,
        )
        .unwrap_or_else(|e| panic!("{}: encrypt failed: {e:?}", self.at()));
        let ratchet = *match &message {
            CiphertextMessage::Signal(m) => m.ratchet_key(),
            CiphertextMessage::PreKey(m) => m.message().ratchet_key(),
            _ => unreachable!("unknown message kind"),
        };
        let epoch = spqr_epoch_of(&message);
        if let Some(e) = epoch {
            self.stats.max_epoch = self.stats.max_epoch.max(e);
            let by_side = &mut self.stats.max_epoch_by_side[from.index()];
            *by_side = (*by_side).max(e);
            let top = self.sent_epochs[from.index()].entry(session).or_default();
            *top = (*top).max(e);
        }
        if let CiphertextMessage::PreKey(p) = &message {
            if let Some(u) = kyber_use(p) {
                let uses = &mut self.devices[from.other().index()].kyber_uses;
                if !uses.contains(&u) {
                    uses.push(u);
                }
            }
        }
        let id = self.next_message;
        self.next_message += 1;
        self.stats.sent += 1;
        self.in_flight.push(Sent {
            id,
            from,
            payload: payload.to_vec(),
            message,
            session,
            ratchet,
            epoch,
        });
        true
    }

    /// The receiver's stored state that a failed decrypt must leave alone.
    fn snapshot(&self, receiver: Side) -> Vec<u8> {
        let dev = self.dev(receiver);
        let mut out = snapshot(
            &dev.store,
            &self.dev(receiver.other()).address,
            &dev.pre_key_ids,
            &dev.signed_pre_key_ids,
        );
        let ids: Vec<u32> = dev.kyber_pre_keys.iter().map(|(id, _)| *id).collect();
        out.extend(kyber_snapshot(&dev.store, &ids, &dev.kyber_uses));
        out
    }

    fn current_base(&self, side: Side) -> Option<PublicKey> {
        let dev = self.dev(side);
        dev.store
            .session(&self.dev(side.other()).address)
            .expect("store")
            .and_then(|r| r.current().map(|s| *s.alice_base_key()))
    }

    fn receive(
        &mut self,
        receiver: Side,
        message_type: u8,
        bytes: &[u8],
    ) -> Result<Vec<u8>, DecryptError> {
        let dev = &self.devices[receiver.index()];
        let from = &self.devices[receiver.other().index()].address;
        receive(
            &dev.store,
            &dev.address,
            from,
            message_type,
            bytes,
            &mut self.rng,
        )
    }

    fn expect(&self, m: &Sent) -> Expect {
        let receiver = m.from.other();
        match self.chains[receiver.index()].get(&m.session) {
            None => {
                assert_eq!(
                    m.message.message_type(),
                    PREKEY_MESSAGE_TYPE,
                    "{}: {} belongs to a session the receiver never had, yet it is not a \
                     prekey message",
                    self.at(),
                    m.describe()
                );
                Expect::Decrypts
            }
            Some(keys) => match keys.iter().position(|k| *k == m.ratchet) {
                Some(i) if i + MAX_RECEIVER_CHAINS < keys.len() => Expect::ChainGone,
                _ => {
                    // SPQR keeps the chains of one epoch before the receiver's send epoch.
                    let sent = self.sent_epochs[receiver.index()].get(&m.session);
                    match (m.epoch, sent) {
                        (Some(e), Some(&top)) if e + 1 < top => Expect::EpochGone,
                        _ => Expect::Decrypts,
                    }
                }
            },
        }
    }

    /// Updates the model after `m` decrypted.
    fn decrypted(&mut self, m: &Sent) {
        let receiver = m.from.other();
        let keys = self.chains[receiver.index()].entry(m.session).or_default();
        if !keys.contains(&m.ratchet) {
            keys.push(m.ratchet);
        }
        if m.epoch.is_some() {
            self.stats.v4_delivered += 1;
        }
        if let CiphertextMessage::PreKey(p) = &m.message {
            self.stats.prekey_delivered += 1;
            self.check_kyber_consumed(receiver, p, m);
            if let Some(id) = p.pre_key_id() {
                assert!(
                    self.dev(receiver)
                        .store
                        .pre_key(id)
                        .expect("store")
                        .is_none(),
                    "{}: one-time prekey {id} still there after {} decrypted",
                    self.at(),
                    m.describe()
                );
            }
        }
        self.stats.delivered += 1;
    }

    /// After a v4 prekey message decrypted: a one-time Kyber prekey is gone, a
    /// last-resort one is still there with this handshake's use recorded.
    fn check_kyber_consumed(&self, receiver: Side, p: &PreKeySignalMessage, m: &Sent) {
        let Some(u) = kyber_use(p) else { return };
        let dev = self.dev(receiver);
        let kyber = dev.store.kyber_pre_keys().expect("kyber store");
        let still_there = kyber
            .kyber_pre_key(u.kyber_pre_key_id)
            .expect("store")
            .is_some();
        match dev
            .kyber_pre_keys
            .iter()
            .find(|(id, _)| *id == u.kyber_pre_key_id)
        {
            Some((_, true)) => assert!(
                !still_there,
                "{}: one-time Kyber prekey {} still there after {} decrypted",
                self.at(),
                u.kyber_pre_key_id,
                m.describe()
            ),
            Some((_, false)) => {
                assert!(
                    still_there,
                    "{}: last-resort Kyber prekey {} gone after {}",
                    self.at(),
                    u.kyber_pre_key_id,
                    m.describe()
                );
                assert!(
                    kyber.kyber_pre_key_used(&u).expect("store"),
                    "{}: use of last-resort Kyber prekey {} not recorded after {}",
                    self.at(),
                    u.kyber_pre_key_id,
                    m.describe()
                );
            }
            None => panic!(
                "{}: {} names an unknown Kyber prekey",
                self.at(),
                m.describe()
            ),
        }
    }

    fn deliver(&mut self, m: Sent) {
        let receiver = m.from.other();
        let expect = self.expect(&m);
        let before = self.snapshot(receiver);
        let base_before = self.current_base(receiver);
        let result = self.receive(receiver, m.message.message_type(), m.message.serialized());
        match (expect, result) {
            (Expect::Decrypts, Ok(plaintext)) => {
                assert!(
                    plaintext == m.payload,
                    "{}: {} decrypted to different bytes",
                    self.at(),
                    m.describe()
                );
                if self
                    .in_flight
                    .iter()
                    .any(|o| o.from == m.from && o.id < m.id)
                {
                    self.stats.out_of_order += 1;
                }
                if base_before.is_some_and(|b| b != m.session)
                    && self.chains[receiver.index()].contains_key(&m.session)
                {
                    self.stats.session_switches += 1;
                }
                self.decrypted(&m);
                self.delivered.push(m);
            }
            (Expect::Decrypts, Err(e)) => panic!(
                "{}: genuine {} failed to decrypt: {e:?} ({})",
                self.at(),
                m.describe(),
                e.code()
            ),
            (Expect::ChainGone | Expect::EpochGone, Ok(_)) => panic!(
                "{}: {} decrypted although its receiving chain (model: {expect:?}) should \
                 have been dropped (model error?)",
                self.at(),
                m.describe()
            ),
            (Expect::ChainGone | Expect::EpochGone, Err(e)) => {
                assert!(
                    matches!(
                        e,
                        DecryptError::InvalidMessage
                            | DecryptError::MessageKeyEvicted { .. }
                            | DecryptError::PostQuantumRatchet
                    ),
                    "{}: {} ({expect:?}) failed with {e:?}",
                    self.at(),
                    m.describe()
                );
                self.assert_unchanged(receiver, &before, &format!("refused {}", m.describe()));
                if expect == Expect::ChainGone {
                    self.stats.lost_to_chain_limit += 1;
                } else {
                    self.stats.lost_to_epoch_limit += 1;
                }
            }
        }
    }

    fn duplicate(&mut self, m: &Sent) {
        let receiver = m.from.other();
        let expect = self.expect(m);
        let before = self.snapshot(receiver);
        let result = self.receive(receiver, m.message.message_type(), m.message.serialized());
        let ok = matches!(
            (&result, expect),
            (Err(DecryptError::DuplicateMessage { .. }), _)
                | (
                    Err(DecryptError::InvalidMessage
                        | DecryptError::MessageKeyEvicted { .. }
                        | DecryptError::PostQuantumRatchet),
                    Expect::ChainGone | Expect::EpochGone,
                )
        );
        assert!(
            ok,
            "{}: re-delivered {} gave {result:?}, expected DuplicateMessage (model: {expect:?})",
            self.at(),
            m.describe()
        );
        self.assert_unchanged(receiver, &before, &format!("duplicate of {}", m.describe()));
        self.stats.duplicates += 1;
    }

    fn corrupt(&mut self, m: &Sent, how: &Corruption, was_delivered: bool) {
        let receiver = m.from.other();
        let (message_type, bytes) = damage(m.message.message_type(), m.message.serialized(), how);
        assert!(
            (message_type, &bytes[..]) != (m.message.message_type(), m.message.serialized()),
            "corruption {how:?} changed nothing"
        );
        let expect = self.expect(m);
        let before = self.snapshot(receiver);
        match self.receive(receiver, message_type, &bytes) {
            Err(_) => {
                self.assert_unchanged(
                    receiver,
                    &before,
                    &format!("{how:?} of {}: {bytes:02x?}", m.describe()),
                );
                self.stats.corruptions_refused += 1;
            }
            Ok(plaintext) => {
                let same_authenticated_part =
                    match (&m.message, PreKeySignalMessage::try_from(&bytes[..])) {
                        (CiphertextMessage::PreKey(orig), Ok(got)) => {
                            message_type == PREKEY_MESSAGE_TYPE
                                && got.message().serialized() == orig.message().serialized()
                                && got.base_key() == orig.base_key()
                                && got.identity_key() == orig.identity_key()
                        }
                        _ => false,
                    };
                assert!(
                    same_authenticated_part
                        && !was_delivered
                        && expect == Expect::Decrypts
                        && plaintext == m.payload,
                    "{}: corrupted copy ({how:?}) of {} was accepted (delivered before: \
                     {was_delivered}, model: {expect:?}): type {message_type}, {bytes:02x?}",
                    self.at(),
                    m.describe()
                );
                let pos = self
                    .in_flight
                    .iter()
                    .position(|o| o.id == m.id)
                    .expect("accepted message was not in flight");
                let m = self.in_flight.remove(pos);
                self.decrypted(&m);
                self.delivered.push(m);
                self.stats.corruptions_accepted += 1;
            }
        }
    }

    fn assert_unchanged(&self, receiver: Side, before: &[u8], what: &str) {
        assert!(
            self.snapshot(receiver) == before,
            "{}: {what} failed but changed {receiver:?}'s stored state",
            self.at()
        );
    }

    /// Delivers everything still in flight, oldest first, then checks that both sides
    /// can still talk and that both records survive storage.
    fn finish(&mut self) {
        self.step = None;
        // `in_flight` is in sending order: sends push, removals keep the order.
        while !self.in_flight.is_empty() {
            let m = self.in_flight.remove(0);
            self.deliver(m);
        }
        // At least the initiator has a session; the other side gets one from the first
        // message if it has none.
        let first = if self.current_base(Side::Alice).is_some() {
            Side::Alice
        } else {
            Side::Bob
        };
        for from in [first, first.other(), first] {
            let payload = format!("still talking, from {from:?}").into_bytes();
            assert!(
                self.send(from, &payload),
                "{from:?} has no session at the end"
            );
            let m = self.in_flight.pop().expect("just sent");
            assert_eq!(
                self.expect(&m),
                Expect::Decrypts,
                "a fresh message would be refused by the model"
            );
            self.deliver(m);
        }
        for side in [Side::Alice, Side::Bob] {
            let dev = self.dev(side);
            let record = dev
                .store
                .session(&self.dev(side.other()).address)
                .expect("store")
                .expect("no record at the end");
            let bytes = record.to_bytes();
            let back = confide::SessionRecord::from_bytes(&bytes).expect("record does not load");
            assert!(
                back.to_bytes() == bytes,
                "{side:?}'s record changed in a round trip"
            );
        }
    }
}

/// Damages a message; the result always differs from the input.
pub fn damage(message_type: u8, bytes: &[u8], how: &Corruption) -> (u8, Vec<u8>) {
    let mut out = bytes.to_vec();
    match how {
        Corruption::FlipBit(n) => {
            if !out.is_empty() {
                let bit = usize::from(*n) % (out.len() * 8);
                out[bit / 8] ^= 1 << (bit % 8);
            }
        }
        Corruption::Truncate(n) => {
            if !out.is_empty() {
                out.truncate(usize::from(*n) % out.len());
            }
        }
        Corruption::Relabel(v) => {
            if let Some(b) = out.first_mut() {
                *b = relabel(*b, if *v == VERSION_BYTE { 0x23 } else { *v });
            }
        }
        Corruption::RelabelInner(v) => {
            let at = if message_type == PREKEY_MESSAGE_TYPE {
                PreKeySignalMessage::try_from(bytes)
                    .ok()
                    .and_then(|p| find(bytes, p.message().serialized()))
                    .unwrap_or(0)
            } else {
                0
            };
            if let Some(b) = out.get_mut(at) {
                *b = relabel(*b, if *v == VERSION_BYTE { 0x43 } else { *v });
            }
        }
        Corruption::WrongType => {
            let other = if message_type == SIGNAL_MESSAGE_TYPE {
                PREKEY_MESSAGE_TYPE
            } else {
                SIGNAL_MESSAGE_TYPE
            };
            return (other, out);
        }
    }
    (message_type, out)
}

/// `to`, unless that is the byte already there (a v4 message's `0x44`): then `to ^ 1`.
fn relabel(current: u8, to: u8) -> u8 {
    if to == current { to ^ 1 } else { to }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The SPQR epoch a `pq_ratchet` carries (facts §2.5: version byte, then the epoch as
/// a LEB128 varint), if it parses that far.
pub fn spqr_epoch(pq: &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for (i, b) in pq.get(1..)?.iter().take(10).enumerate() {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The SPQR epoch of a 1:1 message (its inner message's for a prekey message); `None`
/// for v3.
pub fn spqr_epoch_of(m: &CiphertextMessage) -> Option<u64> {
    let sm = match m {
        CiphertextMessage::Signal(m) => m,
        CiphertextMessage::PreKey(p) => p.message(),
        _ => return None,
    };
    spqr_epoch(sm.pq_ratchet())
}

/// The Kyber prekey use a v4 prekey message names.
pub fn kyber_use(p: &PreKeySignalMessage) -> Option<KyberPreKeyUse> {
    p.kyber_pre_key_id()
        .map(|id| KyberPreKeyUse::new(id, p.signed_pre_key_id(), *p.base_key()))
}

/// Which Kyber prekeys are there (with their bytes) and which of `uses` are recorded.
pub fn kyber_snapshot(store: &InMemoryStore, ids: &[u32], uses: &[KyberPreKeyUse]) -> Vec<u8> {
    let mut out = Vec::new();
    let kyber = store.kyber_pre_keys().expect("kyber store");
    for &id in ids {
        out.extend(id.to_be_bytes());
        match kyber.kyber_pre_key(id).expect("store") {
            Some(r) => {
                out.push(1);
                out.extend((r.len() as u64).to_be_bytes());
                out.extend_from_slice(&r);
            }
            None => out.push(0),
        }
    }
    for u in uses {
        out.push(u8::from(kyber.kyber_pre_key_used(u).expect("store")));
    }
    out
}

/// Parses bytes received with a type number and decrypts them, as a transport would.
pub fn receive(
    store: &InMemoryStore,
    local: &Address,
    from: &Address,
    message_type: u8,
    bytes: &[u8],
    rng: &mut ChaCha20Rng,
) -> Result<Vec<u8>, DecryptError> {
    let message = CiphertextMessage::from_parts(message_type, bytes)?;
    cipher::decrypt(store, local, from, &message, rng, NOW).map(|d| d.plaintext.to_vec())
}

/// Everything a failed decrypt from `peer` must leave alone: the session record's
/// bytes, which of the given prekeys and signed prekeys are still there (with their
/// bytes), and the identity trusted for `peer`.
pub fn snapshot(
    store: &InMemoryStore,
    peer: &Address,
    pre_key_ids: &[u32],
    signed_pre_key_ids: &[u32],
) -> Vec<u8> {
    let mut out = Vec::new();
    let record = store.session(peer).expect("store");
    match record {
        Some(r) => {
            out.push(1);
            let bytes = r.to_bytes();
            out.extend((bytes.len() as u64).to_be_bytes());
            out.extend_from_slice(&bytes);
        }
        None => out.push(0),
    }
    for &id in pre_key_ids {
        out.extend(id.to_be_bytes());
        match store.pre_key(id).expect("store") {
            Some(k) => out.extend_from_slice(&k.to_bytes()),
            None => out.push(0),
        }
    }
    for &id in signed_pre_key_ids {
        out.extend(id.to_be_bytes());
        match store.signed_pre_key(id).expect("store") {
            Some(k) => out.extend_from_slice(&k.to_bytes()),
            None => out.push(0),
        }
    }
    match store.identity(peer).expect("store") {
        Some(k) => out.extend_from_slice(&k.serialize()),
        None => out.push(0),
    }
    out
}
