//! Collecting problems while loading: every stage pushes [`Problem`]s (located
//! by [`Origin`]) into one [`Sink`]; at the end they become
//! [`Diagnostics`] with paths, lines and columns.

use std::collections::BTreeMap;

use super::diagnostic::{Diagnostic, Diagnostics, Related};
use super::yaml::{Origin, Sources};

/// One problem, located by origin (resolved to a path when reported).
#[derive(Debug, Clone)]
pub(crate) struct Problem {
    pub at: Origin,
    pub field: String,
    pub message: String,
    pub hint: Option<String>,
    pub related: Vec<(Origin, String)>,
}

impl Problem {
    pub fn new(at: Origin, field: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            at,
            field: field.into(),
            message: message.into(),
            hint: None,
            related: Vec::new(),
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Problem {
        self.hint = Some(hint.into());
        self
    }

    pub fn related(mut self, at: Origin, message: impl Into<String>) -> Problem {
        self.related.push((at, message.into()));
        self
    }
}

/// Where problems are collected.
#[derive(Debug, Default)]
pub(crate) struct Sink {
    problems: Vec<Problem>,
}

impl Sink {
    pub fn push(&mut self, problem: Problem) {
        self.problems.push(problem);
    }

    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    /// How many problems were collected (to tell whether a stage added any).
    pub fn len(&self) -> usize {
        self.problems.len()
    }

    /// Resolves every problem against `sources`; the files' texts go along
    /// for snippets.
    pub fn into_diagnostics(self, sources: Sources) -> Diagnostics {
        let items = self
            .problems
            .into_iter()
            .map(|problem| {
                let span = |origin: Origin| (origin.line > 0).then_some(origin.start..origin.end);
                Diagnostic {
                    file: sources.path(problem.at.file).to_path_buf(),
                    line: problem.at.line,
                    column: problem.at.column,
                    field: problem.field,
                    message: problem.message,
                    hint: problem.hint,
                    span: span(problem.at),
                    related: problem
                        .related
                        .into_iter()
                        .map(|(origin, message)| Related {
                            file: sources.path(origin.file).to_path_buf(),
                            line: origin.line,
                            column: origin.column,
                            message,
                            span: span(origin),
                        })
                        .collect(),
                }
            })
            .collect();
        let texts: BTreeMap<_, _> = sources.into_texts().collect();
        Diagnostics::new(items, texts)
    }
}

/// The candidate most similar to `given`, when it is similar enough to
/// suggest (`titel` -> `title`).
pub(crate) fn did_you_mean<'a>(
    given: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = given.to_ascii_lowercase();
    let mut best: Option<(f64, &'a str)> = None;
    for candidate in candidates {
        if candidate == given {
            continue;
        }
        let score = if candidate.to_ascii_lowercase() == lower {
            1.0
        } else {
            strsim::jaro_winkler(&lower, &candidate.to_ascii_lowercase())
        };
        if score >= 0.8 && best.is_none_or(|(top, _)| score > top) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// `a`, `b` and `c` as "`a`, `b`, `c`".
pub(crate) fn list(items: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    let quoted: Vec<String> = items
        .into_iter()
        .map(|item| format!("`{}`", item.as_ref()))
        .collect();
    if quoted.is_empty() {
        "none".to_string()
    } else {
        quoted.join(", ")
    }
}
