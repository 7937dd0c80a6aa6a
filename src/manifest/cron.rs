//! Cron expressions in Cloudflare's syntax, checked before any request.
//!
//! The grammar is the one of Cloudflare's own parser for Cron Triggers
//! (`cloudflare/saffron`, "a Quartz scheduler-like cron parser powering Cron
//! Triggers on Cloudflare Workers") and of the Cron Triggers documentation:
//!
//! | field | values | characters |
//! |---|---|---|
//! | minute | 0-59 | `*` `,` `-` `/` |
//! | hour | 0-23 | `*` `,` `-` `/` |
//! | day of month | 1-31 | `*` `,` `-` `/` `L` `W` |
//! | month | 1-12, `JAN`-`DEC` (any case) | `*` `,` `-` `/` |
//! | day of week | 1-7 (1 = Sunday), `SUN`-`SAT` (any case) | `*` `,` `-` `/` `L` `#` |
//!
//! Five fields separated by spaces; no seconds, no year, no `?`, no macros
//! (`@daily`). `L`, `LW`, `L-n`, `L-nW` and `nW` (day of month) and `L`,
//! `dL`, `d#n` (day of week) stand alone in their field. Ranges may wrap
//! (`FRI-MON`), as in saffron. Steps go from 1 to the field's span (59
//! minutes, 23 hours, 30 days, 11 months, 6 days of the week).
//!
//! Two choices are stricter than saffron, which accepts them with surprising
//! meanings: a bare `*` inside a list (`5,*`) and `*-n`.

use super::rules::NameProblem;

/// The five fields, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
}

const FIELDS: [Field; 5] = [
    Field::Minute,
    Field::Hour,
    Field::DayOfMonth,
    Field::Month,
    Field::DayOfWeek,
];

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
/// The most days each month can have (February in a leap year).
const MAX_DAYS: [u8; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::Minute => "minute",
            Field::Hour => "hour",
            Field::DayOfMonth => "day of the month",
            Field::Month => "month",
            Field::DayOfWeek => "day of the week",
        }
    }

    fn bounds(self) -> (u8, u8) {
        match self {
            Field::Minute => (0, 59),
            Field::Hour => (0, 23),
            Field::DayOfMonth => (1, 31),
            Field::Month => (1, 12),
            Field::DayOfWeek => (1, 7),
        }
    }

    fn names(self) -> &'static [&'static str] {
        match self {
            Field::Month => &MONTHS,
            Field::DayOfWeek => &WEEKDAYS,
            _ => &[],
        }
    }

    fn allowed(self) -> String {
        let (min, max) = self.bounds();
        match self {
            Field::Month => format!("{min}-{max} or `JAN`-`DEC`"),
            Field::DayOfWeek => format!("{min}-{max} (1 = Sunday) or `SUN`-`SAT`"),
            _ => format!("{min}-{max}"),
        }
    }
}

/// What a field selects, as far as the "does it ever run" check needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Selection {
    /// `*`.
    All,
    /// A set of values (bit `n` = value `n`).
    Values(u64),
    /// `L`, `W`, `#` forms.
    Special,
}

