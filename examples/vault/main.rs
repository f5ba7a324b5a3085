//! The reference password vault: `confide::backup::vault::VaultServer` over HTTP/1.1
//! on 127.0.0.1, records in SQLite.
//!
//! ```text
//! cargo run --example vault --features "backup sqlite" -- VAULT.db [--limit N]
//! cargo run --example vault --features "backup sqlite postgres" -- VAULT.db \
//!     --postgres "host=127.0.0.1 user=postgres dbname=vault" [--limit N]
//! ```
//!
//! With `--postgres` the records live in PostgreSQL (each attempt one atomic
//! `UPDATE ... SET attempts = attempts + 1 ... RETURNING`) and `VAULT.db` only names
//! where the setup file goes.
//!
//! Prints the port it listens on as the first line of stdout. The OPAQUE server setup
//! (its long-term secrets) lives in `VAULT.db.setup`, created on first start.
//!
//! **The attempt limit is only as strong as what enforces it.** This process counts
//! every login start in one SQLite `BEGIN IMMEDIATE` transaction before it answers and
//! deletes a record once `--limit` starts went by without a success. But whoever runs
//! it can copy the database and the setup file and guess passwords offline, with no
//! limit at all. WhatsApp runs this logic in HSMs; a deployment without an HSM or an
//! enclave is trusting its operator. Registration is not authenticated here: a real
//! host puts its own account authentication in front of it.
//!
//! Endpoints (POST, `application/octet-stream` bodies, the user id hex-encoded in an
//! `X-Vault-User` header; one request per connection):
//! - `/register/start`: RegistrationRequest → RegistrationResponse
//! - `/register/finish`: RegistrationUpload → 204
//! - `/login/start`: LoginRequest → attempt id (16 bytes) ‖ LoginResponse
//! - `/login/finish`: attempt id ‖ LoginFinalization → ReleasedKey
//! - `/stamp`: attempt id ‖ StampUpdate → 204
//!
//! Errors: 400 malformed, 403 wrong password or unknown attempt (the same for unknown
//! users), 409 stale stamp, 500 storage.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use confide::backup::vault::{
    Attempt, AttemptId, LoginFinalization, LoginRequest, RegistrationRequest, RegistrationUpload,
    SEALED_STAMP_LEN, SqliteRecords, StampUpdate, StorageError, VaultError, VaultRecord,
    VaultRecords, VaultServer, VaultServerSetup,
};
use confide::rand_core::OsRng;

#[cfg(feature = "postgres")]
mod postgres;

/// Largest request line or header line.
const MAX_LINE: usize = 1024;
/// Most header lines.
const MAX_HEADERS: usize = 32;
/// Largest body (the biggest message, a registration upload, is under 400 bytes).
const MAX_BODY: usize = 4096;
/// Largest user id, in bytes.
const MAX_USER: usize = 256;

type Server = VaultServer<Records>;

/// The backend chosen on the command line.
enum Records {
    Sqlite(SqliteRecords),
    #[cfg(feature = "postgres")]
    Postgres(postgres::PostgresRecords),
}

impl Records {
    fn get(&self) -> &dyn VaultRecords {
        match self {
            Records::Sqlite(r) => r,
            #[cfg(feature = "postgres")]
            Records::Postgres(r) => r,
        }
    }
}

impl VaultRecords for Records {
    fn put(&self, user: &[u8], record: &VaultRecord) -> Result<(), StorageError> {
        self.get().put(user, record)
    }
    fn begin_attempt(&self, user: &[u8], limit: u32) -> Result<Attempt, StorageError> {
        self.get().begin_attempt(user, limit)
    }
    fn reset_attempts(&self, user: &[u8]) -> Result<(), StorageError> {
        self.get().reset_attempts(user)
    }
    fn put_stamp(
        &self,
        user: &[u8],
        generation: u64,
        sealed: &[u8; SEALED_STAMP_LEN],
    ) -> Result<bool, StorageError> {
        self.get().put_stamp(user, generation, sealed)
    }
    fn contains(&self, user: &[u8]) -> Result<bool, StorageError> {
        self.get().contains(user)
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("vault: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let mut db: Option<PathBuf> = None;
    let mut postgres_url: Option<String> = None;
    let mut limit = confide::backup::vault::DEFAULT_ATTEMPT_LIMIT;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--limit" => {
                limit = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or("--limit needs a number")?;
            }
            "--postgres" => postgres_url = Some(args.next().ok_or("--postgres needs a URL")?),
            _ if db.is_none() => db = Some(PathBuf::from(arg)),
            _ => return Err(format!("unexpected argument {arg:?}")),
        }
    }
    let db = db.ok_or("usage: vault VAULT.db [--limit N]")?;
    let setup = load_setup(&db)?;
    let records = match postgres_url {
        None => Records::Sqlite(SqliteRecords::open(&db).map_err(|e| e.to_string())?),
        #[cfg(feature = "postgres")]
        Some(url) => {
            Records::Postgres(postgres::PostgresRecords::connect(&url).map_err(|e| e.to_string())?)
        }
        #[cfg(not(feature = "postgres"))]
        Some(_) => return Err("built without the `postgres` feature".into()),
    };
    let server = Arc::new(VaultServer::with_limit(setup, records, limit));

    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    println!("{port}");
    std::io::stdout().flush().map_err(|e| e.to_string())?;

    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let server = Arc::clone(&server);
        std::thread::spawn(move || {
            if let Err(e) = serve(&server, stream) {
                eprintln!("vault: connection: {e}");
            }
        });
    }
    Ok(())
}

