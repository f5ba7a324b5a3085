//! The symmetric chain: every epoch's secret seeds one send and one receive chain whose
//! per-message keys salt the Double Ratchet (facts §2.7).

use std::collections::VecDeque;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::{Direction, SpqrError};
use crate::crypto::hkdf_sha256;

const START_INFO: &[u8] = b"Signal PQ Ratchet V1 Chain  Start";
const ADD_EPOCH_INFO: &[u8] = b"Signal PQ Ratchet V1 Chain Add Epoch";
const NEXT_INFO: &[u8] = b"Signal PQ Ratchet V1 Chain Next";

/// Farthest a receive chain ratchets forward for one message.
pub(crate) const DEFAULT_MAX_JUMP: u32 = 25_000;
/// How many keys behind the newest a receive chain keeps for late messages.
pub(crate) const DEFAULT_MAX_OOO_KEYS: u32 = 2_000;
/// Epochs kept before the send epoch (older ones are dropped when it advances).
const EPOCHS_KEPT_BEFORE_SEND: usize = 1;

/// One skipped key kept for a late message: its index and the key.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct SkippedKey {
    pub(crate) index: u32,
    pub(crate) key: [u8; 32],
}

/// One direction of one epoch: the counter of the last key taken, the value the next
/// key comes from (`None` once a send half is retired) and, for receiving, skipped keys.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct Half {
    pub(crate) ctr: u32,
    pub(crate) next: Option<[u8; 32]>,
    pub(crate) skipped: Vec<SkippedKey>,
}

/// The send and receive halves of one epoch.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct Link {
    pub(crate) send: Half,
    pub(crate) recv: Half,
}

/// The limits of a receive chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Params {
    pub(crate) max_jump: u32,
    pub(crate) max_ooo_keys: u32,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            max_jump: DEFAULT_MAX_JUMP,
            max_ooo_keys: DEFAULT_MAX_OOO_KEYS,
        }
    }
}

impl Params {
    /// Size at which the skipped-key store is pruned.
    fn trim_size(&self) -> usize {
        (self.max_ooo_keys as usize) * 11 / 10 + 1
    }
}

/// The chain of all kept epochs of one side.
#[derive(Clone)]
pub(crate) struct Chain {
    pub(crate) direction: Direction,
    /// The newest epoch added (0 = the start).
    pub(crate) current_epoch: u64,
    /// The epoch whose send half the last sent message used.
    pub(crate) send_epoch: u64,
    /// Links of epochs `current_epoch - links.len() + 1 ..= current_epoch`.
    pub(crate) links: VecDeque<Link>,
    pub(crate) next_root: Zeroizing<[u8; 32]>,
    pub(crate) params: Params,
}

/// Splits a 96-byte KDF output into next_root and the link for `direction`.
fn split(okm: &[u8; 96], direction: Direction) -> (Zeroizing<[u8; 32]>, Link) {
    let mut root = Zeroizing::new([0u8; 32]);
    let mut a2b = [0u8; 32];
    let mut b2a = [0u8; 32];
    root.copy_from_slice(&okm[..32]);
    a2b.copy_from_slice(&okm[32..64]);
    b2a.copy_from_slice(&okm[64..]);
    let (send, recv) = match direction {
        Direction::A2B => (a2b, b2a),
        Direction::B2A => (b2a, a2b),
    };
    a2b.zeroize();
    b2a.zeroize();
    (
        root,
        Link {
            send: Half::new(send),
            recv: Half::new(recv),
        },
    )
}

impl Half {
    fn new(next: [u8; 32]) -> Self {
        Self {
            ctr: 0,
            next: Some(next),
            skipped: Vec::new(),
        }
    }

