//! Kyber1024 (NIST round 3, the KEM of PQXDH) keys and ciphertexts in the Signal
//! encoding (type byte `0x08` ‖ raw bytes), and the signed Kyber prekey a device
//! publishes. The arithmetic is `libcrux_ml_kem::kyber1024`, driven through its
//! deterministic entry points with seeds drawn from the caller's RNG.

use libcrux_ml_kem::kyber1024;
use prost::Message;
use rand_core::{CryptoRng, RngCore};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::error::{KeyError, RecordError};
use super::{IdentityKey, IdentityKeyPair, SIGNATURE_LEN, signature_from_slice};
use crate::Timestamp;
use crate::proto::storage as pb;

/// The type byte of a Kyber1024 key or ciphertext (the one libsignal uses).
pub const KYBER1024_TYPE: u8 = 0x08;

/// The type byte of an ML-KEM-1024 (FIPS 203) key, which libsignal 0.103 does not speak:
/// refused, never confused with Kyber1024.
pub const MLKEM1024_TYPE: u8 = 0x0A;

/// Raw Kyber1024 public key and ciphertext length.
const RAW_LEN: usize = 1568;
/// Raw Kyber1024 secret key length.
const RAW_SECRET_LEN: usize = 3168;

/// A serialized KEM public key's length: type byte and 1568 bytes.
pub const KEM_PUBLIC_KEY_LEN: usize = RAW_LEN + 1;

/// A serialized KEM ciphertext's length: type byte and 1568 bytes.
pub const KEM_CIPHERTEXT_LEN: usize = RAW_LEN + 1;

/// Checks `bytes` is `0x08 ‖ raw` of exactly `raw_len` bytes and returns `raw`.
fn strip_type(bytes: &[u8], raw_len: usize) -> Result<&[u8], KeyError> {
    let (&kind, raw) = bytes.split_first().ok_or(KeyError::WrongLength {
        expected: raw_len + 1,
        found: 0,
    })?;
    if kind != KYBER1024_TYPE {
        return Err(KeyError::UnknownKeyType { found: kind });
    }
    if raw.len() != raw_len {
        return Err(KeyError::WrongLength {
            expected: raw_len + 1,
            found: bytes.len(),
        });
    }
    Ok(raw)
}

/// A Kyber1024 public key (a Kyber prekey's public half).
#[derive(Clone, PartialEq, Eq)]
pub struct KemPublicKey(Box<[u8; RAW_LEN]>);

impl KemPublicKey {
    /// Parses the 1569-byte Signal encoding (`0x08` ‖ 1568 bytes), refusing another type
    /// byte (ML-KEM-1024's `0x0A` included), another length, and a key whose
    /// coefficients are out of range.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let raw = strip_type(bytes, RAW_LEN)?;
        let mut key = Box::new([0u8; RAW_LEN]);
        key.copy_from_slice(raw);
        let pk = libcrux_ml_kem::mlkem1024::MlKem1024PublicKey::from(*key);
        if !kyber1024::validate_public_key(&pk) {
            return Err(KeyError::NonCanonical);
        }
        Ok(Self(key))
    }

    /// The Signal encoding: `0x08` ‖ 1568 bytes (what the prekey signature covers).
    pub fn serialize(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(KEM_PUBLIC_KEY_LEN);
        out.push(KYBER1024_TYPE);
        out.extend_from_slice(&self.0[..]);
        out
    }

    /// Encapsulates a fresh secret to this key: the ciphertext to send and the 32-byte
    /// shared secret.
    pub(crate) fn encapsulate<R: RngCore + CryptoRng>(
        &self,
        rng: &mut R,
    ) -> (KemCiphertext, Zeroizing<[u8; 32]>) {
        let mut coins = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(coins.as_mut());
        let pk = libcrux_ml_kem::mlkem1024::MlKem1024PublicKey::from(*self.0);
        let (ct, mut ss) = kyber1024::encapsulate(&pk, *coins);
        let secret = Zeroizing::new(ss);
        ss.zeroize();
        let mut raw = Box::new([0u8; RAW_LEN]);
        raw.copy_from_slice(ct.as_slice());
        (KemCiphertext(raw), secret)
    }
}

