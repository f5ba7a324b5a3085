//! Sealed sender v2 (`r = HKDF(M, "Sealed Sender v2: r (2023-08)", 32)` is the ephemeral
//! private key): one AES-256-GCM-SIV encryption of the content per message, and per
//! recipient a 32-byte key share `C_i` (one X25519 with the derived ephemeral key) and
//! a 16-byte tag `AT_i` (one X25519 between the two identity keys).
//!
//! Sent (`0x23`, to the server): `ver ‖ count(varint) ‖ {service_id[17] ‖ {device_id u8 ‖
//! registration_id u16 (top bit: another device follows)}+ ‖ C[32] ‖ AT[16]}* ‖ E[32] ‖ ct`.
//! Received (`0x22`, per recipient): `ver ‖ C[32] ‖ AT[16] ‖ E[32] ‖ ct`.

use std::collections::{HashMap, HashSet};

use rand_core::{CryptoRng, RngCore};
use zeroize::{Zeroize, Zeroizing};

use super::ServiceId;
use super::content::UnidentifiedSenderMessageContent;
use super::error::{SealError, SealedOpenError, SealedWireError};
use super::symmetric::{gcm_siv_decrypt, gcm_siv_encrypt};
use crate::crypto;
use crate::keys::{IdentityKey, IdentityKeyPair, PrivateKey, PublicKey};

/// The version byte of a per-recipient (received) v2 message.
pub const V2_VERSION_BYTE: u8 = 0x22;
/// The version byte of a multi-recipient (sent) v2 message: v2, ServiceId-aware.
pub const V2_MULTI_VERSION_BYTE: u8 = 0x23;

const LABEL_R: &[u8] = b"Sealed Sender v2: r (2023-08)";
const LABEL_K: &[u8] = b"Sealed Sender v2: K";
const LABEL_DH: &[u8] = b"Sealed Sender v2: DH";
const LABEL_DH_S: &[u8] = b"Sealed Sender v2: DH-sender";

const C_LEN: usize = 32;
const AT_LEN: usize = 16;
const E_LEN: usize = 32;
const GCM_TAG_LEN: usize = 16;

/// The ephemeral key pair and content key derived from the message secret `M`.
struct Derived {
    e: PrivateKey,
    e_pub: PublicKey,
    k: Zeroizing<[u8; 32]>,
}

fn derive(m: &[u8; 32]) -> Derived {
    // Current libsignal (label "r (2023-08)"): r is 32 bytes used directly as the X25519
    // private key; releases before it expanded 64 bytes under "r" and reduced them.
    let mut r = Zeroizing::new([0u8; 32]);
    crypto::hkdf_sha256(&[], m, LABEL_R, &mut r);
    let mut k = Zeroizing::new([0u8; 32]);
    crypto::hkdf_sha256(&[], m, LABEL_K, &mut k);
    let e = PrivateKey::from_bytes(*r);
    let e_pub = e.public_key();
    Derived { e, e_pub, k }
}

/// Length of the `DH` label's input: `DH ‖ E ‖ R` (keys in their 33-byte encoding).
const SHARE_IKM_LEN: usize = 32 + 33 + 33;
/// Length of the `DH-sender` label's input: `DH ‖ E ‖ C ‖ S ‖ R`.
const TAG_IKM_LEN: usize = 32 + 33 + C_LEN + 33 + 33;

/// `C = HKDF(DH ‖ E ‖ R, "DH") XOR M` (its own inverse). `e_ser` and `r_ser` are the
/// 33-byte encodings; the input is assembled on the stack and wiped after use.
fn xor_share(shared: &[u8; 32], e_ser: &[u8; 33], r_ser: &[u8; 33], m: &[u8; 32]) -> [u8; 32] {
    let mut ikm = Zeroizing::new([0u8; SHARE_IKM_LEN]);
    let (dh, rest) = ikm.split_at_mut(32);
    let (e, r) = rest.split_at_mut(33);
    dh.copy_from_slice(shared);
    e.copy_from_slice(e_ser);
    r.copy_from_slice(r_ser);
    let mut out = [0u8; 32];
    crypto::hkdf_sha256(&[], ikm.as_ref(), LABEL_DH, &mut out);
    for (o, x) in out.iter_mut().zip(m) {
        *o ^= x;
    }
    out
}

