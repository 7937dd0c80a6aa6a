//! Views of a [`DriftReport`]: text for a terminal, JSON for tools, and
//! markdown for the issue a scheduled workflow keeps open while there is
//! drift.

use std::fmt::Write;

use super::markdown::{Section, assemble, change_blocks, drift_marker, short_commit};
use super::text::{symbol, verb};
use super::words::{self, value};
use crate::drift::{DriftChange, DriftReport, ServingVersion, Unmanaged};
use crate::plan::ChangeKind;

/// One line about who serves a worker changed outside git.
fn serving_line(serving: &ServingVersion) -> String {
    let mut line = format!(
        "serving version #{} ({})",
        serving.number, serving.version_id
    );
    match &serving.deployed_by {
        Some(who) => {
            let _ = write!(line, ", deployed by {who}");
        }
        None => line.push_str(", deployed by someone unknown"),
    }
    if let Some(author) = &serving.author
        && serving.deployed_by.as_deref() != Some(author.as_str())
    {
        let _ = write!(line, ", uploaded by {author}");
    }
    if let Some(message) = serving.message.as_deref().filter(|m| !m.is_empty()) {
        let _ = write!(line, ", message {message:?}");
    }
    if !serving.made_by_flareops {
        line.push_str(": not a version flareops made from git");
    }
    line
}

fn unmanaged_line(item: &Unmanaged) -> String {
    if item.id == item.name {
        format!("{} {}", item.kind.noun(), item.name)
    } else {
        format!("{} {} (id {})", item.kind.noun(), item.name, item.id)
    }
}

fn last_apply_line(report: &DriftReport) -> String {
    match &report.last_apply {
        Some(apply) => format!(
            "Last apply {} ({}) at {} from {} by {}; git is at {}.",
            apply.id,
            apply.status,
            apply.finished_at.as_deref().unwrap_or(&apply.started_at),
            short_commit(&apply.git_commit),
            apply.actor,
            short_commit(&report.git_commit)
        ),
        None => format!(
            "No apply recorded; git is at {}.",
            short_commit(&report.git_commit)
        ),
    }
}

fn text_changes(out: &mut String, title: &str, items: &[DriftChange]) {
    if items.is_empty() {
        return;
    }
    let _ = writeln!(out, "{title} ({}):", items.len());
    for item in items {
        let change = &item.change;
        let _ = writeln!(
            out,
            "  {} {}   (heal: {})",
            symbol(change.kind),
            change.address,
            verb(change.kind)
        );
        if let Some(id) = &item.recorded_id {
            let _ = writeln!(
                out,
                "      recorded id {id}: no longer in the account (its data is gone; heal creates it empty)"
            );
        }
        if let Some(serving) = &item.serving {
            let _ = writeln!(out, "      {}", serving_line(serving));
        }
        for field in &change.fields {
            let _ = match change.kind {
                ChangeKind::Create => {
                    writeln!(out, "      {}: {}", field.field, value(&field.after))
                }
                _ => writeln!(
                    out,
                    "      {}: account {} -> git {}",
                    field.field,
                    value(&field.before),
                    value(&field.after)
                ),
            };
        }
        if !change.conflicts.is_empty() {
            let _ = writeln!(
                out,
                "      ! conflict: {}",
                words::conflicts(&change.conflicts)
            );
        }
    }
    out.push('\n');
}

fn heal_hint(report: &DriftReport) -> String {
    let deletes = report
        .pending
        .iter()
        .chain(&report.changed_outside_git)
        .any(|c| c.change.destructive || c.change.kind == ChangeKind::Delete);
    format!(
        "`flareops drift --env {} --heal` makes the account match git again{}; unmanaged look-alikes are never touched.",
        report.environment,
        if deletes {
            " (changes that delete data need --allow-delete)"
        } else {
            ""
        }
    )
}

/// The report as text, ending in a newline.
pub fn drift_text(report: &DriftReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "flareops drift: environment {} (account {})",
        report.environment, report.account_id
    );
    let _ = writeln!(out, "{}\n", last_apply_line(report));
    if !report.has_drift() {
        out.push_str("No drift: the account matches git.\n");
    } else {
        text_changes(&mut out, "Changed outside git", &report.changed_outside_git);
        text_changes(&mut out, "Deleted outside git", &report.deleted_outside_git);
        if !report.unmanaged.is_empty() {
            let _ = writeln!(
                out,
                "Unmanaged look-alikes: named like this environment's resources, but neither in git nor in the ledger ({}):",
                report.unmanaged.len()
            );
            for item in &report.unmanaged {
                let _ = writeln!(out, "  ? {}", unmanaged_line(item));
            }
            out.push('\n');
        }
        text_changes(
            &mut out,
            "Pending: git is ahead of the last apply",
            &report.pending,
        );
        let counts: Vec<String> = report
            .counts()
            .iter()
            .map(|(name, count)| format!("{count} {name}"))
            .collect();
        let _ = writeln!(out, "Drift: {}.", counts.join(", "));
        let _ = writeln!(out, "{}", heal_hint(report).replace('`', ""));
    }
    for note in &report.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}

