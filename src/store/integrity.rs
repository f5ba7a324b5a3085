//! The integrity head of a persistent store's device: what tells the current version of
//! every row from an older one, and a present row from a deleted one.
//!
//! Every row is sealed with a nonce that is unique per write, so the nonce is the row's
//! version (a message row's is that of its sealed metadata, rewritten at every change).
//! The head is a tree of depth three, sealed like any row, in the `integrity` table:
//! 4096 leaves (buckets), each the sorted map of its rows' entries (an HMAC of table and
//! row key → table and version); 64 directories, each with the versions of 64 leaves;
//! and the head (id 0) with the directories' versions, a commit sequence number and the
//! device's open count. The head also keeps the latest changes (up to 64 entries) that
//! are not yet in the leaves, so a commit usually rewrites only the head: one database
//! page beside the rows it changes; every 64 changes a commit moves them down into the
//! leaves and directories. A read opens the row, its leaf, its directory and the head in
//! one statement and checks the row's version against the head's pending changes, else
//! against its leaf (an absent row: nothing records it), each level against the next; a
//! write changes the row and the head (and, when it moves changes down, their leaves and
//! directories) in one transaction; `verify` checks every row against the whole tree.
//! Three levels keep each write small however many messages a device keeps: a leaf holds
//! about one entry per 4096 rows.
//!
//! What this cannot see from inside the database: a rollback of the whole device (head,
//! buckets and rows together) to an older consistent copy. The sequence number catches
//! that while a store is open (it never goes back), and across restarts only with a
//! [`RollbackCounter`] the platform keeps outside the database.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::schema::T;
use super::seal::NONCE_LEN;
use crate::error::StoreError;

/// A row's version: the nonce of its sealed value.
pub(crate) type Version = [u8; NONCE_LEN];

/// Where a row's version is recorded: an HMAC of its table and row key.
pub(crate) type Entry = [u8; 16];

/// How many children the head and each directory have.
pub(crate) const FANOUT: usize = 64;

/// How many leaves (buckets) there are.
pub(crate) const LEAVES: usize = FANOUT * FANOUT;

/// The head's row id in the `integrity` table.
pub(crate) const HEAD_ID: i64 = 0;

/// The error for a head, directory or leaf that does not open or does not match.
pub(crate) fn tampered() -> StoreError {
    super::rows::tampered("integrity")
}

/// The leaf an entry belongs to.
pub(crate) fn leaf_of(entry: &Entry) -> usize {
    usize::from(u16::from_be_bytes([entry[0], entry[1]])) % LEAVES
}

/// The directory a leaf belongs to, and its slot there.
pub(crate) fn dir_of(leaf: usize) -> (usize, usize) {
    (leaf / FANOUT, leaf % FANOUT)
}

/// The row id of directory `d`: 1 to 64.
pub(crate) fn dir_id(d: usize) -> i64 {
    i64::try_from(d).unwrap_or(i64::MAX).saturating_add(1)
}

/// The row id of leaf `l`: 65 to 4160.
pub(crate) fn leaf_id(l: usize) -> i64 {
    i64::try_from(l + FANOUT)
        .unwrap_or(i64::MAX)
        .saturating_add(1)
}

/// What an integrity row id names.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Node {
    Head,
    Dir(usize),
    Leaf(usize),
}

impl Node {
    pub(crate) fn of_id(id: i64) -> Option<Self> {
        let i = usize::try_from(id).ok()?;
        match i {
            0 => Some(Self::Head),
            i if i <= FANOUT => Some(Self::Dir(i - 1)),
            i if i <= FANOUT + LEAVES => Some(Self::Leaf(i - 1 - FANOUT)),
            _ => None,
        }
    }
}

