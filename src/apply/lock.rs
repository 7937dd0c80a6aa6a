//! The apply lock while an apply holds it: taken (waiting for another
//! apply up to a timeout), its lease renewed in the background, and a
//! [`StopSignal`] raised when the lock may be lost, so that no further
//! change starts.

use std::sync::Arc;
use std::time::Duration;

use super::StopSignal;
use super::operation::{ApplyError, Event, Events};
use crate::cloudflare::Client;
use crate::ledger::locks;

/// A taken apply lock and the task renewing its lease.
pub(super) struct HeldLock {
    lock: locks::Lock,
    renewal: tokio::task::JoinHandle<()>,
    /// Raised when the lock may be lost: no further change starts.
    pub(super) stop: StopSignal,
    /// Released by the apply's closing write ([`HeldLock::closing`]).
    released: std::sync::atomic::AtomicBool,
}

impl HeldLock {
    /// The ledger database the lock lives in (opened to take it).
    pub(super) fn database(&self) -> &str {
        self.lock.database()
    }

    /// Opens the ledger `name` and takes the lock of `environment` in it
    /// ([`crate::ledger::open_and_lock`]), waiting up to `timeout` while
    /// another apply holds it, and renews its lease in the background
    /// every third of `lease` until [`HeldLock::release`]. Also answers
    /// what the plan reads from the ledger, read under the lock.
    pub(super) async fn take(
        client: &Client,
        name: &str,
        environment: &str,
        timeout: Duration,
        lease: Duration,
        events: &Events,
    ) -> Result<(HeldLock, crate::ledger::PlanReads), ApplyError> {
        let opened =
            crate::ledger::open_and_lock(client, name, environment, timeout, lease, |info| {
                events(&Event::WaitingForLock {
                    info: info.clone(),
                    timeout,
                })
            })
            .await
            .map_err(|error| ApplyError::Lock(Box::new(error)))?;
        let lock = opened.lock;
        tracing::debug!(%environment, holder = lock.holder(), "apply lock taken");
        let stop = StopSignal::default();
        let renewal = tokio::spawn(keep(
            lock.clone(),
            client.clone(),
            stop.clone(),
            lease,
            Arc::clone(events),
        ));
        let held = HeldLock {
            lock,
            renewal,
            stop,
            released: std::sync::atomic::AtomicBool::new(false),
        };
        Ok((held, opened.reads))
    }

    /// Stops renewing the lease and gives the statement that releases the
    /// lock, to end the apply's closing write; call [`HeldLock::released`]
    /// once that write landed.
    pub(super) fn closing(&self) -> crate::cloudflare::Statement {
        self.renewal.abort();
        self.lock.release_statement()
    }

    /// The closing write released the lock: [`HeldLock::release`] has
    /// nothing left to send.
    pub(super) fn released(&self) {
        self.released
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Stops renewing and releases the lock; a failure only warns (the
    /// lease expires on its own).
    pub(super) async fn release(self, client: &Client, events: &Events) {
        self.renewal.abort();
        if self.released.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let environment = self.lock.environment().to_string();
        if let Err(error) = self.lock.release(client).await {
            events(&Event::Warning(format!(
                "releasing the lock of environment `{environment}` failed ({error}); its lease expires on its own, or remove it with `flareops unlock --env {environment}`"
            )));
        }
    }
}

/// Renews the lease; when the lock is lost, or its lease runs out before a
/// renewal landed (another apply may take it over then), raises `stop`.
async fn keep(
    lock: locks::Lock,
    client: Client,
    stop: StopSignal,
    lease: Duration,
    events: Events,
) {
    let renewed_at = std::sync::Mutex::new(tokio::time::Instant::now());
    let environment = lock.environment().to_string();
    let keep = lock.keep_alive(
        &client,
        |warning, definite| {
            events(&Event::Warning(warning));
            if definite {
                stop.raise(format!(
                    "this apply lost the lock of environment `{environment}`"
                ));
            }
        },
        || {
            *renewed_at
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = tokio::time::Instant::now();
        },
    );
    let watch = async {
        // A margin before the lease ends: a change started later might run
        // after another apply took the lock over.
        let margin = lease / 6;
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let since = renewed_at
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .elapsed();
            if since + margin >= lease {
                stop.raise(format!(
                    "the lease of the lock of environment `{}` could not be renewed in time",
                    lock.environment()
                ));
            }
        }
    };
    tokio::select! {
        () = keep => {}
        () = watch => {}
    }
}
