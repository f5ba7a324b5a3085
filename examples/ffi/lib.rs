//! A C ABI over confide's [`Device`] API, built as a `cdylib` example
//! (`target/<profile>/examples/libconfide_ffi.so`); `confide.h` declares it.
//!
//! Conventions, for every function:
//! - the return value is a status code (`CONFIDE_OK` or a `CONFIDE_ERR_*`), and
//!   `confide_last_error_message()` then describes the last failure on this thread;
//! - a `ConfideDevice` is an opaque handle, freed with `confide_device_free`; buffers
//!   that confide returns are owned by the caller and freed with `confide_buffer_free`
//!   (which wipes them first, since they may hold plaintext); fixed-size results (the
//!   safety number) go into caller-owned arrays; buffers the caller passes are only read
//!   during the call;
//! - no panic crosses the boundary: every entry point runs under `catch_unwind`, and a
//!   caught panic is returned as `CONFIDE_ERR_PANIC`;
//! - thread safety is stated per function. In short: a device may be shared between
//!   threads; a SQLite-backed device commits every operation with a compare-and-swap, so
//!   even calls for the same remote address may overlap; an in-memory device needs the
//!   caller to serialize calls for the same remote address (each is load, change,
//!   save). `confide_device_free` must not race any call on that device.
//!
//! One handle type serves the whole API: group (sender-key) and sealed-sender calls
//! will take the same `ConfideDevice *` as their first argument, as
//! `confide_device_group_*` and `confide_device_sealed_*`.
//!
//! Time comes from the system clock unless `confide_device_set_time` fixes it;
//! randomness comes from the operating system.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use confide::device::{AccountError, Clock, Device};
use confide::export::{AccountInfo, MessageTimer, PrivacySettings, Profile, Visibility};
use confide::fingerprint::{Fingerprint, Party};
use confide::group::{DistributionId, SenderKeyRecord};
use confide::keys::{PreKeyRecord, SignedPreKeyRecord, generate_registration_id};
use confide::policy::{PolicySchedule, timeline_2021};
use confide::store::sqlite::OpenError;
use confide::store::{
    IdentityStore, InMemoryStore, MessageId, PreKeyStore, SenderKeyStore, SessionStore,
    SignedPreKeyStore, SqliteStore, StateStore, StoreKey, TransactionalStore,
};
use confide::{
    Address, BundleError, CiphertextMessage, DecryptError, EncryptError, IdentityKey,
    IdentityKeyPair, PreKeyBundle, SessionRecord, StoreError, SystemRng, Timestamp,
};

/// Success.
pub const CONFIDE_OK: i32 = 0;
/// A required pointer was null, a string was not UTF-8, or a length or enum value is
/// out of range.
pub const CONFIDE_ERR_INVALID_ARGUMENT: i32 = 1;
/// Bytes that are not a valid message, bundle, key or schedule; or a message that
/// failed authentication.
pub const CONFIDE_ERR_INVALID_MESSAGE: i32 = 2;
/// The message was already decrypted and acknowledged (or the store cannot tell a
/// redelivery).
pub const CONFIDE_ERR_DUPLICATE_MESSAGE: i32 = 3;
/// No session with this address.
pub const CONFIDE_ERR_NO_SESSION: i32 = 4;
/// The remote identity key differs from the trusted one (see
/// `confide_device_accept_identity`).
pub const CONFIDE_ERR_UNTRUSTED_IDENTITY: i32 = 5;
/// A bundle's signed prekey signature is invalid.
pub const CONFIDE_ERR_INVALID_SIGNATURE: i32 = 6;
/// A prekey message names a prekey this device does not have.
pub const CONFIDE_ERR_UNKNOWN_PREKEY: i32 = 7;
/// Any other failure (see the message).
pub const CONFIDE_ERR_OTHER: i32 = 8;
/// A bug in confide: a panic was caught at the boundary.
pub const CONFIDE_ERR_PANIC: i32 = 9;
/// The store failed: I/O, a locked or corrupt database, a row that fails
/// authentication.
pub const CONFIDE_ERR_STORAGE: i32 = 10;
/// The database was sealed with another store key.
pub const CONFIDE_ERR_WRONG_KEY: i32 = 11;
/// Nothing is known yet: no trusted identity for that address, or no activity recorded
/// for the account report.
pub const CONFIDE_ERR_NOT_FOUND: i32 = 12;

/// A whisper (ordinary) message.
pub const CONFIDE_MESSAGE_TYPE_WHISPER: u8 = 2;
/// A prekey message: the first messages of a session, until the peer answers.
pub const CONFIDE_MESSAGE_TYPE_PREKEY: u8 = 3;

/// Bytes of the store key `confide_device_open` takes.
pub const CONFIDE_STORE_KEY_LEN: usize = 32;
/// Bytes a serialized identity key has.
pub const CONFIDE_IDENTITY_KEY_LEN: usize = 33;
/// Size of the array `confide_device_safety_number` writes: 60 digits and a NUL.
pub const CONFIDE_SAFETY_NUMBER_SIZE: usize = 61;

