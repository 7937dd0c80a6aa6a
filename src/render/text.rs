//! The plan as a reviewer reads it, in the style of `terraform plan`.

use std::fmt::Write;

use crate::cloudflare::RateLimit;

use super::words::{self, value};
use crate::plan::{ChangeKind, FieldDiff, ModuleDiff, Plan};

pub(super) fn symbol(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Create => "+",
        ChangeKind::Update => "~",
        ChangeKind::Replace => "-/+",
        ChangeKind::Delete => "-",
        ChangeKind::Adopt => "<=",
    }
}

pub(super) fn verb(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Create => "create",
        ChangeKind::Update => "update",
        ChangeKind::Replace => "replace",
        ChangeKind::Delete => "delete",
        ChangeKind::Adopt => "adopt",
    }
}

fn field_line(out: &mut String, kind: ChangeKind, diff: &FieldDiff) {
    let FieldDiff {
        field,
        before,
        after,
        forces_replacement,
    } = diff;
    let _ = match kind {
        ChangeKind::Create => write!(out, "      {field}: {}", value(after)),
        _ => write!(out, "      {field}: {} -> {}", value(before), value(after)),
    };
    if *forces_replacement {
        out.push_str("   # forces replacement");
    }
    out.push('\n');
}

/// Diff lines shown per change before the rest is cut.
pub const MAX_DIFF_LINES: usize = 200;

fn code_diff(out: &mut String, diffs: &[ModuleDiff]) {
    let mut shown = 0usize;
    let total: usize = diffs.iter().map(|d| d.diff.lines().count()).sum();
    for diff in diffs {
        for line in diff.diff.lines() {
            if shown == MAX_DIFF_LINES {
                let _ = writeln!(
                    out,
                    "      ... {} more diff lines not shown (the JSON plan has the whole diff)",
                    total - shown
                );
                return;
            }
            let _ = writeln!(out, "      {line}");
            shown += 1;
        }
    }
}

/// Renders the plan as text, ending in a newline.
pub fn text(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "flareops plan: environment {} (account {})",
        plan.environment, plan.account_id
    );
    out.push('\n');
    if plan.is_empty() {
        let _ = writeln!(
            out,
            "No changes. The account matches the manifests ({} resources up to date).",
            plan.unchanged.len()
        );
    } else {
        for change in &plan.changes {
            let _ = write!(
                out,
                "  {} {} {}",
                symbol(change.kind),
                verb(change.kind),
                change.address
            );
            if change.destructive {
                out.push_str(if change.address.kind.holds_data() {
                    "   (destructive: the data it holds is lost)"
                } else {
                    "   (destructive: the old one is deleted)"
                });
            }
            out.push('\n');
            if change.kind == ChangeKind::Adopt {
                let _ = writeln!(out, "      # {}", words::ADOPTED);
            }
            for diff in &change.fields {
                field_line(&mut out, change.kind, diff);
            }
            if !change.conflicts.is_empty() {
                let _ = writeln!(
                    out,
                    "      ! conflict: {}",
                    words::conflicts(&change.conflicts)
                );
            }
            code_diff(&mut out, &change.code_diff);
            let deletes_data = change.destructive || change.kind == ChangeKind::Delete;
            if deletes_data && change.protected {
                out.push_str("      ! protect: true: apply refuses this change\n");
            } else if change.destructive {
                out.push_str("      ! apply refuses this change without --allow-delete\n");
            } else if change.kind == ChangeKind::Delete {
                out.push_str(
                    "      ! it holds no data: a revert deletes it; apply needs --allow-delete\n",
                );
            }
            out.push('\n');
        }
        let _ = writeln!(out, "Plan: {}.", words::summary_counts(&plan.summary()));
    }
    for note in &plan.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}

/// The plan's footer about requests: how many the plan made, about how
/// many an apply of it needs (`made` to read the account again, plus the
/// plan's own estimate), and what that means against the token's budget
/// (Cloudflare's 1,200 requests per 5 minutes) at flareops' pace
/// (`limit`; `None`: not limited).
pub fn requests_footer(plan: &Plan, made: u64, limit: Option<RateLimit>) -> String {
    const WINDOW: std::time::Duration = std::time::Duration::from_secs(300);
    let apply = made + plan.apply_requests();
    let mut out = format!(
        "Requests: this plan made {}; applying it needs about {} of the token's 1,200 per 5 minutes",
        thousands(made),
        thousands(apply)
    );
    match limit {
        Some(limit) => {
            // Whole requests: the fraction is dropped on purpose.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let most = limit.max_in(WINDOW).clamp(0.0, f64::from(u32::MAX)) as u64;
            let _ = write!(
                out,
                " (flareops sends at most {} per 5 minutes",
                thousands(most)
            );
            let beyond_burst = apply.saturating_sub(u64::from(limit.burst));
            // Precision is irrelevant at these magnitudes.
            #[allow(clippy::cast_precision_loss)]
            let seconds = beyond_burst as f64 / limit.per_second;
            if seconds >= 60.0 {
                let _ = write!(
                    out,
                    ", so it takes at least {:.0} minutes",
                    (seconds / 60.0).ceil()
                );
            }
            out.push_str(").");
        }
        None => out.push_str(" (flareops' rate limit is off)."),
    }
    out.push('\n');
    out
}

/// `1463` -> `1,463`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}
