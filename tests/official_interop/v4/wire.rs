//! What the v4 tests read out of the bytes themselves, declared here by hand from the
//! facts file (§1.4, §2.1, §2.5, §3) so that nothing of confide's own parsing is trusted:
//! the SignalMessage and PreKeySignalMessage protobufs, SPQR's message header, libsignal's
//! session record, and the KDFs (HKDF and HMAC from `ring`, X25519 from `x25519-dalek`,
//! AES-256-CBC from RustCrypto) to recompute libsignal's keys.

use prost::Message;

/// The version byte of every v4 message: `(4 << 4) | 4`.
pub(crate) const V4: u8 = 0x44;
pub(crate) const MAC_LEN: usize = 8;

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct SignalMessagePb {
    #[prost(bytes = "vec", optional, tag = "1")]
    pub(crate) ratchet_key: Option<Vec<u8>>,
    #[prost(uint32, optional, tag = "2")]
    pub(crate) counter: Option<u32>,
    #[prost(uint32, optional, tag = "3")]
    pub(crate) previous_counter: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "4")]
    pub(crate) ciphertext: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "5")]
    pub(crate) pq_ratchet: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "6")]
    pub(crate) addresses: Option<Vec<u8>>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct PreKeySignalMessagePb {
    #[prost(uint32, optional, tag = "1")]
    pub(crate) pre_key_id: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub(crate) base_key: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "3")]
    pub(crate) identity_key: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "4")]
    pub(crate) message: Option<Vec<u8>>,
    #[prost(uint32, optional, tag = "5")]
    pub(crate) registration_id: Option<u32>,
    #[prost(uint32, optional, tag = "6")]
    pub(crate) signed_pre_key_id: Option<u32>,
    #[prost(uint32, optional, tag = "7")]
    pub(crate) kyber_pre_key_id: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "8")]
    pub(crate) kyber_ciphertext: Option<Vec<u8>>,
}

/// libsignal's `RecordStructure` (storage.proto), the fields the tests read.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct RecordPb {
    #[prost(message, optional, tag = "1")]
    pub(crate) current_session: Option<SessionPb>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct SessionPb {
    #[prost(uint32, tag = "1")]
    pub(crate) session_version: u32,
    #[prost(bytes = "vec", tag = "2")]
    pub(crate) local_identity_public: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub(crate) remote_identity_public: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    pub(crate) root_key: Vec<u8>,
    #[prost(message, optional, tag = "6")]
    pub(crate) sender_chain: Option<ChainPb>,
    #[prost(message, repeated, tag = "7")]
    pub(crate) receiver_chains: Vec<ChainPb>,
    #[prost(bytes = "vec", tag = "13")]
    pub(crate) alice_base_key: Vec<u8>,
    #[prost(bytes = "vec", tag = "15")]
    pub(crate) pq_ratchet_state: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ChainPb {
    #[prost(bytes = "vec", tag = "1")]
    pub(crate) sender_ratchet_key: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub(crate) sender_ratchet_key_private: Vec<u8>,
    #[prost(message, optional, tag = "3")]
    pub(crate) chain_key: Option<ChainKeyPb>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ChainKeyPb {
    #[prost(uint32, tag = "1")]
    pub(crate) index: u32,
    #[prost(bytes = "vec", tag = "2")]
    pub(crate) key: Vec<u8>,
}

/// SPQR's `PqRatchetState` (proto3), the negotiation record that holds PQXDH's SPQR
/// auth key until the first receive.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct PqRatchetStatePb {
    #[prost(message, optional, tag = "1")]
    pub(crate) version_negotiation: Option<VersionNegotiationPb>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct VersionNegotiationPb {
    #[prost(bytes = "vec", tag = "1")]
    pub(crate) auth_key: Vec<u8>,
    #[prost(int32, tag = "2")]
    pub(crate) direction: i32,
    #[prost(int32, tag = "3")]
    pub(crate) min_version: i32,
}

/// A SignalMessage split into version byte, protobuf and MAC.
pub(crate) fn parse_signal(bytes: &[u8]) -> (u8, SignalMessagePb, [u8; MAC_LEN]) {
    assert!(bytes.len() > 1 + MAC_LEN, "short SignalMessage");
    let body = &bytes[1..bytes.len() - MAC_LEN];
    let pb = SignalMessagePb::decode(body).expect("SignalMessage protobuf");
    let mac = bytes[bytes.len() - MAC_LEN..].try_into().unwrap();
    (bytes[0], pb, mac)
}

pub(crate) fn parse_prekey(bytes: &[u8]) -> (u8, PreKeySignalMessagePb) {
    let pb = PreKeySignalMessagePb::decode(&bytes[1..]).expect("PreKeySignalMessage protobuf");
    (bytes[0], pb)
}

/// The SignalMessage of a type-2 message, or the one inside a type-3 message.
pub(crate) fn inner_signal(ty: u8, bytes: &[u8]) -> Vec<u8> {
    match ty {
        2 => bytes.to_vec(),
        3 => parse_prekey(bytes).1.message.expect("inner message"),
        other => panic!("message type {other}"),
    }
}

/// SPQR's wire header (§2.5): epoch, key index, message type, chunk index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SpqrHeader {
    pub(crate) epoch: u64,
    pub(crate) index: u32,
    pub(crate) kind: u8,
    pub(crate) chunk: Option<u32>,
}

fn varint(b: &[u8], at: &mut usize) -> u64 {
    let mut v = 0u64;
    for shift in (0..70).step_by(7) {
        let byte = b[*at];
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return v;
        }
    }
    panic!("varint too long");
}