/// `ConfideAccountInfo` visibility: everyone.
pub const CONFIDE_VISIBILITY_EVERYONE: u8 = 0;
/// `ConfideAccountInfo` visibility: my contacts.
pub const CONFIDE_VISIBILITY_CONTACTS: u8 = 1;
/// `ConfideAccountInfo` visibility: nobody.
pub const CONFIDE_VISIBILITY_NOBODY: u8 = 2;

/// `ConfideAccountInfo` default message timer: off.
pub const CONFIDE_TIMER_OFF: u8 = 0;
/// `ConfideAccountInfo` default message timer: 24 hours.
pub const CONFIDE_TIMER_24_HOURS: u8 = 1;
/// `ConfideAccountInfo` default message timer: 7 days.
pub const CONFIDE_TIMER_7_DAYS: u8 = 2;
/// `ConfideAccountInfo` default message timer: 90 days.
pub const CONFIDE_TIMER_90_DAYS: u8 = 3;

/// The store behind a handle: persistent or in memory. One enum keeps a single
/// `Device` type (and so a single handle type) for both.
// One per handle, and the handle is boxed: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
enum AnyStore {
    Sqlite(SqliteStore),
    Memory(InMemoryStore),
}

/// Forwards a store call to whichever store the handle has.
macro_rules! forward {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            AnyStore::Sqlite($s) => $call,
            AnyStore::Memory($s) => $call,
        }
    };
}

impl IdentityStore for AnyStore {
    fn local_identity(&self) -> Result<IdentityKeyPair, StoreError> {
        forward!(self, s => s.local_identity())
    }
    fn local_registration_id(&self) -> Result<u32, StoreError> {
        forward!(self, s => s.local_registration_id())
    }
    fn identity(&self, address: &Address) -> Result<Option<IdentityKey>, StoreError> {
        forward!(self, s => s.identity(address))
    }
    fn save_identity(&self, address: &Address, key: &IdentityKey) -> Result<(), StoreError> {
        forward!(self, s => s.save_identity(address, key))
    }
    fn state_store(&self) -> Option<&dyn StateStore> {
        forward!(self, s => s.state_store())
    }
}

impl PreKeyStore for AnyStore {
    fn pre_key(&self, id: u32) -> Result<Option<PreKeyRecord>, StoreError> {
        forward!(self, s => s.pre_key(id))
    }
    fn save_pre_key(&self, record: &PreKeyRecord) -> Result<(), StoreError> {
        forward!(self, s => s.save_pre_key(record))
    }
    fn remove_pre_key(&self, id: u32) -> Result<(), StoreError> {
        forward!(self, s => s.remove_pre_key(id))
    }
}

impl SignedPreKeyStore for AnyStore {
    fn signed_pre_key(&self, id: u32) -> Result<Option<SignedPreKeyRecord>, StoreError> {
        forward!(self, s => s.signed_pre_key(id))
    }
    fn save_signed_pre_key(&self, record: &SignedPreKeyRecord) -> Result<(), StoreError> {
        forward!(self, s => s.save_signed_pre_key(record))
    }
}

impl SessionStore for AnyStore {
    fn session(&self, address: &Address) -> Result<Option<SessionRecord>, StoreError> {
        forward!(self, s => s.session(address))
    }
    fn save_session(&self, address: &Address, record: &SessionRecord) -> Result<(), StoreError> {
        forward!(self, s => s.save_session(address, record))
    }
    fn transactional(&self) -> Option<&dyn TransactionalStore> {
        forward!(self, s => s.transactional())
    }
}

impl SenderKeyStore for AnyStore {
    fn sender_key(
        &self,
        sender: &Address,
        distribution_id: DistributionId,
    ) -> Result<Option<SenderKeyRecord>, StoreError> {
        forward!(self, s => s.sender_key(sender, distribution_id))
    }
    fn save_sender_key(
        &self,
        sender: &Address,
        distribution_id: DistributionId,
        record: &SenderKeyRecord,
    ) -> Result<(), StoreError> {
        forward!(self, s => s.save_sender_key(sender, distribution_id, record))
    }
}

/// The system clock, or a fixed time the caller set (0 means "use the system clock").
struct FfiClock(Arc<AtomicU64>);

impl Clock for FfiClock {
    fn now(&self) -> Timestamp {
        match self.0.load(Ordering::SeqCst) {
            0 => Timestamp::from_system_time(std::time::SystemTime::now()),
            ms => Timestamp::from_millis(ms),
        }
    }
}

/// One device of one user: its identity, prekeys, sessions and privacy state, in a
/// SQLite file or in memory. Opaque; free with `confide_device_free`.
pub struct ConfideDevice {
    device: Device<AnyStore, SystemRng, FfiClock>,
    fixed_time: Arc<AtomicU64>,
}