impl std::fmt::Debug for KemPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KemPublicKey(")?;
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "…)")
    }
}

/// A Kyber1024 secret key. Zeroized on drop; `Debug` never shows it.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct KemSecretKey(Box<[u8; RAW_SECRET_LEN]>);

impl KemSecretKey {
    /// Parses the Signal encoding (`0x08` ‖ 3168 bytes).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let raw = strip_type(bytes, RAW_SECRET_LEN)?;
        let mut key = Box::new([0u8; RAW_SECRET_LEN]);
        key.copy_from_slice(raw);
        Ok(Self(key))
    }

    /// The Signal encoding: `0x08` ‖ 3168 bytes.
    pub fn serialize(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(RAW_SECRET_LEN + 1));
        out.push(KYBER1024_TYPE);
        out.extend_from_slice(&self.0[..]);
        out
    }

    /// The 32-byte shared secret `ciphertext` carries (Kyber's implicit rejection gives
    /// a pseudorandom one for a forged ciphertext, which then fails the MAC).
    pub(crate) fn decapsulate(&self, ciphertext: &KemCiphertext) -> Zeroizing<[u8; 32]> {
        let sk = libcrux_ml_kem::mlkem1024::MlKem1024PrivateKey::from(*self.0);
        let ct = libcrux_ml_kem::mlkem1024::MlKem1024Ciphertext::from(*ciphertext.0);
        let mut ss = kyber1024::decapsulate(&sk, &ct);
        let secret = Zeroizing::new(ss);
        ss.zeroize();
        // The libcrux copy holds the secret too.
        let mut wipe: [u8; RAW_SECRET_LEN] = sk.into();
        wipe.zeroize();
        secret
    }
}

impl std::fmt::Debug for KemSecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KemSecretKey(***)")
    }
}

/// A Kyber1024 ciphertext, as a PreKeySignalMessage carries it.
#[derive(Clone, PartialEq, Eq)]
pub struct KemCiphertext(Box<[u8; RAW_LEN]>);

impl KemCiphertext {
    /// Parses the 1569-byte Signal encoding (`0x08` ‖ 1568 bytes).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let raw = strip_type(bytes, RAW_LEN)?;
        let mut ct = Box::new([0u8; RAW_LEN]);
        ct.copy_from_slice(raw);
        Ok(Self(ct))
    }

    /// The Signal encoding: `0x08` ‖ 1568 bytes.
    pub fn serialize(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(KEM_CIPHERTEXT_LEN);
        out.push(KYBER1024_TYPE);
        out.extend_from_slice(&self.0[..]);
        out
    }
}

impl std::fmt::Debug for KemCiphertext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KemCiphertext(")?;
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "…)")
    }
}

/// A Kyber1024 key pair.
#[derive(Clone, Debug)]
pub struct KemKeyPair {
    /// The public half.
    pub public: KemPublicKey,
    /// The secret half.
    pub secret: KemSecretKey,
}

/// Where a Kyber secret key embeds its public key: after the 1536-byte secret vector.
const PUBLIC_IN_SECRET: std::ops::Range<usize> = 1536..1536 + RAW_LEN;

impl KemKeyPair {
    /// The pair of a secret key made elsewhere: its public half is the one the secret
    /// key embeds (checked like any received public key).
    pub fn from_secret(secret: KemSecretKey) -> Result<Self, KeyError> {
        let embedded = secret
            .0
            .get(PUBLIC_IN_SECRET)
            .ok_or(KeyError::WrongLength {
                expected: RAW_SECRET_LEN,
                found: 0,
            })?;
        let mut serialized = Vec::with_capacity(KEM_PUBLIC_KEY_LEN);
        serialized.push(KYBER1024_TYPE);
        serialized.extend_from_slice(embedded);
        let public = KemPublicKey::from_bytes(&serialized)?;
        Ok(Self { public, secret })
    }

