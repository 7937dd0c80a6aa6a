//! Manifest files as text and as a spanned YAML node tree.
//!
//! Each file is read once (size-capped, UTF-8 checked), parsed by serde-saphyr
//! under a tight [`Budget`] (no alias bombs, no deep nesting, one document) and
//! turned into a [`Node`] tree in which every value and key knows the
//! [`Origin`] of its text. Duplicate keys are reported here, with both places,
//! and the later one is dropped. Nothing in this module knows the manifest
//! schema.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::{Budget, DuplicateKeyPolicy, Location, NonFiniteFloatPolicy, Spanned};

use super::report::{Problem, Sink};

/// A manifest file may not be larger than this (1 MiB): ample for thousands
/// of resources, small enough to parse in well under a second.
pub(crate) const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// The deepest nesting of mappings and sequences accepted in a manifest.
pub(crate) const MAX_DEPTH: usize = 32;
const MAX_NODES: usize = 50_000;
const MAX_ALIASES: usize = 1_000;
const MAX_REPLAYED_EVENTS: usize = 20_000;

/// Index of a file in [`Sources`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct FileId(u32);

/// Where a piece of text is written: a file, a 1-based line and column
/// (characters) and a byte range. `line == 0` means "the file as a whole".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Origin {
    pub file: FileId,
    pub line: usize,
    pub column: usize,
    pub start: usize,
    pub end: usize,
}

impl Origin {
    /// The file as a whole, no position (a file that does not exist).
    pub fn whole(file: FileId) -> Origin {
        Origin {
            file,
            line: 0,
            column: 0,
            start: 0,
            end: 0,
        }
    }

    /// The first character of a file.
    pub fn file_start(file: FileId) -> Origin {
        Origin {
            file,
            line: 1,
            column: 1,
            start: 0,
            end: 0,
        }
    }
}

/// The files read by one load, with their text (for snippets and for slicing
/// the source text of scalars).
#[derive(Debug, Default)]
pub(crate) struct Sources {
    files: Vec<(PathBuf, Option<Arc<str>>)>,
}

impl Sources {
    /// Registers `relative` (a path relative to the project root). `text` is
    /// `None` for a file that could not be read or does not exist.
    pub fn add(&mut self, relative: PathBuf, text: Option<Arc<str>>) -> FileId {
        let id = FileId(u32::try_from(self.files.len()).unwrap_or(u32::MAX));
        self.files.push((relative, text));
        id
    }

    pub fn path(&self, file: FileId) -> &Path {
        self.files
            .get(file.0 as usize)
            .map(|(path, _)| path.as_path())
            .unwrap_or(Path::new(""))
    }

    pub fn text(&self, file: FileId) -> Option<&str> {
        self.files
            .get(file.0 as usize)
            .and_then(|(_, text)| text.as_deref())
    }

    pub fn into_texts(self) -> impl Iterator<Item = (PathBuf, Arc<str>)> {
        self.files
            .into_iter()
            .filter_map(|(path, text)| Some((path, text?)))
    }
}

/// A YAML value with the place it is written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub value: Value,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Str(String),
    /// A plain scalar that YAML reads as a boolean or a number; `raw` is the
    /// text exactly as written (so `0123` stays `0123` where a string is due).
    Typed {
        kind: ScalarKind,
        raw: String,
    },
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ScalarKind {
    Bool(bool),
    Int,
    Float,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub key: Key,
    pub value: Node,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Key {
    pub name: String,
    pub origin: Origin,
}

impl Value {
    /// "a mapping", "a string", ... for messages.
    pub fn describe(&self) -> String {
        match self {
            Value::Null => "nothing (null)".to_string(),
            Value::Str(text) => format!("the string {}", quote_short(text)),
            Value::Typed {
                kind: ScalarKind::Bool(_),
                raw,
            } => format!("the boolean `{raw}`"),
            Value::Typed {
                kind: ScalarKind::Int,
                raw,
            } => format!("the integer `{raw}`"),
            Value::Typed {
                kind: ScalarKind::Float,
                raw,
            } => format!("the number `{raw}`"),
            Value::Seq(_) => "a sequence".to_string(),
            Value::Map(_) => "a mapping".to_string(),
        }
    }
}

/// `"text"` with the text cut short when long.
pub(crate) fn quote_short(text: &str) -> String {
    const MAX: usize = 60;
    if text.chars().count() <= MAX {
        format!("{text:?}")
    } else {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut:?}…")
    }
}

