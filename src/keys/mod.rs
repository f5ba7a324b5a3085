//! Curve25519 keys in the Signal encoding, identity keys, prekeys (Kyber1024 ones for
//! protocol v4 too) and bundles.

mod bundle;
mod error;
mod identity;
mod import;
mod kyber;
mod prekey;
pub(crate) mod xeddsa;

pub use bundle::{PreKeyBundle, PreKeyPublic, SignedPreKeyPublic};
pub use error::{KeyError, RecordError};
pub use identity::{IdentityKey, IdentityKeyPair};
pub use kyber::{
    KEM_CIPHERTEXT_LEN, KEM_PUBLIC_KEY_LEN, KYBER1024_TYPE, KemCiphertext, KemKeyPair,
    KemPublicKey, KemSecretKey, KyberPreKeyPublic, KyberPreKeyRecord, MLKEM1024_TYPE,
};
pub use prekey::{PreKeyRecord, SignedPreKeyRecord};
pub use xeddsa::SIGNATURE_LEN;

use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

/// The type byte that prefixes every serialized Curve25519 public key.
pub const DJB_TYPE: u8 = 0x05;

/// Length of a serialized public key: the type byte and 32 key bytes.
pub const PUBLIC_KEY_LEN: usize = 33;

/// A Curve25519 (X25519) public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// Wraps raw X25519 bytes as they are, canonical or not (the unchecked form is
    /// [`hazmat::public_key_unchecked`](crate::hazmat::public_key_unchecked)).
    pub(crate) fn from_x25519(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Takes the bare 32 X25519 bytes (no `0x05` type byte), refusing the non-canonical
    /// encodings that [`TryFrom<&[u8]>`](#impl-TryFrom%3C%26%5Bu8%5D%3E-for-PublicKey)
    /// refuses too.
    pub fn try_from_x25519(bytes: [u8; 32]) -> Result<Self, KeyError> {
        if !is_canonical(&bytes) {
            return Err(KeyError::NonCanonical);
        }
        Ok(Self(bytes))
    }

    /// The raw 32 X25519 bytes.
    pub fn x25519_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The Signal encoding: `0x05` ‖ 32 bytes.
    pub fn serialize(&self) -> [u8; PUBLIC_KEY_LEN] {
        let mut out = [0u8; PUBLIC_KEY_LEN];
        out[0] = DJB_TYPE;
        out[1..].copy_from_slice(&self.0);
        out
    }

    /// Checks an XEdDSA signature made by the private half of this key. Always false for
    /// a non-canonical or small-order key, under which signatures can be forged.
    pub fn verify_signature(&self, message: &[u8], signature: &[u8]) -> bool {
        match <&[u8; SIGNATURE_LEN]>::try_from(signature) {
            Ok(sig) => xeddsa::verify(&self.0, message, sig),
            Err(_) => false,
        }
    }
}

impl TryFrom<&[u8]> for PublicKey {
    type Error = KeyError;

    /// Parses the 33-byte Signal encoding; the bare 32-byte form is refused so a
    /// truncated or relabelled key never slips through.
    fn try_from(bytes: &[u8]) -> Result<Self, KeyError> {
        if bytes.len() != PUBLIC_KEY_LEN {
            return Err(KeyError::WrongLength {
                expected: PUBLIC_KEY_LEN,
                found: bytes.len(),
            });
        }
        if bytes[0] != DJB_TYPE {
            return Err(KeyError::UnknownKeyType { found: bytes[0] });
        }
        let mut k = [0u8; 32];
        k.copy_from_slice(&bytes[1..]);
        // X25519 ignores bit 255 and reduces mod p, so several encodings name one key.
        // Keys are compared by their bytes (a prekey message's base key names its
        // session), so only the canonical encoding, which every real key has, is taken.
        if !is_canonical(&k) {
            return Err(KeyError::NonCanonical);
        }
        Ok(Self(k))
    }
}

