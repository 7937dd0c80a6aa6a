//! `d1_databases.<key>.migrations: <dir>`: the SQL migrations of a D1
//! database, read the way wrangler reads a `migrations_dir` (with its default
//! `migrations_pattern`, `<dir>/*.sql`), so that flareops and
//! `wrangler d1 migrations apply` agree on which files are migrations, their
//! names and their order.
//!
//! wrangler's rule (`getMigrationNames` and `compareMigrationPaths` in
//! workers-sdk's `@cloudflare/workers-utils` d1-migrations module):
//! - a migration is a regular file directly in the directory whose name
//!   matches `*.sql` (case-sensitive, not starting with `.`); anything else
//!   is ignored;
//! - the order is by the number that starts the name (JavaScript's
//!   `parseInt` of the text before the first `_`: `0001_init.sql` is 1),
//!   numerically; numbered files before unnumbered ones; ties and unnumbered
//!   files by name.
//!
//! flareops is stricter in two places, both reported as errors rather than
//! silently differing from what the author meant: two files with the same
//! number (wrangler runs both, by name), and a `*.sql` symlink (wrangler
//! skips it, as it is not a regular file).

use std::cmp::Ordering;

use sha2::{Digest, Sha256};

use crate::model::D1Migration;

use super::decode::{Ctx, Text};
use super::files::{PathProblem, Project};
use super::report::Problem;

const WHAT: &str = "migrations directory";

/// Reads the migrations of the directory `text` names; `field` is the
/// field's path for messages. Reports every problem at `text`; `None` when
/// there was any (or the value is unresolved).
pub(crate) fn load(
    ctx: &mut Ctx<'_>,
    field: &str,
    text: &Text,
    project: &Project,
) -> Option<Vec<D1Migration>> {
    if text.unresolved {
        return None;
    }
    let at = |message: String, hint: String| Problem::new(text.origin, field, message).hint(hint);
    let from_path = |problem: PathProblem| at(problem.message, problem.hint);
    let directory = match project.relative(&text.value, WHAT) {
        Ok(directory) => directory,
        Err(problem) => {
            ctx.push(from_path(problem));
            return None;
        }
    };
    let entries = match project.list_dir(&directory, WHAT) {
        Ok(entries) => entries,
        Err(problem) => {
            ctx.push(from_path(problem));
            return None;
        }
    };
    let mut ok = true;
    let mut names: Vec<String> = Vec::new();
    for (name, kind) in entries {
        let Some(name) = name.to_str() else {
            let lossy = name.to_string_lossy();
            if is_migration_name(&lossy) {
                ctx.push(at(
                    format!("the migration file name `{directory}/{lossy}` is not valid UTF-8"),
                    "rename the file: migration names are recorded as text in D1".to_string(),
                ));
                ok = false;
            }
            continue;
        };
        if !is_migration_name(name) || !(kind.is_file() || kind.is_symlink()) {
            continue;
        }
        if kind.is_symlink() {
            ctx.push(at(
                format!("the migration `{directory}/{name}` is a symlink"),
                "wrangler skips symlinks in a migrations directory, so it would never run this migration: put the file itself in the directory".to_string(),
            ));
            ok = false;
            continue;
        }
        names.push(name.to_string());
    }
    names.sort_by(|a, b| wrangler_order(a, b));
    for pair in names.windows(2) {
        let (first, second) = (&pair[0], &pair[1]);
        if let (Some(number), Some(other)) = (number(first), number(second))
            && number == other
        {
            ctx.push(at(
                format!(
                    "the migrations `{directory}/{first}` and `{directory}/{second}` have the same number {number}"
                ),
                "renumber one of them (e.g. with the next free number): each number names one migration, and migrations run in number order".to_string(),
            ));
            ok = false;
        }
    }
    let mut migrations = Vec::with_capacity(names.len());
    for name in names {
        let path = format!("{directory}/{name}");
        let bytes = match project.read_capped(
            &path,
            "migration",
            "a migration is sent to D1 as one query: split it into several migration files",
        ) {
            Ok(bytes) => bytes,
            Err(problem) => {
                ctx.push(from_path(problem));
                ok = false;
                continue;
            }
        };
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let Ok(sql) = String::from_utf8(bytes) else {
            ctx.push(at(
                format!("the migration `{path}` is not valid UTF-8"),
                "SQL files are text: save the file as UTF-8".to_string(),
            ));
            ok = false;
            continue;
        };
        migrations.push(D1Migration {
            name,
            path,
            sql,
            sha256,
        });
    }
    ok.then_some(migrations)
}

/// minimatch's `*.sql` with `dot: false`.
fn is_migration_name(name: &str) -> bool {
    name.ends_with(".sql") && !name.starts_with('.')
}

/// wrangler's `leadingMigrationNumber`: `parseInt(name.split("_")[0], 10)`,
/// `None` for `NaN`. A JavaScript number, so an `f64`.
fn number(name: &str) -> Option<f64> {
    let head = name.split('_').next().unwrap_or_default();
    let head = head.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    let (sign, rest) = match head.strip_prefix('-') {
        Some(rest) => (-1.0, rest),
        None => (1.0, head.strip_prefix('+').unwrap_or(head)),
    };
    let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 {
        return None;
    }
    rest[..digits].parse::<f64>().ok().map(|value| sign * value)
}

/// wrangler's `compareMigrationPaths` for names without `/`: by number,
/// numbered before unnumbered, then by name (JavaScript compares strings by
/// UTF-16 code units).
fn wrangler_order(a: &str, b: &str) -> Ordering {
    let by_number = match (number(a), number(b)) {
        (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    by_number.then_with(|| a.encode_utf16().cmp(b.encode_utf16()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_parse_int() {
        assert_eq!(number("0001_init.sql"), Some(1.0));
        assert_eq!(number("0001.sql"), Some(1.0));
        assert_eq!(number("12abc_x.sql"), Some(12.0));
        assert_eq!(number("-3_x.sql"), Some(-3.0));
        assert_eq!(number("init.sql"), None);
        assert_eq!(number("_1.sql"), None);
    }

    #[test]
    fn order_matches_wrangler() {
        let mut names = vec![
            "init.sql",
            "10_c.sql",
            "9_b.sql",
            "1_a.sql",
            "0002_x.sql",
            "abc.sql",
        ];
        names.sort_by(|a, b| wrangler_order(a, b));
        assert_eq!(
            names,
            [
                "1_a.sql",
                "0002_x.sql",
                "9_b.sql",
                "10_c.sql",
                "abc.sql",
                "init.sql"
            ]
        );
        assert!(is_migration_name("0001_init.sql"));
        assert!(!is_migration_name(".0001_init.sql"));
        assert!(!is_migration_name("0001_init.SQL"));
        assert!(!is_migration_name("README.md"));
    }
}