impl Node {
    pub fn as_map(&self) -> Option<&[Entry]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }
}

/// Reads `root/relative` as a manifest file and registers it in `sources`.
/// Returns the file id and its text when it could be read as UTF-8 within the
/// size limit; reports a problem otherwise.
pub(crate) fn read(
    root: &Path,
    relative: &Path,
    sources: &mut Sources,
    sink: &mut Sink,
) -> (FileId, Option<Arc<str>>) {
    let full = root.join(relative);
    let refuse = |sources: &mut Sources, sink: &mut Sink, message: String, hint: &str| {
        let id = sources.add(relative.to_path_buf(), None);
        let problem = Problem::new(Origin::file_start(id), "", message);
        sink.push(if hint.is_empty() {
            problem
        } else {
            problem.hint(hint)
        });
        (id, None)
    };
    // A manifest file must be a regular file inside the project: a symlink
    // to `/proc/self/environ`, a device or a file elsewhere would put what
    // it holds (tokens, secrets) into diagnostics and plan comments.
    let canonical = match full.canonicalize() {
        Ok(path) => path,
        Err(error) => {
            return refuse(sources, sink, format!("cannot read the file: {error}"), "");
        }
    };
    let inside = root
        .canonicalize()
        .is_ok_and(|root| canonical.starts_with(root));
    if !inside {
        return refuse(
            sources,
            sink,
            "the file leaves the project root through a symlink".to_string(),
            "manifests must be files inside the project: copy the file instead of linking to it",
        );
    }
    match std::fs::metadata(&canonical) {
        Ok(metadata) if metadata.is_file() => {}
        Ok(_) => {
            return refuse(
                sources,
                sink,
                "not a regular file".to_string(),
                "manifests must be plain files",
            );
        }
        Err(error) => {
            return refuse(sources, sink, format!("cannot read the file: {error}"), "");
        }
    }
    // Read at most one byte past the limit, whatever the metadata says.
    let read = std::fs::File::open(&canonical).and_then(|file| {
        use std::io::Read;
        let mut bytes = Vec::new();
        file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
        Ok(bytes)
    });
    let bytes = match read {
        Ok(bytes) => bytes,
        Err(error) => {
            return refuse(sources, sink, format!("cannot read the file: {error}"), "");
        }
    };
    let size = match std::fs::metadata(&canonical) {
        Ok(metadata) => metadata.len().max(bytes.len() as u64),
        Err(_) => bytes.len() as u64,
    };
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return refuse(
            sources,
            sink,
            format!(
                "the file is {}, larger than the {} limit for a manifest file",
                human_bytes(size),
                human_bytes(MAX_FILE_BYTES)
            ),
            "split the resources over several files under infra/, or check that this is the file you meant",
        );
    }
    match String::from_utf8(bytes) {
        Ok(text) => {
            let text: Arc<str> = Arc::from(text);
            let id = sources.add(relative.to_path_buf(), Some(Arc::clone(&text)));
            (id, Some(text))
        }
        Err(error) => {
            let bytes = error.into_bytes();
            let valid_up_to = std::str::from_utf8(&bytes)
                .err()
                .map(|e| e.valid_up_to())
                .unwrap_or(0);
            // The valid prefix is shown in snippets; the bad byte is not.
            let prefix = String::from_utf8_lossy(&bytes[..valid_up_to]).into_owned();
            let (line, column) = line_column(&prefix, prefix.len());
            let bad = bytes.get(valid_up_to).copied().unwrap_or(0);
            let id = sources.add(relative.to_path_buf(), Some(Arc::from(prefix)));
            let message = if bytes.starts_with(&[0xff, 0xfe]) || bytes.starts_with(&[0xfe, 0xff]) {
                "the file is UTF-16 (it starts with a UTF-16 byte-order mark), not UTF-8"
                    .to_string()
            } else {
                format!("the file is not valid UTF-8 (byte 0x{bad:02x} at offset {valid_up_to})")
            };
            sink.push(
                Problem::new(
                    Origin {
                        file: id,
                        line,
                        column,
                        start: valid_up_to,
                        end: valid_up_to,
                    },
                    "",
                    message,
                )
                .hint("save the file as UTF-8"),
            );
            (id, None)
        }
    }
}