// The per-function "thread-safe" promises rest on this: a handle may move between and
// be shared by threads.
const _: fn() = || {
    fn shared_across_threads<T: Send + Sync>() {}
    shared_across_threads::<ConfideDevice>();
};

/// Bytes returned by confide; free with `confide_buffer_free`.
#[repr(C)]
pub struct ConfideBuffer {
    /// The bytes, or null when `len` is 0.
    pub data: *mut u8,
    /// Their number.
    pub len: usize,
}

/// The account facts confide does not keep itself, for `confide_device_account_report`.
/// Linked devices, groups and business chats are left out of this version of the ABI
/// (the report lists none).
#[repr(C)]
pub struct ConfideAccountInfo {
    /// The registered phone number (NUL-terminated UTF-8).
    pub phone_number: *const c_char,
    /// The profile's display name (NUL-terminated UTF-8).
    pub display_name: *const c_char,
    /// The profile's "About" text (NUL-terminated UTF-8).
    pub about: *const c_char,
    /// Whether a profile photo is set.
    pub has_photo: bool,
    /// Who sees "last seen" (`CONFIDE_VISIBILITY_*`).
    pub last_seen: u8,
    /// Who sees the profile photo (`CONFIDE_VISIBILITY_*`).
    pub profile_photo: u8,
    /// Who sees "About" (`CONFIDE_VISIBILITY_*`).
    pub about_visibility: u8,
    /// Who can add the user to groups (`CONFIDE_VISIBILITY_*`).
    pub groups: u8,
    /// Whether read receipts are sent.
    pub read_receipts: bool,
    /// The default timer for new chats (`CONFIDE_TIMER_*`).
    pub default_message_timer: u8,
}

thread_local! {
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

struct Failure(i32, String);

fn set_error(message: Option<String>) {
    let c = message.map(|m| CString::new(m.replace('\0', " ")).unwrap_or_default());
    // try_with: during thread teardown there is nowhere to keep the message.
    let _ = LAST_ERROR.try_with(|e| *e.borrow_mut() = c);
}

/// Runs `f`, converting its error or panic into a status code.
fn guard(f: impl FnOnce() -> Result<(), Failure>) -> i32 {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => {
            set_error(None);
            CONFIDE_OK
        }
        Ok(Err(Failure(code, message))) => {
            set_error(Some(message));
            code
        }
        Err(_) => {
            set_error(Some(
                "internal error (panic caught at the C boundary)".into(),
            ));
            CONFIDE_ERR_PANIC
        }
    }
}

/// An error and its sources, joined, so the message says what failed underneath.
fn describe(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = inner.source();
    }
    s
}

fn invalid(what: &str) -> Failure {
    Failure(
        CONFIDE_ERR_INVALID_ARGUMENT,
        format!("invalid argument: {what}"),
    )
}

fn store_failure(e: StoreError) -> Failure {
    Failure(CONFIDE_ERR_STORAGE, describe(&e))
}

fn bundle_failure(e: BundleError) -> Failure {
    let code = match e {
        BundleError::InvalidSignature => CONFIDE_ERR_INVALID_SIGNATURE,
        BundleError::UntrustedIdentity { .. } => CONFIDE_ERR_UNTRUSTED_IDENTITY,
        BundleError::WeakKey => CONFIDE_ERR_INVALID_MESSAGE,
        BundleError::Store(_) => CONFIDE_ERR_STORAGE,
        _ => CONFIDE_ERR_OTHER,
    };
    Failure(code, describe(&e))
}

fn encrypt_failure(e: EncryptError) -> Failure {
    let code = match e {
        EncryptError::NoSession => CONFIDE_ERR_NO_SESSION,
        EncryptError::UntrustedIdentity { .. } => CONFIDE_ERR_UNTRUSTED_IDENTITY,
        EncryptError::Store(_) => CONFIDE_ERR_STORAGE,
        _ => CONFIDE_ERR_OTHER,
    };
    Failure(code, describe(&e))
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
        DecryptError::Store(_) => CONFIDE_ERR_STORAGE,
        _ => CONFIDE_ERR_OTHER,
    };
    Failure(code, describe(&e))
}

fn open_failure(e: OpenError) -> Failure {
    let code = match e {
        OpenError::WrongKey => CONFIDE_ERR_WRONG_KEY,
        _ => CONFIDE_ERR_STORAGE,
    };
    Failure(code, describe(&e))
}

fn account_failure(e: AccountError) -> Failure {
    let code = match e {
        AccountError::NotRegistered => CONFIDE_ERR_NOT_FOUND,
        AccountError::PrivacyState(_) => CONFIDE_ERR_STORAGE,
        _ => CONFIDE_ERR_OTHER,
    };
    Failure(code, describe(&e))
}

/// # Safety
/// `p` is null or points to a live `ConfideDevice`.
unsafe fn device_ref<'a>(p: *const ConfideDevice) -> Result<&'a ConfideDevice, Failure> {
    // SAFETY: the caller guarantees `p` is null or a live handle from confide_device_*.
    unsafe { p.as_ref() }.ok_or_else(|| invalid("device is null"))
}