    /// Steps the chain once: ctr + 1 and that counter's key.
    fn step(&mut self) -> Result<(u32, [u8; 32]), SpqrError> {
        let next = self.next.as_mut().ok_or(SpqrError::EpochOutOfRange)?;
        let ctr = self.ctr.checked_add(1).ok_or(SpqrError::ChainExhausted)?;
        let mut info = Vec::with_capacity(4 + NEXT_INFO.len());
        info.extend_from_slice(&ctr.to_be_bytes());
        info.extend_from_slice(NEXT_INFO);
        let mut okm = Zeroizing::new([0u8; 64]);
        hkdf_sha256(&[0u8; 32], next.as_slice(), &info, &mut okm);
        next.copy_from_slice(&okm[..32]);
        let mut key = [0u8; 32];
        key.copy_from_slice(&okm[32..]);
        self.ctr = ctr;
        Ok((ctr, key))
    }

    /// The receive key of index `at`: ratchets forward, or takes a kept skipped key.
    fn key(&mut self, at: u32, params: &Params) -> Result<[u8; 32], SpqrError> {
        if at < self.ctr {
            return self.take_skipped(at, params);
        }
        if at == self.ctr {
            return Err(SpqrError::KeyAlreadyRequested);
        }
        if at - self.ctr > params.max_jump {
            return Err(SpqrError::KeyJump);
        }
        let max_ooo = u64::from(params.max_ooo_keys);
        if u64::from(at) > u64::from(self.ctr) + max_ooo {
            // Every key held now would be too old once `at` is reached.
            self.skipped.clear();
        }
        while at > self.ctr + 1 {
            let (index, key) = self.step()?;
            // Keep only keys that stay within max_ooo of the target.
            if u64::from(index) + max_ooo >= u64::from(at) {
                self.skipped.push(SkippedKey { index, key });
            }
        }
        self.prune(params);
        Ok(self.step()?.1)
    }

    fn take_skipped(&mut self, at: u32, params: &Params) -> Result<[u8; 32], SpqrError> {
        if u64::from(at) + u64::from(params.max_ooo_keys) < u64::from(self.ctr) {
            return Err(SpqrError::KeyTrimmed);
        }
        match self.skipped.iter().position(|k| k.index == at) {
            Some(pos) => Ok(self.skipped.swap_remove(pos).key),
            None => Err(SpqrError::KeyAlreadyRequested),
        }
    }

    /// Drops keys older than ctr − max_ooo once the store has grown past its trim size.
    fn prune(&mut self, params: &Params) {
        if self.skipped.len() >= params.trim_size() {
            let horizon = self.ctr.saturating_sub(params.max_ooo_keys);
            self.skipped.retain(|k| k.index >= horizon);
        }
    }
}

impl Chain {
    /// The chain of a new session, from PQXDH's SPQR key.
    pub(crate) fn new(auth_key: &[u8], direction: Direction) -> Self {
        let mut okm = Zeroizing::new([0u8; 96]);
        hkdf_sha256(&[0u8; 32], auth_key, START_INFO, &mut okm);
        let (next_root, link) = split(&okm, direction);
        Self {
            direction,
            current_epoch: 0,
            send_epoch: 0,
            links: VecDeque::from([link]),
            next_root,
            params: Params::default(),
        }
    }

    /// Adds epoch `epoch` (which must be the next one) from its secret.
    pub(crate) fn add_epoch(&mut self, epoch: u64, secret: &[u8; 32]) -> Result<(), SpqrError> {
        if Some(epoch) != self.current_epoch.checked_add(1) {
            return Err(SpqrError::StateInconsistent);
        }
        let mut okm = Zeroizing::new([0u8; 96]);
        hkdf_sha256(self.next_root.as_slice(), secret, ADD_EPOCH_INFO, &mut okm);
        let (next_root, link) = split(&okm, self.direction);
        self.current_epoch = epoch;
        self.next_root = next_root;
        self.links.push_back(link);
        Ok(())
    }