/// Checks one cron trigger. Returns the expression with its whitespace
/// collapsed to single spaces (what is sent to Cloudflare), or the first
/// problem with the byte index of the offending text.
pub(crate) fn check(value: &str) -> Result<String, NameProblem> {
    let hint_fields = "a cron expression is five fields: minute hour day-of-month month day-of-week, e.g. `0 * * * *` (every hour)";
    let tokens = tokens(value);
    if tokens.len() != 5 {
        let hint = if tokens.len() == 6 {
            "Cloudflare's cron has no seconds or year field: five fields, minute hour day-of-month month day-of-week".to_string()
        } else if value.trim_start().starts_with('@') {
            "Cloudflare does not take macros such as `@daily`: write `0 0 * * *`".to_string()
        } else {
            hint_fields.to_string()
        };
        return Err(NameProblem::whole(
            format!(
                "invalid cron expression {:?}: it has {} {}, not 5",
                value,
                tokens.len(),
                if tokens.len() == 1 { "field" } else { "fields" }
            ),
            hint,
        ));
    }
    let mut selections = [Selection::All; 5];
    for ((field, (offset, token)), selection) in FIELDS.iter().zip(&tokens).zip(&mut selections) {
        *selection =
            parse_field(*field, token, *offset).map_err(|problem| in_expression(value, problem))?;
    }
    if let (Selection::Values(days), Selection::Values(months), Selection::All) =
        (selections[2], selections[3], selections[4])
    {
        let runs = (1..=12u8).any(|month| {
            months & (1 << month) != 0
                && (1..=MAX_DAYS[usize::from(month - 1)]).any(|day| days & (1 << day) != 0)
        });
        if !runs {
            return Err(NameProblem::at(
                tokens[2].0,
                format!(
                    "the cron expression {value:?} never runs: none of its months has that day"
                ),
                "check the day of the month and the month (February has at most 29 days; April, June, September and November 30)".to_string(),
            ));
        }
    }
    Ok(tokens
        .iter()
        .map(|(_, token)| *token)
        .collect::<Vec<_>>()
        .join(" "))
}

/// The whitespace-separated tokens of `value` with their byte offsets.
fn tokens(value: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (index, c) in value.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(begin)) => {
                out.push((begin, &value[begin..index]));
                start = None;
            }
            (false, None) => start = Some(index),
            _ => {}
        }
    }
    if let Some(begin) = start {
        out.push((begin, &value[begin..]));
    }
    out
}

fn in_expression(value: &str, mut problem: NameProblem) -> NameProblem {
    problem.message = format!("invalid cron expression {value:?}: {}", problem.message);
    problem
}

fn problem(index: usize, message: String, hint: String) -> NameProblem {
    NameProblem::at(index, message, hint)
}

fn parse_field(field: Field, token: &str, offset: usize) -> Result<Selection, NameProblem> {
    if let Some(selection) = special(field, token, offset)? {
        return Ok(selection);
    }
    if token == "*" {
        return Ok(Selection::All);
    }
    let mut bits = 0u64;
    let mut start = 0;
    let alone = !token.contains(',');
    for item in token.split(',') {
        bits |= parse_item(field, item, offset + start, alone)?;
        start += item.len() + 1;
    }
    Ok(Selection::Values(bits))
}

/// The `L`, `W` and `#` forms, which stand alone in their field.
fn special(field: Field, token: &str, offset: usize) -> Result<Option<Selection>, NameProblem> {
    if token.contains('?') {
        return Err(problem(
            offset + token.find('?').unwrap_or(0),
            "Cloudflare does not take `?`".to_string(),
            format!("write `*` for any {}", field.name()),
        ));
    }
    let has_special = match field {
        Field::DayOfMonth => token.contains('L') || token.contains('W'),
        Field::DayOfWeek => token.contains('L') || token.contains('#'),
        _ => false,
    };
    if !has_special {
        return Ok(None);
    }
    let alone_hint = || {
        format!(
            "`L`, `W` and `#` stand alone in the {} field; write a second cron trigger for the other days",
            field.name()
        )
    };
    if token.contains(',') {
        return Err(problem(
            offset,
            format!(
                "`{token}` combines `L`, `W` or `#` with a list, which Cloudflare does not take"
            ),
            alone_hint(),
        ));
    }
    match field {
        Field::DayOfMonth => {
            // L, LW, L-n, L-nW, nW
            if token == "L" || token == "LW" {
                return Ok(Some(Selection::Special));
            }
            if let Some(rest) = token.strip_prefix("L-") {
                let digits = rest.strip_suffix('W').unwrap_or(rest);
                let offset_ok = digits.bytes().all(|b| b.is_ascii_digit())
                    && digits.parse::<u8>().is_ok_and(|n| (1..=30).contains(&n));
                if offset_ok {
                    return Ok(Some(Selection::Special));
                }
                return Err(problem(
                    offset + 2,
                    format!("`{token}`: the offset from the last day is 1-30"),
                    "`L-3` is the third-to-last day of the month; `L-3W` the weekday nearest to it"
                        .to_string(),
                ));
            }
            if let Some(day) = token.strip_suffix('W')
                && !day.contains('L')
            {
                value(field, day, offset)?;
                return Ok(Some(Selection::Special));
            }
            Err(problem(
                offset,
                format!("invalid day of the month `{token}`"),
                "the day-of-month forms with letters are `L` (last day), `LW` (last weekday), `L-3` (third-to-last day), `15W` (weekday nearest the 15th)".to_string(),
            ))
        }
        Field::DayOfWeek => {
            if token == "L" {
                return Ok(Some(Selection::Special));
            }
            if let Some((day, nth)) = token.split_once('#') {
                value(field, day, offset)?;
                let nth_ok = !nth.is_empty()
                    && nth.bytes().all(|b| b.is_ascii_digit())
                    && nth.parse::<u8>().is_ok_and(|n| (1..=5).contains(&n));
                if !nth_ok {
                    return Err(problem(
                        offset + day.len() + 1,
                        format!("`{token}`: the week after `#` is 1-5"),
                        "`MON#2` is the second Monday of the month".to_string(),
                    ));
                }
                return Ok(Some(Selection::Special));
            }
            if let Some(day) = token.strip_suffix('L')
                && !day.contains('L')
            {
                value(field, day, offset)?;
                return Ok(Some(Selection::Special));
            }
            Err(problem(
                offset,
                format!("invalid day of the week `{token}`"),
                "the day-of-week forms with letters are `L` (Saturday), `FRIL` or `6L` (last Friday of the month) and `MON#2` (second Monday)".to_string(),
            ))
        }
        _ => Ok(None),
    }
}