fn human_bytes(bytes: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if bytes >= 1024 * 1024 {
        format!("{:.1} MiB", bytes as f64 / MIB)
    } else if bytes >= 1024 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{bytes} bytes")
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Parses one file into a tree. `None` (with a problem reported) when the
/// YAML is malformed or over budget.
pub(crate) fn parse(file: FileId, text: &str, sink: &mut Sink) -> Option<Node> {
    if let Some(start) = lone_carriage_return(text) {
        // YAML reads a lone CR as a line break, editors and CI logs mostly
        // do not: every line number after it would be off.
        let (line, column) = line_column(text, start);
        sink.push(
            Problem::new(
                Origin {
                    file,
                    line,
                    column,
                    start,
                    end: start + 1,
                },
                "",
                "the file has a carriage return (CR) that is not part of a CRLF line end",
            )
            .hint("save the file with LF (or CRLF) line ends"),
        );
        return None;
    }
    let parsed = serde_saphyr::from_str_with_options::<Spanned<Raw>>(text, options());
    match parsed {
        Ok(raw) => {
            let mut converter = Converter { file, text, sink };
            Some(converter.node(raw, ""))
        }
        Err(error) => {
            sink.push(yaml_error(file, text, &error));
            None
        }
    }
}

/// The byte offset of the first `\r` not followed by `\n`.
fn lone_carriage_return(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    bytes
        .iter()
        .enumerate()
        .position(|(index, &b)| b == b'\r' && bytes.get(index + 1) != Some(&b'\n'))
}

fn options() -> serde_saphyr::Options {
    let mut budget = Budget::default();
    budget.max_depth = MAX_DEPTH;
    budget.max_nodes = MAX_NODES;
    budget.max_aliases = MAX_ALIASES;
    budget.max_anchors = MAX_ALIASES;
    budget.max_documents = 1;
    budget.max_events = MAX_NODES * 2;
    budget.max_reader_input_bytes = Some(MAX_FILE_BYTES as usize);
    budget.max_total_scalar_bytes = MAX_FILE_BYTES as usize;
    budget.max_recorded_anchor_events = MAX_REPLAYED_EVENTS;
    budget.max_merge_keys = MAX_ALIASES;
    let mut alias_limits = serde_saphyr::options::AliasLimits::default();
    alias_limits.max_total_replayed_events = MAX_REPLAYED_EVENTS;
    alias_limits.max_replay_stack_depth = MAX_DEPTH;
    serde_saphyr::options! {
        budget: Some(budget),
        duplicate_keys: DuplicateKeyPolicy::PassThrough,
        strict_booleans: true,
        non_finite_float_policy: NonFiniteFloatPolicy::AsString,
        with_snippet: false,
        alias_limits: alias_limits,
    }
}

/// Turns a serde-saphyr error into a located problem with plain wording.
fn yaml_error(file: FileId, text: &str, error: &serde_saphyr::Error) -> Problem {
    let inner = original(error);
    let origin = error
        .location()
        .filter(|location| location.line() > 0)
        .map(|location| origin_of(file, text, &location))
        .unwrap_or_else(|| Origin::file_start(file));
    let mut unclosed = None;
    let (message, hint) = match inner {
        serde_saphyr::Error::Budget { breach, .. } => budget_message(breach),
        serde_saphyr::Error::AliasReplayLimitExceeded { .. }
        | serde_saphyr::Error::AliasExpansionLimitExceeded { .. }
        | serde_saphyr::Error::AliasReplayStackDepthExceeded { .. }
        | serde_saphyr::Error::AliasReplayCounterOverflow { .. } => alias_message(),
        serde_saphyr::Error::MultipleDocuments { .. } => (
            "the file holds more than one YAML document".to_string(),
            "a manifest file is one document: remove the `---` separator or move the rest to another file"
                .to_string(),
        ),
        serde_saphyr::Error::UnknownAnchor { .. } => match alias_at(text, origin.start) {
            Some(name) => (
                format!("the alias `*{name}` has no anchor `&{name}` before it"),
                format!(
                    "define the anchor (`&{name}`) before the alias, in the same file: anchors do not reach across files"
                ),
            ),
            None => (
                "an alias refers to an anchor that is not defined".to_string(),
                "define the anchor (`&name`) before the alias (`*name`), in the same file"
                    .to_string(),
            ),
        },
        serde_saphyr::Error::RecursiveReferencesRequireWeakTypes { .. } => {
            let alias = alias_at(text, origin.start)
                .map(|name| format!("the alias `*{name}` is"))
                .unwrap_or_else(|| "an alias is".to_string());
            (
                format!("{alias} inside the value of its own anchor"),
                "a value cannot contain itself: move the alias out of the anchored value"
                    .to_string(),
            )
        }
        serde_saphyr::Error::SerdeInvalidType {
            unexpected,
            expected,
            ..
        } if expected == KEY_EXPECTING => (
            format!("a mapping key must be a name such as `users`, not a {unexpected}"),
            "complex keys (`? [a, b]`, `{a: b}: ...`) are not supported in manifests".to_string(),
        ),
        other => {
            let message = plain_parser_message(&strip_position(&other.to_string()));
            let mentions_tabs = message
                .split(|c: char| !c.is_alphanumeric())
                .any(|word| word == "tab" || word == "tabs");
            let hint = if mentions_tabs {
                "indent with spaces: YAML does not allow tabs in indentation".to_string()
            } else {
                unclosed = unclosed_flow(text, origin.start);
                match unclosed {
                    Some((_, bracket)) => format!(
                        "the `{bracket}` marked below is never closed: end it with `{}`, or quote the value if the `{bracket}` is text",
                        closing(bracket)
                    ),
                    None if message.contains("block mapping") => "check the indentation: the keys of one mapping start in the same column, and a key's fields are indented more than the key".to_string(),
                    None => "fix the YAML syntax here; values holding `: `, ` #` or starting with `{`, `[`, `*`, `&`, `!`, `%`, `@` need quotes".to_string(),
                }
            };
            (message, hint)
        }
    };
    let problem = Problem::new(origin, "", format!("invalid YAML: {message}")).hint(hint);
    match unclosed {
        Some((start, bracket)) => {
            let (line, column) = line_column(text, start);
            let at = Origin {
                file,
                line,
                column,
                start,
                end: start + 1,
            };
            problem.related(at, format!("this `{bracket}` is never closed"))
        }
        None => problem,
    }
}

/// What [`RawKey`] expects, as serde-saphyr quotes it in a type error.
const KEY_EXPECTING: &str = "a scalar key";

/// The name of the alias (`*name`) written at byte `start` of `text`.
fn alias_at(text: &str, start: usize) -> Option<&str> {
    let rest = text.get(start..)?.strip_prefix('*')?;
    let end = rest
        .find(|c: char| c.is_whitespace() || ",[]{}".contains(c))
        .unwrap_or(rest.len());
    (end > 0).then(|| &rest[..end])
}

/// The parser's message with its quoting made consistent: ``unexpected
/// character: `x'`` becomes ``unexpected character `x` `` (control
/// characters as `U+0000`).
fn plain_parser_message(message: &str) -> String {
    if let Some(quoted) = message
        .strip_prefix("unexpected character: `")
        .and_then(|rest| rest.strip_suffix('\''))
    {
        let shown = match quoted
            .strip_prefix("\\u{")
            .and_then(|hex| hex.strip_suffix('}'))
        {
            Some(hex) => format!("U+{:0>4}", hex.to_uppercase()),
            None => format!("`{quoted}`"),
        };
        return format!("unexpected character {shown}");
    }
    message.to_string()
}

fn closing(bracket: char) -> char {
    if bracket == '[' { ']' } else { '}' }
}

/// A flow collection (`[` or `{`) opened before byte `error` of `text` and
/// never closed in the whole file: the usual cause of a syntax error
/// reported further on. Returns its byte offset and bracket. A light
/// scan (quotes, comments and block scalars are skipped), used for a hint
/// only: `None` when unsure.
fn unclosed_flow(text: &str, error: usize) -> Option<(usize, char)> {
    let mut open: Vec<(usize, char)> = Vec::new();
    // The brackets open where the error is.
    let mut open_at_error: Option<Vec<(usize, char)>> = None;
    // Indentation of the line that started a block scalar (`|`, `>`): more
    // indented lines after it are its text.
    let mut block_scalar: Option<usize> = None;
    let mut quote: Option<char> = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let line_start = offset;
        offset += line.len();
        if open_at_error.is_none() && line_start >= error {
            open_at_error = Some(open.clone());
        }
        let indent = line.len() - line.trim_start_matches(' ').len();
        if let Some(parent) = block_scalar {
            if line.trim().is_empty() || indent > parent {
                continue;
            }
            block_scalar = None;
        }
        // Whether a value may start here (a quote or bracket there is
        // syntax; elsewhere it is text of a plain scalar).
        let mut value_start = true;
        // Only blanks (and `-` or `?` indicators) so far on this line.
        let mut line_start_so_far = true;
        let mut previous: Option<char> = None;
        let mut chars = line.char_indices().peekable();
        while let Some((index, c)) = chars.next() {
            if open_at_error.is_none() && line_start + index >= error {
                open_at_error = Some(open.clone());
            }
            let next = chars.peek().map(|&(_, n)| n);
            if let Some(q) = quote {
                // `\x` in double quotes and `''` in single quotes are escapes.
                let escape =
                    (c == '\\' && q == '"') || (c == '\'' && q == '\'' && next == Some('\''));
                if escape {
                    chars.next();
                } else if c == q {
                    quote = None;
                    value_start = false;
                }
                continue;
            }
            let spaced = matches!(next, None | Some(' ' | '\t' | '\r' | '\n'));
            let at_line_start = line_start_so_far;
            let after_blank = matches!(previous, None | Some(' ' | '\t'));
            previous = Some(c);
            if !matches!(c, ' ' | '\t' | '\r' | '\n' | '-' | '?') {
                line_start_so_far = false;
            }
            value_start = match c {
                ' ' | '\t' | '\r' | '\n' => value_start,
                '#' if after_blank => break,
                '"' | '\'' if value_start => {
                    quote = Some(c);
                    false
                }
                // In a flow collection brackets are always syntax.
                '[' | '{' if value_start || !open.is_empty() => {
                    open.push((line_start + index, c));
                    true
                }
                ']' | '}' if !open.is_empty() => {
                    open.pop();
                    false
                }
                ',' if !open.is_empty() => true,
                ':' if spaced || !open.is_empty() => true,
                '-' | '?' if spaced && at_line_start => true,
                '|' | '>' if value_start && open.is_empty() => {
                    block_scalar = Some(indent);
                    break;
                }
                _ => false,
            };
        }
    }
    // Of those, the innermost one still open at the end of the file (`open`
    // is in offset order, being a stack of increasing offsets).
    open_at_error
        .unwrap_or_else(|| open.clone())
        .into_iter()
        .rev()
        .find(|bracket| open.binary_search(bracket).is_ok())
}

