//! Ed25519 (RFC 8032) for the key-transparency auditor's signed heads, from AWS-LC.

#[cfg(test)]
use aws_lc_rs::signature::KeyPair;
use aws_lc_rs::signature::{self, Ed25519KeyPair, UnparsedPublicKey};
use zeroize::Zeroizing;

#[cfg(test)]
/// The public key of the Ed25519 key with this 32-byte seed, or `None` if the backend
/// refuses it (it does not for any seed; kept typed rather than assumed).
pub(crate) fn ed25519_public_key(seed: &[u8; 32]) -> Option<[u8; 32]> {
    let pair = Ed25519KeyPair::from_seed_unchecked(seed).ok()?;
    pair.public_key().as_ref().try_into().ok()
}

/// The Ed25519 signature of `message` under the key with this seed. The key pair lives
/// in AWS-LC's memory, which is cleansed when it is freed at the end of the call.
pub(crate) fn ed25519_sign(seed: &Zeroizing<[u8; 32]>, message: &[u8]) -> Option<[u8; 64]> {
    let pair = Ed25519KeyPair::from_seed_unchecked(seed.as_slice()).ok()?;
    pair.sign(message).as_ref().try_into().ok()
}

/// Whether `signature` is `public_key`'s Ed25519 signature of `message`.
pub(crate) fn ed25519_verify(public_key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    UnparsedPublicKey::new(&signature::ED25519, public_key)
        .verify(message, signature)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8032 section 7.1, test 2 (one-byte message).
    #[test]
    fn rfc8032_test_2() {
        let seed: [u8; 32] =
            hex::decode("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
                .unwrap()
                .try_into()
                .unwrap();
        let public = ed25519_public_key(&seed).unwrap();
        assert_eq!(
            hex::encode(public),
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"
        );
        let sig = ed25519_sign(&Zeroizing::new(seed), &[0x72]).unwrap();
        assert_eq!(
            hex::encode(sig),
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da\
             085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
        );
        assert!(ed25519_verify(&public, &[0x72], &sig));
        assert!(!ed25519_verify(&public, &[0x73], &sig));
        let mut bad = sig;
        bad[63] ^= 1;
        assert!(!ed25519_verify(&public, &[0x72], &bad));
    }
}
