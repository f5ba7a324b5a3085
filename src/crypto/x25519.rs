//! X25519 on AWS-LC, with the private key stored as its 32 clamped bytes (as confide
//! persists it) and loaded into an `EVP_PKEY` for each operation.
//!
//! AWS-LC fails an operation only when it cannot allocate, or (for an agreement) when
//! the shared secret is all zero. So that neither case needs an error path through the
//! whole protocol, a failed call is answered by curve25519-dalek's X25519, which
//! computes the same function (the tests compare the two).

use std::sync::{Arc, OnceLock};

use aws_lc_rs::agreement::{self, PrivateKey, UnparsedPublicKey, X25519};
use curve25519_dalek::montgomery::MontgomeryPoint;
use zeroize::{Zeroize, Zeroizing};

/// An X25519 private key: its 32 bytes, and the backend's key object, built on first
/// use and kept. AWS-LC computes the public key whenever it loads a private key (a
/// fixed-base multiplication, a third of an agreement's cost), so a key that agrees
/// more than once, or whose public key was just computed, loads once.
#[derive(Clone)]
pub(crate) struct X25519Private {
    bytes: Zeroizing<[u8; 32]>,
    // Shared by clones; the last one to drop frees it, and AWS-LC wipes the block.
    loaded: OnceLock<Option<Arc<PrivateKey>>>,
}

impl X25519Private {
    pub(crate) fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self {
            bytes: Zeroizing::new(*bytes),
            loaded: OnceLock::new(),
        }
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    fn backend(&self) -> Option<&PrivateKey> {
        self.loaded
            .get_or_init(|| {
                PrivateKey::from_private_key(&X25519, self.bytes.as_ref())
                    .ok()
                    .map(Arc::new)
            })
            .as_deref()
    }

    /// The public key (X25519 of the base point 9).
    pub(crate) fn public_key(&self) -> [u8; 32] {
        let from_backend = self
            .backend()
            .and_then(|k| k.compute_public_key().ok())
            .and_then(|p| <[u8; 32]>::try_from(p.as_ref()).ok());
        from_backend.unwrap_or_else(|| MontgomeryPoint::mul_base_clamped(*self.bytes).to_bytes())
    }

    /// X25519(self, `public`); `None` when the result is all zero (the peer's key is of
    /// low order, so the output would not depend on our secret).
    pub(crate) fn agree(&self, public: &[u8; 32]) -> Option<Zeroizing<[u8; 32]>> {
        let from_backend = self.backend().and_then(|key| {
            agreement::agree(key, UnparsedPublicKey::new(&X25519, public), (), |s| {
                <[u8; 32]>::try_from(s).map(Zeroizing::new).map_err(|_| ())
            })
            .ok()
        });
        let shared = match from_backend {
            Some(shared) => shared,
            None => fallback_agree(&self.bytes, public),
        };
        if crate::crypto::ct_eq(shared.as_ref(), &[0u8; 32]) {
            return None;
        }
        Some(shared)
    }
}

/// The public key of `private`.
#[cfg(test)]
pub(crate) fn x25519_public_key(private: &[u8; 32]) -> [u8; 32] {
    X25519Private::from_bytes(private).public_key()
}

/// X25519(`private`, `public`), `None` for an all-zero result.
#[cfg(test)]
pub(crate) fn x25519_agree(private: &[u8; 32], public: &[u8; 32]) -> Option<Zeroizing<[u8; 32]>> {
    X25519Private::from_bytes(private).agree(public)
}

fn fallback_agree(private: &[u8; 32], public: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let mut point = MontgomeryPoint(*public).mul_clamped(*private);
    let shared = Zeroizing::new(point.to_bytes());
    point.zeroize();
    shared
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex32(s: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap_or(0);
        }
        out
    }

    /// RFC 7748 section 6.1: both public keys and the shared secret.
    #[test]
    fn rfc7748_diffie_hellman() {
        let a = unhex32("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        let b = unhex32("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
        let a_pub = x25519_public_key(&a);
        let b_pub = x25519_public_key(&b);
        assert_eq!(
            a_pub,
            unhex32("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
        );
        assert_eq!(
            b_pub,
            unhex32("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
        );
        let shared = unhex32("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
        assert_eq!(*x25519_agree(&a, &b_pub).unwrap(), shared);
        assert_eq!(*x25519_agree(&b, &a_pub).unwrap(), shared);
    }

    /// RFC 7748 section 5.2, first vector: an unclamped scalar is clamped by X25519.
    #[test]
    fn rfc7748_scalar_mult_clamps() {
        let k = unhex32("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4");
        let u = unhex32("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c");
        let want = unhex32("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552");
        assert_eq!(*x25519_agree(&k, &u).unwrap(), want);
    }

    /// The fallback computes what AWS-LC computes, on keys clamped or not.
    #[test]
    fn fallback_matches_the_backend() {
        for i in 0..64u8 {
            let private = crate::crypto::sha256(&[b'k', i]);
            let public = crate::crypto::sha256(&[b'u', i]);
            assert_eq!(
                x25519_public_key(&private),
                MontgomeryPoint::mul_base_clamped(private).to_bytes()
            );
            let mut canonical = public;
            canonical[31] &= 0x7f;
            assert_eq!(
                *x25519_agree(&private, &canonical).unwrap(),
                *fallback_agree(&private, &canonical)
            );
        }
    }

    /// A loaded key gives the same answers on every use and in every clone.
    #[test]
    fn a_kept_key_agrees_as_a_fresh_one() {
        let k = X25519Private::from_bytes(&[0x11u8; 32]);
        let peer = x25519_public_key(&[0x22u8; 32]);
        let first = k.agree(&peer).unwrap();
        let public = k.public_key();
        let clone = k.clone();
        assert_eq!(*clone.agree(&peer).unwrap(), *first);
        assert_eq!(*k.agree(&peer).unwrap(), *first);
        assert_eq!(public, x25519_public_key(&[0x11u8; 32]));
        assert_eq!(*x25519_agree(&[0x22u8; 32], &public).unwrap(), *first);
    }

    /// AWS-LC computes what x25519-dalek computes.
    #[test]
    fn matches_x25519_dalek() {
        for i in 0..32u8 {
            let private = crate::crypto::sha256(&[b'p', i]);
            let peer = crate::crypto::sha256(&[b'q', i]);
            let ours = x25519_dalek::StaticSecret::from(private);
            let theirs = x25519_dalek::StaticSecret::from(peer);
            let their_public = x25519_dalek::PublicKey::from(&theirs);
            assert_eq!(
                x25519_public_key(&private),
                *x25519_dalek::PublicKey::from(&ours).as_bytes()
            );
            assert_eq!(
                *x25519_agree(&private, their_public.as_bytes()).unwrap(),
                *ours.diffie_hellman(&their_public).as_bytes()
            );
        }
    }

    #[test]
    fn low_order_peer_keys_are_refused() {
        let k = [0x42u8; 32];
        // u = 0, u = 1 and an order-8 point.
        let order8 = unhex32("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800");
        for u in [
            [0u8; 32],
            unhex32(&format!("01{}", "00".repeat(31))),
            order8,
        ] {
            assert!(x25519_agree(&k, &u).is_none());
        }
    }
}