/// Whether `u` is below p = 2^255 - 19 (which also means bit 255 is clear).
pub(crate) fn is_canonical(u: &[u8; 32]) -> bool {
    if u[31] & 0x80 != 0 {
        return false;
    }
    // u >= p only for 0x7f ff … ff followed by a low byte of at least 0xed.
    !(u[31] == 0x7f && u[1..31].iter().all(|&b| b == 0xff) && u[0] >= 0xed)
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey(")?;
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// A Curve25519 private key: its 32 clamped bytes. Zeroized on drop; `Debug` never
/// shows it.
#[derive(Clone)]
pub struct PrivateKey(crate::crypto::X25519Private);

impl PrivateKey {
    /// A fresh random key.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(bytes.as_mut());
        Self::from_bytes(*bytes)
    }

    /// Imports 32 bytes, clamped as X25519 requires (XEdDSA needs the clamped form).
    pub fn from_bytes(mut bytes: [u8; 32]) -> Self {
        bytes[0] &= 248;
        bytes[31] &= 127;
        bytes[31] |= 64;
        let key = Self(crate::crypto::X25519Private::from_bytes(&bytes));
        zeroize::Zeroize::zeroize(&mut bytes);
        key
    }

    /// The clamped private key bytes, for persistence.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(*self.0.bytes())
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.public_key())
    }

    /// X25519 agreement; `None` when the peer's key is of low order, so the result
    /// would not depend on our secret.
    pub(crate) fn agree(&self, theirs: &PublicKey) -> Option<Zeroizing<[u8; 32]>> {
        self.0.agree(&theirs.0)
    }

    /// An XEdDSA signature over `message` (public as
    /// [`hazmat::xeddsa_sign`](crate::hazmat::xeddsa_sign)).
    pub(crate) fn sign<R: RngCore + CryptoRng>(
        &self,
        rng: &mut R,
        message: &[u8],
    ) -> [u8; SIGNATURE_LEN] {
        let mut random = Zeroizing::new([0u8; 64]);
        rng.fill_bytes(random.as_mut());
        xeddsa::sign(self.0.bytes(), message, &random)
    }
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKey(***)")
    }
}

/// A private key with its public key. The halves always belong together: a pair is
/// generated or derived from its private key, never assembled from two loose halves.
#[derive(Clone, Debug)]
pub struct KeyPair {
    // Crate code reads the halves directly; it builds a pair from stored halves only
    // where a store has authenticated them as written by confide.
    pub(crate) public: PublicKey,
    pub(crate) private: PrivateKey,
}

impl KeyPair {
    /// A fresh random key pair.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        Self::from_private(PrivateKey::generate(rng))
    }

    /// Completes a private key with its public key.
    pub fn from_private(private: PrivateKey) -> Self {
        Self {
            public: private.public_key(),
            private,
        }
    }

    /// Rebuilds a pair from both halves (for example as another library stored them),
    /// refusing a public key that is not the private key's.
    pub fn from_parts(public: PublicKey, private: PrivateKey) -> Result<Self, KeyError> {
        let pair = Self::from_private(private);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            &pair.public.0[..],
            &public.0[..],
        )) {
            return Err(KeyError::MismatchedPair);
        }
        Ok(pair)
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        self.public
    }

    /// The private half.
    pub fn private(&self) -> &PrivateKey {
        &self.private
    }
}

/// A random registration id in 1..=16380, as Signal clients choose them (14 bits).
pub fn generate_registration_id<R: RngCore + CryptoRng>(rng: &mut R) -> u32 {
    rng.next_u32() % 16380 + 1
}

/// Parses a 64-byte signature.
pub(crate) fn signature_from_slice(bytes: &[u8]) -> Result<[u8; SIGNATURE_LEN], KeyError> {
    <[u8; SIGNATURE_LEN]>::try_from(bytes).map_err(|_| KeyError::WrongLength {
        expected: SIGNATURE_LEN,
        found: bytes.len(),
    })
}

