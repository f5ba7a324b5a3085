//! [`State`]'s stored form (`proto/spqr.proto`): a versioned protobuf of confide's own.
//! Decoding checks every length and that the state machine, the chain and the direction
//! agree, so a stored state that passes behaves like one this code made.

use std::collections::VecDeque;

use prost::Message as _;
use zeroize::{Zeroize, Zeroizing};

use super::authenticator::Authenticator;
use super::chain::{Chain, Half, Link, Params, SkippedKey};
use super::epoch::{Base, CT2_PAYLOAD_LEN, HDR_PAYLOAD_LEN, Scka};
use super::erasure::{Chunk, Decoder, Encoder};
use super::{Direction, SpqrError, State, kem};
use crate::proto::spqr as pb;
use pb::scka::State as PbState;

/// The layout [`encode`] writes.
const FORMAT_VERSION: u32 = 1;
/// One stored skipped key: u32 BE index ‖ key.
const SKIPPED_LEN: usize = 4 + 32;

fn refuse<T>(why: &'static str) -> Result<T, SpqrError> {
    Err(SpqrError::StateDecode(why))
}

// ---- encoding ----

/// The state's bytes; every secret copy made on the way is wiped.
pub(super) fn encode(state: &State) -> Zeroizing<Vec<u8>> {
    let mut msg = pb::SpqrState {
        format_version: FORMAT_VERSION,
        direction: match state.chain.direction {
            Direction::A2B => 0,
            Direction::B2A => 1,
        },
        negotiated: state.negotiated,
        chain: Some(encode_chain(&state.chain)),
        scka: Some(encode_scka(&state.scka)),
    };
    let out = Zeroizing::new(msg.encode_to_vec());
    wipe(&mut msg);
    out
}

fn encode_chain(chain: &Chain) -> pb::Chain {
    pb::Chain {
        current_epoch: chain.current_epoch,
        send_epoch: chain.send_epoch,
        next_root: chain.next_root.to_vec(),
        links: chain
            .links
            .iter()
            .map(|link| pb::Link {
                send: Some(encode_half(&link.send)),
                recv: Some(encode_half(&link.recv)),
            })
            .collect(),
        max_jump: chain.params.max_jump,
        max_ooo_keys: chain.params.max_ooo_keys,
    }
}

fn encode_half(half: &Half) -> pb::Half {
    let mut skipped = Vec::with_capacity(half.skipped.len() * SKIPPED_LEN);
    for k in &half.skipped {
        skipped.extend_from_slice(&k.index.to_be_bytes());
        skipped.extend_from_slice(&k.key);
    }
    pb::Half {
        ctr: half.ctr,
        next: half.next.map(|n| n.to_vec()).unwrap_or_default(),
        skipped,
    }
}

fn encode_encoder(encoder: &Encoder) -> Option<pb::Encoder> {
    Some(pb::Encoder {
        payload: encoder.payload().to_vec(),
        next_index: u32::from(encoder.next_index()),
    })
}

fn encode_decoder(decoder: &Decoder) -> Option<pb::Decoder> {
    Some(pb::Decoder {
        chunks: decoder
            .chunks()
            .iter()
            .map(|c| pb::Chunk {
                index: u32::from(c.index),
                data: c.data.to_vec(),
            })
            .collect(),
    })
}