    /// Position of `epoch` in `links`.
    fn position(&self, epoch: u64) -> Result<usize, SpqrError> {
        if epoch > self.current_epoch {
            return Err(SpqrError::EpochOutOfRange);
        }
        let back = self.current_epoch - epoch;
        let len = self.links.len() as u64;
        if back >= len {
            return Err(SpqrError::EpochOutOfRange);
        }
        usize::try_from(len - 1 - back).map_err(|_| SpqrError::EpochOutOfRange)
    }

    /// The next send key of `epoch`: (its index, the key). Moving to a newer epoch drops
    /// all but one older epoch and retires the older send halves.
    pub(crate) fn send_key(&mut self, epoch: u64) -> Result<(u32, [u8; 32]), SpqrError> {
        if epoch < self.send_epoch {
            return Err(SpqrError::SendEpochDecreased);
        }
        let mut pos = self.position(epoch)?;
        if epoch != self.send_epoch {
            self.send_epoch = epoch;
            while pos > EPOCHS_KEPT_BEFORE_SEND {
                self.links.pop_front();
                pos -= 1;
            }
            for link in self.links.iter_mut().take(pos) {
                if let Some(mut next) = link.send.next.take() {
                    next.zeroize();
                }
            }
        }
        let link = self.links.get_mut(pos).ok_or(SpqrError::EpochOutOfRange)?;
        link.send.step()
    }

    /// The receive key of (`epoch`, `index`).
    pub(crate) fn recv_key(&mut self, epoch: u64, index: u32) -> Result<[u8; 32], SpqrError> {
        let pos = self.position(epoch)?;
        let params = self.params;
        let link = self.links.get_mut(pos).ok_or(SpqrError::EpochOutOfRange)?;
        link.recv.key(index, &params)
    }