    /// A fresh key pair from 64 bytes of the RNG.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut seed = Zeroizing::new([0u8; 64]);
        rng.fill_bytes(seed.as_mut());
        let pair = kyber1024::generate_key_pair(*seed);
        let mut public = Box::new([0u8; RAW_LEN]);
        public.copy_from_slice(pair.pk());
        let mut secret = Box::new([0u8; RAW_SECRET_LEN]);
        secret.copy_from_slice(pair.sk());
        let (sk, _) = pair.into_parts();
        let mut wipe: [u8; RAW_SECRET_LEN] = sk.into();
        wipe.zeroize();
        Self {
            public: KemPublicKey(public),
            secret: KemSecretKey(secret),
        }
    }
}

/// The public half of a Kyber prekey, with its signature, as a bundle carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KyberPreKeyPublic {
    /// Its id.
    pub id: u32,
    /// The public key.
    pub key: KemPublicKey,
    /// The identity's XEdDSA signature over `key.serialize()` (1569 bytes).
    pub signature: [u8; SIGNATURE_LEN],
}

impl KyberPreKeyPublic {
    /// Whether the signature verifies under `identity`.
    pub fn has_valid_signature(&self, identity: &IdentityKey) -> bool {
        identity.verify_signature(&self.key.serialize(), &self.signature)
    }
}

/// A Kyber prekey: a KEM key pair signed by the identity key, one-time or last-resort
/// (which one is the store's business, see [`crate::store::KyberPreKeyStore`]).
#[derive(Clone, Debug)]
pub struct KyberPreKeyRecord {
    id: u32,
    timestamp: Timestamp,
    key_pair: KemKeyPair,
    signature: [u8; SIGNATURE_LEN],
}

/// The storage format version of a [`KyberPreKeyRecord`].
const KYBER_RECORD_FORMAT: u32 = 1;

impl KyberPreKeyRecord {
    /// A fresh Kyber prekey under `id`, signed over its 1569-byte serialized public key.
    pub fn generate<R: RngCore + CryptoRng>(
        rng: &mut R,
        identity: &IdentityKeyPair,
        id: u32,
        now: Timestamp,
    ) -> Self {
        let key_pair = KemKeyPair::generate(rng);
        let signature = identity.sign(rng, &key_pair.public.serialize());
        Self {
            id,
            timestamp: now,
            key_pair,
            signature,
        }
    }

    /// Signs an existing key pair (made elsewhere, e.g. a test vector) as Kyber prekey
    /// `id` with `identity`, as [`Self::generate`] does for a fresh one.
    pub fn from_key_pair<R: RngCore + CryptoRng>(
        rng: &mut R,
        identity: &IdentityKeyPair,
        id: u32,
        key_pair: KemKeyPair,
        now: Timestamp,
    ) -> Self {
        let signature = identity.sign(rng, &key_pair.public.serialize());
        Self {
            id,
            timestamp: now,
            key_pair,
            signature,
        }
    }

    /// The id bundles and prekey messages name.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// When it was made.
    pub fn timestamp(&self) -> Timestamp {
        self.timestamp
    }

    /// The key pair.
    pub fn key_pair(&self) -> &KemKeyPair {
        &self.key_pair
    }

    /// The identity's signature over the serialized public key.
    pub fn signature(&self) -> &[u8; SIGNATURE_LEN] {
        &self.signature
    }

    /// The part that goes into a bundle.
    pub fn public(&self) -> KyberPreKeyPublic {
        KyberPreKeyPublic {
            id: self.id,
            key: self.key_pair.public.clone(),
            signature: self.signature,
        }
    }

