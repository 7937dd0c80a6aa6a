//! Markdown views for GitHub: the pull-request plan comment (one body
//! covering several environments) and the drift report. Bodies start with a
//! hidden marker a workflow finds the comment or issue by, and are cut to
//! stay under GitHub's limit on a comment or issue body.

use std::fmt::Write;

use super::text::{MAX_DIFF_LINES, symbol, verb};
use super::words::{self, value};
use crate::plan::{Change, ChangeKind, FieldDiff, Plan};

/// GitHub's limit on the body of a comment or an issue, in characters. A
/// body is kept under it in bytes, which is at least its characters.
pub const BODY_LIMIT: usize = 65_536;

/// The first line of every plan comment: the workflow updates the comment
/// that carries it instead of adding one per push.
pub const PLAN_MARKER: &str = "<!-- flareops-plan -->";

/// The first line of an environment's drift report.
pub fn drift_marker(environment: &str) -> String {
    format!("<!-- flareops-drift:{environment} -->")
}

/// What happened to one environment of a multi-environment plan.
#[derive(Debug, Clone)]
pub enum EnvironmentPlan {
    Planned(Plan),
    /// The environment could not be planned (invalid manifests, an API
    /// error): the error as the command line shows it, without colour.
    Failed {
        environment: String,
        error: String,
    },
}

impl EnvironmentPlan {
    pub fn environment(&self) -> &str {
        match self {
            EnvironmentPlan::Planned(plan) => &plan.environment,
            EnvironmentPlan::Failed { environment, .. } => environment,
        }
    }
}

/// The inputs of a plan comment.
#[derive(Debug, Clone)]
pub struct PlanComment<'a> {
    /// The git commit the manifests were read at (`flareops abc123`, as
    /// version messages carry it, or just the commit).
    pub commit: &'a str,
    /// Planned against the embedded local account instead of real ones.
    pub local: bool,
    pub environments: &'a [EnvironmentPlan],
}

/// Room left under [`BODY_LIMIT`] for what a workflow appends (a footer
/// naming the run): bodies are cut to `BODY_LIMIT - FOOTER_RESERVE` bytes.
pub const FOOTER_RESERVE: usize = 1_024;

/// The note a body gets when it had to be cut, before what is where.
fn cut_note(full: &str) -> String {
    format!(
        "> [!WARNING]\n> This body is cut to stay under GitHub's limit of 65,536 characters. {full}\n\n"
    )
}

/// Renders the pull-request comment: marker, summary table, then one
/// collapsible section per environment.
pub fn plan_comment(comment: &PlanComment<'_>) -> String {
    let commit = short_commit(comment.commit);
    let mut head = String::new();
    let _ = writeln!(head, "{PLAN_MARKER}");
    let _ = writeln!(head, "### flareops plan\n");
    let names: Vec<String> = comment
        .environments
        .iter()
        .map(|e| format!("`{}`", e.environment()))
        .collect();
    let _ = writeln!(
        head,
        "Manifests at commit `{commit}`, planned for {}.\n",
        names.join(", ")
    );
    if comment.local {
        head.push_str("> [!NOTE]\n> Planned against the **embedded local account** (flareops' Cloudflare API emulator), not the real accounts: this run has no access to the deployment secrets (a pull request from a fork gets none). The plan shows the changes against an empty account; the plan against the real accounts is made again before apply.\n\n");
    }
    // Adoptions get a column only when a plan has some.
    let adopts = comment.environments.iter().any(|environment| {
        matches!(environment, EnvironmentPlan::Planned(plan) if plan.summary().adopt > 0)
    });
    let (adopt_head, adopt_rule) = if adopts {
        (" Adopt |", "---:|")
    } else {
        ("", "")
    };
    let _ = writeln!(
        head,
        "| Environment |{adopt_head} Create | Update | Replace | Delete | Destructive |"
    );
    let _ = writeln!(head, "|---|{adopt_rule}---:|---:|---:|---:|---|");
    for environment in comment.environments {
        match environment {
            EnvironmentPlan::Planned(plan) => {
                let s = plan.summary();
                let destructive = plan
                    .changes
                    .iter()
                    .any(|c| c.destructive || c.kind == ChangeKind::Delete);
                let adopt = if adopts {
                    format!(" {} |", s.adopt)
                } else {
                    String::new()
                };
                let _ = writeln!(
                    head,
                    "| `{}` |{adopt} {} | {} | {} | {} | {} |",
                    plan.environment,
                    s.create,
                    s.update,
                    s.replace,
                    s.delete,
                    if destructive { "**yes**" } else { "no" }
                );
            }
            EnvironmentPlan::Failed { environment, .. } => {
                let adopt = if adopts { " – |" } else { "" };
                let _ = writeln!(
                    head,
                    "| `{environment}` (**error**) |{adopt} – | – | – | – | – |"
                );
            }
        }
    }
    head.push('\n');
    let sections: Vec<Section> = comment
        .environments
        .iter()
        .map(|e| plan_section(e, &commit))
        .collect();
    assemble(
        head,
        sections,
        String::new(),
        "The full plan of every environment is in the artifacts of this workflow run.",
    )
}