/// # Safety
/// `p` is null or a NUL-terminated string that outlives `'a`.
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
/// `p` is null or a NUL-terminated string.
unsafe fn address(p: *const c_char, device_id: u32) -> Result<Address, Failure> {
    // SAFETY: forwarded caller guarantee.
    Ok(Address::new(unsafe { string(p, "name") }?, device_id))
}

/// # Safety
/// `out` is null or writable.
unsafe fn write_out<T>(out: *mut T, value: T, what: &str) -> Result<(), Failure> {
    if out.is_null() {
        return Err(invalid(what));
    }
    // SAFETY: non-null and the caller guarantees it is writable.
    unsafe { out.write(value) };
    Ok(())
}

/// Copies `data` into an exactly-sized allocation (no spare copy left behind by a
/// shrinking reallocation, which matters for plaintext) and hands it to the caller.
///
/// # Safety
/// `out` is null or writable.
unsafe fn put_buffer(out: *mut ConfideBuffer, data: &[u8]) -> Result<(), Failure> {
    if out.is_null() {
        return Err(invalid("output buffer is null"));
    }
    let len = data.len();
    let ptr = if len == 0 {
        std::ptr::null_mut()
    } else {
        Box::into_raw(Box::<[u8]>::from(data)).cast::<u8>()
    };
    // SAFETY: checked non-null; the caller guarantees it is writable.
    unsafe { out.write(ConfideBuffer { data: ptr, len }) };
    Ok(())
}

fn new_handle(store: AnyStore, name: &str, device_id: u32) -> *mut ConfideDevice {
    let fixed_time = Arc::new(AtomicU64::new(0));
    let device = Device::new(
        store,
        Address::new(name, device_id),
        SystemRng::new(),
        FfiClock(Arc::clone(&fixed_time)),
    );
    Box::into_raw(Box::new(ConfideDevice { device, fixed_time }))
}

#[cfg(unix)]
fn path_of(raw: &CStr) -> Result<PathBuf, Failure> {
    use std::os::unix::ffi::OsStrExt;
    Ok(PathBuf::from(std::ffi::OsStr::from_bytes(raw.to_bytes())))
}

#[cfg(not(unix))]
fn path_of(raw: &CStr) -> Result<PathBuf, Failure> {
    raw.to_str()
        .map(PathBuf::from)
        .map_err(|_| invalid("path is not UTF-8"))
}

/// Opens (creating if needed) a persistent device whose state lives in the SQLite file
/// at `path`, sealed under the 32-byte `key` (keep it in the platform keystore). The
/// first open makes a fresh identity; reopening resumes the identity, sessions and
/// privacy state. `name` and `device_id` are this device's own address. `*out`
/// receives the handle; free it with `confide_device_free`.
///
/// Thread-safe. Several handles (in one or several processes) may open the same file.
///
/// # Safety
/// `path` and `name` are NUL-terminated; `key` holds `key_len` bytes; `out` is
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_device_open(
    path: *const c_char,
    key: *const u8,
    key_len: usize,
    name: *const c_char,
    device_id: u32,
    out: *mut *mut ConfideDevice,
) -> i32 {
    guard(|| {
        if path.is_null() {
            return Err(invalid("path is null"));
        }
        if out.is_null() {
            return Err(invalid("out is null"));
        }
        // SAFETY: path checked non-null and NUL-terminated by contract; the rest are
        // forwarded caller guarantees.
        let (path, key, name) = unsafe {
            (
                path_of(CStr::from_ptr(path))?,
                bytes(key, key_len, "key")?,
                string(name, "name")?,
            )
        };
        let key = StoreKey::try_from(key).map_err(|_| invalid("the store key is not 32 bytes"))?;
        let mut rng = SystemRng::new();
        let store = SqliteStore::open(path, &key, &mut rng).map_err(open_failure)?;
        if !store.has_local_identity().map_err(store_failure)? {
            let identity = IdentityKeyPair::generate(&mut rng);
            store
                .set_local_identity(&identity, generate_registration_id(&mut rng))
                .map_err(store_failure)?;
        }
        let handle = new_handle(AnyStore::Sqlite(store), name, device_id);
        // SAFETY: checked non-null; the caller guarantees it is writable.
        unsafe { out.write(handle) };
        Ok(())
    })
}

/// Creates a device with a fresh identity whose state lives only in memory (gone at
/// `confide_device_free`). `name` and `device_id` are its own address. `*out` receives
/// the handle.
///
/// Thread-safe.
///
/// # Safety
/// `name` is NUL-terminated; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_device_new_in_memory(
    name: *const c_char,
    device_id: u32,
    out: *mut *mut ConfideDevice,
) -> i32 {
    guard(|| {
        if out.is_null() {
            return Err(invalid("out is null"));
        }
        // SAFETY: forwarded caller guarantee.
        let name = unsafe { string(name, "name") }?;
        let store = InMemoryStore::generate(&mut SystemRng::new());
        let handle = new_handle(AnyStore::Memory(store), name, device_id);
        // SAFETY: checked non-null; the caller guarantees it is writable.
        unsafe { out.write(handle) };
        Ok(())
    })
}

