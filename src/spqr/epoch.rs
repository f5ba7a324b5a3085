//! The epoch state machine (the chunked ML-KEM Braid, facts §2.3): in every epoch one
//! side sends an ML-KEM-768 header and encapsulation key, the other the two ciphertext
//! halves, one erasure-coded chunk per message; each completed exchange gives one epoch
//! secret, and the roles swap for the next epoch.

use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use super::SpqrError;
use super::authenticator::{Authenticator, MAC_SIZE};
use super::erasure::{Decoder, Encoder};
use super::kem;
use super::wire::{Message, Payload};
use crate::crypto::hkdf_sha256;

/// hdr ‖ MAC.
pub(crate) const HDR_PAYLOAD_LEN: usize = kem::HEADER_LEN + MAC_SIZE;
/// ct2 ‖ MAC.
pub(crate) const CT2_PAYLOAD_LEN: usize = kem::CT2_LEN + MAC_SIZE;

const SCKA_KEY_INFO: &[u8] = b"Signal_PQCKA_V1_MLKEM768:SCKA Key";

/// The secret one epoch's exchange gave, which the chain adds as that epoch.
pub(crate) struct EpochSecret {
    pub(crate) epoch: u64,
    pub(crate) secret: Zeroizing<[u8; 32]>,
}

/// The epoch secret from the ML-KEM shared secret.
fn epoch_secret(epoch: u64, shared: &[u8]) -> EpochSecret {
    let mut info = Vec::with_capacity(SCKA_KEY_INFO.len() + 8);
    info.extend_from_slice(SCKA_KEY_INFO);
    info.extend_from_slice(&epoch.to_be_bytes());
    let mut secret = Zeroizing::new([0u8; 32]);
    hkdf_sha256(&[0u8; 32], shared, &info, &mut secret);
    EpochSecret { epoch, secret }
}

/// What every state has: its epoch and the authenticator.
#[derive(Clone, Debug)]
pub(crate) struct Base {
    pub(crate) epoch: u64,
    pub(crate) auth: Authenticator,
}

/// One side's state in the current epoch. The first five are the send_ek side's, the
/// last six the send_ct side's (Signal's names).
#[derive(Clone)]
pub(crate) enum Scka {
    /// send_ek: no key pair yet; the next send makes one.
    KeysUnsampled(Base),
    /// send_ek: sending header chunks until a ct1 chunk arrives.
    KeysSampled {
        base: Base,
        keys: kem::KeyPair,
        sending_hdr: Encoder,
    },
    /// send_ek: sending ek chunks, collecting ct1.
    HeaderSent {
        base: Base,
        keys: kem::KeyPair,
        sending_ek: Encoder,
        receiving_ct1: Decoder,
    },
    /// send_ek: ct1 complete; sending ek chunks that acknowledge it.
    Ct1Received {
        base: Base,
        keys: kem::KeyPair,
        ct1: Box<[u8; kem::CT1_LEN]>,
        sending_ek: Encoder,
    },
    /// send_ek: collecting ct2 ‖ MAC, sending bare acknowledgements.
    EkSentCt1Received {
        base: Base,
        keys: kem::KeyPair,
        ct1: Box<[u8; kem::CT1_LEN]>,
        receiving_ct2: Decoder,
    },
    /// send_ct: collecting header chunks (`None` until the first one).
    NoHeaderReceived {
        base: Base,
        receiving_hdr: Option<Decoder>,
    },
    /// send_ct: header authenticated; the next send encapsulates.
    HeaderReceived {
        base: Base,
        header: Box<[u8; kem::HEADER_LEN]>,
    },
    /// send_ct: sending ct1 chunks, collecting ek.
    Ct1Sampled {
        base: Base,
        header: Box<[u8; kem::HEADER_LEN]>,
        encaps: kem::EncapsState,
        sending_ct1: Encoder,
        receiving_ek: Decoder,
    },
    /// send_ct: ek complete and checked (ct2 ‖ MAC made), still sending ct1 until an
    /// acknowledgement.
    EkReceivedCt1Sampled {
        base: Base,
        sending_ct1: Encoder,
        ct2_payload: Box<[u8; CT2_PAYLOAD_LEN]>,
    },
    /// send_ct: ct1 acknowledged; collecting the rest of ek, sending nothing.
    Ct1Acknowledged {
        base: Base,
        header: Box<[u8; kem::HEADER_LEN]>,
        encaps: kem::EncapsState,
        ct1: Box<[u8; kem::CT1_LEN]>,
        receiving_ek: Decoder,
    },
    /// send_ct: sending ct2 ‖ MAC chunks until the peer's next epoch shows.
    Ct2Sampled { base: Base, sending_ct2: Encoder },
}