pub(crate) fn spqr_header(pq: &[u8]) -> SpqrHeader {
    assert_eq!(pq[0], 0x01, "SPQR version V1");
    let mut at = 1;
    let epoch = varint(pq, &mut at);
    let index = u32::try_from(varint(pq, &mut at)).unwrap();
    let kind = pq[at];
    at += 1;
    let chunk = match kind {
        1 | 2 | 3 | 5 | 6 => {
            let c = u32::try_from(varint(pq, &mut at)).unwrap();
            assert!(pq.len() >= at + 32, "chunk data: {}", hex::encode(pq));
            Some(c)
        }
        0 | 4 => None,
        other => panic!("SPQR message type {other}"),
    };
    SpqrHeader {
        epoch,
        index,
        kind,
        chunk,
    }
}

/// The SPQR header of a type-2 or type-3 message.
pub(crate) fn spqr_of(ty: u8, bytes: &[u8]) -> SpqrHeader {
    let (_, pb, _) = parse_signal(&inner_signal(ty, bytes));
    spqr_header(
        pb.pq_ratchet
            .as_deref()
            .expect("every v4 message carries pq_ratchet"),
    )
}

/// `bytes` with one byte of the pq_ratchet field's value xored with `mask`, found in
/// place (the MAC is left as it was).
pub(crate) fn flip_pq(bytes: &[u8], at: usize, mask: u8) -> Vec<u8> {
    let (_, pb, _) = parse_signal(bytes);
    let pq = pb.pq_ratchet.expect("pq_ratchet");
    let start = find(bytes, &pq).expect("pq_ratchet bytes in the message");
    let mut out = bytes.to_vec();
    out[start + at] ^= mask;
    out
}