/// Frees a device (null is ignored); a SQLite file is closed, its contents kept.
///
/// Not thread-safe: no other call on this device may run concurrently or later.
///
/// # Safety
/// `device` is null or a handle from `confide_device_open`/`confide_device_new_in_memory`
/// not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_device_free(device: *mut ConfideDevice) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if !device.is_null() {
            // SAFETY: the caller passes a handle from Box::into_raw, freed once.
            drop(unsafe { Box::from_raw(device) });
        }
    }));
}

/// Fixes the device's clock at `now_ms` (milliseconds since the Unix epoch), or with 0
/// returns it to the system clock. Every time-dependent rule (signed prekey timestamps,
/// message receipt times, the policy state, the report's date) reads this clock. Meant
/// for tests and reproducible runs.
///
/// Thread-safe.
///
/// # Safety
/// `device` is a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_device_set_time(device: *const ConfideDevice, now_ms: u64) -> i32 {
    guard(|| {
        // SAFETY: forwarded caller guarantee.
        let d = unsafe { device_ref(device) }?;
        d.fixed_time.store(now_ms, Ordering::SeqCst);
        Ok(())
    })
}

/// Writes the device's 33-byte public identity key into `*out`.
///
/// Thread-safe.
///
/// # Safety
/// `device` is a live handle; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_device_identity_key(
    device: *const ConfideDevice,
    out: *mut ConfideBuffer,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded caller guarantee.
        let d = unsafe { device_ref(device) }?;
        let key = d.device.identity_key().map_err(store_failure)?;
        // SAFETY: forwarded caller guarantee.
        unsafe { put_buffer(out, &key.serialize()) }
    })
}

/// Makes and keeps a new signed prekey (and a one-time prekey unless `prekey_id` is 0)
/// and writes the bundle to publish (`PreKeyBundle::to_bytes`) into `*out`.
///
/// Thread-safe.
///
/// # Safety
/// `device` is a live handle; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_device_publish_bundle(
    device: *const ConfideDevice,
    signed_prekey_id: u32,
    prekey_id: u32,
    out: *mut ConfideBuffer,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded caller guarantee.
        let d = unsafe { device_ref(device) }?;
        let bundle = d
            .device
            .publish_bundle(signed_prekey_id, (prekey_id != 0).then_some(prekey_id))
            .map_err(store_failure)?;
        // SAFETY: forwarded caller guarantee.
        unsafe { put_buffer(out, &bundle.to_bytes()) }
    })
}

/// Starts a session with (`name`, `remote_device_id`) from the bundle bytes it
/// published. Trusts the bundle's identity key on first use; a different key than the
/// trusted one is `CONFIDE_ERR_UNTRUSTED_IDENTITY`.
///
/// Thread-safe on a SQLite device; on an in-memory device serialize calls for the same
/// address.
///
/// # Safety
/// `device` is a live handle; `name` is NUL-terminated; `bundle` holds `bundle_len`
/// bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_device_start_session(
    device: *const ConfideDevice,
    name: *const c_char,
    remote_device_id: u32,
    bundle: *const u8,
    bundle_len: usize,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded caller guarantees.
        let (d, remote, raw) = unsafe {
            (
                device_ref(device)?,
                address(name, remote_device_id)?,
                bytes(bundle, bundle_len, "bundle")?,
            )
        };
        let bundle = PreKeyBundle::from_bytes(raw)
            .map_err(|e| Failure(CONFIDE_ERR_INVALID_MESSAGE, describe(&e)))?;
        d.device
            .start_session(&remote, &bundle)
            .map_err(bundle_failure)
    })
}

/// Writes to `*out` whether there is a session with (`name`, `remote_device_id`).
///
/// Thread-safe.
///
/// # Safety
/// `device` is a live handle; `name` is NUL-terminated; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_device_has_session(
    device: *const ConfideDevice,
    name: *const c_char,
    remote_device_id: u32,
    out: *mut bool,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded caller guarantees.
        let (d, remote) = unsafe { (device_ref(device)?, address(name, remote_device_id)?) };
        let has = d.device.has_session(&remote).map_err(store_failure)?;
        // SAFETY: forwarded caller guarantee.
        unsafe { write_out(out, has, "out is null") }
    })
}