/// One list item: `*`, `*/step`, `v`, `v/step`, `a-b`, `a-b/step`.
fn parse_item(field: Field, item: &str, offset: usize, alone: bool) -> Result<u64, NameProblem> {
    let (min, max) = field.bounds();
    if item.is_empty() {
        return Err(problem(
            offset,
            "empty item in a list".to_string(),
            "separate values with single commas, e.g. `0,15,30,45`".to_string(),
        ));
    }
    let (base, step) = match item.split_once('/') {
        Some((base, step)) => (base, Some((step, offset + base.len() + 1))),
        None => (item, None),
    };
    let step = match step {
        None => None,
        Some((text, at)) => {
            let span = max - min;
            let parsed = (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
                .then(|| text.parse::<u8>().ok())
                .flatten()
                .filter(|step| (1..=span).contains(step));
            match parsed {
                Some(step) => Some(step),
                None => {
                    return Err(problem(
                        at,
                        format!(
                            "invalid step `{text}` for the {}: it is a number from 1 to {span}",
                            field.name()
                        ),
                        "`*/15` is every 15th value; `10-40/10` is 10, 20, 30 and 40".to_string(),
                    ));
                }
            }
        }
    };
    let (start, end) = if base == "*" {
        if step.is_none() && !alone {
            return Err(problem(
                offset,
                "`*` inside a list".to_string(),
                format!(
                    "`*` is every {}; write it alone, or list the values",
                    field.name()
                ),
            ));
        }
        (min, max)
    } else if let Some((from, to)) = base.split_once('-') {
        if from == "*" {
            return Err(problem(
                offset,
                format!("`{base}` is not a range"),
                "write a range as `from-to`, e.g. `9-17`".to_string(),
            ));
        }
        let start = value(field, from, offset)?;
        let end = value(field, to, offset + from.len() + 1)?;
        (start, end)
    } else {
        let start = value(field, base, offset)?;
        match step {
            Some(_) => (start, max),
            None => (start, start),
        }
    };
    let step = usize::from(step.unwrap_or(1));
    // A range whose start is after its end wraps around (FRI-MON), as in
    // Quartz and saffron.
    let values: Vec<u8> = if start <= end {
        (start..=end).step_by(step).collect()
    } else {
        (start..=max).chain(min..=end).step_by(step).collect()
    };
    Ok(values.into_iter().fold(0u64, |bits, v| bits | (1 << v)))
}

/// A number in the field's range, or a name (months, days of the week).
fn value(field: Field, text: &str, offset: usize) -> Result<u8, NameProblem> {
    let (min, max) = field.bounds();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let number = text.parse::<u16>().unwrap_or(u16::MAX);
        if number < u16::from(min) || number > u16::from(max) {
            let hint = if field == Field::DayOfWeek && number == 0 {
                "days of the week are 1-7 with 1 = Sunday (not 0-6 as in Unix cron): write `1` or `SUN`".to_string()
            } else {
                format!("the {} is {}", field.name(), field.allowed())
            };
            return Err(problem(
                offset,
                format!("`{text}` is out of range for the {}", field.name()),
                hint,
            ));
        }
        return Ok(number as u8);
    }
    let upper = text.to_ascii_uppercase();
    if let Some(index) = field.names().iter().position(|name| *name == upper) {
        return Ok(index as u8 + 1);
    }
    let hint = format!("the {} is {}", field.name(), field.allowed());
    let message = if text.is_empty() {
        format!("a value is missing in the {} field", field.name())
    } else {
        format!("invalid {} `{text}`", field.name())
    };
    Err(problem(offset, message, hint))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn ok(expression: &str, collapsed: &str) {
        assert_eq!(check(expression).as_deref(), Ok(collapsed), "{expression}");
    }

    /// The byte index the problem points at (`None`: the whole value).
    #[track_caller]
    fn bad(expression: &str, index: Option<usize>) {
        match check(expression) {
            Ok(_) => panic!("{expression:?} should be refused"),
            Err(problem) => assert_eq!(problem.index, index, "{expression:?}: {problem:?}"),
        }
    }

    #[test]
    fn accepts_cloudflare_examples() {
        // The examples of Cloudflare's Cron Triggers documentation.
        for expression in [
            "* * * * *",
            "*/30 * * * *",
            "45 * * * *",
            "0 17 * * sun",
            "0 17 * * 1",
            "10 7 * * mon-fri",
            "10 7 * * 2-6",
            "0 15 1 * *",
            "0 18 * * 6L",
            "0 18 * * friL",
            "59 23 LW * *",
        ] {
            ok(expression, expression);
        }
        ok("  0   *\t* * *  ", "0 * * * *");
        for expression in [
            "0 9 L * *",
            "0 10 * * MON#2",
            "0 10 * * 2#5",
            "0 0 L-3 * *",
            "0 0 L-3W * *",
            "0 0 15W * *",
            "0 0 * * L",
            "0,15,30,45 9-17 * JAN-MAR,dec *",
            "5/15 */2 1-31/2 */3 */2",
            "0 22-2 * * FRI-MON",
            "0 0 29 2 *",
            "00 07 01 01 *",
        ] {
            ok(expression, expression);
        }
    }

    #[test]
    fn refuses_what_cloudflare_refuses() {
        bad("* * * *", None);
        bad("0 * * * * *", None);
        bad("@daily", None);
        bad("60 * * * *", Some(0));
        bad("0 24 * * *", Some(2));
        bad("0 0 0 * *", Some(4));
        bad("0 0 32 * *", Some(4));
        bad("0 0 * 13 *", Some(6));
        bad("0 0 * * 0", Some(8));
        bad("0 0 * * 8", Some(8));
        bad("0 0 ? * MON", Some(4));
        bad("*/0 * * * *", Some(2));
        bad("*/60 * * * *", Some(2));
        bad("0 0 * * */7", Some(10));
        bad("1,,2 * * * *", Some(2));
        bad("5,* * * * *", Some(2));
        bad("*-5 * * * *", Some(0));
        bad("0 0 * * MONDAY", Some(8));
        bad("0 0 * JANUARY *", Some(6));
        bad("0 0 L,15 * *", Some(4));
        bad("0 0 L-31 * *", Some(6));
        bad("0 0 * * MON#6", Some(12));
        bad("0 0 * * 2#", Some(10));
        bad("0 0 * * fril", Some(8));
        bad("a * * * *", Some(0));
        bad("0 0 1-x * *", Some(6));
        // Never runs.
        bad("0 0 30 2 *", Some(4));
        bad("0 0 31 4,6,9,11 *", Some(4));
    }
}