fn encode_scka(scka: &Scka) -> pb::Scka {
    let base = scka.base();
    let (root, mac) = base.auth.parts();
    let state = match scka {
        Scka::KeysUnsampled(_) => PbState::KeysUnsampled(pb::KeysUnsampled {}),
        Scka::KeysSampled {
            keys, sending_hdr, ..
        } => PbState::KeysSampled(pb::KeysSampled {
            key_seed: keys.seed().to_vec(),
            sending_hdr: encode_encoder(sending_hdr),
        }),
        Scka::HeaderSent {
            keys,
            sending_ek,
            receiving_ct1,
            ..
        } => PbState::HeaderSent(pb::HeaderSent {
            key_seed: keys.seed().to_vec(),
            sending_ek: encode_encoder(sending_ek),
            receiving_ct1: encode_decoder(receiving_ct1),
        }),
        Scka::Ct1Received {
            keys,
            ct1,
            sending_ek,
            ..
        } => PbState::Ct1Received(pb::Ct1Received {
            key_seed: keys.seed().to_vec(),
            ct1: ct1.to_vec(),
            sending_ek: encode_encoder(sending_ek),
        }),
        Scka::EkSentCt1Received {
            keys,
            ct1,
            receiving_ct2,
            ..
        } => PbState::EkSentCt1Received(pb::EkSentCt1Received {
            key_seed: keys.seed().to_vec(),
            ct1: ct1.to_vec(),
            receiving_ct2: encode_decoder(receiving_ct2),
        }),
        Scka::NoHeaderReceived { receiving_hdr, .. } => {
            PbState::NoHeaderReceived(pb::NoHeaderReceived {
                receiving_hdr: receiving_hdr.as_ref().and_then(encode_decoder),
            })
        }
        Scka::HeaderReceived { header, .. } => PbState::HeaderReceived(pb::HeaderReceived {
            header: header.to_vec(),
        }),
        Scka::Ct1Sampled {
            header,
            encaps,
            sending_ct1,
            receiving_ek,
            ..
        } => PbState::Ct1Sampled(pb::Ct1Sampled {
            header: header.to_vec(),
            encaps_state: encaps.to_bytes().to_vec(),
            sending_ct1: encode_encoder(sending_ct1),
            receiving_ek: encode_decoder(receiving_ek),
        }),
        Scka::EkReceivedCt1Sampled {
            sending_ct1,
            ct2_payload,
            ..
        } => PbState::EkReceivedCt1Sampled(pb::EkReceivedCt1Sampled {
            sending_ct1: encode_encoder(sending_ct1),
            ct2_payload: ct2_payload.to_vec(),
        }),
        Scka::Ct1Acknowledged {
            header,
            encaps,
            ct1,
            receiving_ek,
            ..
        } => PbState::Ct1Acknowledged(pb::Ct1Acknowledged {
            header: header.to_vec(),
            encaps_state: encaps.to_bytes().to_vec(),
            ct1: ct1.to_vec(),
            receiving_ek: encode_decoder(receiving_ek),
        }),
        Scka::Ct2Sampled { sending_ct2, .. } => PbState::Ct2Sampled(pb::Ct2Sampled {
            sending_ct2: encode_encoder(sending_ct2),
        }),
    };
    pb::Scka {
        epoch: base.epoch,
        auth_root_key: root.to_vec(),
        auth_mac_key: mac.to_vec(),
        state: Some(state),
    }
}

// ---- wiping the protobuf copies ----

fn wipe(msg: &mut pb::SpqrState) {
    if let Some(chain) = &mut msg.chain {
        chain.next_root.zeroize();
        for link in &mut chain.links {
            for half in [&mut link.send, &mut link.recv].into_iter().flatten() {
                half.next.zeroize();
                half.skipped.zeroize();
            }
        }
    }
    if let Some(scka) = &mut msg.scka {
        scka.auth_root_key.zeroize();
        scka.auth_mac_key.zeroize();
        if let Some(state) = &mut scka.state {
            wipe_state(state);
        }
    }
}

fn wipe_coder(e: Option<&mut pb::Encoder>, d: Option<&mut pb::Decoder>) {
    if let Some(e) = e {
        e.payload.zeroize();
    }
    if let Some(d) = d {
        for c in &mut d.chunks {
            c.data.zeroize();
        }
    }
}

fn wipe_state(state: &mut PbState) {
    match state {
        PbState::KeysUnsampled(_) | PbState::HeaderReceived(_) => {}
        PbState::KeysSampled(s) => {
            s.key_seed.zeroize();
            wipe_coder(s.sending_hdr.as_mut(), None);
        }
        PbState::HeaderSent(s) => {
            s.key_seed.zeroize();
            wipe_coder(s.sending_ek.as_mut(), s.receiving_ct1.as_mut());
        }
        PbState::Ct1Received(s) => {
            s.key_seed.zeroize();
            s.ct1.zeroize();
            wipe_coder(s.sending_ek.as_mut(), None);
        }
        PbState::EkSentCt1Received(s) => {
            s.key_seed.zeroize();
            s.ct1.zeroize();
            wipe_coder(None, s.receiving_ct2.as_mut());
        }
        PbState::NoHeaderReceived(s) => wipe_coder(None, s.receiving_hdr.as_mut()),
        PbState::Ct1Sampled(s) => {
            s.encaps_state.zeroize();
            wipe_coder(s.sending_ct1.as_mut(), s.receiving_ek.as_mut());
        }
        PbState::EkReceivedCt1Sampled(s) => {
            s.ct2_payload.zeroize();
            wipe_coder(s.sending_ct1.as_mut(), None);
        }
        PbState::Ct1Acknowledged(s) => {
            s.encaps_state.zeroize();
            s.ct1.zeroize();
            wipe_coder(None, s.receiving_ek.as_mut());
        }
        PbState::Ct2Sampled(s) => wipe_coder(s.sending_ct2.as_mut(), None),
    }
}

// ---- decoding ----

/// Parses and checks a stored state.
pub(super) fn decode(bytes: &[u8]) -> Result<State, SpqrError> {
    let mut msg = pb::SpqrState::decode(bytes).map_err(|_| SpqrError::StateDecode("protobuf"))?;
    let out = decode_inner(&msg);
    wipe(&mut msg);
    out
}

