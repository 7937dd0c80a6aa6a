//! The emulator's clock: every timestamp the emulator writes or compares (creation dates, KV
//! expirations, D1 Time Travel bookmarks, upload links) is read from one [`Clock`].
//!
//! [`Clock::system`] follows the machine's clock. [`Clock::manual`] stands still until a test moves
//! it with [`Clock::advance`] or [`Clock::set`], so tests separate two timestamps by moving the
//! clock instead of sleeping. A running emulator's clock is also moved through
//! `/__emulator/clock` (see the module docs of [`super`]): `PUT {"now": "<RFC 3339>"}` pins it,
//! `POST {"advance_ms": N}` moves it forward, `DELETE` gives it back to the machine.
//!
//! Workers records are ordered by `created_on` (wrangler sorts deployments by it), so
//! [`Clock::unique_micros`] never hands out the same microsecond twice, even while a manual
//! clock stands still.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use time::OffsetDateTime;

/// Where the time comes from.
#[derive(Debug, Clone, Copy)]
enum Source {
    System,
    /// Nanoseconds since the Unix epoch.
    Manual(i128),
}

#[derive(Debug)]
struct Inner {
    source: Mutex<Source>,
    /// The last microsecond [`Clock::unique_micros`] handed out.
    last_micros: AtomicI64,
}

/// A clock shared by every part of one emulator (cheap to clone).
#[derive(Debug, Clone)]
pub struct Clock {
    inner: Arc<Inner>,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

/// `2024-08-06T12:34:56.789Z`: RFC 3339, UTC, milliseconds (how Cloudflare writes most dates).
const MILLIS_FORMAT: &[time::format_description::FormatItem<'static>] = time::macros::format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
);

/// `2024-08-06T12:34:56.789012Z`: microseconds (the Workers API's `created_on`).
const MICROS_FORMAT: &[time::format_description::FormatItem<'static>] = time::macros::format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
);

/// `Tue, 15 Jan 2024 10:30:00 GMT`: the HTTP date of `Last-Modified` (RFC 7231).
const HTTP_DATE_FORMAT: &[time::format_description::FormatItem<'static>] = time::macros::format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
);

impl Clock {
    /// The machine's clock.
    pub fn system() -> Clock {
        Clock::with_source(Source::System)
    }

    /// A clock standing still at `start` until it is moved.
    pub fn manual(start: OffsetDateTime) -> Clock {
        Clock::with_source(Source::Manual(start.unix_timestamp_nanos()))
    }

    fn with_source(source: Source) -> Clock {
        Clock {
            inner: Arc::new(Inner {
                source: Mutex::new(source),
                last_micros: AtomicI64::new(0),
            }),
        }
    }

    fn source(&self) -> std::sync::MutexGuard<'_, Source> {
        self.inner
            .source
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The current time.
    pub fn now(&self) -> OffsetDateTime {
        match *self.source() {
            Source::System => OffsetDateTime::now_utc(),
            Source::Manual(nanos) => OffsetDateTime::from_unix_timestamp_nanos(nanos)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
        }
    }

    /// Whether the clock stands still until moved.
    pub fn is_manual(&self) -> bool {
        matches!(*self.source(), Source::Manual(_))
    }

    /// Moves the clock forward by `by`. A system clock becomes a manual one, starting from the
    /// machine's time, so the move is never lost.
    pub fn advance(&self, by: Duration) {
        let mut source = self.source();
        let base = match *source {
            Source::System => OffsetDateTime::now_utc().unix_timestamp_nanos(),
            Source::Manual(nanos) => nanos,
        };
        let by = i128::try_from(by.as_nanos()).unwrap_or(i128::MAX);
        *source = Source::Manual(base.saturating_add(by));
    }

    /// Pins the clock at `at` (a manual clock from now on).
    pub fn set(&self, at: OffsetDateTime) {
        *self.source() = Source::Manual(at.unix_timestamp_nanos());
    }

    /// Gives the clock back to the machine.
    pub fn follow_system(&self) {
        *self.source() = Source::System;
    }

    /// Seconds since the Unix epoch.
    pub fn unix_seconds(&self) -> i64 {
        self.now().unix_timestamp()
    }

    /// Milliseconds since the Unix epoch.
    pub fn unix_millis(&self) -> i64 {
        i64::try_from(self.now().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
    }

    /// Now as RFC 3339 with milliseconds (`2024-08-06T12:34:56.789Z`).
    pub fn timestamp(&self) -> String {
        format_millis(self.now())
    }

    /// Now as an HTTP date (`Tue, 15 Jan 2024 10:30:00 GMT`).
    pub fn http_date(&self) -> String {
        format_http_date(self.now())
    }

    /// Now with microseconds, strictly increasing across calls on this clock, so that records
    /// created in the same instant (or while a manual clock stands still) still sort.
    pub fn unique_micros(&self) -> String {
        let now = self.now();
        let micros = i64::try_from(now.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX);
        let previous = self
            .inner
            .last_micros
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
                Some(micros.max(last.saturating_add(1)))
            })
            .unwrap_or(micros);
        let chosen = micros.max(previous.saturating_add(1));
        let instant =
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(chosen) * 1000).unwrap_or(now);
        instant
            .format(MICROS_FORMAT)
            .unwrap_or_else(|_| String::from("1970-01-01T00:00:00.000000Z"))
    }
}

/// `at` as RFC 3339 with milliseconds.
pub(crate) fn format_millis(at: OffsetDateTime) -> String {
    at.format(MILLIS_FORMAT)
        .unwrap_or_else(|_| String::from("1970-01-01T00:00:00.000Z"))
}

/// `at` as an HTTP date.
pub(crate) fn format_http_date(at: OffsetDateTime) -> String {
    at.format(HTTP_DATE_FORMAT)
        .unwrap_or_else(|_| String::from("Thu, 01 Jan 1970 00:00:00 GMT"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let start = time::macros::datetime!(2024-01-15 10:30:00.250 UTC);
        let clock = Clock::manual(start);
        assert_eq!(clock.now(), start);
        assert_eq!(clock.timestamp(), "2024-01-15T10:30:00.250Z");
        assert_eq!(clock.http_date(), "Mon, 15 Jan 2024 10:30:00 GMT");
        clock.advance(Duration::from_millis(1500));
        assert_eq!(clock.unix_millis(), start.unix_timestamp() * 1000 + 1750);
        clock.set(time::macros::datetime!(2030-06-01 00:00 UTC));
        assert_eq!(clock.unix_seconds(), 1_906_502_400);
        assert!(clock.is_manual());
        clock.follow_system();
        assert!(!clock.is_manual());
    }

    #[test]
    fn unique_micros_increase_while_the_clock_stands_still() {
        let clock = Clock::manual(time::macros::datetime!(2024-01-15 10:30 UTC));
        let first = clock.unique_micros();
        let second = clock.unique_micros();
        assert_eq!(first, "2024-01-15T10:30:00.000000Z");
        assert_eq!(second, "2024-01-15T10:30:00.000001Z");
        clock.advance(Duration::from_secs(1));
        assert_eq!(clock.unique_micros(), "2024-01-15T10:30:01.000000Z");
    }

    #[test]
    fn advancing_a_system_clock_pins_it_ahead_of_the_machine() {
        let clock = Clock::system();
        let before = OffsetDateTime::now_utc();
        clock.advance(Duration::from_secs(3600));
        assert!(clock.is_manual());
        assert!(clock.now() >= before + time::Duration::hours(1));
    }
}
