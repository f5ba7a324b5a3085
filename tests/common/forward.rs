//! Store wrappers for tests that change one answer of a real store: `forward_to_inner!`
//! writes the impls of the other store traits, each method passed to `self.inner`.
//! Included with `#[path = "common/forward.rs"] #[macro_use] mod forward;`.

/// Implements each named store trait for `$ty` by forwarding every method (the
/// defaulted ones included) to `self.inner`.
macro_rules! forward_to_inner {
    ($ty:ty: $($t:ident),+ $(,)?) => { $( forward_to_inner!(@$t $ty); )+ };
    (@IdentityStore $ty:ty) => {
        impl confide::store::IdentityStore for $ty {
            fn local_identity(&self) -> Result<confide::IdentityKeyPair, confide::StoreError> {
                self.inner.local_identity()
            }
            fn local_registration_id(&self) -> Result<u32, confide::StoreError> {
                self.inner.local_registration_id()
            }
            fn identity(
                &self,
                address: &confide::Address,
            ) -> Result<Option<confide::IdentityKey>, confide::StoreError> {
                self.inner.identity(address)
            }
            fn save_identity(
                &self,
                address: &confide::Address,
                key: &confide::IdentityKey,
            ) -> Result<(), confide::StoreError> {
                self.inner.save_identity(address, key)
            }
            fn state_store(&self) -> Option<&dyn confide::store::StateStore> {
                self.inner.state_store()
            }
        }
    };
    (@PreKeyStore $ty:ty) => {
        impl confide::store::PreKeyStore for $ty {
            fn pre_key(
                &self,
                id: u32,
            ) -> Result<Option<confide::keys::PreKeyRecord>, confide::StoreError> {
                self.inner.pre_key(id)
            }
            fn save_pre_key(
                &self,
                record: &confide::keys::PreKeyRecord,
            ) -> Result<(), confide::StoreError> {
                self.inner.save_pre_key(record)
            }
            fn remove_pre_key(&self, id: u32) -> Result<(), confide::StoreError> {
                self.inner.remove_pre_key(id)
            }
            fn kyber_pre_keys(&self) -> Option<&dyn confide::store::KyberPreKeyStore> {
                self.inner.kyber_pre_keys()
            }
        }
    };
    (@SignedPreKeyStore $ty:ty) => {
        impl confide::store::SignedPreKeyStore for $ty {
            fn signed_pre_key(
                &self,
                id: u32,
            ) -> Result<Option<confide::keys::SignedPreKeyRecord>, confide::StoreError> {
                self.inner.signed_pre_key(id)
            }
            fn save_signed_pre_key(
                &self,
                record: &confide::keys::SignedPreKeyRecord,
            ) -> Result<(), confide::StoreError> {
                self.inner.save_signed_pre_key(record)
            }
        }
    };
    (@SenderKeyStore $ty:ty) => {
        impl confide::store::SenderKeyStore for $ty {
            fn sender_key(
                &self,
                sender: &confide::Address,
                distribution_id: confide::group::DistributionId,
            ) -> Result<Option<confide::group::SenderKeyRecord>, confide::StoreError> {
                self.inner.sender_key(sender, distribution_id)
            }
            fn save_sender_key(
                &self,
                sender: &confide::Address,
                distribution_id: confide::group::DistributionId,
                record: &confide::group::SenderKeyRecord,
            ) -> Result<(), confide::StoreError> {
                self.inner.save_sender_key(sender, distribution_id, record)
            }
            fn transactional_group(
                &self,
            ) -> Option<&dyn confide::store::TransactionalGroupStore> {
                self.inner.transactional_group()
            }
        }
    };
}