/// What [`Scka::send`] gives: the next state, the message (without its key index) and,
/// at encapsulation, this epoch's secret.
pub(crate) struct SckaSent {
    pub(crate) state: Scka,
    pub(crate) epoch: u64,
    pub(crate) payload: Payload,
    pub(crate) secret: Option<EpochSecret>,
}

/// An encoder of a payload of a fixed, valid length.
fn encoder(payload: &[u8]) -> Result<Encoder, SpqrError> {
    Encoder::new(payload).map_err(|_| SpqrError::StateInconsistent)
}

/// A decoder of a fixed, valid length.
fn decoder(len: usize) -> Result<Decoder, SpqrError> {
    Decoder::new(len).map_err(|_| SpqrError::StateInconsistent)
}

/// The decoded payload as an array of its fixed length.
fn decoded<const N: usize>(decoder: &Decoder) -> Result<Option<Zeroizing<[u8; N]>>, SpqrError> {
    match decoder.decoded() {
        None => Ok(None),
        Some(bytes) => {
            let bytes = Zeroizing::new(bytes);
            let mut out = Zeroizing::new([0u8; N]);
            if bytes.len() != N {
                return Err(SpqrError::StateInconsistent);
            }
            out.copy_from_slice(&bytes);
            Ok(Some(out))
        }
    }
}

/// ct2 = encaps2 (which checks ek against the header) and its MAC over ct1 ‖ ct2.
fn ct2_payload(
    base: &Base,
    header: &[u8; kem::HEADER_LEN],
    encaps: &kem::EncapsState,
    ct1: &[u8],
    ek: &[u8; kem::EK_LEN],
) -> Result<Box<[u8; CT2_PAYLOAD_LEN]>, SpqrError> {
    let ct2 = kem::encaps2(encaps, header, ek).map_err(|_| SpqrError::ErroneousDataReceived)?;
    let mac = base.auth.mac_ciphertext(base.epoch, ct1, &ct2);
    let mut payload = Box::new([0u8; CT2_PAYLOAD_LEN]);
    payload[..kem::CT2_LEN].copy_from_slice(&ct2);
    payload[kem::CT2_LEN..].copy_from_slice(&mac);
    Ok(payload)
}

impl Scka {
    /// The send_ek side of epoch 1 (the initiator).
    pub(crate) fn initiator(auth_key: &[u8]) -> Self {
        Self::KeysUnsampled(Base {
            epoch: 1,
            auth: Authenticator::new(auth_key),
        })
    }

    /// The send_ct side of epoch 1 (the responder).
    pub(crate) fn responder(auth_key: &[u8]) -> Self {
        Self::NoHeaderReceived {
            base: Base {
                epoch: 1,
                auth: Authenticator::new(auth_key),
            },
            receiving_hdr: None,
        }
    }

    /// The state's epoch and authenticator.
    pub(crate) fn base(&self) -> &Base {
        match self {
            Self::KeysUnsampled(base)
            | Self::KeysSampled { base, .. }
            | Self::HeaderSent { base, .. }
            | Self::Ct1Received { base, .. }
            | Self::EkSentCt1Received { base, .. }
            | Self::NoHeaderReceived { base, .. }
            | Self::HeaderReceived { base, .. }
            | Self::Ct1Sampled { base, .. }
            | Self::EkReceivedCt1Sampled { base, .. }
            | Self::Ct1Acknowledged { base, .. }
            | Self::Ct2Sampled { base, .. } => base,
        }
    }

    /// Whether this is the send_ek side of its epoch.
    pub(crate) fn is_send_ek(&self) -> bool {
        matches!(
            self,
            Self::KeysUnsampled(_)
                | Self::KeysSampled { .. }
                | Self::HeaderSent { .. }
                | Self::Ct1Received { .. }
                | Self::EkSentCt1Received { .. }
        )
    }