/// The report as pretty JSON, ending in a newline.
pub fn drift_json(report: &DriftReport) -> Result<String, serde_json::Error> {
    let mut out = serde_json::to_string_pretty(&drift_value(report)?)?;
    out.push('\n');
    Ok(out)
}

/// The value [`drift_json`] prints.
fn drift_value(report: &DriftReport) -> Result<serde_json::Value, serde_json::Error> {
    let mut value = serde_json::to_value(report)?;
    if let Some(object) = value.as_object_mut() {
        object.insert("drift".into(), report.has_drift().into());
    }
    Ok(value)
}

/// What `drift --heal` did, for its JSON report.
pub struct Healing<'a> {
    /// The apply that healed (`None`: nothing to apply).
    pub apply: Option<&'a crate::apply::Outcome>,
    /// Changes the account still needs after healing.
    pub remaining_changes: usize,
}

/// `drift --heal --format json`: the drift report found before healing,
/// with `heal`: the apply's report (as `apply --format json`), the changes
/// left, and whether the account matches git now.
pub fn heal_json(report: &DriftReport, healing: &Healing<'_>) -> Result<String, serde_json::Error> {
    let mut value = drift_value(report)?;
    if let Some(object) = value.as_object_mut() {
        object.insert(
            "heal".into(),
            serde_json::json!({
                "apply": healing.apply.map(super::apply_value),
                "remaining_changes": healing.remaining_changes,
                "healed": healing.remaining_changes == 0
                    && healing.apply.is_none_or(|a| a.succeeded()),
            }),
        );
    }
    let mut out = serde_json::to_string_pretty(&value)?;
    out.push('\n');
    Ok(out)
}

/// The report as the body of a GitHub issue: marker, title line, a table
/// of counts, then a collapsible section per category.
pub fn drift_markdown(report: &DriftReport) -> String {
    let mut head = String::new();
    let _ = writeln!(head, "{}", drift_marker(&report.environment));
    let _ = writeln!(
        head,
        "### flareops drift in `{}`: {}\n",
        report.environment,
        if report.has_drift() {
            "the account no longer matches git"
        } else {
            "none"
        }
    );
    let _ = writeln!(
        head,
        "Account `{}`. {}\n",
        report.account_id,
        last_apply_line(report)
    );
    head.push_str("| Category | Count |\n|---|---:|\n");
    for (name, count) in report.counts() {
        let _ = writeln!(head, "| {name} | {count} |");
    }
    head.push('\n');
    if report.has_drift() {
        let _ = writeln!(head, "{}\n", heal_hint(report));
    }
    let mut sections = Vec::new();
    for (title, items) in [
        ("Changed outside git", &report.changed_outside_git),
        ("Deleted outside git", &report.deleted_outside_git),
        ("Pending: git is ahead of the last apply", &report.pending),
    ] {
        if items.is_empty() {
            continue;
        }
        let mut section = Section::new(format!("<b>{title}</b> ({})", items.len()));
        let mut details = String::new();
        for item in items.iter() {
            if let Some(serving) = &item.serving {
                let _ = writeln!(
                    details,
                    "- `{}`: {}",
                    item.change.address,
                    serving_line(serving)
                );
            }
            if let Some(id) = &item.recorded_id {
                let _ = writeln!(
                    details,
                    "- `{}`: recorded id `{id}` is no longer in the account",
                    item.change.address
                );
            }
        }
        if !details.is_empty() {
            details.push('\n');
        }
        details.push_str(
            "Each line is what `--heal` does; a field shows the account's value -> git's value.\n",
        );
        section.text(details);
        let changes: Vec<_> = items.iter().map(|i| i.change.clone()).collect();
        change_blocks(&mut section, &changes, 0);
        sections.push(section);
    }
    if !report.unmanaged.is_empty() {
        let mut section = Section::new(format!(
            "<b>Unmanaged look-alikes</b> ({})",
            report.unmanaged.len()
        ));
        let mut list = String::from(
            "Named like this environment's resources, but neither in git nor in the ledger: add them to git, or delete them by hand.\n\n",
        );
        for item in &report.unmanaged {
            let _ = writeln!(list, "- {}", unmanaged_line(item));
        }
        section.text(list);
        sections.push(section);
    }
    let mut tail = String::new();
    for note in &report.notes {
        let _ = writeln!(tail, "> note: {note}\n");
    }
    assemble(
        head,
        sections,
        tail,
        "The full report (`flareops drift --format json`) is in the artifacts of this workflow run.",
    )
}