fn budget_message(breach: &BudgetBreach) -> (String, String) {
    match breach {
        BudgetBreach::Depth { .. } => (
            format!("nesting is deeper than {MAX_DEPTH} levels"),
            "manifests nest a few levels at most; check the indentation".to_string(),
        ),
        BudgetBreach::Aliases { .. }
        | BudgetBreach::Anchors { .. }
        | BudgetBreach::AliasAnchorRatio { .. }
        | BudgetBreach::RecordedAnchorEvents { .. }
        | BudgetBreach::RecordedAnchorBytes { .. }
        | BudgetBreach::MergeKeys { .. } => alias_message(),
        BudgetBreach::Documents { .. } => (
            "the file holds more than one YAML document".to_string(),
            "a manifest file is one document: remove the `---` separator or move the rest to another file"
                .to_string(),
        ),
        BudgetBreach::Nodes { .. } | BudgetBreach::Events { .. } => (
            format!("the file holds more than {MAX_NODES} values"),
            "split the resources over several files under infra/".to_string(),
        ),
        _ => (
            "the file is too large or too complex to be a manifest".to_string(),
            "split the resources over several files under infra/".to_string(),
        ),
    }
}

fn alias_message() -> (String, String) {
    (
        "too many anchors, aliases or merge keys".to_string(),
        "anchors (`&a`) and aliases (`*a`) expand to too much data; write the values out"
            .to_string(),
    )
}

