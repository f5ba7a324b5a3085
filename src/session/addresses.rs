//! The `addresses` field of a v4 prekey message's inner SignalMessage: both parties'
//! service ids and device ids, under the MAC, so a message cannot be replayed to or
//! from another account. Filled, and checkable, only when both names are service ids
//! (an ACI is a bare UUID, a PNI `PNI:<uuid>`) and both device ids fit one byte.

use crate::Address;
use crate::sealed::ServiceId;
use crate::wire::ADDRESSES_LEN;

/// Sender service id (17) ‖ sender device (1) ‖ recipient service id (17) ‖ recipient
/// device (1), or `None` when either address cannot be written so.
pub(crate) fn encode(sender: &Address, recipient: &Address) -> Option<[u8; ADDRESSES_LEN]> {
    let mut out = [0u8; ADDRESSES_LEN];
    for (i, address) in [sender, recipient].into_iter().enumerate() {
        let id: ServiceId = address.name().parse().ok()?;
        let device = u8::try_from(address.device_id()).ok()?;
        let at = i * 18;
        out.get_mut(at..at + 17)?
            .copy_from_slice(&id.fixed_width_binary());
        *out.get_mut(at + 17)? = device;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_ids_encode_and_other_names_do_not() {
        let aci = Address::new("9d0652a3-dcc3-4d11-975f-74d61598733f", 2);
        let pni = Address::new("PNI:9d0652a3-dcc3-4d11-975f-74d61598733f", 3);
        let out = encode(&aci, &pni).unwrap();
        assert_eq!(out[0], 0);
        assert_eq!(
            out[1..17],
            [
                0x9d, 0x06, 0x52, 0xa3, 0xdc, 0xc3, 0x4d, 0x11, 0x97, 0x5f, 0x74, 0xd6, 0x15, 0x98,
                0x73, 0x3f
            ]
        );
        assert_eq!(out[17], 2);
        assert_eq!(out[18], 1);
        assert_eq!(out[35], 3);
        assert!(encode(&Address::new("alice", 1), &aci).is_none());
        assert!(encode(&aci, &Address::new("bob", 1)).is_none());
        assert!(encode(&Address::new(aci.name(), 256), &pni).is_none());
    }
}
