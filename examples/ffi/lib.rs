//! A C ABI over confide's session API, built as a `cdylib` example
//! (`target/<profile>/examples/libconfide_ffi.so`); `confide.h` declares it.
//!
//! Conventions, for every function:
//! - the return value is a status code (`CONFIDE_OK` or a `CONFIDE_ERR_*`), and
//!   `confide_last_error_message()` then describes the last failure on this thread;
//! - handles are opaque and freed with their `*_free` function; buffers that confide
//!   returns are owned by the caller and freed with `confide_buffer_free`; buffers the
//!   caller passes are only read during the call;
//! - no panic crosses the boundary: one is caught and returned as `CONFIDE_ERR_PANIC`;
//! - a `ConfideDevice` may be shared between threads: calls for *different* remote
//!   addresses may run concurrently; calls for the *same* address must be serialized by
//!   the caller (each is load, change, save). `confide_device_free` must not race any call.
//!
//! Time is passed in (`now_ms`, milliseconds since the Unix epoch), as everywhere in
//! confide; randomness comes from the operating system.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

use confide::cipher::{self, BundleSpec};
use confide::store::{IdentityStore, InMemoryStore};
use confide::{
    Address, BundleError, CiphertextMessage, DecryptError, EncryptError, PreKeyBundle, SystemRng,
    Timestamp,
};

/// Success.
pub const CONFIDE_OK: i32 = 0;
/// A required pointer was null, or a string was not UTF-8.
pub const CONFIDE_ERR_INVALID_ARGUMENT: i32 = 1;
/// Bytes that are not a valid message, bundle or key; or a message that failed
/// authentication.
pub const CONFIDE_ERR_INVALID_MESSAGE: i32 = 2;
/// The message was already decrypted.
pub const CONFIDE_ERR_DUPLICATE_MESSAGE: i32 = 3;
/// No session with this address.
pub const CONFIDE_ERR_NO_SESSION: i32 = 4;
/// The remote identity key differs from the trusted one.
pub const CONFIDE_ERR_UNTRUSTED_IDENTITY: i32 = 5;
/// A bundle's signed prekey signature is invalid.
pub const CONFIDE_ERR_INVALID_SIGNATURE: i32 = 6;
/// A prekey message names a prekey this device does not have.
pub const CONFIDE_ERR_UNKNOWN_PREKEY: i32 = 7;
/// Any other failure (see the message).
pub const CONFIDE_ERR_OTHER: i32 = 8;
/// A bug in confide: a panic was caught at the boundary.
pub const CONFIDE_ERR_PANIC: i32 = 9;

/// One device: its identity, prekeys and sessions, kept in memory.
pub struct ConfideDevice {
    store: InMemoryStore,
    device_id: u32,
}

/// Bytes returned by confide; free with `confide_buffer_free`.
#[repr(C)]
pub struct ConfideBuffer {
    /// The bytes, or null when `len` is 0.
    pub data: *mut u8,
    /// Their number.
    pub len: usize,
}

thread_local! {
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

struct Failure(i32, String);

fn set_error(message: String) {
    let c = CString::new(message.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = Some(c));
}

/// Runs `f`, converting its error or panic into a status code.
fn guard(f: impl FnOnce() -> Result<(), Failure>) -> i32 {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => {
            LAST_ERROR.with(|e| *e.borrow_mut() = None);
            CONFIDE_OK
        }
        Ok(Err(Failure(code, message))) => {
            set_error(message);
            code
        }
        Err(_) => {
            set_error("internal error (panic caught at the C boundary)".into());
            CONFIDE_ERR_PANIC
        }
    }
}

fn invalid(what: &str) -> Failure {
    Failure(
        CONFIDE_ERR_INVALID_ARGUMENT,
        format!("invalid argument: {what}"),
    )
}

/// # Safety
/// `p` is null or points to a live `ConfideDevice`.
unsafe fn device_ref<'a>(p: *const ConfideDevice) -> Result<&'a ConfideDevice, Failure> {
    // SAFETY: the caller guarantees `p` is null or a live handle from confide_device_new.
    unsafe { p.as_ref() }.ok_or_else(|| invalid("device is null"))
}

/// # Safety
/// `p` is null or a NUL-terminated string.
unsafe fn string<'a>(p: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if p.is_null() {
        return Err(invalid(what));
    }
    // SAFETY: non-null, and the caller guarantees NUL termination.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|_| invalid(what))
}

/// # Safety
/// `p` is valid for `len` bytes, or `len` is 0.
unsafe fn bytes<'a>(p: *const u8, len: usize, what: &str) -> Result<&'a [u8], Failure> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(invalid(what));
    }
    // SAFETY: non-null and the caller guarantees `len` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// # Safety
