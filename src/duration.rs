//! Durations as people write them: the one parser and the one formatter
//! behind `--lock-timeout`, the `FLAREOPS_*` variables, a rollout's `wait`
//! and every duration in a message.
//!
//! The grammar (surrounding whitespace is ignored):
//!
//! ```text
//! duration = number | (number unit)+
//! unit     = "h" | "m" | "s" | "ms"
//! number   = one or more ASCII digits
//! ```
//!
//! Units go from the largest to the smallest, each at most once: `1h30m`,
//! `1s500ms`, `90s`, `0s`. A bare number is seconds with [`parse`] and
//! refused by [`parse_with_unit`] (manifests, where `wait: 30` would be
//! ambiguous). No signs, fractions or spaces inside.
//!
//! [`format()`] writes the same grammar back, largest unit first, without
//! zero parts (`1h`, `1m30s`, `1s500ms`, `0s`), so `parse(&format(d)) == d`
//! for every `d` in whole milliseconds (a smaller remainder is dropped).

use std::fmt::Write as _;
use std::time::Duration;

/// The units, largest first.
const UNITS: [(&str, Duration); 4] = [
    ("h", Duration::from_secs(3600)),
    ("m", Duration::from_secs(60)),
    ("s", Duration::from_secs(1)),
    ("ms", Duration::from_millis(1)),
];

/// Why a text is not a duration. Each message quotes the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Empty, or holding something other than digits and units.
    #[error("`{text}` is not a duration (like `90s`, `5m`, `1h30m` or `500ms`)")]
    Malformed { text: String },
    #[error("`{text}` is not a duration: `{unit}` is not a unit (`h`, `m`, `s` or `ms`)")]
    UnknownUnit { text: String, unit: String },
    /// A number without a unit, where one is needed.
    #[error("`{text}` is not a duration: `{number}` has no unit (`h`, `m`, `s` or `ms`)")]
    MissingUnit { text: String, number: String },
    #[error(
        "`{text}` is not a duration: write the units from the largest to the smallest, each once (like `1h30m`)"
    )]
    UnitOrder { text: String },
    #[error("`{text}` is too long a duration")]
    TooLong { text: String },
}

/// Parses a duration; a bare number is seconds (`90` is `90s`).
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    parse_text(text, true)
}

/// Parses a duration in which every number has its unit (`90` is refused).
pub fn parse_with_unit(text: &str) -> Result<Duration, DurationError> {
    parse_text(text, false)
}

fn parse_text(text: &str, bare_seconds: bool) -> Result<Duration, DurationError> {
    let text = text.trim();
    let owned = || text.to_string();
    if text.is_empty() {
        return Err(DurationError::Malformed { text: owned() });
    }
    if bare_seconds && text.bytes().all(|b| b.is_ascii_digit()) {
        let seconds = text
            .parse::<u64>()
            .map_err(|_| DurationError::TooLong { text: owned() })?;
        return Ok(Duration::from_secs(seconds));
    }
    let mut total = Duration::ZERO;
    // Units still allowed: those after the last one used.
    let mut allowed = &UNITS[..];
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let letters = rest[digits..]
            .bytes()
            .take_while(u8::is_ascii_alphabetic)
            .count();
        let (number, unit) = (&rest[..digits], &rest[digits..digits + letters]);
        if digits == 0 {
            return Err(DurationError::Malformed { text: owned() });
        }
        if letters == 0 {
            if digits < rest.len() {
                return Err(DurationError::Malformed { text: owned() });
            }
            return Err(DurationError::MissingUnit {
                text: owned(),
                number: number.to_string(),
            });
        }
        let Some(index) = allowed.iter().position(|(name, _)| *name == unit) else {
            return Err(if UNITS.iter().any(|(name, _)| *name == unit) {
                DurationError::UnitOrder { text: owned() }
            } else {
                DurationError::UnknownUnit {
                    text: owned(),
                    unit: unit.to_string(),
                }
            });
        };
        let size = allowed[index].1;
        allowed = &allowed[index + 1..];
        let part = number
            .parse::<u64>()
            .ok()
            .and_then(|count| times(size, count))
            .ok_or_else(|| DurationError::TooLong { text: owned() })?;
        total = total
            .checked_add(part)
            .ok_or_else(|| DurationError::TooLong { text: owned() })?;
        rest = &rest[digits + letters..];
    }
    Ok(total)
}

/// `size * count`, or `None` past [`Duration::MAX`].
fn times(size: Duration, count: u64) -> Option<Duration> {
    let nanos = size.as_nanos().checked_mul(u128::from(count))?;
    let seconds = u64::try_from(nanos / 1_000_000_000).ok()?;
    // The remainder is below a second: it fits.
    let rest = u32::try_from(nanos % 1_000_000_000).ok()?;
    Some(Duration::new(seconds, rest))
}