/// `AT = HKDF(DH(S, R) ‖ E ‖ C ‖ S ‖ R, "DH-sender")[..16]`, its input on the stack.
fn auth_tag(
    shared: &[u8; 32],
    e_ser: &[u8; 33],
    c: &[u8; 32],
    s_ser: &[u8; 33],
    r_ser: &[u8; 33],
) -> [u8; 16] {
    let mut ikm = Zeroizing::new([0u8; TAG_IKM_LEN]);
    let (dh, rest) = ikm.split_at_mut(32);
    let (e, rest) = rest.split_at_mut(33);
    let (cc, rest) = rest.split_at_mut(C_LEN);
    let (sp, rp) = rest.split_at_mut(33);
    dh.copy_from_slice(shared);
    e.copy_from_slice(e_ser);
    cc.copy_from_slice(c);
    sp.copy_from_slice(s_ser);
    rp.copy_from_slice(r_ser);
    let mut out = [0u8; 16];
    crypto::hkdf_sha256(&[], ikm.as_ref(), LABEL_DH_S, &mut out);
    out
}

/// One destination device of a multi-recipient message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    /// The recipient's service id.
    pub service_id: ServiceId,
    /// The device id, 1..=127.
    pub device_id: u32,
    /// The device's registration id (14 bits).
    pub registration_id: u32,
    /// The recipient's identity key (the same for all its devices).
    pub identity_key: IdentityKey,
}

/// Seals `content` once for many recipients: the `0x23` blob the server splits. The
/// devices of one service id share one key share (grouped in first-seen order).
///
/// Each recipient costs two X25519 agreements: the ephemeral one and the static
/// sender-to-recipient one behind the authentication tag. An app that sends to the same
/// people again should keep a [`SealV2Context`], which remembers the static one.
pub fn seal_v2<R: RngCore + CryptoRng>(
    content: &UnidentifiedSenderMessageContent,
    sender: &IdentityKeyPair,
    recipients: &[Recipient],
    rng: &mut R,
) -> Result<Vec<u8>, SealError> {
    seal(content, sender, None, recipients, rng).map(|(out, _)| out)
}

/// A sender's reusable state for v2 sealing: the static agreement `DH(S, R)` between the
/// sender's identity key and each recipient identity key it has sealed to.
///
/// The authentication tag of every key share needs `DH(S, R)`, which depends only on
/// the two identity keys, so it is the same in every message to that recipient. Kept
/// across messages, it makes a repeat send cost one X25519 per recipient (the ephemeral
/// agreement) instead of two; the wire output is byte-for-byte what [`seal_v2`] makes.
///
/// Entries are keyed by the recipient's identity key, so a changed identity key is a new
/// entry: the old one is never used for the new key. [`forget`](Self::forget) drops the
/// entry of a key that is gone (and [`clear`](Self::clear) all), which bounds the memory
/// to one 64-byte entry per identity key still in use. Each secret lives in its own heap
/// cell, so growing the map never leaves copies behind, and is wiped when dropped; `Debug`
/// shows only the sender's public key and the number of entries.
pub struct SealV2Context {
    sender: IdentityKeyPair,
    static_agreements: HashMap<PublicKey, Box<Zeroizing<[u8; 32]>>>,
}

impl SealV2Context {
    /// An empty context for sealing as `sender`.
    pub fn new(sender: &IdentityKeyPair) -> Self {
        Self {
            sender: sender.clone(),
            static_agreements: HashMap::new(),
        }
    }

    /// The identity this context seals as.
    pub fn sender(&self) -> &IdentityKey {
        self.sender.identity_key()
    }

    /// Number of recipient identity keys with a remembered agreement.
    pub fn len(&self) -> usize {
        self.static_agreements.len()
    }

    /// Whether nothing is remembered yet.
    pub fn is_empty(&self) -> bool {
        self.static_agreements.is_empty()
    }

    /// Computes and keeps the agreement for `identity` ahead of the first send (for
    /// example when a contact is added), so that send is already warm.
    pub fn precompute(&mut self, identity: &IdentityKey) -> Result<(), SealError> {
        let r_pub = identity.public_key();
        if !self.static_agreements.contains_key(r_pub) {
            let shared = self
                .sender
                .private_key()
                .agree(r_pub)
                .ok_or(SealError::WeakKey)?;
            self.static_agreements.insert(*r_pub, Box::new(shared));
        }
        Ok(())
    }