/// The error under serde-saphyr's alias and snippet wrappers.
fn original(mut error: &serde_saphyr::Error) -> &serde_saphyr::Error {
    loop {
        match error {
            serde_saphyr::Error::AliasError { error: inner, .. }
            | serde_saphyr::Error::WithSnippet { error: inner, .. } => error = inner,
            other => return other,
        }
    }
}

/// serde-saphyr appends ` at line L, column C` to its messages; the location
/// is shown separately.
fn strip_position(message: &str) -> String {
    let trimmed = match message.rfind(" at line ") {
        Some(index) if message[index..].contains("column") => &message[..index],
        _ => message,
    };
    trimmed.trim().to_string()
}

fn origin_of(file: FileId, text: &str, location: &Location) -> Origin {
    let line = usize::try_from(location.line()).unwrap_or(usize::MAX);
    let column = usize::try_from(location.column()).unwrap_or(usize::MAX);
    let span = location.span();
    let (start, end) = match (span.byte_offset(), span.byte_len()) {
        (Some(offset), Some(len)) => {
            let start = usize::try_from(offset).unwrap_or(0).min(text.len());
            let end = start
                .saturating_add(usize::try_from(len).unwrap_or(0))
                .min(text.len());
            (start, end)
        }
        _ => {
            let start = byte_offset_of(text, line, column);
            (start, start)
        }
    };
    Origin {
        file,
        line,
        column,
        start,
        end,
    }
}