/// Parses a 32-byte private key.
pub(crate) fn private_from_slice(bytes: &[u8]) -> Result<PrivateKey, KeyError> {
    let arr = <[u8; 32]>::try_from(bytes).map_err(|_| KeyError::WrongLength {
        expected: 32,
        found: bytes.len(),
    })?;
    Ok(PrivateKey::from_bytes(arr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn public_key_encoding_is_strict() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let kp = KeyPair::generate(&mut rng);
        let ser = kp.public.serialize();
        assert_eq!(ser[0], 0x05);
        assert_eq!(PublicKey::try_from(&ser[..]).unwrap(), kp.public);
        assert!(matches!(
            PublicKey::try_from(&ser[1..]),
            Err(KeyError::WrongLength {
                expected: 33,
                found: 32
            })
        ));
        let mut relabelled = ser;
        relabelled[0] = 0x06;
        assert!(matches!(
            PublicKey::try_from(&relabelled[..]),
            Err(KeyError::UnknownKeyType { found: 6 })
        ));
        // The same key with bit 255 set, and u >= p, are other encodings of real keys.
        let mut high = ser;
        high[32] |= 0x80;
        assert_eq!(PublicKey::try_from(&high[..]), Err(KeyError::NonCanonical));
        let mut p = [0xffu8; 33];
        p[0] = 0x05;
        p[32] = 0x7f;
        p[1] = 0xed;
        assert_eq!(PublicKey::try_from(&p[..]), Err(KeyError::NonCanonical));
        p[1] = 0xec;
        assert!(PublicKey::try_from(&p[..]).is_ok());
    }

    #[test]
    fn xeddsa_sign_verify_and_tamper() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        for _ in 0..32 {
            let kp = KeyPair::generate(&mut rng);
            let sig = kp.private.sign(&mut rng, b"hello");
            assert!(kp.public.verify_signature(b"hello", &sig));
            assert!(!kp.public.verify_signature(b"hellp", &sig));
            for bit in [0usize, 100, 255, 300, 511] {
                let mut bad = sig;
                bad[bit / 8] ^= 1 << (bit % 8);
                assert!(!kp.public.verify_signature(b"hello", &bad), "bit {bit}");
            }
            assert!(!kp.public.verify_signature(b"hello", &sig[..63]));
        }
    }

    #[test]
    fn agreement_is_symmetric_and_refuses_low_order() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let a = KeyPair::generate(&mut rng);
        let b = KeyPair::generate(&mut rng);
        assert_eq!(
            *a.private.agree(&b.public).unwrap(),
            *b.private.agree(&a.public).unwrap()
        );
        assert!(
            a.private
                .agree(&PublicKey::from_x25519([0u8; 32]))
                .is_none()
        );
    }

    #[test]
    fn key_pairs_are_consistent() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let kp = KeyPair::generate(&mut rng);
        assert_eq!(kp.public(), kp.private().public_key());
        let again = KeyPair::from_parts(kp.public(), kp.private().clone()).unwrap();
        assert_eq!(again.public(), kp.public());
        let other = KeyPair::generate(&mut rng);
        assert!(matches!(
            KeyPair::from_parts(other.public(), kp.private().clone()),
            Err(KeyError::MismatchedPair)
        ));
    }

    #[test]
    fn bare_x25519_keys_must_be_canonical() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let kp = KeyPair::generate(&mut rng);
        let bare = *kp.public().x25519_bytes();
        assert_eq!(PublicKey::try_from_x25519(bare), Ok(kp.public()));
        let mut high = bare;
        high[31] |= 0x80;
        assert_eq!(
            PublicKey::try_from_x25519(high),
            Err(KeyError::NonCanonical)
        );
        // The unchecked constructor takes it as it is.
        assert_eq!(
            crate::hazmat::public_key_unchecked(high).x25519_bytes(),
            &high
        );
    }

    #[test]
    fn bundles_are_built_and_round_trip() {
        let mut rng = ChaCha20Rng::seed_from_u64(6);
        let identity = IdentityKeyPair::generate(&mut rng);
        let now = crate::Timestamp::from_millis(1_700_000_000_000);
        let signed = SignedPreKeyRecord::generate(&mut rng, &identity, 3, now);
        let one_time = PreKeyRecord::generate(&mut rng, 8);
        let bare = PreKeyBundle::new(77, 2, *identity.identity_key(), signed.public());
        assert_eq!(bare.pre_key, None);
        assert!(bare.has_valid_signature());
        let full = bare.clone().with_pre_key(one_time.public());
        assert_eq!(full.pre_key, Some(one_time.public()));
        for b in [bare, full] {
            assert_eq!(PreKeyBundle::from_bytes(&b.to_bytes()).unwrap(), b);
        }
    }

    #[test]
    fn hazmat_signatures_verify() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let identity = IdentityKeyPair::generate(&mut rng);
        let sig = crate::hazmat::xeddsa_sign(identity.private_key(), &mut rng, b"bytes");
        assert!(identity.identity_key().verify_signature(b"bytes", &sig));
    }

    #[test]
    fn private_key_debug_is_redacted() {
        let k = PrivateKey::from_bytes([0x42; 32]);
        assert_eq!(format!("{k:?}"), "PrivateKey(***)");
        let kp = KeyPair::from_private(k);
        assert!(!format!("{kp:?}").contains("4242"));
    }
}