/// Trusts the 33-byte identity `key` for (`name`, `remote_device_id`) from now on, after
/// the app showed the user that the contact's safety number changed.
///
/// Thread-safe.
///
/// # Safety
/// `device` is a live handle; `name` is NUL-terminated; `key` holds `key_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_device_accept_identity(
    device: *const ConfideDevice,
    name: *const c_char,
    remote_device_id: u32,
    key: *const u8,
    key_len: usize,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded caller guarantees.
        let (d, remote, raw) = unsafe {
            (
                device_ref(device)?,
                address(name, remote_device_id)?,
                bytes(key, key_len, "key")?,
            )
        };
        let key = IdentityKey::try_from(raw)
            .map_err(|e| Failure(CONFIDE_ERR_INVALID_MESSAGE, describe(&e)))?;
        d.device
            .accept_identity(&remote, &key)
            .map_err(store_failure)
    })
}

/// Encrypts `plaintext` for (`name`, `remote_device_id`). Writes the message type
/// (`CONFIDE_MESSAGE_TYPE_*`) to `*out_type` and the message bytes to `*out`. On a
/// SQLite device the advanced chain is on disk before this returns.
///
/// Thread-safe on a SQLite device; on an in-memory device serialize calls for the same
/// address.
///
/// # Safety
/// `device` is a live handle; `name` is NUL-terminated; `plaintext` holds
/// `plaintext_len` bytes; `out_type` and `out` are writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_device_encrypt(
    device: *const ConfideDevice,
    name: *const c_char,
    remote_device_id: u32,
    plaintext: *const u8,
    plaintext_len: usize,
    out_type: *mut u8,
    out: *mut ConfideBuffer,
) -> i32 {
    guard(|| {
        if out_type.is_null() || out.is_null() {
            return Err(invalid("out_type or out is null"));
        }
        // SAFETY: forwarded caller guarantees.
        let (d, remote, plaintext) = unsafe {
            (
                device_ref(device)?,
                address(name, remote_device_id)?,
                bytes(plaintext, plaintext_len, "plaintext")?,
            )
        };
        let message = d
            .device
            .encrypt(&remote, plaintext)
            .map_err(encrypt_failure)?;
        // SAFETY: forwarded caller guarantees; both checked non-null above, so neither
        // write can fail after the other succeeded.
        unsafe {
            put_buffer(out, message.serialized())?;
            write_out(out_type, message.message_type(), "out_type is null")
        }
    })
}

/// Decrypts a message of `message_type` from (`name`, `remote_device_id`) and writes
/// the plaintext to `*out`. On any failure no state changes, so a corrupted message
/// leaves the session working.
///
/// `*out_redelivered` (may be null) is set to whether this exact message was decrypted
/// before and its plaintext comes from the store: a SQLite device keeps each plaintext
/// until `confide_device_acknowledge`, so a redelivery after a crash is not lost. After
/// the acknowledgement (or on an in-memory device) a repeat is
/// `CONFIDE_ERR_DUPLICATE_MESSAGE`.
///
/// Thread-safe on a SQLite device; on an in-memory device serialize calls for the same
/// address.
///
/// # Safety
/// `device` is a live handle; `name` is NUL-terminated; `message` holds `message_len`
/// bytes; `out` is writable; `out_redelivered` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_device_decrypt(
    device: *const ConfideDevice,
    name: *const c_char,
    remote_device_id: u32,
    message_type: u8,
    message: *const u8,
    message_len: usize,
    out: *mut ConfideBuffer,
    out_redelivered: *mut bool,
) -> i32 {
    guard(|| {
        if out.is_null() {
            return Err(invalid("out is null"));
        }
        // SAFETY: forwarded caller guarantees.
        let (d, remote, raw) = unsafe {
            (
                device_ref(device)?,
                address(name, remote_device_id)?,
                bytes(message, message_len, "message")?,
            )
        };
        let message = CiphertextMessage::from_parts(message_type, raw)
            .map_err(|e| decrypt_failure(e.into()))?;
        let got = d
            .device
            .decrypt(&remote, &message)
            .map_err(decrypt_failure)?;
        // SAFETY: forwarded caller guarantee (checked non-null above).
        unsafe { put_buffer(out, &got.plaintext)? };
        if !out_redelivered.is_null() {
            // SAFETY: non-null; the caller guarantees it is writable.
            unsafe { out_redelivered.write(got.redelivered) };
        }
        Ok(())
    })
}

/// Tells a SQLite device that the app has saved the plaintext of this message (the
/// same type and bytes given to `confide_device_decrypt`): the store drops its copy and
/// keeps only a record that refuses a redelivery as a duplicate. `*out_found` (may be
/// null) is set to whether the message was stored; always false on an in-memory device,
/// which keeps no plaintext.
///
/// Thread-safe.
///
/// # Safety
/// `device` is a live handle; `name` is NUL-terminated; `message` holds `message_len`
/// bytes; `out_found` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_device_acknowledge(
    device: *const ConfideDevice,
    name: *const c_char,
    remote_device_id: u32,
    message_type: u8,
    message: *const u8,
    message_len: usize,
    out_found: *mut bool,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded caller guarantees.
        let (d, remote, raw) = unsafe {
            (
                device_ref(device)?,
                address(name, remote_device_id)?,
                bytes(message, message_len, "message")?,
            )
        };
        let message = CiphertextMessage::from_parts(message_type, raw)
            .map_err(|e| decrypt_failure(e.into()))?;
        let found = match d.device.store() {
            AnyStore::Sqlite(s) => s
                .acknowledge(&remote, &MessageId::of(&message))
                .map_err(store_failure)?,
            AnyStore::Memory(_) => false,
        };
        if !out_found.is_null() {
            // SAFETY: non-null; the caller guarantees it is writable.
            unsafe { out_found.write(found) };
        }
        Ok(())
    })
}