/// `bytes` re-encoded without field 5 (the MAC is left as it was, so it no longer fits).
pub(crate) fn strip_pq(bytes: &[u8]) -> Vec<u8> {
    let (v, mut pb, mac) = parse_signal(bytes);
    assert!(pb.pq_ratchet.is_some());
    pb.pq_ratchet = None;
    let mut out = vec![v];
    pb.encode(&mut out).unwrap();
    out.extend_from_slice(&mac);
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Builds a SignalMessage: version byte ‖ protobuf ‖ HMAC-SHA256 truncated to 8, over
/// sender identity ‖ receiver identity ‖ version ‖ protobuf (facts §2.1).
pub(crate) fn signal_message(
    pb: &SignalMessagePb,
    mac_key: &[u8],
    sender: &[u8; 33],
    receiver: &[u8; 33],
) -> Vec<u8> {
    let mut out = vec![V4];
    pb.encode(&mut out).unwrap();
    let mac = mac(mac_key, sender, receiver, &out);
    out.extend_from_slice(&mac);
    out
}

pub(crate) fn mac(mac_key: &[u8], sender: &[u8; 33], receiver: &[u8; 33], body: &[u8]) -> [u8; 8] {
    let m = hmac(mac_key, &[&sender[..], &receiver[..], body].concat());
    m[..8].try_into().unwrap()
}

struct Len(usize);

impl ring::hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-SHA256; an empty `salt` is RFC 5869's absent salt (32 zero bytes).
pub(crate) fn hkdf(salt: &[u8], ikm: &[u8], info: &[u8], len: usize) -> Vec<u8> {
    let zeros = [0u8; 32];
    let salt = if salt.is_empty() { &zeros[..] } else { salt };
    let prk = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, salt).extract(ikm);
    let info = [info];
    let okm = prk.expand(&info, Len(len)).unwrap();
    let mut out = vec![0u8; len];
    okm.fill(&mut out).unwrap();
    out
}

pub(crate) fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    ring::hmac::sign(&k, data).as_ref().try_into().unwrap()
}

pub(crate) fn x25519(private: &[u8], public33: &[u8]) -> [u8; 32] {
    assert_eq!(public33.len(), 33);
    assert_eq!(public33[0], 0x05);
    let sk = x25519_dalek::StaticSecret::from(<[u8; 32]>::try_from(private).unwrap());
    let pk = x25519_dalek::PublicKey::from(<[u8; 32]>::try_from(&public33[1..]).unwrap());
    sk.diffie_hellman(&pk).to_bytes()
}

/// The Double Ratchet's message keys of one chain key with SPQR's key as the salt
/// (facts §2.8): (cipher key, MAC key, IV).
pub(crate) fn message_keys(
    chain_key: &[u8],
    spqr_key: Option<&[u8]>,
) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let seed = hmac(chain_key, &[1]);
    let okm = hkdf(spqr_key.unwrap_or(&[]), &seed, b"WhisperMessageKeys", 80);
    (okm[..32].to_vec(), okm[32..64].to_vec(), okm[64..].to_vec())
}

/// SPQR's per-message key `ctr` (from 1) of a chain whose "next" value starts at `seed`
/// (facts §2.7).
pub(crate) fn spqr_chain_key(seed: &[u8], ctr: u32) -> Vec<u8> {
    let mut next = seed.to_vec();
    let mut key = Vec::new();
    for i in 1..=ctr {
        let info = [&i.to_be_bytes()[..], b"Signal PQ Ratchet V1 Chain Next"].concat();
        let okm = hkdf(&[], &next, &info, 64);
        next = okm[..32].to_vec();
        key = okm[32..].to_vec();
    }
    key
}

pub(crate) fn aes_cbc_decrypt(key: &[u8], iv: &[u8], ct: &[u8]) -> Vec<u8> {
    use cbc::cipher::{BlockDecryptMut, KeyIvInit, block_padding::Pkcs7};
    cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv)
        .unwrap()
        .decrypt_padded_vec_mut::<Pkcs7>(ct)
        .expect("AES-CBC padding")
}

pub(crate) fn aes_cbc_encrypt(key: &[u8], iv: &[u8], pt: &[u8]) -> Vec<u8> {
    use cbc::cipher::{BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
    cbc::Encryptor::<aes::Aes256>::new_from_slices(key, iv)
        .unwrap()
        .encrypt_padded_vec_mut::<Pkcs7>(pt)
}

/// libsignal's 36-byte `addresses` field: (ACI kind 0 ‖ UUID ‖ device) for the sender,
/// then the recipient.
pub(crate) fn addresses(sender: (&str, u8), recipient: (&str, u8)) -> Vec<u8> {
    let mut out = Vec::new();
    for (uuid, dev) in [sender, recipient] {
        out.push(0);
        out.extend_from_slice(&hex::decode(uuid.replace('-', "")).unwrap());
        out.push(dev);
    }
    out
}
