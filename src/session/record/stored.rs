//! A record's persisted form (`storage.proto` `SessionRecord`): conversion both ways,
//! with every field validated on the way in and every secret wiped from the
//! intermediate protobuf message.

use prost::Message;
use zeroize::{Zeroize, Zeroizing};

use super::SessionRecord;
use crate::Timestamp;
use crate::error::RecordError;
use crate::keys::{IdentityKey, KemCiphertext, KeyPair, PublicKey};
use crate::proto::storage as pb;
use crate::session::chain_key::ChainKey;
use crate::session::limits::{
    MAX_PREVIOUS_STATES, MAX_RECEIVER_CHAINS, MAX_SKIPPED_KEYS_PER_CHAIN,
};
use crate::session::ratchet::{
    PendingKyber, PendingPreKey, ReceiverChain, SenderChain, Session, SkippedKey,
};
use crate::session::root_key::RootKey;
use crate::session::version::ProtocolVersion;
use crate::spqr;

/// The storage format version written by this release.
pub(crate) const RECORD_FORMAT_VERSION: u32 = 1;

/// Where persisted bytes come from, which decides what loading them re-checks.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(super) enum Origin {
    /// Anything an app hands in: re-derive and compare every key pair.
    Untrusted,
    /// Authenticated by a store's seal as written by confide.
    Sealed,
}

/// The persisted bytes of `record`.
pub(super) fn encode(record: &SessionRecord) -> Zeroizing<Vec<u8>> {
    let mut msg = pb::SessionRecord {
        format_version: RECORD_FORMAT_VERSION,
        current: record.current.as_ref().map(state_to_proto),
        previous: record.previous.iter().map(state_to_proto).collect(),
    };
    let out = Zeroizing::new(msg.encode_to_vec());
    wipe_record(&mut msg);
    out
}

/// Loads persisted bytes; `origin` decides what is re-derived.
pub(super) fn decode(bytes: &[u8], origin: Origin) -> Result<SessionRecord, RecordError> {
    let mut msg = pb::SessionRecord::decode(bytes).map_err(|_| RecordError::Malformed)?;
    let result = record_from_proto(&msg, origin);
    wipe_record(&mut msg);
    result
}

fn wipe_record(msg: &mut pb::SessionRecord) {
    for s in msg.current.iter_mut().chain(msg.previous.iter_mut()) {
        s.root_key.zeroize();
        if let Some(c) = &mut s.sender_chain {
            c.ratchet_private.zeroize();
            if let Some(k) = &mut c.chain_key {
                k.key.zeroize();
            }
        }
        for r in &mut s.receiver_chains {
            if let Some(k) = &mut r.chain_key {
                k.key.zeroize();
            }
            for k in &mut r.skipped {
                k.seed.zeroize();
            }
        }
        s.spqr_state.zeroize();
    }
}

fn chain_to_proto(c: &ChainKey) -> pb::ChainKey {
    pb::ChainKey {
        index: c.index(),
        key: c.key().to_vec(),
    }
}

fn state_to_proto(s: &Session) -> pb::SessionState {
    pb::SessionState {
        session_version: u32::from(s.version.number()),
        local_identity: s.local_identity.serialize().to_vec(),
        remote_identity: s.remote_identity.serialize().to_vec(),
        root_key: s.root_key.as_bytes().to_vec(),
        previous_counter: s.previous_counter,
        sender_chain: Some(pb::SenderChain {
            ratchet_public: s.sender.ratchet.public.serialize().to_vec(),
            ratchet_private: s.sender.ratchet.private.to_bytes().to_vec(),
            chain_key: Some(chain_to_proto(&s.sender.chain_key)),
        }),
        receiver_chains: s
            .receivers
            .iter()
            .map(|r| pb::ReceiverChain {
                ratchet_public: r.ratchet_key.serialize().to_vec(),
                chain_key: Some(chain_to_proto(&r.chain_key)),
                skipped: r
                    .skipped
                    .iter()
                    .map(|k| pb::SkippedKey {
                        counter: k.counter,
                        seed: k.seed.to_vec(),
                    })
                    .collect(),
                evicted_up_to: r.evicted_up_to,
            })
            .collect(),
        pending_pre_key: s.pending_pre_key.as_ref().map(|p| pb::PendingPreKey {
            pre_key_id: p.pre_key_id,
            signed_pre_key_id: p.signed_pre_key_id,
            base_key: p.base_key.serialize().to_vec(),
            created_at: p.created_at.as_millis(),
        }),
        remote_registration_id: s.remote_registration_id,
        local_registration_id: s.local_registration_id,
        alice_base_key: s.alice_base_key.serialize().to_vec(),
        pending_kyber_pre_key: s
            .pending_pre_key
            .as_ref()
            .and_then(|p| p.kyber.as_ref())
            .map(|k| pb::PendingKyberPreKey {
                pre_key_id: k.id,
                ciphertext: k.ciphertext.serialize(),
            }),
        spqr_state: s
            .spqr
            .as_ref()
            .map(|st| st.to_bytes().to_vec())
            .unwrap_or_default(),
    }
}