fn load_setup(db: &std::path::Path) -> Result<VaultServerSetup, String> {
    let mut path = db.as_os_str().to_owned();
    path.push(".setup");
    let path = PathBuf::from(path);
    match std::fs::read(&path) {
        Ok(bytes) => VaultServerSetup::from_bytes(&bytes).map_err(|e| e.to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let setup = VaultServerSetup::generate(&mut OsRng);
            std::fs::write(&path, setup.to_bytes().as_slice()).map_err(|e| e.to_string())?;
            Ok(setup)
        }
        Err(e) => Err(e.to_string()),
    }
}

struct Request {
    path: String,
    user: Vec<u8>,
    body: Vec<u8>,
}

struct Response {
    status: u16,
    body: Vec<u8>,
}

impl Response {
    fn ok(body: Vec<u8>) -> Self {
        Self { status: 200, body }
    }
    fn empty(status: u16) -> Self {
        Self {
            status,
            body: Vec::new(),
        }
    }
}

fn serve(server: &Server, stream: TcpStream) -> Result<(), String> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
    let response = match read_request(&mut reader) {
        Ok(request) => handle(server, &request),
        Err(status) => Response::empty(status),
    };
    write_response(stream, &response)
}

fn read_line(reader: &mut impl BufRead) -> Result<String, u16> {
    let mut line = Vec::new();
    reader
        .by_ref()
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut line)
        .map_err(|_| 400u16)?;
    if line.len() > MAX_LINE || !line.ends_with(b"\n") {
        return Err(431);
    }
    let line = String::from_utf8(line).map_err(|_| 400u16)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn read_request(reader: &mut impl BufRead) -> Result<Request, u16> {
    let request_line = read_line(reader)?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(path), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(400);
    };
    if !version.starts_with("HTTP/1.") {
        return Err(505);
    }
    if method != "POST" {
        return Err(405);
    }
    let mut length: Option<usize> = None;
    let mut user: Option<Vec<u8>> = None;
    for _ in 0..=MAX_HEADERS {
        let line = read_line(reader)?;
        if line.is_empty() {
            let length = length.ok_or(411u16)?;
            if length > MAX_BODY {
                return Err(413);
            }
            let mut body = vec![0u8; length];
            reader.read_exact(&mut body).map_err(|_| 400u16)?;
            return Ok(Request {
                path: path.to_string(),
                user: user.ok_or(400u16)?,
                body,
            });
        }
        let (name, value) = line.split_once(':').ok_or(400u16)?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse().map_err(|_| 400u16)?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(501);
        } else if name.eq_ignore_ascii_case("x-vault-user") {
            let bytes = unhex(value).ok_or(400u16)?;
            if bytes.is_empty() || bytes.len() > MAX_USER {
                return Err(400);
            }
            user = Some(bytes);
        }
    }
    Err(431)
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    s.as_bytes()
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(text, 16).ok()
        })
        .collect()
}

fn status_of(e: &VaultError) -> u16 {
    match e {
        VaultError::Malformed(_) | VaultError::BadParams => 400,
        VaultError::WrongPassword | VaultError::UnknownAttempt | VaultError::NotThisSession => 403,
        VaultError::StaleStamp { .. } => 409,
        _ => 500,
    }
}

fn split_attempt(body: &[u8]) -> Result<(AttemptId, &[u8]), VaultError> {
    let (id, rest) = body
        .split_at_checked(AttemptId::LEN)
        .ok_or(VaultError::UnknownAttempt)?;
    Ok((AttemptId::from_bytes(id)?, rest))
}

fn handle(server: &Server, request: &Request) -> Response {
    let user = request.user.as_slice();
    let body = request.body.as_slice();
    let result: Result<Response, VaultError> = (|| match request.path.as_str() {
        "/register/start" => {
            let req = RegistrationRequest::from_bytes(body)?;
            Ok(Response::ok(server.register_start(user, &req)?.to_bytes()))
        }
        "/register/finish" => {
            server.register_finish(user, &RegistrationUpload::from_bytes(body)?)?;
            Ok(Response::empty(204))
        }
        "/login/start" => {
            let req = LoginRequest::from_bytes(body)?;
            let (attempt, response) = server.login_start(user, &req, &mut OsRng)?;
            let mut out = attempt.to_bytes().to_vec();
            out.extend_from_slice(&response.to_bytes());
            Ok(Response::ok(out))
        }
        "/login/finish" => {
            let (attempt, rest) = split_attempt(body)?;
            let fin = LoginFinalization::from_bytes(rest)?;
            let released = server.login_finish(user, &attempt, &fin, &mut OsRng)?;
            Ok(Response::ok(released.to_bytes()))
        }
        "/stamp" => {
            let (attempt, rest) = split_attempt(body)?;
            server.update_stamp(user, &attempt, &StampUpdate::from_bytes(rest)?)?;
            Ok(Response::empty(204))
        }
        _ => Ok(Response::empty(404)),
    })();
    result.unwrap_or_else(|e| Response::empty(status_of(&e)))
}

fn write_response(mut stream: TcpStream, response: &Response) -> Result<(), String> {
    let reason = match response.status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        response.status,
        response.body.len()
    );
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(&response.body))
        .and_then(|()| stream.flush())
        .map_err(|e| e.to_string())
}
