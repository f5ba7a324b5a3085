//! Forwarding impls: every store trait for `&T`, `Box<T>` and `Arc<T>` (so a
//! `Device<Arc<SqliteStore>, ..>` or a `Box<dyn ProtocolStore>` works), and the same
//! forwarding for the persistent stores onto their shared core. Every method is
//! forwarded, the defaulted ones (`state_store`, `transactional`, ...) included, so a
//! wrapper never hides what the store offers.

use std::sync::Arc;

/// The names the forwarding impls mention, brought into each impl's scope by the
/// macros (so a call site needs no imports of its own).
pub(crate) mod names {
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) use rand_core::CryptoRngCore;
    pub(crate) use zeroize::Zeroizing;

    pub(crate) use crate::Address;
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) use crate::Timestamp;
    pub(crate) use crate::error::StoreError;
    pub(crate) use crate::group::{DistributionId, SenderKeyRecord};
    pub(crate) use crate::keys::{IdentityKey, IdentityKeyPair, PreKeyRecord, SignedPreKeyRecord};
    pub(crate) use crate::session::SessionRecord;
    pub(crate) use crate::store::{
        Commit, CommitOutcome, DeliveredMessage, GroupCommit, IdentityStore, KyberPreKeyStore,
        KyberPreKeyUse, MessageId, PreKeyStore, RowVersion, SenderKeyStore, SessionStore,
        SignedPreKeyStore, StateStore, StateWrite, TransactionalGroupStore, TransactionalStore,
        VersionedState,
    };
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) use crate::store::{DurableStore, RollbackCounter, StoreSummary};
}

/// Implements `$trait` for `$ty` by forwarding each method to `$inner` (an expression
/// in `$s`, the receiver). With a leading `@T`, the impl is generic over
/// `T: ?Sized + $trait`.
macro_rules! forward {
    ($trait:ident, $(@$g:ident)? $ty:ty, $s:ident => $inner:expr, {
        $(fn $name:ident(&self $(, $arg:ident: $argty:ty)*) -> $ret:ty;)*
    }) => {
        const _: () = {
            #[allow(unused_imports)]
            use $crate::store::forward::names::*;

            impl$(<$g: ?Sized + $trait>)? $trait for $ty {
                $(
                    fn $name(&self $(, $arg: $argty)*) -> $ret {
                        let $s = self;
                        $inner.$name($($arg),*)
                    }
                )*
            }
        };
    };
}