fn decode_inner(msg: &pb::SpqrState) -> Result<State, SpqrError> {
    if msg.format_version != FORMAT_VERSION {
        return refuse("unknown format version");
    }
    let direction = match msg.direction {
        0 => Direction::A2B,
        1 => Direction::B2A,
        _ => return refuse("direction"),
    };
    let chain = decode_chain(
        msg.chain
            .as_ref()
            .ok_or(SpqrError::StateDecode("no chain"))?,
        direction,
    )?;
    let scka = decode_scka(
        msg.scka
            .as_ref()
            .ok_or(SpqrError::StateDecode("no epoch state"))?,
    )?;
    let epoch = scka.base().epoch;
    // A2B is the send_ek side of the odd epochs, B2A of the even ones.
    let odd = epoch % 2 == 1;
    if scka.is_send_ek() != (odd == (direction == Direction::A2B)) {
        return refuse("epoch role does not match direction");
    }
    let expected = if scka.has_output_secret() {
        epoch
    } else {
        epoch - 1
    };
    if chain.current_epoch != expected {
        return refuse("chain epoch does not match epoch state");
    }
    Ok(State {
        scka,
        chain,
        negotiated: msg.negotiated,
    })
}

fn array<const N: usize>(bytes: &[u8], why: &'static str) -> Result<[u8; N], SpqrError> {
    bytes.try_into().map_err(|_| SpqrError::StateDecode(why))
}

fn boxed<const N: usize>(bytes: &[u8], why: &'static str) -> Result<Box<[u8; N]>, SpqrError> {
    if bytes.len() != N {
        return refuse(why);
    }
    let mut out = Box::new([0u8; N]);
    out.copy_from_slice(bytes);
    Ok(out)
}

fn decode_chain(msg: &pb::Chain, direction: Direction) -> Result<Chain, SpqrError> {
    let links = msg
        .links
        .iter()
        .map(|link| {
            Ok(Link {
                send: decode_half(link.send.as_ref())?,
                recv: decode_half(link.recv.as_ref())?,
            })
        })
        .collect::<Result<VecDeque<_>, SpqrError>>()?;
    let chain = Chain {
        direction,
        current_epoch: msg.current_epoch,
        send_epoch: msg.send_epoch,
        links,
        next_root: Zeroizing::new(array(&msg.next_root, "chain next root")?),
        params: Params {
            max_jump: msg.max_jump,
            max_ooo_keys: msg.max_ooo_keys,
        },
    };
    chain.validate().map_err(SpqrError::StateDecode)?;
    Ok(chain)
}

fn decode_half(msg: Option<&pb::Half>) -> Result<Half, SpqrError> {
    let msg = msg.ok_or(SpqrError::StateDecode("chain half missing"))?;
    let next = if msg.next.is_empty() {
        None
    } else {
        Some(array(&msg.next, "chain next")?)
    };
    if msg.skipped.len() % SKIPPED_LEN != 0 {
        return refuse("chain skipped keys length");
    }
    let skipped = msg
        .skipped
        .chunks_exact(SKIPPED_LEN)
        .map(|entry| {
            let (index, key) = entry.split_at(4);
            Ok(SkippedKey {
                index: u32::from_be_bytes(array(index, "skipped index")?),
                key: array(key, "skipped key")?,
            })
        })
        .collect::<Result<Vec<_>, SpqrError>>()?;
    Ok(Half {
        ctr: msg.ctr,
        next,
        skipped,
    })
}

fn decode_encoder(msg: Option<&pb::Encoder>, len: usize) -> Result<Encoder, SpqrError> {
    let msg = msg.ok_or(SpqrError::StateDecode("encoder missing"))?;
    if msg.payload.len() != len {
        return refuse("encoder payload length");
    }
    let next =
        u16::try_from(msg.next_index).map_err(|_| SpqrError::StateDecode("encoder index"))?;
    Encoder::resume(&msg.payload, next).map_err(|_| SpqrError::StateDecode("encoder"))
}

/// A stored ek sender: its payload must be the key pair's ek.
fn ek_encoder(msg: Option<&pb::Encoder>, keys: &kem::KeyPair) -> Result<Encoder, SpqrError> {
    let encoder = decode_encoder(msg, kem::EK_LEN)?;
    if encoder.payload() != keys.ek() {
        return refuse("ek does not match key pair");
    }
    Ok(encoder)
}

/// A stored decoder: it must still be incomplete (a complete one moves the state on).
fn decode_decoder(msg: Option<&pb::Decoder>, len: usize) -> Result<Decoder, SpqrError> {
    let msg = msg.ok_or(SpqrError::StateDecode("decoder missing"))?;
    let chunks = msg
        .chunks
        .iter()
        .map(|c| {
            Ok(Chunk {
                index: u16::try_from(c.index).map_err(|_| SpqrError::StateDecode("chunk index"))?,
                data: array(&c.data, "chunk length")?,
            })
        })
        .collect::<Result<Vec<_>, SpqrError>>()?;
    let decoder = Decoder::resume(len, &chunks).map_err(|_| SpqrError::StateDecode("decoder"))?;
    if decoder.is_complete() {
        return refuse("stored decoder already complete");
    }
    Ok(decoder)
}

