//! Manifest diagnostics: every problem found in one `load`, each with the
//! file, line and column where the offending text is written, the field it
//! concerns, a message, a hint and related places (the other half of a
//! duplicate). Rendering puts a plain `error: <file>:<line>:<column>: <field>:
//! <message>` line first (greppable in CI logs), then a source snippet drawn by
//! miette, then `hint:` and `note:` lines.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceCode};

/// Diagnostics after this many are rendered without source snippets.
const MAX_SNIPPETS: usize = 50;
/// A snippet is drawn only when every line it shows is at most this long (in
/// bytes). miette pads its underlines with format widths, which Rust caps at
/// 65,535 (a longer line made it panic), and a longer line is unreadable in a
/// terminal anyway: the `error:` line still gives the line and column.
const MAX_SNIPPET_LINE_BYTES: usize = 4096;
/// ... and when the lines it shows are at most this long together.
const MAX_SNIPPET_BYTES: usize = 64 * 1024;

/// One problem in the manifests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file, relative to the project root (`infra/storage.yaml`).
    pub file: PathBuf,
    /// 1-based line; 0 when the problem has no position (a missing file).
    pub line: usize,
    /// 1-based column, counted in characters; 0 when `line` is 0.
    pub column: usize,
    /// The manifest path of the value (`kv_namespaces.users.title`); empty for
    /// problems with the file as a whole (YAML syntax, encoding).
    pub field: String,
    /// Lowercase, no trailing period.
    pub message: String,
    /// What the user can do about it.
    pub hint: Option<String>,
    /// Other places that explain the problem (the first declaration of a
    /// duplicate, the text a variable was used in).
    pub related: Vec<Related>,
    /// Byte range of the offending text in `file`, for the source snippet.
    pub span: Option<Range<usize>>,
}

/// A secondary place attached to a [`Diagnostic`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Related {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub span: Option<Range<usize>>,
}

/// Every problem found by one `manifest::load` (or `environments`), sorted by
/// file, line and column. Never empty when returned as an error.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
    /// The text of each file that was read, for snippets.
    sources: BTreeMap<PathBuf, Arc<str>>,
}

impl Diagnostics {
    pub(crate) fn new(mut items: Vec<Diagnostic>, sources: BTreeMap<PathBuf, Arc<str>>) -> Self {
        items.sort_by(|a, b| {
            (&a.file, a.line, a.column, &a.field, &a.message)
                .cmp(&(&b.file, b.line, b.column, &b.field, &b.message))
        });
        items.dedup();
        Diagnostics { items, sources }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.items.iter()
    }

    /// The full report the CLI prints to stderr: for each diagnostic its
    /// `error:` line, a source snippet, `hint:` and `note:` lines, then a
    /// summary line. ANSI colors only when `color` is true.
    pub fn render(&self, color: bool) -> String {
        let mut out = String::new();
        for (index, diagnostic) in self.items.iter().enumerate() {
            // Snippets for the first ones only: each costs a scan of its file.
            self.render_one(&mut out, diagnostic, color, index < MAX_SNIPPETS);
            out.push('\n');
        }
        let count = self.items.len();
        let summary = format!(
            "manifest check failed: {count} {}",
            if count == 1 { "error" } else { "errors" }
        );
        out.push_str(&paint(color, RED_BOLD, &summary));
        out.push('\n');
        out
    }

    fn render_one(&self, out: &mut String, diagnostic: &Diagnostic, color: bool, snippets: bool) {
        out.push_str(&paint(color, RED_BOLD, "error:"));
        out.push(' ');
        out.push_str(&headline(diagnostic));
        out.push('\n');
        let same_file: Vec<&Related> = diagnostic
            .related
            .iter()
            .filter(|related| related.file == diagnostic.file && related.span.is_some())
            .collect();
        if let Some(span) = diagnostic.span.as_ref().filter(|_| snippets) {
            let mut labels = vec![LabeledSpan::new_primary_with_span(
                Some(short_label(&diagnostic.message)),
                to_source_span(span),
            )];
            for related in &same_file {
                if let Some(span) = &related.span {
                    labels.push(LabeledSpan::new_with_span(
                        Some(related.message.clone()),
                        to_source_span(span),
                    ));
                }
            }
            self.snippet(out, &diagnostic.file, labels, color);
        }
        if let Some(hint) = &diagnostic.hint {
            out.push_str(&paint(color, CYAN_BOLD, "hint:"));
            out.push(' ');
            out.push_str(hint);
            out.push('\n');
        }
        for related in &diagnostic.related {
            out.push_str(&paint(color, BLUE_BOLD, "note:"));
            out.push(' ');
            out.push_str(&location_text(&related.file, related.line, related.column));
            out.push_str(": ");
            out.push_str(&related.message);
            out.push('\n');
            let shown_above = diagnostic.span.is_some() && same_file.contains(&related);
            if snippets
                && !shown_above
                && let Some(span) = &related.span
            {
                let label = LabeledSpan::new_primary_with_span(
                    Some(related.message.clone()),
                    to_source_span(span),
                );
                self.snippet(out, &related.file, vec![label], color);
            }
        }
    }