    /// Whether this epoch's secret has already been output (send_ct after encaps1).
    pub(crate) fn has_output_secret(&self) -> bool {
        matches!(
            self,
            Self::Ct1Sampled { .. }
                | Self::EkReceivedCt1Sampled { .. }
                | Self::Ct1Acknowledged { .. }
                | Self::Ct2Sampled { .. }
        )
    }

    /// The next message's payload and the state after it.
    pub(crate) fn send<R: RngCore + CryptoRng>(self, rng: &mut R) -> Result<SckaSent, SpqrError> {
        let epoch = self.base().epoch;
        let mut secret = None;
        let (state, payload) = match self {
            Self::KeysUnsampled(base) => {
                let keys = kem::KeyPair::generate(rng);
                let header = keys.header();
                let mac = base.auth.mac_header(base.epoch, header);
                let mut hdr = Zeroizing::new([0u8; HDR_PAYLOAD_LEN]);
                hdr[..kem::HEADER_LEN].copy_from_slice(header);
                hdr[kem::HEADER_LEN..].copy_from_slice(&mac);
                let mut sending_hdr = encoder(hdr.as_slice())?;
                let chunk = sending_hdr.next_chunk();
                let state = Self::KeysSampled {
                    base,
                    keys,
                    sending_hdr,
                };
                (state, Payload::Hdr(chunk))
            }
            Self::KeysSampled {
                base,
                keys,
                mut sending_hdr,
            } => {
                let chunk = sending_hdr.next_chunk();
                let state = Self::KeysSampled {
                    base,
                    keys,
                    sending_hdr,
                };
                (state, Payload::Hdr(chunk))
            }
            Self::HeaderSent {
                base,
                keys,
                mut sending_ek,
                receiving_ct1,
            } => {
                let chunk = sending_ek.next_chunk();
                let state = Self::HeaderSent {
                    base,
                    keys,
                    sending_ek,
                    receiving_ct1,
                };
                (state, Payload::Ek(chunk))
            }
            Self::Ct1Received {
                base,
                keys,
                ct1,
                mut sending_ek,
            } => {
                let chunk = sending_ek.next_chunk();
                let state = Self::Ct1Received {
                    base,
                    keys,
                    ct1,
                    sending_ek,
                };
                (state, Payload::EkCt1Ack(chunk))
            }
            state @ Self::EkSentCt1Received { .. } => (state, Payload::Ct1Ack),
            state @ Self::NoHeaderReceived { .. } => (state, Payload::None),
            Self::HeaderReceived { mut base, header } => {
                let (encaps, ct1, shared) =
                    kem::encaps1(&header, rng).map_err(|_| SpqrError::ErroneousDataReceived)?;
                let out = epoch_secret(base.epoch, shared.as_slice());
                base.auth.update(base.epoch, out.secret.as_slice());
                secret = Some(out);
                let mut sending_ct1 = encoder(ct1.as_slice())?;
                let chunk = sending_ct1.next_chunk();
                let state = Self::Ct1Sampled {
                    base,
                    header,
                    encaps,
                    sending_ct1,
                    receiving_ek: decoder(kem::EK_LEN)?,
                };
                (state, Payload::Ct1(chunk))
            }
            Self::Ct1Sampled {
                base,
                header,
                encaps,
                mut sending_ct1,
                receiving_ek,
            } => {
                let chunk = sending_ct1.next_chunk();
                let state = Self::Ct1Sampled {
                    base,
                    header,
                    encaps,
                    sending_ct1,
                    receiving_ek,
                };
                (state, Payload::Ct1(chunk))
            }
            Self::EkReceivedCt1Sampled {
                base,
                mut sending_ct1,
                ct2_payload,
            } => {
                let chunk = sending_ct1.next_chunk();
                let state = Self::EkReceivedCt1Sampled {
                    base,
                    sending_ct1,
                    ct2_payload,
                };
                (state, Payload::Ct1(chunk))
            }
            state @ Self::Ct1Acknowledged { .. } => (state, Payload::None),
            Self::Ct2Sampled {
                base,
                mut sending_ct2,
            } => {
                let chunk = sending_ct2.next_chunk();
                (Self::Ct2Sampled { base, sending_ct2 }, Payload::Ct2(chunk))
            }
        };
        Ok(SckaSent {
            state,
            epoch,
            payload,
            secret,
        })
    }