/// Computes the safety number of the conversation with (`name`, `remote_device_id`),
/// from this device's identity key and the one it trusts for that address. `local_id`
/// and `remote_id` are the two users' stable identifiers as both apps spell them (for
/// example the UTF-8 phone numbers). Writes the 60 digits and a NUL into the caller's
/// `out_digits` array of `CONFIDE_SAFETY_NUMBER_SIZE` bytes, and, if `out_scannable` is
/// not null, the QR-code payload (version 2) into it. No trusted identity yet is
/// `CONFIDE_ERR_NOT_FOUND`.
///
/// Thread-safe.
///
/// # Safety
/// `device` is a live handle; `name` is NUL-terminated; `local_id` and `remote_id` hold
/// their lengths in bytes; `out_digits` is writable for `CONFIDE_SAFETY_NUMBER_SIZE`
/// bytes; `out_scannable` is null or writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn confide_device_safety_number(
    device: *const ConfideDevice,
    local_id: *const u8,
    local_id_len: usize,
    name: *const c_char,
    remote_device_id: u32,
    remote_id: *const u8,
    remote_id_len: usize,
    out_digits: *mut c_char,
    out_scannable: *mut ConfideBuffer,
) -> i32 {
    guard(|| {
        if out_digits.is_null() {
            return Err(invalid("out_digits is null"));
        }
        // SAFETY: forwarded caller guarantees.
        let (d, remote, local_id, remote_id) = unsafe {
            (
                device_ref(device)?,
                address(name, remote_device_id)?,
                bytes(local_id, local_id_len, "local_id")?,
                bytes(remote_id, remote_id_len, "remote_id")?,
            )
        };
        let ours = d.device.identity_key().map_err(store_failure)?;
        let theirs = d
            .device
            .store()
            .identity(&remote)
            .map_err(store_failure)?
            .ok_or_else(|| {
                Failure(
                    CONFIDE_ERR_NOT_FOUND,
                    format!(
                        "no trusted identity for {}.{}",
                        remote.name(),
                        remote_device_id
                    ),
                )
            })?;
        let fingerprint =
            Fingerprint::with_defaults(Party::new(local_id, &ours), Party::new(remote_id, &theirs))
                .map_err(|e| Failure(CONFIDE_ERR_OTHER, describe(&e)))?;
        let mut digits = [0u8; CONFIDE_SAFETY_NUMBER_SIZE];
        let text = fingerprint.displayable().to_string();
        let dst = digits
            .get_mut(..text.len())
            .ok_or_else(|| Failure(CONFIDE_ERR_OTHER, "safety number too long".into()))?;
        dst.copy_from_slice(text.as_bytes());
        if !out_scannable.is_null() {
            // SAFETY: non-null; the caller guarantees it is writable.
            unsafe { put_buffer(out_scannable, &fingerprint.scannable().to_bytes())? };
        }
        // SAFETY: non-null; the caller guarantees CONFIDE_SAFETY_NUMBER_SIZE writable
        // bytes, and `digits` is exactly that long (its last byte stays NUL).
        unsafe {
            std::ptr::copy_nonoverlapping(digits.as_ptr(), out_digits.cast::<u8>(), digits.len())
        };
        Ok(())
    })
}

/// Records that the user connected now; the first call registers the account for the
/// policy state and the account report. On a SQLite device it persists.
///
/// Thread-safe.
///
/// # Safety
/// `device` is a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_device_record_connection(device: *const ConfideDevice) -> i32 {
    guard(|| {
        // SAFETY: forwarded caller guarantee.
        let d = unsafe { device_ref(device) }?;
        d.device
            .record_connection()
            .map_err(|e| Failure(CONFIDE_ERR_STORAGE, describe(&e)))
    })
}

/// Writes the bytes of the 2021 policy schedule (the 2016 and 2021 terms, whose texts
/// are hashed, with the June 2021 suspension if `suspended`) into `*out`, for
/// `confide_device_account_report`.
///
/// Thread-safe.
///
/// # Safety
/// `text_2016` and `text_2021` hold their lengths in bytes; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_policy_timeline_2021(
    text_2016: *const u8,
    text_2016_len: usize,
    text_2021: *const u8,
    text_2021_len: usize,
    suspended: bool,
    out: *mut ConfideBuffer,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded caller guarantees.
        let (a, b) = unsafe {
            (
                bytes(text_2016, text_2016_len, "text_2016")?,
                bytes(text_2021, text_2021_len, "text_2021")?,
            )
        };
        let schedule = timeline_2021([a, b], suspended);
        // SAFETY: forwarded caller guarantee.
        unsafe { put_buffer(out, &schedule.to_bytes()) }
    })
}