const HEAD_MAGIC: &[u8; 2] = b"H2";
const DIR_MAGIC: &[u8; 2] = b"D2";
const BUCKET_MAGIC: &[u8; 2] = b"B2";
const SLOTS_LEN: usize = FANOUT * NONCE_LEN;
const ENTRY_LEN: usize = 16 + 1 + NONCE_LEN;
const PENDING_LEN: usize = 16 + 1 + 1 + 2 * NONCE_LEN;

/// How many changes the head keeps before a commit moves them into the leaves.
pub(crate) const MAX_PENDING: usize = 64;

/// The versions of 64 children (`None`: the child has no row, because it is empty).
pub(crate) type Slots = [Option<Version>; FANOUT];

fn encode_slots(out: &mut Vec<u8>, slots: &Slots) {
    for v in slots {
        // A nonce is never all zero (the generation starts at 1).
        out.extend_from_slice(&v.unwrap_or([0; NONCE_LEN]));
    }
}

fn decode_slots(bytes: &[u8]) -> Result<Slots, StoreError> {
    if bytes.len() != SLOTS_LEN {
        return Err(tampered());
    }
    let mut slots = [None; FANOUT];
    for (slot, chunk) in slots.iter_mut().zip(bytes.chunks_exact(NONCE_LEN)) {
        let v = Version::try_from(chunk).map_err(|_| tampered())?;
        *slot = (v != [0; NONCE_LEN]).then_some(v);
    }
    Ok(slots)
}

/// A change the head keeps until a commit moves it into the leaves.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Pending {
    pub(crate) t: T,
    /// The row's version now (`None`: deleted).
    pub(crate) new: Option<Version>,
    /// A message's version in the leaves, if any (where it is placed depends on the
    /// version, so moving the change down must remove it from there).
    pub(crate) below: Option<Version>,
}

/// The head: a commit sequence number, the device's open count, each directory's
/// version, and the changes not yet moved into the leaves.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct Head {
    /// Bumped by every commit that changes a row, and by every open.
    pub(crate) seq: u64,
    /// How many times the device was opened: the first half of every nonce.
    pub(crate) generation: u64,
    pub(crate) dirs: Slots,
    /// Changes newer than the leaves.
    pub(crate) pending: BTreeMap<Entry, Pending>,
}

fn encode_version(out: &mut Vec<u8>, v: Option<Version>) {
    out.extend_from_slice(&v.unwrap_or([0; NONCE_LEN]));
}

impl Head {
    /// The head of a new device, before its first open.
    pub(crate) fn new() -> Self {
        Self {
            seq: 0,
            generation: 0,
            dirs: [None; FANOUT],
            pending: BTreeMap::new(),
        }
    }

    /// The pending change of `entry`, if the head has one (it decides over the leaves).
    pub(crate) fn pending(&self, entry: &Entry) -> Option<&Pending> {
        self.pending.get(entry)
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(20 + SLOTS_LEN + self.pending.len() * PENDING_LEN);
        out.extend_from_slice(HEAD_MAGIC);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.generation.to_be_bytes());
        encode_slots(&mut out, &self.dirs);
        let n = u16::try_from(self.pending.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&n.to_be_bytes());
        for (entry, p) in &self.pending {
            out.extend_from_slice(entry);
            out.push(p.t as u8);
            out.push(u8::from(p.new.is_some()) | (u8::from(p.below.is_some()) << 1));
            encode_version(&mut out, p.new);
            encode_version(&mut out, p.below);
        }
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        let fixed = 18 + SLOTS_LEN;
        let Some(count) = bytes.get(fixed..fixed + 2) else {
            return Err(tampered());
        };
        let count = usize::from(u16::from_be_bytes([count[0], count[1]]));
        if count > MAX_PENDING
            || bytes.len() != fixed + 2 + count * PENDING_LEN
            || &bytes[..2] != HEAD_MAGIC
        {
            return Err(tampered());
        }
        let version = |flag: bool, b: &[u8]| -> Result<Option<Version>, StoreError> {
            let v = Version::try_from(b).map_err(|_| tampered())?;
            match (flag, v == [0; NONCE_LEN]) {
                (true, false) => Ok(Some(v)),
                (false, true) => Ok(None),
                _ => Err(tampered()),
            }
        };
        let mut pending = BTreeMap::new();
        let mut last: Option<Entry> = None;
        for p in bytes[fixed + 2..].chunks_exact(PENDING_LEN) {
            let entry = Entry::try_from(&p[..16]).map_err(|_| tampered())?;
            let t = T::from_tag(p[16])
                .filter(|t| t.tracked())
                .ok_or_else(tampered)?;
            if p[17] > 3 || (t != T::Message && p[17] & 2 != 0) {
                return Err(tampered());
            }
            let new = version(p[17] & 1 != 0, &p[18..30])?;
            let below = version(p[17] & 2 != 0, &p[30..42])?;
            if last.is_some_and(|l| l >= entry) {
                return Err(tampered());
            }
            last = Some(entry);
            pending.insert(entry, Pending { t, new, below });
        }
        let u64_at = |i: usize| {
            bytes
                .get(i..i + 8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_be_bytes)
                .ok_or_else(tampered)
        };
        Ok(Self {
            seq: u64_at(2)?,
            generation: u64_at(10)?,
            dirs: decode_slots(&bytes[18..fixed])?,
            pending,
        })
    }
}

