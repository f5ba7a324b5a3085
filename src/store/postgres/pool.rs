//! A small blocking connection pool: one [`PostgresPool`] serves every device's
//! [`super::PostgresStore`] on a host, so the number of server connections follows the
//! host's concurrency, not its number of devices.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use ::postgres::tls::{MakeTlsConnect, TlsConnect};
use ::postgres::{Client, Config, GenericClient, NoTls, Socket, Statement};

/// Opens one connection (the configuration and TLS setup live in the closure).
type Connect = dyn Fn() -> Result<Client, ::postgres::Error> + Send + Sync;

/// How long [`PostgresPool`] waits for a connection when all are in use, unless the
/// configuration sets a connect timeout.
const DEFAULT_WAIT: Duration = Duration::from_secs(30);

/// Getting a connection from a [`PostgresPool`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// Connecting to the server failed.
    #[error("connecting to PostgreSQL failed")]
    Connect(#[source] crate::error::BackendError),
    /// Every connection stayed in use for the whole wait.
    #[error("no PostgreSQL connection became free within {0:?}")]
    Timeout(Duration),
    /// A thread panicked while holding the pool's lock.
    #[error("connection pool lock poisoned")]
    Poisoned,
}

/// Up to `size` connections to one PostgreSQL database, shared by any number of
/// [`super::PostgresStore`]s (one per device). Cheap to clone (all clones share the
/// connections). Connections are made on demand and a broken one is dropped and
/// replaced on the next request.
#[derive(Clone)]
pub struct PostgresPool {
    inner: Arc<Inner>,
}

struct Inner {
    connect: Box<Connect>,
    size: usize,
    wait: Duration,
    state: Mutex<State>,
    freed: Condvar,
}

#[derive(Default)]
struct State {
    idle: Vec<Conn>,
    open: usize,
}

/// A connection with its prepared statements (each query is prepared once per
/// connection, saving a round trip on every later use).
pub(super) struct Conn {
    pub(super) client: Client,
    pub(super) stmts: Stmts,
}

/// Prepared statements of one connection, by their SQL text.
#[derive(Default)]
pub(super) struct Stmts(HashMap<String, Statement>);

impl Stmts {
    /// The statement for `sql`, prepared on `client` (a connection or a transaction
    /// on it) the first time.
    pub(super) fn get(
        &mut self,
        client: &mut impl GenericClient,
        sql: &str,
    ) -> Result<Statement, ::postgres::Error> {
        if let Some(s) = self.0.get(sql) {
            return Ok(s.clone());
        }
        let s = client.prepare(sql)?;
        self.0.insert(sql.to_owned(), s.clone());
        Ok(s)
    }
}

impl std::fmt::Debug for PostgresPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The configuration may hold a password: print only the size.
        f.debug_struct("PostgresPool")
            .field("size", &self.inner.size)
            .finish_non_exhaustive()
    }
}

impl PostgresPool {
    /// A pool of up to `size` (at least 1) plain-TCP or Unix-socket connections made
    /// with `config`. Use [`PostgresPool::with_tls`] for a server across a network.
    pub fn new(config: Config, size: usize) -> Self {
        Self::with_tls(config, size, NoTls)
    }

    /// A pool whose connections use `tls` (for example a `postgres-openssl` or
    /// `postgres-native-tls` connector the app brings).
    pub fn with_tls<T>(config: Config, size: usize, tls: T) -> Self
    where
        T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
        T::TlsConnect: Send,
        T::Stream: Send,
        <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
    {
        let wait = config
            .get_connect_timeout()
            .copied()
            .unwrap_or(DEFAULT_WAIT);
        Self {
            inner: Arc::new(Inner {
                connect: Box::new(move || config.connect(tls.clone())),
                size: size.max(1),
                wait,
                state: Mutex::default(),
                freed: Condvar::new(),
            }),
        }
    }

    /// The most connections this pool opens.
    pub fn size(&self) -> usize {
        self.inner.size
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>, PoolError> {
        self.inner.state.lock().map_err(|_| PoolError::Poisoned)
    }

    /// A connection for the caller's exclusive use until the lease drops.
    pub(super) fn get(&self) -> Result<Lease<'_>, PoolError> {
        let mut state = self.lock()?;
        loop {
            while let Some(conn) = state.idle.pop() {
                if conn.client.is_closed() {
                    state.open = state.open.saturating_sub(1);
                    continue;
                }
                return Ok(Lease {
                    pool: self,
                    conn: Some(conn),
                });
            }
            if state.open < self.inner.size {
                state.open += 1;
                drop(state);
                return match (self.inner.connect)() {
                    Ok(client) => Ok(Lease {
                        pool: self,
                        conn: Some(Conn {
                            client,
                            stmts: Stmts::default(),
                        }),
                    }),
                    Err(e) => {
                        let mut state = self.lock()?;
                        state.open = state.open.saturating_sub(1);
                        self.inner.freed.notify_one();
                        Err(PoolError::Connect(crate::error::BackendError::new(e)))
                    }
                };
            }
            let (next, timeout) = self
                .inner
                .freed
                .wait_timeout(state, self.inner.wait)
                .map_err(|_| PoolError::Poisoned)?;
            state = next;
            if timeout.timed_out() && state.idle.is_empty() && state.open >= self.inner.size {
                return Err(PoolError::Timeout(self.inner.wait));
            }
        }
    }
}

/// A connection borrowed from a [`PostgresPool`]; returned to it on drop (or dropped,
/// if the server closed it). Any transaction on it has ended by then (postgres rolls
/// an unfinished one back when it drops).
pub(super) struct Lease<'a> {
    pool: &'a PostgresPool,
    conn: Option<Conn>,
}

impl Lease<'_> {
    /// The connection. `None` never happens: the lease holds it until it drops.
    pub(super) fn conn(&mut self) -> Option<&mut Conn> {
        self.conn.as_mut()
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        // A poisoned lock: the pool is unusable anyway; let the connection close.
        if let Ok(mut state) = self.pool.inner.state.lock() {
            if conn.client.is_closed() {
                state.open = state.open.saturating_sub(1);
            } else {
                state.idle.push(conn);
            }
            self.pool.inner.freed.notify_one();
        }
    }
}