fn decode_scka(msg: &pb::Scka) -> Result<Scka, SpqrError> {
    if msg.epoch == 0 {
        return refuse("epoch 0");
    }
    let base = Base {
        epoch: msg.epoch,
        auth: Authenticator::from_parts(
            array(&msg.auth_root_key, "authenticator root key")?,
            array(&msg.auth_mac_key, "authenticator MAC key")?,
        ),
    };
    let state = msg
        .state
        .as_ref()
        .ok_or(SpqrError::StateDecode("no state"))?;
    let keys =
        |bytes: &[u8]| Ok::<_, SpqrError>(kem::KeyPair::from_seed(&array(bytes, "key seed")?));
    let encaps = |bytes: &[u8]| {
        kem::EncapsState::from_bytes(bytes)
            .map_err(|_| SpqrError::StateDecode("encapsulation state"))
    };
    Ok(match state {
        PbState::KeysUnsampled(_) => Scka::KeysUnsampled(base),
        PbState::KeysSampled(s) => {
            let keys = keys(&s.key_seed)?;
            let sending_hdr = decode_encoder(s.sending_hdr.as_ref(), HDR_PAYLOAD_LEN)?;
            let (header, mac) = sending_hdr.payload().split_at(kem::HEADER_LEN);
            if header != keys.header().as_slice()
                || !base.auth.verify_header(base.epoch, header, mac)
            {
                return refuse("header does not match key pair");
            }
            Scka::KeysSampled {
                base,
                keys,
                sending_hdr,
            }
        }
        PbState::HeaderSent(s) => {
            let keys = keys(&s.key_seed)?;
            Scka::HeaderSent {
                base,
                sending_ek: ek_encoder(s.sending_ek.as_ref(), &keys)?,
                keys,
                receiving_ct1: decode_decoder(s.receiving_ct1.as_ref(), kem::CT1_LEN)?,
            }
        }
        PbState::Ct1Received(s) => {
            let keys = keys(&s.key_seed)?;
            Scka::Ct1Received {
                base,
                sending_ek: ek_encoder(s.sending_ek.as_ref(), &keys)?,
                keys,
                ct1: boxed(&s.ct1, "ct1 length")?,
            }
        }
        PbState::EkSentCt1Received(s) => Scka::EkSentCt1Received {
            base,
            keys: keys(&s.key_seed)?,
            ct1: boxed(&s.ct1, "ct1 length")?,
            receiving_ct2: decode_decoder(s.receiving_ct2.as_ref(), CT2_PAYLOAD_LEN)?,
        },
        PbState::NoHeaderReceived(s) => {
            let receiving_hdr = match &s.receiving_hdr {
                Some(d) if !d.chunks.is_empty() => Some(decode_decoder(Some(d), HDR_PAYLOAD_LEN)?),
                _ => None,
            };
            Scka::NoHeaderReceived {
                base,
                receiving_hdr,
            }
        }
        PbState::HeaderReceived(s) => Scka::HeaderReceived {
            base,
            header: boxed(&s.header, "header length")?,
        },
        PbState::Ct1Sampled(s) => Scka::Ct1Sampled {
            base,
            header: boxed(&s.header, "header length")?,
            encaps: encaps(&s.encaps_state)?,
            sending_ct1: decode_encoder(s.sending_ct1.as_ref(), kem::CT1_LEN)?,
            receiving_ek: decode_decoder(s.receiving_ek.as_ref(), kem::EK_LEN)?,
        },
        PbState::EkReceivedCt1Sampled(s) => Scka::EkReceivedCt1Sampled {
            base,
            sending_ct1: decode_encoder(s.sending_ct1.as_ref(), kem::CT1_LEN)?,
            ct2_payload: boxed(&s.ct2_payload, "ct2 length")?,
        },
        PbState::Ct1Acknowledged(s) => Scka::Ct1Acknowledged {
            base,
            header: boxed(&s.header, "header length")?,
            encaps: encaps(&s.encaps_state)?,
            ct1: boxed(&s.ct1, "ct1 length")?,
            receiving_ek: decode_decoder(s.receiving_ek.as_ref(), kem::EK_LEN)?,
        },
        PbState::Ct2Sampled(s) => Scka::Ct2Sampled {
            base,
            sending_ct2: decode_encoder(s.sending_ct2.as_ref(), CT2_PAYLOAD_LEN)?,
        },
    })
}