/// `abc123` from `flareops abc123`.
pub fn short_commit(describe: &str) -> String {
    describe
        .strip_prefix("flareops ")
        .unwrap_or(describe)
        .to_string()
}

fn summary_line(plan: &Plan) -> String {
    if plan.is_empty() {
        return "no changes".to_string();
    }
    words::summary_counts(&plan.summary())
}

fn plan_section(environment: &EnvironmentPlan, commit: &str) -> Section {
    match environment {
        EnvironmentPlan::Failed { environment, error } => {
            let mut section = Section::new(format!("<b>{environment}</b>: error"));
            section.text(format!(
                "Manifests at commit `{commit}`. This environment could not be planned:\n"
            ));
            section.code("text", error.lines().map(str::to_string).collect());
            section
        }
        EnvironmentPlan::Planned(plan) => {
            let mut section = Section::new(format!(
                "<b>{}</b>: {}",
                plan.environment,
                summary_line(plan)
            ));
            section.text(format!(
                "Account `{}`, manifests at commit `{commit}`.\n",
                plan.account_id
            ));
            change_blocks(&mut section, &plan.changes, plan.unchanged.len());
            for note in &plan.notes {
                section.text(format!("> note: {note}\n"));
            }
            section
        }
    }
}

/// The changes as a `diff` block (so GitHub colours them), the warnings
/// that need attention, then each worker's code diff.
pub(super) fn change_blocks(section: &mut Section, changes: &[Change], unchanged: usize) {
    if changes.is_empty() {
        section.text(format!(
            "No changes: the account matches the manifests ({unchanged} resources up to date).\n"
        ));
        return;
    }
    let mut lines = Vec::new();
    for change in changes {
        // `!` is the line GitHub's diff highlighting marks as changed.
        let mark = match change.kind {
            ChangeKind::Update => "!",
            kind => symbol(kind),
        };
        lines.push(format!("{mark} {} {}", verb(change.kind), change.address));
        for field in &change.fields {
            lines.push(field_text(change.kind, field));
        }
    }
    section.code("diff", lines);
    let mut warnings = String::new();
    for change in changes {
        if !change.conflicts.is_empty() {
            let _ = writeln!(
                warnings,
                "- :x: `{}`: conflict: {}. Apply refuses this plan.",
                change.address,
                words::conflicts(&change.conflicts)
            );
        }
        let deletes_data = change.destructive || change.kind == ChangeKind::Delete;
        if deletes_data && change.protected {
            let _ = writeln!(
                warnings,
                "- :no_entry: `{}` is `protect: true`: apply refuses to {} it.",
                change.address,
                verb(change.kind)
            );
        } else if change.destructive {
            let _ = writeln!(
                warnings,
                "- :warning: `{}`: {} it {}; apply refuses that without `--allow-delete`.",
                change.address,
                if change.kind == ChangeKind::Delete {
                    "deleting"
                } else {
                    "replacing"
                },
                if change.address.kind.holds_data() {
                    "loses the data it holds"
                } else {
                    "deletes the old one"
                }
            );
        } else if change.kind == ChangeKind::Delete {
            let _ = writeln!(
                warnings,
                "- :warning: `{}` was removed from git; apply deletes it only with `--allow-delete`.",
                change.address
            );
        }
    }
    if !warnings.is_empty() {
        section.text(format!("**Needs attention**\n\n{warnings}"));
    }
    for change in changes.iter().filter(|c| !c.code_diff.is_empty()) {
        let total: usize = change
            .code_diff
            .iter()
            .map(|d| d.diff.lines().count())
            .sum();
        let mut lines: Vec<String> = change
            .code_diff
            .iter()
            .flat_map(|d| d.diff.lines().map(str::to_string))
            .take(MAX_DIFF_LINES)
            .collect();
        if total > MAX_DIFF_LINES {
            lines.push(format!(
                "... {} more diff lines not shown (the JSON output has the whole diff)",
                total - MAX_DIFF_LINES
            ));
        }
        let modules: Vec<String> = change
            .code_diff
            .iter()
            .map(|d| format!("`{}`", d.module))
            .collect();
        section.text(format!(
            "**Code of `{}`** ({}):\n",
            change.address,
            modules.join(", ")
        ));
        section.code("diff", lines);
    }
}

fn field_text(kind: ChangeKind, diff: &FieldDiff) -> String {
    let mut line = match kind {
        ChangeKind::Create => format!("      {}: {}", diff.field, value(&diff.after)),
        _ => format!(
            "      {}: {} -> {}",
            diff.field,
            value(&diff.before),
            value(&diff.after)
        ),
    };
    if diff.forces_replacement {
        line.push_str("   # forces replacement");
    }
    line
}

