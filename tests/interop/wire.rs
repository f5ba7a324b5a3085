//! Just enough protobuf to take a PreKeySignalMessage apart and put it back
//! together, so the strictness tests can corrupt the SignalMessage inside it
//! (its MAC lives there) rather than fields that are legitimately not
//! authenticated, such as the registration id.

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Val {
    Varint(u64),
    Fixed64([u8; 8]),
    Bytes(Vec<u8>),
    Fixed32([u8; 4]),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Field {
    pub(crate) num: u64,
    pub(crate) val: Val,
}

/// PreKeySignalMessage field numbers (libsignal's wire.proto).
pub(crate) const PREKEY_ID: u64 = 1;
pub(crate) const IDENTITY_KEY: u64 = 3;
pub(crate) const MESSAGE: u64 = 4;
pub(crate) const SIGNED_PREKEY_ID: u64 = 6;

fn read_varint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*pos)?;
        *pos += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn parse(b: &[u8]) -> Option<Vec<Field>> {
    let mut pos = 0;
    let mut fields = Vec::new();
    while pos < b.len() {
        let key = read_varint(b, &mut pos)?;
        let num = key >> 3;
        let val = match key & 7 {
            0 => Val::Varint(read_varint(b, &mut pos)?),
            1 => {
                let v = b.get(pos..pos + 8)?.try_into().ok()?;
                pos += 8;
                Val::Fixed64(v)
            }
            2 => {
                let len = usize::try_from(read_varint(b, &mut pos)?).ok()?;
                let v = b.get(pos..pos.checked_add(len)?)?.to_vec();
                pos += len;
                Val::Bytes(v)
            }
            5 => {
                let v = b.get(pos..pos + 4)?.try_into().ok()?;
                pos += 4;
                Val::Fixed32(v)
            }
            _ => return None,
        };
        fields.push(Field { num, val });
    }
    Some(fields)
}

pub(crate) fn encode(fields: &[Field]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in fields {
        let wire = match f.val {
            Val::Varint(_) => 0,
            Val::Fixed64(_) => 1,
            Val::Bytes(_) => 2,
            Val::Fixed32(_) => 5,
        };
        write_varint(&mut out, (f.num << 3) | wire);
        match &f.val {
            Val::Varint(v) => write_varint(&mut out, *v),
            Val::Fixed64(v) => out.extend_from_slice(v),
            Val::Bytes(v) => {
                write_varint(&mut out, v.len() as u64);
                out.extend_from_slice(v);
            }
            Val::Fixed32(v) => out.extend_from_slice(v),
        }
    }
    out
}

/// A serialized PreKeySignalMessage (version byte + protobuf), taken apart.
pub(crate) struct PreKeyMsg {
    pub(crate) version: u8,
    pub(crate) fields: Vec<Field>,
}

impl PreKeyMsg {
    /// Parses and checks that re-encoding reproduces the input exactly, so
    /// that a corruption changes only what it means to change.
    pub(crate) fn parse(ct: &[u8]) -> Result<PreKeyMsg, String> {
        let (&version, body) = ct.split_first().ok_or("empty prekey message")?;
        let fields = parse(body).ok_or("prekey message is not valid protobuf")?;
        if encode(&fields) != body {
            return Err("prekey message does not re-encode byte-for-byte".into());
        }
        let m = PreKeyMsg { version, fields };
        if m.bytes(MESSAGE).is_none() {
            return Err("prekey message has no embedded SignalMessage (field 4)".into());
        }
        Ok(m)
    }

    pub(crate) fn serialize(&self) -> Vec<u8> {
        let mut out = vec![self.version];
        out.extend(encode(&self.fields));
        out
    }

    pub(crate) fn bytes(&self, num: u64) -> Option<&Vec<u8>> {
        self.fields
            .iter()
            .find_map(|f| match (&f.val, f.num == num) {
                (Val::Bytes(b), true) => Some(b),
                _ => None,
            })
    }

    pub(crate) fn varint(&self, num: u64) -> Option<u64> {
        self.fields
            .iter()
            .find_map(|f| match (&f.val, f.num == num) {
                (Val::Varint(v), true) => Some(*v),
                _ => None,
            })
    }

    /// Returns a copy with field `num` replaced by `val` (all occurrences).
    pub(crate) fn with(&self, num: u64, val: Val) -> PreKeyMsg {
        let fields = self
            .fields
            .iter()
            .map(|f| {
                if f.num == num {
                    Field {
                        num,
                        val: val.clone(),
                    }
                } else {
                    f.clone()
                }
            })
            .collect();
        PreKeyMsg {
            version: self.version,
            fields,
        }
    }

    /// Returns a copy whose embedded SignalMessage went through `f`.
    pub(crate) fn with_inner(&self, f: impl FnOnce(&mut Vec<u8>)) -> PreKeyMsg {
        let mut inner = self.bytes(MESSAGE).expect("checked in parse").clone();
        f(&mut inner);
        self.with(MESSAGE, Val::Bytes(inner))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let fields = vec![
            Field {
                num: 5,
                val: Val::Varint(300),
            },
            Field {
                num: 4,
                val: Val::Bytes(vec![0x33; 200]),
            },
            Field {
                num: 7,
                val: Val::Fixed32([1, 2, 3, 4]),
            },
        ];
        let enc = encode(&fields);
        assert_eq!(parse(&enc).unwrap(), fields);
        let mut ct = vec![0x33];
        ct.extend(&enc);
        let m = PreKeyMsg::parse(&ct).unwrap();
        assert_eq!(m.serialize(), ct);
        assert_eq!(m.varint(5), Some(300));
        let shorter = m.with_inner(|v| {
            v.pop();
        });
        assert_eq!(shorter.bytes(MESSAGE).unwrap().len(), 199);
    }
}