fn record_from_proto(
    msg: &pb::SessionRecord,
    origin: Origin,
) -> Result<SessionRecord, RecordError> {
    if msg.format_version != RECORD_FORMAT_VERSION {
        return Err(RecordError::UnsupportedVersion {
            found: msg.format_version,
        });
    }
    if msg.previous.len() > MAX_PREVIOUS_STATES {
        return Err(RecordError::Inconsistent { field: "previous" });
    }
    Ok(SessionRecord {
        current: msg
            .current
            .as_ref()
            .map(|s| state_from_proto(s, origin))
            .transpose()?,
        previous: msg
            .previous
            .iter()
            .map(|s| state_from_proto(s, origin))
            .collect::<Result<_, _>>()?,
    })
}

fn key32(bytes: &[u8], field: &'static str) -> Result<[u8; 32], RecordError> {
    <[u8; 32]>::try_from(bytes).map_err(|_| RecordError::Inconsistent { field })
}

fn public(bytes: &[u8]) -> Result<PublicKey, RecordError> {
    PublicKey::try_from(bytes).map_err(RecordError::Key)
}

fn chain_from_proto(c: Option<&pb::ChainKey>) -> Result<ChainKey, RecordError> {
    let c = c.ok_or(RecordError::MissingField { field: "chain_key" })?;
    Ok(ChainKey::new(key32(&c.key, "chain_key.key")?, c.index))
}

fn state_from_proto(s: &pb::SessionState, origin: Origin) -> Result<Session, RecordError> {
    // Each state names its own version; one this release does not speak is a typed
    // load error, never a guess.
    let version =
        ProtocolVersion::from_number(s.session_version).ok_or(RecordError::UnsupportedVersion {
            found: s.session_version,
        })?;
    let sender = s.sender_chain.as_ref().ok_or(RecordError::MissingField {
        field: "sender_chain",
    })?;
    let mut private = key32(&sender.ratchet_private, "sender_chain.ratchet_private")?;
    let private_key = crate::keys::PrivateKey::from_bytes(private);
    private.zeroize();
    let stored_public = public(&sender.ratchet_public)?;
    let ratchet = match origin {
        Origin::Sealed => KeyPair {
            public: stored_public,
            private: private_key,
        },
        Origin::Untrusted => {
            let ratchet = KeyPair::from_private(private_key);
            if stored_public != ratchet.public {
                return Err(RecordError::Inconsistent {
                    field: "sender_chain.ratchet_public",
                });
            }
            ratchet
        }
    };
    if s.receiver_chains.len() > MAX_RECEIVER_CHAINS {
        return Err(RecordError::Inconsistent {
            field: "receiver_chains",
        });
    }
    let receivers = s
        .receiver_chains
        .iter()
        .map(|r| {
            if r.skipped.len() > MAX_SKIPPED_KEYS_PER_CHAIN {
                return Err(RecordError::Inconsistent { field: "skipped" });
            }
            Ok(ReceiverChain {
                ratchet_key: public(&r.ratchet_public)?,
                chain_key: chain_from_proto(r.chain_key.as_ref())?,
                skipped: r
                    .skipped
                    .iter()
                    .map(|k| {
                        Ok(SkippedKey {
                            counter: k.counter,
                            seed: key32(&k.seed, "skipped.seed")?,
                        })
                    })
                    .collect::<Result<_, RecordError>>()?,
                evicted_up_to: r.evicted_up_to,
            })
        })
        .collect::<Result<_, RecordError>>()?;
    let kyber = s
        .pending_kyber_pre_key
        .as_ref()
        .map(|k| {
            Ok::<_, RecordError>(PendingKyber {
                id: k.pre_key_id,
                ciphertext: KemCiphertext::from_bytes(&k.ciphertext).map_err(RecordError::Key)?,
            })
        })
        .transpose()?;
    // A v4 initiator's pending prekey has its Kyber half; nothing else does.
    let pending_pre_key = match (s.pending_pre_key.as_ref(), kyber, version) {
        (Some(p), kyber, _) if kyber.is_some() == (version == ProtocolVersion::V4) => {
            Some(PendingPreKey {
                pre_key_id: p.pre_key_id,
                signed_pre_key_id: p.signed_pre_key_id,
                base_key: public(&p.base_key)?,
                created_at: Timestamp::from_millis(p.created_at),
                kyber,
            })
        }
        (None, None, _) => None,
        _ => {
            return Err(RecordError::Inconsistent {
                field: "pending_kyber_pre_key",
            });
        }
    };
    // v4 states carry SPQR's state; v3 states none.
    let spqr = match version {
        ProtocolVersion::V3 if s.spqr_state.is_empty() => None,
        ProtocolVersion::V4 if !s.spqr_state.is_empty() => Some(
            spqr::State::from_bytes(&s.spqr_state).map_err(|_| RecordError::Inconsistent {
                field: "spqr_state",
            })?,
        ),
        _ => {
            return Err(RecordError::MissingField {
                field: "spqr_state",
            });
        }
    };
    Ok(Session {
        version,
        local_identity: IdentityKey::new(public(&s.local_identity)?),
        remote_identity: IdentityKey::new(public(&s.remote_identity)?),
        root_key: RootKey::new(key32(&s.root_key, "root_key")?),
        previous_counter: s.previous_counter,
        sender: SenderChain {
            ratchet,
            chain_key: chain_from_proto(sender.chain_key.as_ref())?,
        },
        receivers,
        pending_pre_key,
        local_registration_id: s.local_registration_id,
        remote_registration_id: s.remote_registration_id,
        alice_base_key: public(&s.alice_base_key)?,
        spqr,
    })
}