    /// Takes one received message: the state after it and, when it completed the
    /// epoch's exchange on the send_ek side, that epoch's secret. A message of an older
    /// epoch, or a payload this state does not expect, changes nothing.
    pub(crate) fn recv(self, msg: &Message) -> Result<(Scka, Option<EpochSecret>), SpqrError> {
        let epoch = self.base().epoch;
        if msg.epoch > epoch {
            return match self {
                Self::Ct2Sampled { base, .. } if Some(msg.epoch) == epoch.checked_add(1) => {
                    let base = Base {
                        epoch: msg.epoch,
                        auth: base.auth,
                    };
                    Ok((Self::KeysUnsampled(base), None))
                }
                _ => Err(SpqrError::EpochOutOfRange),
            };
        }
        if msg.epoch < epoch {
            return Ok((self, None));
        }
        self.recv_current(&msg.payload)
    }

    /// [`recv`](Self::recv) for a message of this state's epoch.
    fn recv_current(self, payload: &Payload) -> Result<(Scka, Option<EpochSecret>), SpqrError> {
        let state = match (self, payload) {
            (Self::KeysSampled { base, keys, .. }, Payload::Ct1(chunk)) => {
                let mut receiving_ct1 = decoder(kem::CT1_LEN)?;
                receiving_ct1.add(chunk);
                let sending_ek = encoder(keys.ek())?;
                Self::HeaderSent {
                    base,
                    keys,
                    sending_ek,
                    receiving_ct1,
                }
            }
            (
                Self::HeaderSent {
                    base,
                    keys,
                    sending_ek,
                    mut receiving_ct1,
                },
                Payload::Ct1(chunk),
            ) => {
                receiving_ct1.add(chunk);
                match decoded::<{ kem::CT1_LEN }>(&receiving_ct1)? {
                    Some(ct1) => Self::Ct1Received {
                        base,
                        keys,
                        ct1: Box::new(*ct1),
                        sending_ek,
                    },
                    None => Self::HeaderSent {
                        base,
                        keys,
                        sending_ek,
                        receiving_ct1,
                    },
                }
            }
            (
                Self::Ct1Received {
                    base, keys, ct1, ..
                },
                Payload::Ct2(chunk),
            ) => {
                let mut receiving_ct2 = decoder(CT2_PAYLOAD_LEN)?;
                receiving_ct2.add(chunk);
                Self::EkSentCt1Received {
                    base,
                    keys,
                    ct1,
                    receiving_ct2,
                }
            }
            (
                Self::EkSentCt1Received {
                    base,
                    keys,
                    ct1,
                    mut receiving_ct2,
                },
                Payload::Ct2(chunk),
            ) => {
                receiving_ct2.add(chunk);
                match decoded::<CT2_PAYLOAD_LEN>(&receiving_ct2)? {
                    Some(payload) => return Self::decapsulate(base, &keys, &ct1, &payload),
                    None => Self::EkSentCt1Received {
                        base,
                        keys,
                        ct1,
                        receiving_ct2,
                    },
                }
            }
            (
                Self::NoHeaderReceived {
                    base,
                    receiving_hdr,
                },
                Payload::Hdr(chunk),
            ) => {
                let mut receiving_hdr = match receiving_hdr {
                    Some(decoder) => decoder,
                    None => decoder(HDR_PAYLOAD_LEN)?,
                };
                receiving_hdr.add(chunk);
                match decoded::<HDR_PAYLOAD_LEN>(&receiving_hdr)? {
                    Some(hdr) => {
                        let (header, mac) = hdr.split_at(kem::HEADER_LEN);
                        if !base.auth.verify_header(base.epoch, header, mac) {
                            return Err(SpqrError::MacVerifyFailed);
                        }
                        let mut stored = Box::new([0u8; kem::HEADER_LEN]);
                        stored.copy_from_slice(header);
                        Self::HeaderReceived {
                            base,
                            header: stored,
                        }
                    }
                    None => Self::NoHeaderReceived {
                        base,
                        receiving_hdr: Some(receiving_hdr),
                    },
                }
            }
            (
                Self::Ct1Sampled {
                    base,
                    header,
                    encaps,
                    sending_ct1,
                    mut receiving_ek,
                },
                Payload::Ek(chunk) | Payload::EkCt1Ack(chunk),
            ) => {
                let ack = matches!(payload, Payload::EkCt1Ack(_));
                receiving_ek.add(chunk);
                match decoded::<{ kem::EK_LEN }>(&receiving_ek)? {
                    Some(ek) => {
                        let ct1 = sending_ct1.payload();
                        let ct2_payload = ct2_payload(&base, &header, &encaps, ct1, &ek)?;
                        if ack {
                            Self::ct2_sampled(base, &ct2_payload)?
                        } else {
                            Self::EkReceivedCt1Sampled {
                                base,
                                sending_ct1,
                                ct2_payload,
                            }
                        }
                    }
                    None if ack => {
                        let mut ct1 = Box::new([0u8; kem::CT1_LEN]);
                        if sending_ct1.payload().len() != kem::CT1_LEN {
                            return Err(SpqrError::StateInconsistent);
                        }
                        ct1.copy_from_slice(sending_ct1.payload());
                        Self::Ct1Acknowledged {
                            base,
                            header,
                            encaps,
                            ct1,
                            receiving_ek,
                        }
                    }
                    None => Self::Ct1Sampled {
                        base,
                        header,
                        encaps,
                        sending_ct1,
                        receiving_ek,
                    },
                }
            }
            (
                Self::EkReceivedCt1Sampled {
                    base, ct2_payload, ..
                },
                Payload::Ct1Ack | Payload::EkCt1Ack(_),
            ) => Self::ct2_sampled(base, &ct2_payload)?,
            (
                Self::Ct1Acknowledged {
                    base,
                    header,
                    encaps,
                    ct1,
                    mut receiving_ek,
                },
                Payload::Ek(chunk) | Payload::EkCt1Ack(chunk),
            ) => {
                receiving_ek.add(chunk);
                match decoded::<{ kem::EK_LEN }>(&receiving_ek)? {
                    Some(ek) => {
                        let payload = ct2_payload(&base, &header, &encaps, ct1.as_slice(), &ek)?;
                        Self::ct2_sampled(base, &payload)?
                    }
                    None => Self::Ct1Acknowledged {
                        base,
                        header,
                        encaps,
                        ct1,
                        receiving_ek,
                    },
                }
            }
            (state, _) => state,
        };
        Ok((state, None))
    }