/// `out` is null or writable.
unsafe fn put_buffer(out: *mut ConfideBuffer, data: Vec<u8>) -> Result<(), Failure> {
    if out.is_null() {
        return Err(invalid("output buffer is null"));
    }
    let boxed = data.into_boxed_slice();
    let len = boxed.len();
    let data = if len == 0 {
        std::ptr::null_mut()
    } else {
        Box::into_raw(boxed).cast::<u8>()
    };
    // SAFETY: non-null and the caller guarantees it is writable.
    unsafe { out.write(ConfideBuffer { data, len }) };
    Ok(())
}

fn bundle_failure(e: BundleError) -> Failure {
    let code = match e {
        BundleError::InvalidSignature => CONFIDE_ERR_INVALID_SIGNATURE,
        BundleError::UntrustedIdentity { .. } => CONFIDE_ERR_UNTRUSTED_IDENTITY,
        _ => CONFIDE_ERR_OTHER,
    };
    Failure(code, e.to_string())
}

fn encrypt_failure(e: EncryptError) -> Failure {
    let code = match e {
        EncryptError::NoSession => CONFIDE_ERR_NO_SESSION,
        EncryptError::UntrustedIdentity { .. } => CONFIDE_ERR_UNTRUSTED_IDENTITY,
        _ => CONFIDE_ERR_OTHER,
    };
    Failure(code, e.to_string())
}

fn decrypt_failure(e: DecryptError) -> Failure {
    let code = match e {
        DecryptError::Wire(_) | DecryptError::InvalidMessage | DecryptError::WeakKey => {
            CONFIDE_ERR_INVALID_MESSAGE
        }
        DecryptError::DuplicateMessage { .. } => CONFIDE_ERR_DUPLICATE_MESSAGE,
        DecryptError::NoSession => CONFIDE_ERR_NO_SESSION,
        DecryptError::UntrustedIdentity { .. } => CONFIDE_ERR_UNTRUSTED_IDENTITY,
        DecryptError::UnknownPreKey { .. } | DecryptError::UnknownSignedPreKey { .. } => {
            CONFIDE_ERR_UNKNOWN_PREKEY
        }
        _ => CONFIDE_ERR_OTHER,
    };
    Failure(code, e.to_string())
}

/// Creates a device with a fresh identity. `*out` receives the handle; free it with
/// `confide_device_free`. Thread-safe.
///
/// # Safety
/// `out` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_device_new(device_id: u32, out: *mut *mut ConfideDevice) -> i32 {
    guard(|| {
        if out.is_null() {
            return Err(invalid("out is null"));
        }
        let mut rng = SystemRng::new();
        let handle = Box::new(ConfideDevice {
            store: InMemoryStore::generate(&mut rng),
            device_id,
        });
        // SAFETY: checked non-null; the caller guarantees it is writable.
        unsafe { out.write(Box::into_raw(handle)) };
        Ok(())
    })
}

/// Frees a device (null is ignored). No other call on it may run concurrently or later.
///
/// # Safety
/// `device` is null or a handle from `confide_device_new` not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_device_free(device: *mut ConfideDevice) {
    if !device.is_null() {
        // SAFETY: the caller passes a handle from Box::into_raw, freed once.
        drop(unsafe { Box::from_raw(device) });
    }
}

/// Writes the device's 33-byte public identity key into `*out`. Thread-safe.
///
/// # Safety
/// `device` is a live handle; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_device_identity_key(
    device: *const ConfideDevice,
    out: *mut ConfideBuffer,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded caller guarantees.
        let d = unsafe { device_ref(device) }?;
        let identity = d
            .store
            .local_identity()
            .map_err(|e| Failure(CONFIDE_ERR_OTHER, e.to_string()))?;
        // SAFETY: forwarded caller guarantee.
        unsafe { put_buffer(out, identity.identity_key().serialize().to_vec()) }
    })
}

/// Makes a new signed prekey (and a one-time prekey unless `prekey_id` is 0), keeps
/// them, and writes the bundle to publish (`PreKeyBundle::to_bytes`) into `*out`.
/// Thread-safe.
///
/// # Safety
/// `device` is a live handle; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_device_new_bundle(
    device: *const ConfideDevice,
    signed_prekey_id: u32,
    prekey_id: u32,
    now_ms: u64,
    out: *mut ConfideBuffer,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded caller guarantee.
        let d = unsafe { device_ref(device) }?;
        let spec = BundleSpec {
            device_id: d.device_id,
            signed_pre_key_id: signed_prekey_id,
            pre_key_id: (prekey_id != 0).then_some(prekey_id),
        };
        let mut rng = SystemRng::new();
        let bundle = cipher::new_bundle(&d.store, &mut rng, spec, Timestamp::from_millis(now_ms))
            .map_err(|e| Failure(CONFIDE_ERR_OTHER, e.to_string()))?;
        // SAFETY: forwarded caller guarantee.
        unsafe { put_buffer(out, bundle.to_bytes()) }
    })
}