/// Every protocol trait (and the state store) of `$ty` forwarded to `$inner`.
macro_rules! forward_protocol {
    ($(@$g:ident)? $ty:ty, $s:ident => $inner:expr) => {
        $crate::store::forward::forward!(IdentityStore, $(@$g)? $ty, $s => $inner, {
            fn local_identity(&self) -> Result<IdentityKeyPair, StoreError>;
            fn local_registration_id(&self) -> Result<u32, StoreError>;
            fn identity(&self, address: &Address) -> Result<Option<IdentityKey>, StoreError>;
            fn save_identity(&self, address: &Address, key: &IdentityKey)
                -> Result<(), StoreError>;
            fn state_store(&self) -> Option<&dyn StateStore>;
        });
        $crate::store::forward::forward!(PreKeyStore, $(@$g)? $ty, $s => $inner, {
            fn pre_key(&self, id: u32) -> Result<Option<PreKeyRecord>, StoreError>;
            fn save_pre_key(&self, record: &PreKeyRecord) -> Result<(), StoreError>;
            fn remove_pre_key(&self, id: u32) -> Result<(), StoreError>;
            fn kyber_pre_keys(&self) -> Option<&dyn KyberPreKeyStore>;
        });
        $crate::store::forward::forward!(SignedPreKeyStore, $(@$g)? $ty, $s => $inner, {
            fn signed_pre_key(&self, id: u32) -> Result<Option<SignedPreKeyRecord>, StoreError>;
            fn save_signed_pre_key(&self, record: &SignedPreKeyRecord) -> Result<(), StoreError>;
        });
        $crate::store::forward::forward!(SessionStore, $(@$g)? $ty, $s => $inner, {
            fn session(&self, address: &Address) -> Result<Option<SessionRecord>, StoreError>;
            fn save_session(&self, address: &Address, record: &SessionRecord)
                -> Result<(), StoreError>;
            fn transactional(&self) -> Option<&dyn TransactionalStore>;
        });
        $crate::store::forward::forward!(SenderKeyStore, $(@$g)? $ty, $s => $inner, {
            fn sender_key(&self, sender: &Address, distribution_id: DistributionId)
                -> Result<Option<SenderKeyRecord>, StoreError>;
            fn save_sender_key(
                &self,
                sender: &Address,
                distribution_id: DistributionId,
                record: &SenderKeyRecord
            ) -> Result<(), StoreError>;
            fn transactional_group(&self) -> Option<&dyn TransactionalGroupStore>;
        });
        $crate::store::forward::forward!(StateStore, $(@$g)? $ty, $s => $inner, {
            fn state(&self, kind: &str, key: &str)
                -> Result<Option<Zeroizing<Vec<u8>>>, StoreError>;
            fn save_state(&self, kind: &str, key: &str, value: &[u8]) -> Result<(), StoreError>;
            fn remove_state(&self, kind: &str, key: &str) -> Result<(), StoreError>;
            fn load_state(&self, kind: &str, key: &str) -> Result<VersionedState, StoreError>;
            fn commit_state(&self, writes: &[StateWrite<'_>])
                -> Result<CommitOutcome, StoreError>;
        });
        $crate::store::forward::forward!(TransactionalStore, $(@$g)? $ty, $s => $inner, {
            fn load_session(&self, address: &Address)
                -> Result<(Option<SessionRecord>, RowVersion), StoreError>;
            fn delivered(&self, address: &Address, id: &MessageId)
                -> Result<Option<DeliveredMessage>, StoreError>;
            fn commit(&self, commit: &Commit<'_>) -> Result<CommitOutcome, StoreError>;
            fn acknowledge(&self, address: &Address, id: &MessageId) -> Result<bool, StoreError>;
        });
        $crate::store::forward::forward!(TransactionalGroupStore, $(@$g)? $ty, $s => $inner, {
            fn load_sender_key(&self, sender: &Address, distribution_id: DistributionId)
                -> Result<(Option<SenderKeyRecord>, RowVersion), StoreError>;
            fn group_delivered(&self, sender: &Address, id: &MessageId)
                -> Result<Option<DeliveredMessage>, StoreError>;
            fn commit_group(&self, commit: &GroupCommit<'_>)
                -> Result<CommitOutcome, StoreError>;
        });
    };
}

/// `DurableStore` of `$ty` forwarded to `$inner`.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
macro_rules! forward_durable {
    ($(@$g:ident)? $ty:ty, $s:ident => $inner:expr) => {
        $crate::store::forward::forward!(DurableStore, $(@$g)? $ty, $s => $inner, {
            fn has_local_identity(&self) -> Result<bool, StoreError>;
            fn set_local_identity(&self, identity: &IdentityKeyPair, registration_id: u32)
                -> Result<(), StoreError>;
            fn bootstrap_identity(&self, rng: &mut dyn CryptoRngCore)
                -> Result<bool, StoreError>;
            fn message(&self, address: &Address, id: &MessageId)
                -> Result<Option<DeliveredMessage>, StoreError>;
            fn set_message_expiry(
                &self,
                address: &Address,
                id: &MessageId,
                expires_at: Option<Timestamp>
            ) -> Result<bool, StoreError>;
            fn purge_messages(&self, now: Timestamp, forget_acknowledged_before: Timestamp)
                -> Result<u64, StoreError>;
            fn verify(&self) -> Result<StoreSummary, StoreError>;
            fn attach_rollback_counter(&self, counter: std::sync::Arc<dyn RollbackCounter>)
                -> Result<(), StoreError>;
        });
    };
}

/// [`KyberPreKeyStore`] of `$ty` forwarded to `$inner`.
macro_rules! forward_kyber {
    ($(@$g:ident)? $ty:ty, $s:ident => $inner:expr) => {
        $crate::store::forward::forward!(KyberPreKeyStore, $(@$g)? $ty, $s => $inner, {
            fn kyber_pre_key(&self, id: u32) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError>;
            fn save_kyber_pre_key(&self, id: u32, record: &[u8], last_resort: bool)
                -> Result<(), StoreError>;
            fn kyber_pre_key_used(&self, used: &KyberPreKeyUse) -> Result<bool, StoreError>;
            fn mark_kyber_pre_key_used(&self, used: &KyberPreKeyUse) -> Result<bool, StoreError>;
        });
    };
}

pub(crate) use forward;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) use {forward_durable, forward_kyber, forward_protocol};

forward_protocol!(@T &T, s => (**s));
forward_protocol!(@T Box<T>, s => (**s));
forward_protocol!(@T Arc<T>, s => (**s));
#[cfg(any(feature = "sqlite", feature = "postgres"))]
const _: () = {
    forward_durable!(@T &T, s => (**s));
    forward_durable!(@T Box<T>, s => (**s));
    forward_durable!(@T Arc<T>, s => (**s));
};
forward_kyber!(@T &T, s => (**s));
forward_kyber!(@T Box<T>, s => (**s));
forward_kyber!(@T Arc<T>, s => (**s));