    /// Drops (and wipes) the agreement for `identity`; `true` if there was one.
    pub fn forget(&mut self, identity: &IdentityKey) -> bool {
        self.static_agreements
            .remove(identity.public_key())
            .is_some()
    }

    /// Drops (and wipes) every remembered agreement.
    pub fn clear(&mut self) {
        self.static_agreements.clear();
    }

    /// As [`seal_v2`] for this context's sender, remembering the agreement of every new
    /// recipient identity key. On error nothing is remembered.
    pub fn seal<R: RngCore + CryptoRng>(
        &mut self,
        content: &UnidentifiedSenderMessageContent,
        recipients: &[Recipient],
        rng: &mut R,
    ) -> Result<Vec<u8>, SealError> {
        let (out, new) = seal(
            content,
            &self.sender,
            Some(&self.static_agreements),
            recipients,
            rng,
        )?;
        for (key, shared) in new {
            self.static_agreements.insert(key, shared);
        }
        Ok(out)
    }
}

impl std::fmt::Debug for SealV2Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealV2Context")
            .field("sender", self.sender.identity_key())
            .field("remembered", &self.static_agreements.len())
            .finish()
    }
}

/// One service id's entry in the sent message, in first-seen order: its identity key
/// and its devices as a chain through [`seal`]'s `next` links.
struct Group<'a> {
    service_id: &'a ServiceId,
    identity: &'a IdentityKey,
    first: usize,
    last: usize,
}

/// Static agreements computed during one seal, for the context to keep on success.
type NewAgreements = Vec<(PublicKey, Box<Zeroizing<[u8; 32]>>)>;

/// The sealing itself, with or without remembered static agreements; returns the
/// message and the agreements it had to compute.
fn seal<R: RngCore + CryptoRng>(
    content: &UnidentifiedSenderMessageContent,
    sender: &IdentityKeyPair,
    cache: Option<&HashMap<PublicKey, Box<Zeroizing<[u8; 32]>>>>,
    recipients: &[Recipient],
    rng: &mut R,
) -> Result<(Vec<u8>, NewAgreements), SealError> {
    if recipients.is_empty() {
        return Err(SealError::NoRecipients);
    }
    // Check every id, and group the devices by service id in linear time: `next[i]` is
    // the recipient index of the following device of the same service id. A service id
    // gets one key share under one identity key, so a second key for it is refused (not
    // sealed to the first one), and so is a device listed twice: the server refuses
    // such a message, and deduplicating would hide the caller's bug.
    let mut wire_ids = Vec::with_capacity(recipients.len());
    let mut next = vec![usize::MAX; recipients.len()];
    let mut groups: Vec<Group<'_>> = Vec::new();
    let mut index: HashMap<&ServiceId, usize> = HashMap::new();
    let mut devices: HashSet<(&ServiceId, u32)> = HashSet::with_capacity(recipients.len());
    for (i, r) in recipients.iter().enumerate() {
        let device = u8::try_from(r.device_id)
            .ok()
            .filter(|d| (1..=127).contains(d))
            .ok_or(SealError::InvalidDeviceId {
                device_id: r.device_id,
            })?;
        let reg = u16::try_from(r.registration_id)
            .ok()
            .filter(|r| *r <= 0x3fff)
            .ok_or(SealError::InvalidRegistrationId {
                registration_id: r.registration_id,
            })?;
        wire_ids.push((device, reg));
        let at = *index.entry(&r.service_id).or_insert(groups.len());
        match groups.get_mut(at) {
            Some(g) => {
                if *g.identity != r.identity_key {
                    return Err(SealError::ConflictingIdentityKeys);
                }
                if let Some(link) = next.get_mut(g.last) {
                    *link = i;
                }
                g.last = i;
            }
            None => groups.push(Group {
                service_id: &r.service_id,
                identity: &r.identity_key,
                first: i,
                last: i,
            }),
        }
        if !devices.insert((&r.service_id, r.device_id)) {
            return Err(SealError::DuplicateRecipient {
                device_id: r.device_id,
            });
        }
    }
    drop(index);
    drop(devices);

    let mut m = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(m.as_mut());
    let d = derive(&m);
    let ct = gcm_siv_encrypt(&d.k, content.serialized());
    let s_ser = sender.identity_key().public_key().serialize();
    let e_ser = d.e_pub.serialize();

    let len =
        1 + 10 + groups.len() * (17 + C_LEN + AT_LEN) + recipients.len() * 3 + E_LEN + ct.len();
    let mut out = Vec::with_capacity(len);
    out.push(V2_MULTI_VERSION_BYTE);
    put_varint(&mut out, groups.len() as u64);
    let mut new: NewAgreements = Vec::new();
    let mut static_shared = Zeroizing::new([0u8; 32]);
    for g in &groups {
        let r_pub = g.identity.public_key();
        let r_ser = r_pub.serialize();
        out.extend_from_slice(&g.service_id.fixed_width_binary());
        let mut i = g.first;
        while let Some(&(device, reg)) = wire_ids.get(i) {
            i = next.get(i).copied().unwrap_or(usize::MAX);
            let more = if i == usize::MAX { 0 } else { 0x8000 };
            out.push(device);
            out.extend_from_slice(&(reg | more).to_be_bytes());
        }
        let shared = d.e.agree(r_pub).ok_or(SealError::WeakKey)?;
        let c = xor_share(&shared, &e_ser, &r_ser, &m);
        match cache.and_then(|c| c.get(r_pub)) {
            Some(known) => *static_shared = ***known,
            None => {
                let fresh = sender
                    .private_key()
                    .agree(r_pub)
                    .ok_or(SealError::WeakKey)?;
                *static_shared = *fresh;
                if cache.is_some() {
                    new.push((*r_pub, Box::new(fresh)));
                }
            }
        }
        let at = auth_tag(&static_shared, &e_ser, &c, &s_ser, &r_ser);
        out.extend_from_slice(&c);
        out.extend_from_slice(&at);
    }
    out.extend_from_slice(d.e_pub.x25519_bytes());
    out.extend_from_slice(&ct);
    Ok((out, new))
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn take<'a>(
    buf: &mut &'a [u8],
    n: usize,
    field: &'static str,
) -> Result<&'a [u8], SealedWireError> {
    if buf.len() < n {
        return Err(SealedWireError::Malformed { field });
    }
    let (a, b) = buf.split_at(n);
    *buf = b;
    Ok(a)
}