/// Starts a session with (`name`, `remote_device_id`) from its bundle bytes. Serialize
/// calls for the same address.
///
/// # Safety
/// `device` is a live handle; `name` is NUL-terminated; `bundle` holds `bundle_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_process_bundle(
    device: *const ConfideDevice,
    name: *const c_char,
    remote_device_id: u32,
    bundle: *const u8,
    bundle_len: usize,
    now_ms: u64,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded caller guarantees.
        let (d, name, raw) = unsafe {
            (
                device_ref(device)?,
                string(name, "name")?,
                bytes(bundle, bundle_len, "bundle")?,
            )
        };
        let bundle = PreKeyBundle::from_bytes(raw)
            .map_err(|e| Failure(CONFIDE_ERR_INVALID_MESSAGE, e.to_string()))?;
        let address = Address::new(name, remote_device_id);
        let mut rng = SystemRng::new();
        cipher::process_bundle(
            &d.store,
            &address,
            &bundle,
            &mut rng,
            Timestamp::from_millis(now_ms),
        )
        .map_err(bundle_failure)
    })
}

/// Encrypts `plaintext` for (`name`, `remote_device_id`). Writes the message type
/// (2 or 3) to `*out_type` and the message bytes to `*out`. Serialize calls for the same
/// address.
///
/// # Safety
/// `device` is a live handle; `name` is NUL-terminated; `plaintext` holds
/// `plaintext_len` bytes; `out_type` and `out` are writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_encrypt(
    device: *const ConfideDevice,
    name: *const c_char,
    remote_device_id: u32,
    plaintext: *const u8,
    plaintext_len: usize,
    out_type: *mut u8,
    out: *mut ConfideBuffer,
) -> i32 {
    guard(|| {
        if out_type.is_null() {
            return Err(invalid("out_type is null"));
        }
        // SAFETY: forwarded caller guarantees.
        let (d, name, plaintext) = unsafe {
            (
                device_ref(device)?,
                string(name, "name")?,
                bytes(plaintext, plaintext_len, "plaintext")?,
            )
        };
        let address = Address::new(name, remote_device_id);
        let message = cipher::encrypt(&d.store, &address, plaintext).map_err(encrypt_failure)?;
        // SAFETY: forwarded caller guarantee.
        unsafe { put_buffer(out, message.serialized().to_vec())? };
        // SAFETY: checked non-null; the caller guarantees it is writable.
        unsafe { out_type.write(message.message_type()) };
        Ok(())
    })
}

/// Decrypts a message of `message_type` (2 or 3) from (`name`, `remote_device_id`) and
/// writes the plaintext to `*out`. On any failure no state changes. Serialize calls for
/// the same address.
///
/// # Safety
/// `device` is a live handle; `name` is NUL-terminated; `message` holds `message_len`
/// bytes; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_decrypt(
    device: *const ConfideDevice,
    name: *const c_char,
    remote_device_id: u32,
    message_type: u8,
    message: *const u8,
    message_len: usize,
    out: *mut ConfideBuffer,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded caller guarantees.
        let (d, name, raw) = unsafe {
            (
                device_ref(device)?,
                string(name, "name")?,
                bytes(message, message_len, "message")?,
            )
        };
        let message = CiphertextMessage::from_parts(message_type, raw)
            .map_err(|e| decrypt_failure(e.into()))?;
        let address = Address::new(name, remote_device_id);
        let mut rng = SystemRng::new();
        let plaintext =
            cipher::decrypt(&d.store, &address, &message, &mut rng).map_err(decrypt_failure)?;
        // SAFETY: forwarded caller guarantee.
        unsafe { put_buffer(out, plaintext) }
    })
}

/// Frees a buffer returned by confide (a zeroed buffer is ignored). Thread-safe.
///
/// # Safety
/// `buffer` came from confide and was not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_buffer_free(buffer: ConfideBuffer) {
    if !buffer.data.is_null() && buffer.len != 0 {
        let slice = std::ptr::slice_from_raw_parts_mut(buffer.data, buffer.len);
        // SAFETY: built by put_buffer from Box<[u8]> of exactly this length.
        drop(unsafe { Box::from_raw(slice) });
    }
}

/// The last failure on this thread, or null after a success. Valid until the next
/// confide call on this thread; do not free it.
#[unsafe(no_mangle)]
pub extern "C" fn confide_last_error_message() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ref().map_or(std::ptr::null(), |c| c.as_ptr()))
}

/// confide's version, a static NUL-terminated string.
#[unsafe(no_mangle)]
pub extern "C" fn confide_version() -> *const c_char {
    static VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    VERSION.as_ptr().cast()
}