/// A collapsible `<details>` section: a summary line and blocks of text
/// and code, which can be cut between lines.
#[derive(Debug, Clone)]
pub(super) struct Section {
    summary: String,
    blocks: Vec<Block>,
}

#[derive(Debug, Clone)]
enum Block {
    /// Markdown text, kept whole or dropped whole.
    Text(String),
    /// A fenced code block, cut between lines when needed.
    Code { lang: String, lines: Vec<String> },
}

impl Section {
    pub(super) fn new(summary: String) -> Section {
        Section {
            summary,
            blocks: Vec::new(),
        }
    }

    pub(super) fn text(&mut self, text: String) {
        self.blocks.push(Block::Text(text));
    }

    pub(super) fn code(&mut self, lang: &str, lines: Vec<String>) {
        self.blocks.push(Block::Code {
            lang: lang.to_string(),
            lines,
        });
    }

    fn open(&self) -> String {
        format!("<details><summary>{}</summary>\n\n", self.summary)
    }

    const CLOSE: &'static str = "</details>\n\n";

    /// The whole section.
    fn render(&self) -> String {
        self.render_within(usize::MAX).0
    }

    /// The section cut to at most `budget` bytes (its summary and closing
    /// tag always kept, so it may exceed a budget too small for those), and
    /// whether anything was left out.
    fn render_within(&self, budget: usize) -> (String, bool) {
        const CUT: &str = "*(cut here: the rest is in the run's artifacts)*\n\n";
        let mut out = self.open();
        let reserve = Self::CLOSE.len() + CUT.len();
        let mut cut = false;
        'blocks: for block in &self.blocks {
            match block {
                Block::Text(text) => {
                    let piece = format!("{text}\n");
                    if out.len() + piece.len() + reserve > budget {
                        cut = true;
                        break;
                    }
                    out.push_str(&piece);
                }
                Block::Code { lang, lines } => {
                    let fence = fence_for(lines);
                    let open = format!("{fence}{lang}\n");
                    let close = format!("{fence}\n\n");
                    if out.len() + open.len() + close.len() + reserve > budget {
                        cut = true;
                        break;
                    }
                    out.push_str(&open);
                    for line in lines {
                        if out.len() + line.len() + 1 + close.len() + reserve > budget {
                            out.push_str(&close);
                            cut = true;
                            break 'blocks;
                        }
                        out.push_str(line);
                        out.push('\n');
                    }
                    out.push_str(&close);
                }
            }
        }
        if cut {
            out.push_str(CUT);
        }
        out.push_str(Self::CLOSE);
        (out, cut)
    }
}

/// A backtick fence longer than any run of backticks in `lines`, so no
/// line can close the block early.
fn fence_for(lines: &[String]) -> String {
    let longest = lines
        .iter()
        .map(|line| line.split(|c| c != '`').map(str::len).max().unwrap_or(0))
        .max()
        .unwrap_or(0);
    "`".repeat((longest + 1).max(3))
}

/// `head`, the sections and `tail`, cut to `BODY_LIMIT - FOOTER_RESERVE`
/// bytes when needed: sections are kept whole while they fit, the first
/// that does not is cut between lines, later ones keep only their summary
/// line, and a note after `head` says the body was cut and that `full`
/// (where the whole is) holds.
pub(super) fn assemble(head: String, sections: Vec<Section>, tail: String, full: &str) -> String {
    let limit = BODY_LIMIT - FOOTER_RESERVE;
    let whole: Vec<String> = sections.iter().map(Section::render).collect();
    let size = head.len() + whole.iter().map(String::len).sum::<usize>() + tail.len();
    if size <= limit {
        return head + &whole.concat() + &tail;
    }
    let mut out = head + &cut_note(full);
    let mut budget = limit.saturating_sub(out.len() + tail.len());
    // Every section keeps at least its summary line: room for those of the
    // sections after the one being placed is kept free.
    let stubs: Vec<String> = sections
        .iter()
        .map(|section| {
            format!(
                "{}*(left out: the run's artifacts have it)*\n\n{}",
                section.open(),
                Section::CLOSE
            )
        })
        .collect();
    let mut cut = false;
    for (index, (section, rendered)) in sections.iter().zip(whole).enumerate() {
        let later: usize = stubs[index + 1..].iter().map(String::len).sum();
        let room = budget.saturating_sub(later);
        let piece = if cut {
            stubs[index].clone()
        } else if rendered.len() <= room {
            rendered
        } else {
            cut = true;
            section.render_within(room).0
        };
        if piece.len() > budget {
            break;
        }
        budget -= piece.len();
        out.push_str(&piece);
    }
    out + &tail
}