fn get_varint(buf: &mut &[u8]) -> Result<u64, SealedWireError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = take(buf, 1, "count")?[0];
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(SealedWireError::Malformed { field: "count" })
}

/// One recipient entry of a multi-recipient message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultiRecipientEntry {
    /// The recipient.
    pub service_id: ServiceId,
    /// `(device id, registration id)` of each device; empty for an excluded recipient.
    pub devices: Vec<(u8, u16)>,
    key_share: Option<[u8; C_LEN + AT_LEN]>,
}

/// A parsed multi-recipient (`0x23`) message, as the server sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultiRecipientMessage {
    recipients: Vec<MultiRecipientEntry>,
    shared_offset: usize,
    serialized: Vec<u8>,
}

impl MultiRecipientMessage {
    /// The recipient entries, in order.
    pub fn recipients(&self) -> &[MultiRecipientEntry] {
        &self.recipients
    }

    /// The per-recipient (`0x22`) message for `service_id`, as the server delivers it;
    /// `None` when the message has no key share for it.
    pub fn for_recipient(&self, service_id: &ServiceId) -> Option<Vec<u8>> {
        let entry = self
            .recipients
            .iter()
            .find(|r| r.service_id == *service_id)?;
        let share = entry.key_share.as_ref()?;
        let shared = self.serialized.get(self.shared_offset..)?;
        let mut out = Vec::with_capacity(1 + share.len() + shared.len());
        out.push(V2_VERSION_BYTE);
        out.extend_from_slice(share);
        out.extend_from_slice(shared);
        Some(out)
    }

    /// The bytes as sent.
    pub fn serialized(&self) -> &[u8] {
        &self.serialized
    }
}

impl TryFrom<&[u8]> for MultiRecipientMessage {
    type Error = SealedWireError;