    /// Draws the source lines around `labels` with miette, without its header
    /// line (our own `error:` line stands in for it).
    fn snippet(&self, out: &mut String, file: &Path, labels: Vec<LabeledSpan>, color: bool) {
        let Some(text) = self.sources.get(file) else {
            return;
        };
        if !labels
            .iter()
            .all(|label| fits_in_a_snippet(text, label.offset(), label.len()))
        {
            return;
        }
        let report = Snippet {
            source: NamedSource::new(file.display().to_string(), Arc::clone(text)),
            labels,
        };
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let handler = GraphicalReportHandler::new_themed(theme)
            .with_width(100_000)
            .with_context_lines(1)
            .without_syntax_highlighting()
            .with_links(false);
        let mut rendered = String::new();
        if handler.render_report(&mut rendered, &report).is_err() {
            return;
        }
        // The first line is miette's `  × <message>` header; our message is a
        // single line, so dropping one line leaves just the snippet.
        let body = rendered
            .split_once('\n')
            .map(|(_, rest)| rest)
            .unwrap_or_default();
        for line in body.lines() {
            if line.trim().is_empty() {
                continue;
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
}

impl fmt::Display for Diagnostics {
    /// One `error:` line (and `hint:` line) per diagnostic, no snippets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, diagnostic) in self.items.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            write!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", headline(self))?;
        if let Some(hint) = &self.hint {
            write!(f, "\nhint: {hint}")?;
        }
        for related in &self.related {
            write!(
                f,
                "\nnote: {}: {}",
                location_text(&related.file, related.line, related.column),
                related.message
            )?;
        }
        Ok(())
    }
}

/// `<file>:<line>:<column>: <field>: <message>`, leaving out what is unknown.
fn headline(diagnostic: &Diagnostic) -> String {
    let mut text = location_text(&diagnostic.file, diagnostic.line, diagnostic.column);
    if !diagnostic.field.is_empty() {
        text.push_str(": ");
        text.push_str(&diagnostic.field);
    }
    text.push_str(": ");
    text.push_str(&diagnostic.message);
    text
}

fn location_text(file: &Path, line: usize, column: usize) -> String {
    // Paths are shown with `/` on every platform so messages are stable.
    let file = file.to_string_lossy().replace('\\', "/");
    if line == 0 {
        file
    } else {
        format!("{file}:{line}:{column}")
    }
}

/// Whether the lines a snippet of `offset..offset + len` shows (those of the
/// span and one line of context on each side, as drawn) are short enough to
/// draw. Works on bytes: `offset` need not be a character boundary.
fn fits_in_a_snippet(text: &str, offset: usize, len: usize) -> bool {
    let bytes = text.as_bytes();
    let start = offset.min(bytes.len());
    let end = offset.saturating_add(len).min(bytes.len());
    let line_begin = |at: usize| {
        bytes[..at]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |newline| newline + 1)
    };
    let line_end = |at: usize| {
        bytes[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |newline| at + newline)
    };
    let first = match line_begin(start) {
        0 => 0,
        begin => line_begin(begin - 1),
    };
    let last = match line_end(end) {
        stop if stop < bytes.len() => line_end(stop + 1),
        stop => stop,
    };
    last - first <= MAX_SNIPPET_BYTES
        && bytes[first..last]
            .split(|&b| b == b'\n')
            .all(|line| line.len() <= MAX_SNIPPET_LINE_BYTES)
}

/// The label under the snippet: the message, cut short when long.
fn short_label(message: &str) -> String {
    const MAX: usize = 80;
    if message.chars().count() <= MAX {
        return message.to_string();
    }
    let cut: String = message.chars().take(MAX - 1).collect();
    format!("{cut}…")
}

fn to_source_span(span: &Range<usize>) -> miette::SourceSpan {
    (span.start, span.end.saturating_sub(span.start)).into()
}

const RED_BOLD: &str = "\u{1b}[1;31m";
const CYAN_BOLD: &str = "\u{1b}[1;36m";
const BLUE_BOLD: &str = "\u{1b}[1;34m";

fn paint(color: bool, style: &str, text: &str) -> String {
    if color {
        format!("{style}{text}\u{1b}[0m")
    } else {
        text.to_string()
    }
}

/// The miette view of one snippet: a source and its labels, no message.
#[derive(Debug)]
struct Snippet {
    source: NamedSource<Arc<str>>,
    labels: Vec<LabeledSpan>,
}

impl fmt::Display for Snippet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("snippet")
    }
}

impl std::error::Error for Snippet {}

impl miette::Diagnostic for Snippet {
    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(self.labels.iter().cloned()))
    }
}