/// A directory: the versions of its 64 leaves.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct Dir(pub(crate) Slots);

impl Default for Dir {
    fn default() -> Self {
        Self([None; FANOUT])
    }
}

impl Dir {
    pub(crate) fn is_empty(&self) -> bool {
        self.0.iter().all(Option::is_none)
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + SLOTS_LEN);
        out.extend_from_slice(DIR_MAGIC);
        encode_slots(&mut out, &self.0);
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        match bytes.split_at_checked(2) {
            Some((magic, slots)) if magic == DIR_MAGIC => Ok(Self(decode_slots(slots)?)),
            _ => Err(tampered()),
        }
    }
}

/// One bucket: the entries of its rows, each with the row's table and version.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub(crate) struct Bucket(BTreeMap<Entry, (T, Version)>);

impl Bucket {
    /// The table and version recorded for `entry`.
    pub(crate) fn get(&self, entry: &Entry) -> Option<&(T, Version)> {
        self.0.get(entry)
    }

    /// Records `entry`'s version (`None`: the row is gone).
    pub(crate) fn set(&mut self, entry: Entry, t: T, version: Option<Version>) {
        match version {
            Some(v) => {
                self.0.insert(entry, (t, v));
            }
            None => {
                self.0.remove(&entry);
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every entry, for `verify`.
    pub(crate) fn into_entries(self) -> impl Iterator<Item = (Entry, (T, Version))> {
        self.0.into_iter()
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(6 + self.0.len() * ENTRY_LEN);
        out.extend_from_slice(BUCKET_MAGIC);
        let n = u32::try_from(self.0.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&n.to_be_bytes());
        for (entry, (t, v)) in &self.0 {
            out.extend_from_slice(entry);
            out.push(*t as u8);
            out.extend_from_slice(v);
        }
        out
    }

    /// Strict: the entries sorted without repeats, every table a tracked one.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        let (Some(magic), Some(count)) = (bytes.get(..2), bytes.get(2..6)) else {
            return Err(tampered());
        };
        let count = <[u8; 4]>::try_from(count).map_err(|_| tampered())?;
        let count = usize::try_from(u32::from_be_bytes(count)).map_err(|_| tampered())?;
        let body = &bytes[6..];
        if magic != BUCKET_MAGIC || Some(body.len()) != count.checked_mul(ENTRY_LEN) {
            return Err(tampered());
        }
        let mut map = BTreeMap::new();
        let mut last: Option<Entry> = None;
        for e in body.chunks_exact(ENTRY_LEN) {
            let entry = Entry::try_from(&e[..16]).map_err(|_| tampered())?;
            let t = T::from_tag(e[16])
                .filter(|t| t.tracked())
                .ok_or_else(tampered)?;
            let v = Version::try_from(&e[17..]).map_err(|_| tampered())?;
            if last.is_some_and(|l| l >= entry) {
                return Err(tampered());
            }
            last = Some(entry);
            map.insert(entry, (t, v));
        }
        Ok(Self(map))
    }
}

/// A counter the platform keeps outside the database (a keystore, a hardware monotonic
/// counter, a file on another volume), so a store can notice across restarts that its
/// whole database was rolled back to an older copy, which nothing inside the database
/// can show. See [`super::DurableStore::attach_rollback_counter`].
pub trait RollbackCounter: Send + Sync {
    /// The highest sequence number recorded.
    fn get(&self) -> Result<u64, Box<dyn std::error::Error + Send + Sync>>;
    /// Records that the store's head reached `seq` (never lower than before). Called
    /// after every commit that changed the head; a failure is reported as
    /// [`StoreError::Backend`] although the commit itself stands.
    fn advance(&self, seq: u64) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;
}

/// The highest head sequence this store has seen, and the app's counter if it gave one.
pub(crate) struct Watch {
    seen: AtomicU64,
    counter: Mutex<Option<Arc<dyn RollbackCounter>>>,
}

impl Watch {
    pub(crate) fn new(seq: u64) -> Self {
        Self {
            seen: AtomicU64::new(seq),
            counter: Mutex::new(None),
        }
    }