/// Writes `duration` in the grammar of [`parse`], largest unit first and
/// without zero parts: `1h30m`, `1m30s`, `1s500ms`, `250ms`, `0s`. Parts
/// below a millisecond are dropped.
pub fn format(duration: Duration) -> String {
    let seconds = duration.as_secs();
    let parts = [
        ("h", seconds / 3600),
        ("m", seconds / 60 % 60),
        ("s", seconds % 60),
        ("ms", u64::from(duration.subsec_millis())),
    ];
    let mut out = String::new();
    for (unit, count) in parts {
        if count > 0 {
            let _ = write!(out, "{count}{unit}");
        }
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `expect`: the duration in milliseconds, or the error's message.
    fn check(input: &str, expect: Result<u64, &str>) {
        let actual = parse(input)
            .map(|duration| u64::try_from(duration.as_millis()).unwrap())
            .map_err(|error| error.to_string());
        assert_eq!(actual, expect.map_err(str::to_string), "parse({input:?})");
    }

    #[test]
    fn parses_the_grammar() {
        check("90s", Ok(90_000));
        check("5m", Ok(300_000));
        check("1h", Ok(3_600_000));
        check("500ms", Ok(500));
        check("1h30m", Ok(5_400_000));
        check("1s500ms", Ok(1_500));
        check("2h3m4s5ms", Ok(7_384_005));
        check("90m", Ok(5_400_000));
        check("0s", Ok(0));
        check("0", Ok(0));
        check("45", Ok(45_000));
        check(" 2h ", Ok(7_200_000));
        check("007s", Ok(7_000));
    }

    #[test]
    fn says_why_a_text_is_not_a_duration() {
        let like = "is not a duration (like `90s`, `5m`, `1h30m` or `500ms`)";
        check("", Err(&format!("`` {like}")));
        check("   ", Err(&format!("`` {like}")));
        check("m", Err(&format!("`m` {like}")));
        check("1.5s", Err(&format!("`1.5s` {like}")));
        check("-5s", Err(&format!("`-5s` {like}")));
        check("5 m", Err(&format!("`5 m` {like}")));
        check("15m x", Err(&format!("`15m x` {like}")));
        check("5 minutes", Err(&format!("`5 minutes` {like}")));
        check(
            "15x",
            Err("`15x` is not a duration: `x` is not a unit (`h`, `m`, `s` or `ms`)"),
        );
        check(
            "5min",
            Err("`5min` is not a duration: `min` is not a unit (`h`, `m`, `s` or `ms`)"),
        );
        check(
            "1h30",
            Err("`1h30` is not a duration: `30` has no unit (`h`, `m`, `s` or `ms`)"),
        );
        let order = "is not a duration: write the units from the largest to the smallest, each once (like `1h30m`)";
        check("30m1h", Err(&format!("`30m1h` {order}")));
        check("5m5m", Err(&format!("`5m5m` {order}")));
        check("500ms1s", Err(&format!("`500ms1s` {order}")));
        check(
            "99999999999999999999",
            Err("`99999999999999999999` is too long a duration"),
        );
        check(
            "5124095576030432h",
            Err("`5124095576030432h` is too long a duration"),
        );
    }

    #[test]
    fn manifests_need_a_unit() {
        assert_eq!(parse_with_unit("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_with_unit("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(
            parse_with_unit("30"),
            Err(DurationError::MissingUnit {
                text: "30".to_string(),
                number: "30".to_string()
            })
        );
    }

    #[test]
    fn formats_largest_unit_first() {
        let check = |duration: Duration, expect: &str| {
            assert_eq!(format(duration), expect, "{duration:?}");
        };
        check(Duration::ZERO, "0s");
        check(Duration::from_millis(250), "250ms");
        check(Duration::from_millis(1500), "1s500ms");
        check(Duration::from_secs(1), "1s");
        check(Duration::from_secs(90), "1m30s");
        check(Duration::from_secs(300), "5m");
        check(Duration::from_secs(900), "15m");
        check(Duration::from_secs(3600), "1h");
        check(Duration::from_secs(5400), "1h30m");
        check(Duration::from_secs(90_061), "25h1m1s");
        check(Duration::from_nanos(1_999_999), "1ms");
        check(Duration::MAX, "5124095576030431h15s999ms");
    }

    proptest! {
        #[test]
        fn format_then_parse_gives_the_same_duration(seconds in any::<u64>(), millis in 0u32..1000) {
            let duration = Duration::new(seconds, millis * 1_000_000);
            let text = format(duration);
            prop_assert_eq!(parse(&text), Ok(duration), "{}", text);
            prop_assert_eq!(parse_with_unit(&text), Ok(duration), "{}", text);
        }

        #[test]
        fn small_durations_round_trip_too(millis in 0u64..10_000_000) {
            let duration = Duration::from_millis(millis);
            prop_assert_eq!(parse(&format(duration)), Ok(duration));
        }
    }
}