    /// Checks a stored chain's invariants (what `send_key` and `add_epoch` keep true).
    pub(crate) fn validate(&self) -> Result<(), &'static str> {
        if self.params.max_jump == 0 || self.params.max_ooo_keys == 0 {
            return Err("chain parameter zero");
        }
        let len = self.links.len() as u64;
        if len == 0 || len > self.current_epoch.saturating_add(1) {
            return Err("chain link count");
        }
        if self.send_epoch > self.current_epoch || self.current_epoch - self.send_epoch >= len {
            return Err("chain send epoch not kept");
        }
        let send_pos = len - 1 - (self.current_epoch - self.send_epoch);
        if send_pos > EPOCHS_KEPT_BEFORE_SEND as u64 {
            return Err("chain keeps too many old epochs");
        }
        let trim = self.params.trim_size();
        for (i, link) in self.links.iter().enumerate() {
            let retired = (i as u64) < send_pos;
            if retired != link.send.next.is_none() {
                return Err("chain send half retired wrongly");
            }
            if !link.send.skipped.is_empty() {
                return Err("chain send half has skipped keys");
            }
            if link.recv.next.is_none() {
                return Err("chain receive half missing");
            }
            if link.recv.skipped.len() > trim {
                return Err("chain skipped keys over limit");
            }
            let mut seen = std::collections::BTreeSet::new();
            for k in &link.recv.skipped {
                if k.index >= link.recv.ctr || !seen.insert(k.index) {
                    return Err("chain skipped key index");
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn pair() -> (Chain, Chain) {
        (
            Chain::new(b"auth", Direction::A2B),
            Chain::new(b"auth", Direction::B2A),
        )
    }

    #[test]
    fn start_split_and_first_index() {
        let (mut a, mut b) = pair();
        let mut okm = [0u8; 96];
        hkdf_sha256(&[0u8; 32], b"auth", START_INFO, &mut okm);
        assert_eq!(a.next_root[..], okm[..32]);
        assert_eq!(a.links[0].send.next.unwrap()[..], okm[32..64]);
        assert_eq!(b.links[0].send.next.unwrap()[..], okm[64..]);
        // Next key: ctr 1, info = 1u32 BE ‖ label, key = okm[32..64].
        let mut info = 1u32.to_be_bytes().to_vec();
        info.extend_from_slice(NEXT_INFO);
        let mut next = [0u8; 64];
        hkdf_sha256(&[0u8; 32], &okm[32..64], &info, &mut next);
        let (idx, key) = a.send_key(0).unwrap();
        assert_eq!(idx, 1);
        assert_eq!(key[..], next[32..]);
        assert_eq!(b.recv_key(0, 1).unwrap(), key);
        a.validate().unwrap();
        b.validate().unwrap();
    }

    #[test]
    fn epochs_match_across_directions() {
        let (mut a, mut b) = pair();
        a.add_epoch(1, &[2; 32]).unwrap();
        b.add_epoch(1, &[2; 32]).unwrap();
        assert_eq!(a.add_epoch(3, &[2; 32]), Err(SpqrError::StateInconsistent));
        for _ in 0..9 {
            a.send_key(1).unwrap();
        }
        let (idx, key) = a.send_key(1).unwrap();
        assert_eq!(idx, 10);
        assert_eq!(b.recv_key(1, 10).unwrap(), key);
        let (idx, key) = b.send_key(1).unwrap();
        assert_eq!(a.recv_key(1, idx).unwrap(), key);
        assert_eq!(a.send_key(0), Err(SpqrError::SendEpochDecreased));
        assert_eq!(a.recv_key(2, 1), Err(SpqrError::EpochOutOfRange));
        a.validate().unwrap();
    }

    #[test]
    fn retention_keeps_one_epoch_before_send() {
        let (mut a, mut b) = pair();
        for e in 1..=3 {
            a.add_epoch(e, &[e as u8; 32]).unwrap();
            b.add_epoch(e, &[e as u8; 32]).unwrap();
        }
        let (_, k0) = b.send_key(0).unwrap();
        a.send_key(3).unwrap();
        assert_eq!(a.links.len(), 2);
        assert_eq!(a.recv_key(0, 1), Err(SpqrError::EpochOutOfRange));
        assert_eq!(a.recv_key(1, 1), Err(SpqrError::EpochOutOfRange));
        let (i2, k2) = b.send_key(2).unwrap();
        assert_eq!(a.recv_key(2, i2).unwrap(), k2);
        assert_ne!(k0, k2);
        assert!(a.links[0].send.next.is_none());
        a.validate().unwrap();
    }

    #[test]
    fn out_of_order_duplicates_and_jumps() {
        let (mut a, mut b) = pair();
        let keys: Vec<_> = (0..50).map(|_| a.send_key(0).unwrap()).collect();
        for &i in &[10usize, 3, 49, 0, 25, 11, 48] {
            assert_eq!(b.recv_key(0, keys[i].0).unwrap(), keys[i].1);
        }
        assert_eq!(b.recv_key(0, 4), Err(SpqrError::KeyAlreadyRequested));
        assert_eq!(b.recv_key(0, 50), Err(SpqrError::KeyAlreadyRequested));
        assert_eq!(b.recv_key(0, 11), Err(SpqrError::KeyAlreadyRequested));
        assert_eq!(b.recv_key(0, 50 + 25_001), Err(SpqrError::KeyJump));
        b.recv_key(0, 50 + 25_000).unwrap();
        assert_eq!(b.recv_key(0, 5), Err(SpqrError::KeyTrimmed));
        b.validate().unwrap();
    }

    #[test]
    fn skipped_store_is_bounded() {
        let mut b = Chain::new(b"auth", Direction::B2A);
        b.params = Params {
            max_jump: 100,
            max_ooo_keys: 10,
        };
        b.recv_key(0, 10).unwrap();
        b.recv_key(0, 12).unwrap();
        assert_eq!(b.recv_key(0, 1), Err(SpqrError::KeyTrimmed));
        b.recv_key(0, 2).unwrap();
        for at in (20..200).step_by(7) {
            b.recv_key(0, at).unwrap();
            assert!(b.links[0].recv.skipped.len() <= b.params.trim_size());
        }
        b.validate().unwrap();
    }
}