/// Byte offset of a 1-based line and column (characters) in `text`.
fn byte_offset_of(text: &str, line: usize, column: usize) -> usize {
    let mut offset = 0;
    for (index, content) in text.split_inclusive('\n').enumerate() {
        if index + 1 == line {
            let within: usize = content
                .chars()
                .take(column.saturating_sub(1))
                .map(char::len_utf8)
                .sum();
            return offset + within;
        }
        offset += content.len();
    }
    text.len()
}

struct Converter<'a> {
    file: FileId,
    text: &'a str,
    sink: &'a mut Sink,
}

impl Converter<'_> {
    fn origin(&self, spanned: &Location) -> Origin {
        origin_of(self.file, self.text, spanned)
    }

    /// The source text of a scalar (used for plain booleans and numbers).
    fn raw_text(&self, origin: Origin) -> String {
        self.text
            .get(origin.start..origin.end)
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    fn node(&mut self, raw: Spanned<Raw>, path: &str) -> Node {
        // `defined` is where the text is written (for an alias, the anchor).
        let origin = self.origin(&raw.defined);
        let value = match raw.value {
            Raw::Null => Value::Null,
            Raw::Str(text) => Value::Str(text),
            Raw::Bool(value) => Value::Typed {
                kind: ScalarKind::Bool(value),
                raw: self.raw_text(origin),
            },
            Raw::Int => Value::Typed {
                kind: ScalarKind::Int,
                raw: self.raw_text(origin),
            },
            Raw::Float => Value::Typed {
                kind: ScalarKind::Float,
                raw: self.raw_text(origin),
            },
            Raw::Seq(items) => Value::Seq(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(index, item)| self.node(item, &format!("{path}[{index}]")))
                    .collect(),
            ),
            Raw::Map(pairs) => {
                let mut seen: HashMap<String, Origin> = HashMap::new();
                let mut entries = Vec::with_capacity(pairs.len());
                for (raw_key, raw_value) in pairs {
                    let key_origin = self.origin(&raw_key.defined);
                    let name = match raw_key.value.0 {
                        Some(name) => name,
                        None => self.raw_text(key_origin),
                    };
                    let child_path = join(path, &name);
                    if let Some(first) = seen.get(&name) {
                        self.sink.push(
                            Problem::new(key_origin, child_path, format!("duplicate key `{name}`"))
                                .hint("a key may appear once in a mapping; remove or rename one of them")
                                .related(*first, "first defined here"),
                        );
                        continue;
                    }
                    seen.insert(name.clone(), key_origin);
                    let value = self.node(raw_value, &child_path);
                    entries.push(Entry {
                        key: Key {
                            name,
                            origin: key_origin,
                        },
                        value,
                    });
                }
                Value::Map(entries)
            }
        };
        Node { value, origin }
    }
}

