//! The protocol's framing: reading request fields, and the reply or failure written back.

use confide::group::DistributionId;
use confide::keys::PublicKey;
use confide::{Address, ErrorCode};
use serde_json::{Value, json};

/// A request failed: the protocol's `error` text and `code`.
pub(crate) struct Failure {
    pub(crate) code: &'static str,
    pub(crate) error: String,
}

impl Failure {
    pub(crate) fn new(code: &'static str, error: impl std::fmt::Display) -> Self {
        Self {
            code,
            error: error.to_string(),
        }
    }

    /// A missing, mistyped or out-of-range field.
    pub(crate) fn bad_request(error: impl std::fmt::Display) -> Self {
        Self::new("BadRequest", error)
    }
}

/// Every library error becomes a failure with the library's own code.
impl<E: ErrorCode> From<E> for Failure {
    fn from(e: E) -> Self {
        Self::new(e.code(), e)
    }
}

pub(crate) type Reply = Result<Value, Failure>;

/// The line written back for request `id`.
pub(crate) fn response(id: Value, reply: Reply) -> Value {
    match reply {
        Ok(mut v) => {
            if let Value::Object(map) = &mut v {
                map.insert("id".into(), id);
                map.insert("ok".into(), Value::Bool(true));
            }
            v
        }
        Err(f) => json!({ "id": id, "ok": false, "error": f.error, "code": f.code }),
    }
}

/// The reply to a decrypt: the plaintext as hex and as (lossy) text.
pub(crate) fn decrypted(plaintext: &[u8], redelivered: bool) -> Value {
    json!({
        "plaintext": hex::encode(plaintext),
        "text": String::from_utf8_lossy(plaintext),
        "redelivered": redelivered,
    })
}

pub(crate) fn field<'a>(req: &'a Value, name: &str) -> Result<&'a Value, Failure> {
    match req.get(name) {
        Some(Value::Null) | None => Err(Failure::bad_request(format!("missing field {name}"))),
        Some(v) => Ok(v),
    }
}

pub(crate) fn opt<'a>(req: &'a Value, name: &str) -> Option<&'a Value> {
    req.get(name).filter(|v| !v.is_null())
}

pub(crate) fn as_u32(v: &Value, name: &str) -> Result<u32, Failure> {
    v.as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| Failure::bad_request(format!("field {name} must be a u32")))
}

pub(crate) fn as_str<'a>(v: &'a Value, name: &str) -> Result<&'a str, Failure> {
    v.as_str()
        .ok_or_else(|| Failure::bad_request(format!("field {name} must be a string")))
}

pub(crate) fn as_hex(v: &Value, name: &str) -> Result<Vec<u8>, Failure> {
    hex::decode(as_str(v, name)?)
        .map_err(|_| Failure::bad_request(format!("field {name} must be hex")))
}

pub(crate) fn u32_field(req: &Value, name: &str) -> Result<u32, Failure> {
    as_u32(field(req, name)?, name)
}

pub(crate) fn hex_field(req: &Value, name: &str) -> Result<Vec<u8>, Failure> {
    as_hex(field(req, name)?, name)
}

pub(crate) fn opt_u32(req: &Value, name: &str) -> Result<Option<u32>, Failure> {
    opt(req, name).map(|v| as_u32(v, name)).transpose()
}

pub(crate) fn opt_u64(req: &Value, name: &str) -> Result<Option<u64>, Failure> {
    opt(req, name)
        .map(|v| {
            v.as_u64()
                .ok_or_else(|| Failure::bad_request(format!("field {name} must be a u64")))
        })
        .transpose()
}

pub(crate) fn opt_bool(req: &Value, name: &str) -> Result<Option<bool>, Failure> {
    opt(req, name)
        .map(|v| {
            v.as_bool()
                .ok_or_else(|| Failure::bad_request(format!("field {name} must be a bool")))
        })
        .transpose()
}

pub(crate) fn key32(bytes: &[u8], name: &str) -> Result<[u8; 32], Failure> {
    <[u8; 32]>::try_from(bytes)
        .map_err(|_| Failure::bad_request(format!("field {name} must be 32 bytes")))
}

pub(crate) fn public_key(bytes: &[u8], name: &str) -> Result<PublicKey, Failure> {
    PublicKey::try_from(bytes).map_err(|e| Failure::new(e.code(), format!("{name}: {e}")))
}

/// The protocol's device ids are 1..=127 (as libsignal's).
pub(crate) fn device_id(v: &Value) -> Result<u32, Failure> {
    let id = as_u32(v, "device_id")?;
    if !(1..=127).contains(&id) {
        return Err(Failure::bad_request("field device_id must be 1..127"));
    }
    Ok(id)
}

pub(crate) fn address(req: &Value, name: &str) -> Result<Address, Failure> {
    let a = field(req, name)?;
    let device_id = device_id(field(a, "device_id")?)?;
    Ok(Address::new(as_str(field(a, "name")?, "name")?, device_id))
}

pub(crate) fn distribution(req: &Value) -> Result<DistributionId, Failure> {
    as_str(field(req, "distribution_id")?, "distribution_id")?
        .parse()
        .map_err(|_| Failure::bad_request("field distribution_id must be a UUID"))
}

/// The message: `text` (UTF-8) or `plaintext` (hex).
pub(crate) fn payload(req: &Value) -> Result<Vec<u8>, Failure> {
    if let Some(t) = opt(req, "text") {
        return Ok(as_str(t, "text")?.as_bytes().to_vec());
    }
    hex_field(req, "plaintext")
}