    fn try_from(bytes: &[u8]) -> Result<Self, SealedWireError> {
        let Some(&version) = bytes.first() else {
            return Err(SealedWireError::TooShort { len: 0 });
        };
        if version != V2_MULTI_VERSION_BYTE {
            return Err(SealedWireError::UnsupportedVersion { found: version });
        }
        let mut buf = &bytes[1..];
        let count = get_varint(&mut buf)?;
        // Each entry takes at least 18 bytes, which bounds the allocation.
        if count > (buf.len() / 18) as u64 {
            return Err(SealedWireError::Malformed { field: "count" });
        }
        let mut recipients = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let sid = take(&mut buf, 17, "service_id")?;
            let service_id =
                ServiceId::from_fixed_width_binary(sid).ok_or(SealedWireError::Malformed {
                    field: "service_id",
                })?;
            let mut devices = Vec::new();
            let mut excluded = false;
            loop {
                let device = take(&mut buf, 1, "device_id")?[0];
                if device == 0 {
                    if !devices.is_empty() {
                        return Err(SealedWireError::Malformed { field: "device_id" });
                    }
                    excluded = true;
                    break;
                }
                if device > 127 {
                    return Err(SealedWireError::Malformed { field: "device_id" });
                }
                let reg = take(&mut buf, 2, "registration_id")?;
                let reg = u16::from_be_bytes([reg[0], reg[1]]);
                devices.push((device, reg & 0x3fff));
                if reg & 0x8000 == 0 {
                    break;
                }
            }
            let key_share = if excluded {
                None
            } else {
                let s = take(&mut buf, C_LEN + AT_LEN, "key_share")?;
                let mut a = [0u8; C_LEN + AT_LEN];
                a.copy_from_slice(s);
                Some(a)
            };
            recipients.push(MultiRecipientEntry {
                service_id,
                devices,
                key_share,
            });
        }
        if buf.len() < E_LEN + GCM_TAG_LEN {
            return Err(SealedWireError::TooShort { len: bytes.len() });
        }
        Ok(Self {
            recipients,
            shared_offset: bytes.len() - buf.len(),
            serialized: bytes.to_vec(),
        })
    }
}

/// Opens a received v2 message (version byte already checked), unvalidated.
pub(super) fn open_v2(
    bytes: &[u8],
    recipient: &IdentityKeyPair,
) -> Result<UnidentifiedSenderMessageContent, SealedOpenError> {
    let min = 1 + C_LEN + AT_LEN + E_LEN + GCM_TAG_LEN;
    if bytes.len() < min {
        return Err(SealedWireError::TooShort { len: bytes.len() }.into());
    }
    let mut c = [0u8; C_LEN];
    c.copy_from_slice(&bytes[1..1 + C_LEN]);
    let at = &bytes[1 + C_LEN..1 + C_LEN + AT_LEN];
    let mut e = [0u8; E_LEN];
    e.copy_from_slice(&bytes[1 + C_LEN + AT_LEN..min - GCM_TAG_LEN]);
    let e_pub = PublicKey::from_x25519(e);
    let ct = &bytes[min - GCM_TAG_LEN..];
    let r_pub = recipient.identity_key().public_key();

    let shared = recipient
        .private_key()
        .agree(&e_pub)
        .ok_or(SealedOpenError::InvalidMessage)?;
    let e_ser = e_pub.serialize();
    let r_ser = r_pub.serialize();
    let mut m = Zeroizing::new(xor_share(&shared, &e_ser, &r_ser, &c));
    let d = derive(&m);
    m.zeroize();
    if !crypto::ct_eq(d.e_pub.x25519_bytes(), e_pub.x25519_bytes()) {
        return Err(SealedOpenError::InvalidMessage);
    }
    let plain = gcm_siv_decrypt(&d.k, ct).ok_or(SealedOpenError::InvalidMessage)?;
    let content = UnidentifiedSenderMessageContent::try_from(plain.as_slice())?;
    let s_pub = content.sender().sender().identity_key.public_key();
    let shared = recipient
        .private_key()
        .agree(s_pub)
        .ok_or(SealedOpenError::InvalidMessage)?;
    let expected = auth_tag(&shared, &e_ser, &c, &s_pub.serialize(), &r_ser);
    if !crypto::ct_eq(&expected, at) {
        return Err(SealedOpenError::InvalidMessage);
    }
    Ok(content)
}
