//! Keys made elsewhere (another implementation, a test vector) turned into the records
//! confide keeps, so an adapter that imports them re-implements nothing.

use rand_core::{CryptoRng, RngCore};

use super::{IdentityKeyPair, KeyPair, SignedPreKeyRecord};
use crate::Timestamp;

impl SignedPreKeyRecord {
    /// Signs an existing key pair as signed prekey `id` with `identity`, over its
    /// 33-byte serialized public key (as [`SignedPreKeyRecord::generate`] does for a
    /// fresh one).
    pub fn from_key_pair<R: RngCore + CryptoRng>(
        rng: &mut R,
        identity: &IdentityKeyPair,
        id: u32,
        key_pair: KeyPair,
        now: Timestamp,
    ) -> Self {
        let signature = identity.sign(rng, &key_pair.public.serialize());
        Self::new(id, now, key_pair, signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SystemRng;

    #[test]
    fn an_imported_signed_prekey_verifies_under_the_identity() {
        let mut rng = SystemRng::new();
        let identity = IdentityKeyPair::generate(&mut rng);
        let pair = KeyPair::generate(&mut rng);
        let public = pair.public;
        let now = Timestamp::from_millis(7);
        let record = SignedPreKeyRecord::from_key_pair(&mut rng, &identity, 9, pair, now);
        assert_eq!((record.id(), record.timestamp()), (9, now));
        assert_eq!(record.key_pair().public, public);
        let spk = record.public();
        assert!(
            identity
                .identity_key()
                .verify_signature(&spk.key.serialize(), &spk.signature)
        );
    }
}