    /// The newest head seen so far: take it before reading a head, and pass it to
    /// [`Watch::observe`] (a head read concurrently with a commit of this store may
    /// predate that commit without anything having gone back).
    pub(crate) fn floor(&self) -> u64 {
        self.seen.load(Ordering::SeqCst)
    }

    /// A head just read, after [`Watch::floor`] returned `floor`: refused if older (the
    /// database went back while this store was open).
    pub(crate) fn observe(&self, floor: u64, seq: u64) -> Result<(), StoreError> {
        if seq < floor {
            return Err(StoreError::RolledBack {
                found: seq,
                seen: floor,
            });
        }
        self.seen.fetch_max(seq, Ordering::SeqCst);
        Ok(())
    }

    /// A commit put the head at `seq`.
    pub(crate) fn committed(&self, seq: u64) -> Result<(), StoreError> {
        self.seen.fetch_max(seq, Ordering::SeqCst);
        let counter = self.counter()?;
        if let Some(c) = counter {
            c.advance(seq).map_err(StoreError::backend)?;
        }
        Ok(())
    }

    fn counter(&self) -> Result<Option<Arc<dyn RollbackCounter>>, StoreError> {
        self.counter
            .lock()
            .map(|c| c.clone())
            .map_err(|_| StoreError::Poisoned {
                what: "rollback counter",
            })
    }