    /// The storage encoding (`storage.proto` `KyberPreKeyRecord`), what a
    /// [`crate::store::KyberPreKeyStore`] keeps. Contains the secret.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut msg = pb::KyberPreKeyRecord {
            format_version: KYBER_RECORD_FORMAT,
            id: self.id,
            public_key: self.key_pair.public.serialize(),
            secret_key: self.key_pair.secret.serialize().to_vec(),
            signature: self.signature.to_vec(),
            timestamp: self.timestamp.as_millis(),
        };
        let out = Zeroizing::new(msg.encode_to_vec());
        msg.secret_key.zeroize();
        out
    }

    /// Loads the storage encoding.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, RecordError> {
        let mut msg = pb::KyberPreKeyRecord::decode(bytes).map_err(|_| RecordError::Malformed)?;
        let result = Self::from_proto(&msg);
        msg.secret_key.zeroize();
        result
    }

    fn from_proto(msg: &pb::KyberPreKeyRecord) -> Result<Self, RecordError> {
        if msg.format_version != KYBER_RECORD_FORMAT {
            return Err(RecordError::UnsupportedVersion {
                found: msg.format_version,
            });
        }
        let public = KemPublicKey::from_bytes(&msg.public_key).map_err(RecordError::Key)?;
        let secret = KemSecretKey::from_bytes(&msg.secret_key).map_err(RecordError::Key)?;
        // A Kyber secret key embeds its public key right after the 1536-byte secret
        // vector: the two halves must be one pair.
        if secret.0.get(PUBLIC_IN_SECRET) != Some(&public.0[..]) {
            return Err(RecordError::Inconsistent {
                field: "public_key",
            });
        }
        let signature = signature_from_slice(&msg.signature).map_err(RecordError::Key)?;
        Ok(Self {
            id: msg.id,
            timestamp: Timestamp::from_millis(msg.timestamp),
            key_pair: KemKeyPair { public, secret },
            signature,
        })
    }
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;

    #[test]
    fn kem_round_trip_and_strict_encodings() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let pair = KemKeyPair::generate(&mut rng);
        let ser = pair.public.serialize();
        assert_eq!(ser.len(), KEM_PUBLIC_KEY_LEN);
        assert_eq!(ser[0], 0x08);
        assert_eq!(KemPublicKey::from_bytes(&ser).unwrap(), pair.public);
        let (ct, ss) = pair.public.encapsulate(&mut rng);
        let ct = KemCiphertext::from_bytes(&ct.serialize()).unwrap();
        assert_eq!(*pair.secret.decapsulate(&ct), *ss);
        let mut mlkem = ser.clone();
        mlkem[0] = MLKEM1024_TYPE;
        assert_eq!(
            KemPublicKey::from_bytes(&mlkem),
            Err(KeyError::UnknownKeyType { found: 0x0A })
        );
        assert!(matches!(
            KemPublicKey::from_bytes(&ser[..1568]),
            Err(KeyError::WrongLength { .. })
        ));
        assert!(KemPublicKey::from_bytes(&[]).is_err());
        let mut ct_bytes = ct.serialize();
        ct_bytes.push(0);
        assert!(KemCiphertext::from_bytes(&ct_bytes).is_err());
        // A coefficient out of range (all bits set) is not a key.
        let mut bad = ser;
        bad[1] = 0xff;
        bad[2] = 0xff;
        assert_eq!(KemPublicKey::from_bytes(&bad), Err(KeyError::NonCanonical));
    }

    #[test]
    fn kyber_prekey_record_signs_and_round_trips() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let identity = IdentityKeyPair::generate(&mut rng);
        let now = Timestamp::from_millis(1_700_000_000_000);
        let record = KyberPreKeyRecord::generate(&mut rng, &identity, 9, now);
        let public = record.public();
        assert!(public.has_valid_signature(identity.identity_key()));
        let other = IdentityKeyPair::generate(&mut rng);
        assert!(!public.has_valid_signature(other.identity_key()));
        let loaded = KyberPreKeyRecord::from_bytes(&record.to_bytes()).unwrap();
        assert_eq!(loaded.public(), public);
        assert_eq!(loaded.timestamp(), now);
        assert!(format!("{loaded:?}").contains("KemSecretKey(***)"));
        let imported = KemKeyPair::from_secret(record.key_pair().secret.clone()).unwrap();
        assert_eq!(imported.public, record.key_pair().public);
        let signed = KyberPreKeyRecord::from_key_pair(&mut rng, &identity, 4, imported, now);
        assert!(signed.public().has_valid_signature(identity.identity_key()));
        // Another pair's public half is refused.
        let mut msg = pb::KyberPreKeyRecord::decode(&record.to_bytes()[..]).unwrap();
        msg.public_key = KemKeyPair::generate(&mut rng).public.serialize();
        assert_eq!(
            KyberPreKeyRecord::from_bytes(&msg.encode_to_vec()).unwrap_err(),
            RecordError::Inconsistent {
                field: "public_key"
            }
        );
        assert!(KyberPreKeyRecord::from_bytes(b"garbage").is_err());
    }
}