/// `parent.child`, or `child` at the top.
pub(crate) fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_string()
    } else {
        format!("{parent}.{child}")
    }
}

/// What serde-saphyr hands us, before locations are resolved.
enum Raw {
    Null,
    Bool(bool),
    Int,
    Float,
    Str(String),
    Seq(Vec<Spanned<Raw>>),
    Map(Vec<(Spanned<RawKey>, Spanned<Raw>)>),
}

/// A mapping key: `Some(text)` for a string, `None` for another scalar (its
/// source text is taken from the span).
struct RawKey(Option<String>);

impl<'de> Deserialize<'de> for RawKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = RawKey;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a scalar key")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<RawKey, E> {
                Ok(RawKey(Some(value.to_string())))
            }
            fn visit_string<E: de::Error>(self, value: String) -> Result<RawKey, E> {
                Ok(RawKey(Some(value)))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<RawKey, E> {
                Ok(RawKey(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<RawKey, E> {
                Ok(RawKey(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<RawKey, E> {
                Ok(RawKey(None))
            }
            fn visit_i128<E: de::Error>(self, _: i128) -> Result<RawKey, E> {
                Ok(RawKey(None))
            }
            fn visit_u128<E: de::Error>(self, _: u128) -> Result<RawKey, E> {
                Ok(RawKey(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<RawKey, E> {
                Ok(RawKey(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<RawKey, E> {
                Ok(RawKey(None))
            }
        }
        deserializer.deserialize_any(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RawVisitor;
        impl<'de> Visitor<'de> for RawVisitor {
            type Value = Raw;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Raw, E> {
                Ok(Raw::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Raw, E> {
                Ok(Raw::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Raw, D::Error> {
                Raw::deserialize(deserializer)
            }
            fn visit_bool<E: de::Error>(self, value: bool) -> Result<Raw, E> {
                Ok(Raw::Bool(value))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Raw, E> {
                Ok(Raw::Int)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Raw, E> {
                Ok(Raw::Int)
            }
            fn visit_i128<E: de::Error>(self, _: i128) -> Result<Raw, E> {
                Ok(Raw::Int)
            }
            fn visit_u128<E: de::Error>(self, _: u128) -> Result<Raw, E> {
                Ok(Raw::Int)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Raw, E> {
                Ok(Raw::Float)
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Raw, E> {
                Ok(Raw::Str(value.to_string()))
            }
            fn visit_string<E: de::Error>(self, value: String) -> Result<Raw, E> {
                Ok(Raw::Str(value))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<Raw, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = access.next_element()? {
                    items.push(item);
                }
                Ok(Raw::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Raw, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = access.next_entry()? {
                    pairs.push(pair);
                }
                Ok(Raw::Map(pairs))
            }
        }
        deserializer.deserialize_any(RawVisitor)
    }
}