    /// Checks the head at `seq` against `counter` and keeps the counter up to date from
    /// now on.
    pub(crate) fn attach(
        &self,
        counter: Arc<dyn RollbackCounter>,
        seq: u64,
    ) -> Result<(), StoreError> {
        let recorded = counter.get().map_err(StoreError::backend)?;
        if seq < recorded {
            return Err(StoreError::RolledBack {
                found: seq,
                seen: recorded,
            });
        }
        self.observe(self.floor(), seq)?;
        counter.advance(seq).map_err(StoreError::backend)?;
        *self.counter.lock().map_err(|_| StoreError::Poisoned {
            what: "rollback counter",
        })? = Some(counter);
        Ok(())
    }
}

/// One tracked row a transaction writes: its entry, its new version (`None`: deleted)
/// and, for a compare-and-swap, the version it had to have.
pub(crate) struct Change {
    pub(crate) t: T,
    pub(crate) entry: Entry,
    pub(crate) new: Option<Version>,
    pub(crate) was: Option<Option<Version>>,
}

/// The leaf a message's entry is kept in: chosen by its version (the nonce of its sealed
/// metadata), so messages stored one after another share leaves and moving the head's
/// changes down rewrites few of them. Other rows' leaves come from their entry
/// ([`leaf_of`]), so an absent row can be shown absent; a message's absence is seen
/// only by `verify`.
pub(crate) fn message_leaf(version: &Version) -> usize {
    // The generation, and the write counter in steps of 256 (about 50 messages).
    let mut key = [0u8; NONCE_LEN];
    key.copy_from_slice(version);
    key[NONCE_LEN - 1] = 0;
    let h = crate::crypto::sha256(&key);
    usize::from(u16::from_be_bytes([h[0], h[1]])) % LEAVES
}

/// The leaf the tree keeps the row of `t` with `entry` at `version` in.
pub(crate) fn placement(t: T, entry: &Entry, version: &Version) -> usize {
    match t {
        T::Message => message_leaf(version),
        _ => leaf_of(entry),
    }
}

/// The version the tree records for `entry` of table `t`: the head's pending change if
/// it has one, else the leaf's (`None`: no row). A record under another table is
/// tampering.
pub(crate) fn recorded(
    t: T,
    entry: &Entry,
    head: &Head,
    leaf: &Bucket,
) -> Result<Option<Version>, StoreError> {
    let found = match head.pending(entry) {
        Some(p) => p.new.map(|v| (p.t, v)),
        None => leaf.get(entry).copied(),
    };
    match found {
        None => Ok(None),
        Some((tt, v)) if tt == t => Ok(Some(v)),
        Some(_) => Err(super::rows::tampered(t.table().name)),
    }
}

/// Checks a row read together with its leaf and the head: the row's version must be
/// the one they record ([`recorded`]), and an absent row must be recorded by neither.
pub(crate) fn check_row(
    t: T,
    entry: &Entry,
    row: Option<&[u8]>,
    head: &Head,
    leaf: &Bucket,
) -> Result<(), StoreError> {
    let have = row
        .map(|r| super::seal::nonce_of(r).ok_or_else(|| super::rows::tampered(t.table().name)))
        .transpose()?;
    if recorded(t, entry, head, leaf)? != have {
        return Err(super::rows::tampered(t.table().name));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(new: Option<Version>) -> Pending {
        Pending {
            t: T::Session,
            new,
            below: None,
        }
    }

    #[test]
    fn head_and_bucket_round_trip_and_refuse_bad_encodings() {
        let mut head = Head::new();
        head.seq = 7;
        head.generation = 3;
        head.dirs[5] = Some([9; NONCE_LEN]);
        assert_eq!(Head::decode(&head.encode()).unwrap(), head);
        let mut bad = head.encode();
        bad.pop();
        assert!(Head::decode(&bad).is_err());
        let mut dir = Dir::default();
        assert!(dir.is_empty());
        dir.0[63] = Some([1; NONCE_LEN]);
        assert_eq!(Dir::decode(&dir.encode()).unwrap(), dir);
        assert!(Dir::decode(&head.encode()).is_err());
        // Row ids: the head, 64 directories, 4096 leaves, nothing else.
        assert_eq!(Node::of_id(0), Some(Node::Head));
        assert_eq!(Node::of_id(dir_id(63)), Some(Node::Dir(63)));
        assert_eq!(Node::of_id(leaf_id(0)), Some(Node::Leaf(0)));
        assert_eq!(
            Node::of_id(leaf_id(LEAVES - 1)),
            Some(Node::Leaf(LEAVES - 1))
        );
        assert_eq!(Node::of_id(leaf_id(LEAVES)), None);
        assert_eq!(Node::of_id(-1), None);

        let mut b = Bucket::default();
        b.set([2; 16], T::Session, Some([1; NONCE_LEN]));
        b.set([1; 16], T::Identity, Some([2; NONCE_LEN]));
        // The head's pending changes round-trip, a deletion included, and at most
        // MAX_PENDING of them.
        head.pending.insert(
            [3; 16],
            Pending {
                t: T::Message,
                new: None,
                below: Some([8; NONCE_LEN]),
            },
        );
        head.pending.insert([4; 16], session(Some([5; NONCE_LEN])));
        assert_eq!(Head::decode(&head.encode()).unwrap(), head);
        for i in 0..=MAX_PENDING {
            head.pending
                .insert([i as u8; 16], session(Some([1; NONCE_LEN])));
        }
        assert!(Head::decode(&head.encode()).is_err());
        assert_eq!(Bucket::decode(&b.encode()).unwrap(), b);
        // Entries out of order, repeated, or naming an untracked table are refused.
        let enc = b.encode();
        let mut swapped = enc[..6].to_vec();
        swapped.extend_from_slice(&enc[6 + ENTRY_LEN..]);
        swapped.extend_from_slice(&enc[6..6 + ENTRY_LEN]);
        assert!(Bucket::decode(&swapped).is_err());
        let mut repeated = enc[..6].to_vec();
        repeated.extend_from_slice(&enc[6..6 + ENTRY_LEN]);
        repeated.extend_from_slice(&enc[6..6 + ENTRY_LEN]);
        assert!(Bucket::decode(&repeated).is_err());
        let mut head_row = enc.clone();
        head_row[6 + 16] = T::Integrity as u8;
        assert!(Bucket::decode(&head_row).is_err());
        b.set([1; 16], T::Identity, None);
        assert!(b.get(&[1; 16]).is_none());
    }

    #[test]
    fn a_row_must_carry_the_version_its_bucket_records() {
        let mut b = Bucket::default();
        let row = |v: u8| {
            let mut r = vec![v; NONCE_LEN];
            r.extend_from_slice(&[0; 20]);
            r
        };
        b.set([1; 16], T::Session, Some([4; NONCE_LEN]));
        let mut h = Head::new();
        assert!(check_row(T::Session, &[1; 16], Some(&row(4)), &h, &b).is_ok());
        // An older copy of the row, a deleted row, a row the bucket does not know, a
        // row of another table under the same entry: all refused.
        assert!(check_row(T::Session, &[1; 16], Some(&row(3)), &h, &b).is_err());
        assert!(check_row(T::Session, &[1; 16], None, &h, &b).is_err());
        assert!(check_row(T::Session, &[2; 16], Some(&row(4)), &h, &b).is_err());
        assert!(check_row(T::Identity, &[1; 16], Some(&row(4)), &h, &b).is_err());
        assert!(check_row(T::Session, &[2; 16], None, &h, &b).is_ok());
        // A pending change in the head decides over the leaf: a newer version, or a
        // deletion the leaf does not know yet.
        h.pending.insert([1; 16], session(Some([6; NONCE_LEN])));
        assert!(check_row(T::Session, &[1; 16], Some(&row(6)), &h, &b).is_ok());
        assert!(check_row(T::Session, &[1; 16], Some(&row(4)), &h, &b).is_err());
        h.pending.insert([1; 16], session(None));
        assert!(check_row(T::Session, &[1; 16], None, &h, &b).is_ok());
        assert!(check_row(T::Session, &[1; 16], Some(&row(4)), &h, &b).is_err());
    }

    #[test]
    fn the_watch_refuses_a_head_older_than_one_seen() {
        let w = Watch::new(5);
        assert!(w.observe(w.floor(), 5).is_ok());
        assert!(w.observe(w.floor(), 9).is_ok());
        assert!(matches!(
            w.observe(w.floor(), 8),
            Err(StoreError::RolledBack { found: 8, seen: 9 })
        ));
        // A head read before a concurrent commit moved the floor is not a rollback.
        let floor = w.floor();
        w.committed(12).unwrap();
        assert!(w.observe(floor, 10).is_ok());
        assert_eq!(w.floor(), 12);
    }
}