fn visibility(v: u8) -> Result<Visibility, Failure> {
    match v {
        CONFIDE_VISIBILITY_EVERYONE => Ok(Visibility::Everyone),
        CONFIDE_VISIBILITY_CONTACTS => Ok(Visibility::Contacts),
        CONFIDE_VISIBILITY_NOBODY => Ok(Visibility::Nobody),
        _ => Err(invalid("unknown visibility")),
    }
}

fn timer(v: u8) -> Result<MessageTimer, Failure> {
    match v {
        CONFIDE_TIMER_OFF => Ok(MessageTimer::Off),
        CONFIDE_TIMER_24_HOURS => Ok(MessageTimer::Hours24),
        CONFIDE_TIMER_7_DAYS => Ok(MessageTimer::Days7),
        CONFIDE_TIMER_90_DAYS => Ok(MessageTimer::Days90),
        _ => Err(invalid("unknown message timer")),
    }
}

/// Builds the account-information report now, under the policy `schedule` (bytes from
/// `confide_policy_timeline_2021` or a server), and writes it as a ZIP archive
/// (`account_info.json`, `account_info.html`, the JSON schema) into `*out`. Needs a
/// prior `confide_device_record_connection` (else `CONFIDE_ERR_NOT_FOUND`).
///
/// Thread-safe.
///
/// # Safety
/// `device` is a live handle; `info` points to a `ConfideAccountInfo` whose strings are
/// NUL-terminated; `schedule` holds `schedule_len` bytes; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_device_account_report(
    device: *const ConfideDevice,
    info: *const ConfideAccountInfo,
    schedule: *const u8,
    schedule_len: usize,
    out: *mut ConfideBuffer,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded caller guarantees.
        let (d, info, schedule) = unsafe {
            (
                device_ref(device)?,
                info.as_ref().ok_or_else(|| invalid("info is null"))?,
                bytes(schedule, schedule_len, "schedule")?,
            )
        };
        let schedule = PolicySchedule::from_bytes(schedule)
            .map_err(|e| Failure(CONFIDE_ERR_INVALID_MESSAGE, describe(&e)))?;
        // SAFETY: the caller guarantees the strings are NUL-terminated (or null).
        let (phone, display_name, about) = unsafe {
            (
                string(info.phone_number, "phone_number")?,
                string(info.display_name, "display_name")?,
                string(info.about, "about")?,
            )
        };
        let account = AccountInfo {
            phone_number: phone.to_owned(),
            profile: Profile {
                name: display_name.to_owned(),
                about: about.to_owned(),
                has_photo: info.has_photo,
            },
            privacy: PrivacySettings {
                last_seen: visibility(info.last_seen)?,
                profile_photo: visibility(info.profile_photo)?,
                about: visibility(info.about_visibility)?,
                groups: visibility(info.groups)?,
                read_receipts: info.read_receipts,
                default_message_timer: timer(info.default_message_timer)?,
            },
            devices: Vec::new(),
            groups: Vec::new(),
            business_chats: Vec::new(),
        };
        let report = d
            .device
            .account_report(&account, &schedule)
            .map_err(account_failure)?;
        let zip = report
            .to_zip()
            .map_err(|e| Failure(CONFIDE_ERR_OTHER, describe(&e)))?;
        // SAFETY: forwarded caller guarantee.
        unsafe { put_buffer(out, &zip) }
    })
}

/// Wipes and frees a buffer returned by confide (a zeroed buffer is ignored).
///
/// Thread-safe.
///
/// # Safety
/// `buffer` came from confide and was not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_buffer_free(buffer: ConfideBuffer) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if !buffer.data.is_null() && buffer.len != 0 {
            let slice = std::ptr::slice_from_raw_parts_mut(buffer.data, buffer.len);
            // SAFETY: built by put_buffer from a Box<[u8]> of exactly this length, and
            // not freed before (caller guarantee).
            let mut owned = unsafe { Box::from_raw(slice) };
            zeroize::Zeroize::zeroize(&mut *owned);
            drop(owned);
        }
    }));
}

/// The last failure on this thread, or null after a success. Valid until the next
/// confide call on this thread; do not free it.
///
/// Thread-safe (the message is per thread).
#[unsafe(no_mangle)]
pub extern "C" fn confide_last_error_message() -> *const c_char {
    catch_unwind(|| {
        LAST_ERROR
            .try_with(|e| e.borrow().as_ref().map_or(std::ptr::null(), |c| c.as_ptr()))
            .unwrap_or(std::ptr::null())
    })
    .unwrap_or(std::ptr::null())
}

/// confide's version, a static NUL-terminated string.
///
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn confide_version() -> *const c_char {
    static VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    VERSION.as_ptr().cast()
}