    fn ct2_sampled(base: Base, payload: &[u8; CT2_PAYLOAD_LEN]) -> Result<Self, SpqrError> {
        Ok(Self::Ct2Sampled {
            base,
            sending_ct2: encoder(payload)?,
        })
    }

    /// The send_ek side's end of an epoch: decapsulate, output the epoch secret, update
    /// the authenticator, then check the ciphertext MAC; become send_ct of the next epoch.
    fn decapsulate(
        mut base: Base,
        keys: &kem::KeyPair,
        ct1: &[u8; kem::CT1_LEN],
        payload: &[u8; CT2_PAYLOAD_LEN],
    ) -> Result<(Scka, Option<EpochSecret>), SpqrError> {
        let (ct2, mac) = payload.split_at(kem::CT2_LEN);
        let shared = kem::decaps(keys.dk(), ct1, ct2).map_err(|_| SpqrError::StateInconsistent)?;
        let out = epoch_secret(base.epoch, shared.as_slice());
        base.auth.update(base.epoch, out.secret.as_slice());
        if !base.auth.verify_ciphertext(base.epoch, ct1, ct2, mac) {
            return Err(SpqrError::MacVerifyFailed);
        }
        let next = Base {
            epoch: base
                .epoch
                .checked_add(1)
                .ok_or(SpqrError::EpochOutOfRange)?,
            auth: base.auth,
        };
        let state = Self::NoHeaderReceived {
            base: next,
            receiving_hdr: None,
        };
        Ok((state, Some(out)))
    }
}
