//! From node trees to values: a [`Fields`] reader that takes the fields of one
//! mapping by name (so adding a field to the schema is one line), reports
//! wrong types, missing and unknown fields (with did-you-mean), and
//! interpolates `${var}` in strings into [`Text`]s that remember where each
//! character came from.
//!
//! **Invariant:** interpolation measures what a value would expand to
//! before it copies anything, and refuses a value over
//! [`ExpansionLimits`] without building it; the work it does is counted in
//! [`ExpansionWork`] (the tests bound the work, not the time).

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::rc::Rc;

use super::report::{Problem, Sink, did_you_mean, list};
use super::yaml::{Entry, Node, Origin, ScalarKind, Sources, Value, join, quote_short};

/// The name of the built-in variable (the environment's file stem).
pub(crate) const ENV_VAR: &str = "env";

/// What a part of an expanded value costs against
/// [`ExpansionLimits::total`] besides its bytes: each part is remembered
/// (with its origin) for locating problems.
const PIECE_COST: usize = 64;

/// How far `${...}` may expand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ExpansionLimits {
    /// The longest string one value may expand to.
    pub value: usize,
    /// What all `${...}` of one load may expand to together (bytes, and
    /// [`PIECE_COST`] per part): a few variables used in many places could
    /// otherwise take any amount of memory and time.
    pub total: usize,
}

impl ExpansionLimits {
    /// The limits of every load: 1 MiB per value (no Cloudflare field comes
    /// close, and a manifest file is at most as large) and 64 MiB in all.
    pub const MANIFEST: ExpansionLimits = ExpansionLimits {
        value: 1024 * 1024,
        total: 64 * 1024 * 1024,
    };
}

/// The work interpolation did in one load.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ExpansionWork {
    /// Bytes of the scalars that were interpolated, as written.
    pub scalar_bytes: usize,
    /// Bytes of those scalars walked to locate their parts: at most
    /// `scalar_bytes`, each scalar is walked once (linear in its length).
    pub scanned_bytes: usize,
    /// Bytes copied out of variables' values into expanded values.
    pub copied_bytes: usize,
    /// What the copies cost against [`ExpansionLimits::total`] (bytes and
    /// [`PIECE_COST`] per part); never more than the limit.
    pub charged: usize,
    /// Values refused for what they would expand to (before any of it was
    /// copied).
    pub refused: usize,
}

/// A string value after interpolation, with the origin of every part of it:
/// literal text points into the scalar where it is written, a variable's
/// text points at the variable's value in the environment file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Text {
    pub value: String,
    /// Where the scalar is written.
    pub origin: Origin,
    pieces: Vec<Piece>,
    /// A `${var}` could not be resolved (already reported, or the variables
    /// are unknown): the value is not meaningful and must not be validated.
    pub unresolved: bool,
}

#[derive(Debug, Clone, PartialEq)]
struct Piece {
    /// Byte range in `Text::value`.
    range: Range<usize>,
    origin: Origin,
    /// The variable this text came from.
    var: Option<String>,
    /// `origin` is exactly this text, one byte of source per byte of value
    /// (so positions inside the piece can be computed).
    exact: bool,
}

impl Text {
    /// Where the character at byte `index` of the value is written, and the
    /// variable it came from (if any).
    pub fn origin_at(&self, index: usize) -> (Origin, Option<&str>) {
        let Some(piece) = self
            .pieces
            .iter()
            .find(|piece| piece.range.contains(&index))
        else {
            return (self.origin, None);
        };
        let var = piece.var.as_deref();
        if !piece.exact {
            return (piece.origin, var);
        }
        let before = self.value.get(piece.range.start..index).unwrap_or_default();
        let width = self.value[index..]
            .chars()
            .next()
            .map(char::len_utf8)
            .unwrap_or(0);
        let start = piece.origin.start + before.len();
        let origin = Origin {
            column: piece.origin.column + before.chars().count(),
            start,
            end: start + width,
            ..piece.origin
        };
        (origin, var)
    }
}

/// Variables available to interpolation.
#[derive(Debug, Clone)]
pub(crate) struct Vars {
    values: BTreeMap<String, Text>,
    /// False when the environment file could not be read: unknown names are
    /// then not reported (they may well be defined there).
    known: bool,
    /// Variables that are defined but may not be used here (in the values
    /// of `vars:`, which may use `${env}` only).
    unusable: BTreeSet<String>,
    limits: ExpansionLimits,
    /// The work of the whole load, shared with [`Vars::for_var_values`].
    work: Rc<Cell<ExpansionWork>>,
    /// Going over [`ExpansionLimits::total`] was reported (once per load).
    over_budget: Rc<Cell<bool>>,
}

impl Vars {
    /// Only `${env}`.
    pub fn builtin(environment: &str, known: bool, limits: ExpansionLimits) -> Vars {
        let mut values = BTreeMap::new();
        values.insert(
            ENV_VAR.to_string(),
            Text {
                value: environment.to_string(),
                origin: Origin::whole(super::yaml::FileId::default()),
                pieces: Vec::new(),
                unresolved: false,
            },
        );
        Vars {
            values,
            known,
            unusable: BTreeSet::new(),
            limits,
            work: Rc::default(),
            over_budget: Rc::default(),
        }
    }

    /// The variables for the values of `vars:` themselves: only `${env}`;
    /// the names in `others` are defined, but a variable's value may not use
    /// them. Shares the limits and the work of `self`.
    pub fn for_var_values<'n>(&self, others: impl Iterator<Item = &'n str>) -> Vars {
        let mut values = BTreeMap::new();
        if let Some(env) = self.values.get(ENV_VAR) {
            values.insert(ENV_VAR.to_string(), env.clone());
        }
        Vars {
            values,
            known: true,
            unusable: others.map(str::to_string).collect(),
            limits: self.limits,
            work: Rc::clone(&self.work),
            over_budget: Rc::clone(&self.over_budget),
        }
    }

    /// Stops reporting references to undefined variables (the definitions
    /// could not be read).
    pub fn forget_undefined(&mut self) {
        self.known = false;
    }

    pub fn insert(&mut self, name: String, value: Text) {
        self.values.insert(name, value);
    }

    /// What interpolation did so far in this load.
    pub fn work(&self) -> ExpansionWork {
        self.work.get()
    }

    fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    fn record(&self, change: impl FnOnce(&mut ExpansionWork)) {
        let mut work = self.work.get();
        change(&mut work);
        self.work.set(work);
    }
}

/// The shared state of decoding: sources (to slice scalar text), the sink
/// and the variables (`None` where `${...}` is not interpolated).
pub(crate) struct Ctx<'a> {
    pub sources: &'a Sources,
    pub sink: &'a mut Sink,
    pub vars: Option<&'a Vars>,
}

impl Ctx<'_> {
    pub fn push(&mut self, problem: Problem) {
        self.sink.push(problem);
    }

    /// Reads a scalar as a string: strings as they are, plain booleans and
    /// numbers as their source text (`suffix: 2024` is the string "2024").
    /// Reports anything else. Interpolates when variables are set.
    pub fn text(&mut self, node: &Node, field: &str) -> Option<Text> {
        let raw = match &node.value {
            Value::Str(text) => text.clone(),
            Value::Typed { raw, .. } => raw.clone(),
            other => {
                self.push(
                    Problem::new(
                        node.origin,
                        field,
                        format!("expected a string, found {}", other.describe()),
                    )
                    .hint(match other {
                        Value::Null => "write a value after the `:`".to_string(),
                        Value::Seq(_) | Value::Map(_) => {
                            "write a single string here; quote it if it holds `[`, `{` or `: `"
                                .to_string()
                        }
                        _ => "write a string".to_string(),
                    }),
                );
                return None;
            }
        };
        Some(match self.vars {
            Some(vars) => interpolate(&raw, node.origin, self.sources, vars, field, self.sink),
            None => literal(&raw, node.origin, self.sources),
        })
    }
}

/// A string used as written (no `${...}` processing).
pub(crate) fn literal(raw: &str, origin: Origin, sources: &Sources) -> Text {
    let (at, exact) = SourceMap::new(origin, raw, sources).locate(0..raw.len());
    let piece = Piece {
        range: 0..raw.len(),
        origin: at,
        var: None,
        exact,
    };
    Text {
        value: raw.to_string(),
        origin,
        pieces: vec![piece],
        unresolved: false,
    }
}

/// One part of a scalar as written, located in its source.
enum Segment<'r, 'v> {
    /// Text used as written (`$${` stands for `${`).
    Literal {
        value: &'r str,
        origin: Origin,
        exact: bool,
    },
    /// A `${name}` that resolves to a variable.
    Var {
        name: &'r str,
        at: Origin,
        value: &'v Text,
    },
}

/// Why a value was refused before it was built: the reference at which its
/// expansion goes over a limit.
enum Breach {
    Value(Origin),
    Total(Origin),
}

/// Expands `${name}` in `raw` (written at `origin`). `$${` is a literal `${`.
/// Unknown names are reported with the defined ones listed. A value whose
/// expansion would go over the [`ExpansionLimits`] is reported and refused
/// before any of it is copied.
pub(crate) fn interpolate(
    raw: &str,
    origin: Origin,
    sources: &Sources,
    vars: &Vars,
    field: &str,
    sink: &mut Sink,
) -> Text {
    let mut map = SourceMap::new(origin, raw, sources);
    let (segments, unresolved) = segments(raw, &mut map, vars, field, sink);
    vars.record(|work| {
        work.scalar_bytes += raw.len();
        work.scanned_bytes += map.scanned;
    });
    let refused = Text {
        value: String::new(),
        origin,
        pieces: Vec::new(),
        unresolved: true,
    };
    let charge = match measure(&segments, vars) {
        Ok(charge) => charge,
        Err(Breach::Value(at)) => {
            vars.record(|work| work.refused += 1);
            sink.push(
                Problem::new(
                    at,
                    field,
                    format!(
                        "the value is longer than {} after `${{...}}` interpolation",
                        size(vars.limits.value)
                    ),
                )
                .hint("no Cloudflare setting takes a string this long: use the variables fewer times, or shorten their values"),
            );
            return refused;
        }
        Err(Breach::Total(at)) => {
            vars.record(|work| work.refused += 1);
            if !vars.over_budget.replace(true) {
                sink.push(
                    Problem::new(
                        at,
                        field,
                        format!(
                            "`${{...}}` interpolation expands to more than {} in all",
                            size(vars.limits.total)
                        ),
                    )
                    .hint("variables are for short values such as suffixes and regions: use long values fewer times"),
                );
            }
            return refused;
        }
    };
    let mut text = Text {
        value: String::new(),
        origin,
        pieces: Vec::new(),
        unresolved,
    };
    let mut copied = 0;
    for segment in segments {
        let start = text.value.len();
        match segment {
            Segment::Literal {
                value,
                origin,
                exact,
            } => {
                text.value.push_str(value);
                text.pieces.push(Piece {
                    range: start..text.value.len(),
                    origin,
                    var: None,
                    exact,
                });
            }
            Segment::Var { name, at, value } => {
                text.value.push_str(&value.value);
                copied += value.value.len();
                if name == ENV_VAR {
                    // `${env}` has no text of its own: point at the reference.
                    text.pieces.push(Piece {
                        range: start..text.value.len(),
                        origin: at,
                        var: Some(name.to_string()),
                        exact: false,
                    });
                } else {
                    for piece in &value.pieces {
                        text.pieces.push(Piece {
                            range: piece.range.start + start..piece.range.end + start,
                            origin: piece.origin,
                            var: Some(name.to_string()),
                            exact: piece.exact,
                        });
                    }
                }
                text.unresolved |= value.unresolved;
            }
        }
    }
    vars.record(|work| {
        work.copied_bytes += copied;
        work.charged += charge;
    });
    text
}

/// Splits `raw` into literal text and resolved references, located in
/// increasing order (so `map` walks the scalar once). Reports malformed,
/// undefined and unusable references; the flag says there was one.
fn segments<'r, 'v>(
    raw: &'r str,
    map: &mut SourceMap<'_>,
    vars: &'v Vars,
    field: &str,
    sink: &mut Sink,
) -> (Vec<Segment<'r, 'v>>, bool) {
    let mut segments = Vec::new();
    let mut unresolved = false;
    let mut literal_start = 0; // start (in `raw`) of the pending literal run
    let mut index = 0;
    while index < raw.len() {
        let rest = &raw[index..];
        if rest.starts_with("$${") {
            push_literal(
                &mut segments,
                map,
                literal_start..index,
                &raw[literal_start..index],
            );
            push_literal(&mut segments, map, index..index + 3, "${");
            index += 3;
            literal_start = index;
            continue;
        }
        if !rest.starts_with("${") {
            index += rest.chars().next().map(char::len_utf8).unwrap_or(1);
            continue;
        }
        push_literal(
            &mut segments,
            map,
            literal_start..index,
            &raw[literal_start..index],
        );
        let Some(close) = rest.find('}') else {
            sink.push(
                Problem::new(
                    map.locate(index..raw.len()).0,
                    field,
                    "unterminated `${`: a variable reference ends with `}`",
                )
                .hint("write `${name}`, or `$${` for a literal `${`"),
            );
            unresolved = true;
            push_literal(&mut segments, map, index..raw.len(), rest);
            literal_start = raw.len();
            break;
        };
        let reference = index..index + close + 1;
        let name = &rest[2..close];
        let at = map.locate(reference.clone()).0;
        index = reference.end;
        literal_start = index;
        match resolve(name, at, vars, field, sink) {
            Some(value) => segments.push(Segment::Var { name, at, value }),
            None => unresolved = true,
        }
    }
    push_literal(
        &mut segments,
        map,
        literal_start..raw.len(),
        &raw[literal_start.min(raw.len())..],
    );
    (segments, unresolved)
}

/// Adds `value`, written at `raw_range` of the scalar, unless it is empty.
fn push_literal<'r>(
    segments: &mut Vec<Segment<'r, '_>>,
    map: &mut SourceMap<'_>,
    raw_range: Range<usize>,
    value: &'r str,
) {
    if value.is_empty() {
        return;
    }
    // `$${` becomes `${`: not one byte of source per byte of value.
    let (origin, exact) = map.locate(raw_range.clone());
    let exact = exact && raw_range.len() == value.len();
    segments.push(Segment::Literal {
        value,
        origin,
        exact,
    });
}

/// The variable `${name}` (written at `at`) stands for; reports why there is
/// none.
fn resolve<'v>(
    name: &str,
    at: Origin,
    vars: &'v Vars,
    field: &str,
    sink: &mut Sink,
) -> Option<&'v Text> {
    if !is_var_name(name) {
        sink.push(
            Problem::new(
                at,
                field,
                format!("invalid variable reference `${{{name}}}`"),
            )
            .hint("variable names are letters, digits and `_`, not starting with a digit"),
        );
        return None;
    }
    if let Some(value) = vars.values.get(name) {
        return Some(value);
    }
    if vars.unusable.contains(name) {
        sink.push(
            Problem::new(
                at,
                field,
                format!("`${{{name}}}` is another variable: a variable's value may use `${{env}}` only"),
            )
            .hint(format!(
                "variables do not refer to each other: write the value of `{name}` out here, or use `${{{name}}}` in infra/ instead"
            )),
        );
    } else if vars.known {
        let defined = list(vars.names());
        let hint = match did_you_mean(name, vars.names()) {
            Some(guess) => format!("did you mean `${{{guess}}}`? defined variables: {defined}"),
            None => format!(
                "define it under `vars:` in the environment file; defined variables: {defined}"
            ),
        };
        sink.push(Problem::new(at, field, format!("undefined variable `${{{name}}}`")).hint(hint));
    }
    None
}

/// What the references in `segments` would cost against
/// [`ExpansionLimits::total`], measured without copying anything; the
/// reference at which the value or the load goes over its limit otherwise.
fn measure(segments: &[Segment<'_, '_>], vars: &Vars) -> Result<usize, Breach> {
    let spent = vars.work.get().charged;
    let mut length = 0usize;
    let mut charge = 0usize;
    for segment in segments {
        match segment {
            Segment::Literal { value, .. } => length = length.saturating_add(value.len()),
            Segment::Var { at, value, .. } => {
                length = length.saturating_add(value.value.len());
                if length > vars.limits.value {
                    return Err(Breach::Value(*at));
                }
                charge = charge
                    .saturating_add(value.value.len())
                    .saturating_add(PIECE_COST * value.pieces.len().max(1));
                if spent.saturating_add(charge) > vars.limits.total {
                    return Err(Breach::Total(*at));
                }
            }
        }
    }
    Ok(charge)
}

/// `bytes` in the largest binary unit that divides it (`64 MiB`).
pub(super) fn size(bytes: usize) -> String {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * KIB;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*`.
pub(crate) fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Where the byte ranges of one scalar's value are written: exactly (`true`)
/// when the scalar is written as-is on one line (plain, or quoted without
/// escapes), the whole scalar otherwise. Built once per scalar: ranges asked
/// for in increasing order cost O(length of the value) in all, so a value
/// with many `${...}` is not quadratic.
struct SourceMap<'a> {
    origin: Origin,
    value: &'a str,
    /// Bytes of source before the value (1 for the opening quote); `None`
    /// when the source is not the value as is.
    offset: Option<usize>,
    first_newline: Option<usize>,
    /// A byte offset in `value` and the characters before it.
    cursor: (usize, usize),
    /// Bytes of `value` walked so far (see [`ExpansionWork::scanned_bytes`]).
    scanned: usize,
}

impl<'a> SourceMap<'a> {
    fn new(origin: Origin, value: &'a str, sources: &Sources) -> SourceMap<'a> {
        let offset = sources
            .text(origin.file)
            .and_then(|text| text.get(origin.start..origin.end))
            .and_then(|source| {
                let quoted = source.len() >= 2
                    && (source.starts_with('"') && source.ends_with('"')
                        || source.starts_with('\'') && source.ends_with('\''));
                if source == value {
                    Some(0)
                } else if quoted && &source[1..source.len() - 1] == value {
                    Some(1)
                } else {
                    None
                }
            });
        SourceMap {
            origin,
            value,
            offset,
            first_newline: value.find('\n'),
            cursor: (0, 0),
            scanned: 0,
        }
    }

    /// The origin of `range` of the value, and whether it is exact.
    fn locate(&mut self, range: Range<usize>) -> (Origin, bool) {
        let Some(offset) = self.offset else {
            return (self.origin, false);
        };
        if self
            .first_newline
            .is_some_and(|newline| newline < range.end)
            || !self
                .value
                .is_char_boundary(range.start.min(self.value.len()))
        {
            return (self.origin, false);
        }
        let start = range.start.min(self.value.len());
        if start < self.cursor.0 {
            self.cursor = (0, 0);
        }
        let (at, chars) = self.cursor;
        self.scanned += start - at;
        self.cursor = (start, chars + self.value[at..start].chars().count());
        let exact = Origin {
            file: self.origin.file,
            line: self.origin.line,
            column: self.origin.column + offset + self.cursor.1,
            start: self.origin.start + offset + range.start,
            end: self.origin.start + offset + range.end,
        };
        (exact, true)
    }
}

/// Reads the fields of one mapping by name. Every name asked for is a known
/// field; [`Fields::finish`] reports the entries nobody asked for.
pub(crate) struct Fields<'n> {
    entries: &'n [Entry],
    /// The manifest path of the mapping (`kv_namespaces.users`).
    path: String,
    /// Where a missing field is reported (the mapping's key).
    anchor: Origin,
    /// What the mapping is, for messages ("KV namespace").
    what: String,
    asked: Vec<&'static str>,
}

impl<'n> Fields<'n> {
    /// Opens `node` as a mapping; `null` counts as an empty mapping. Reports
    /// and returns `None` for anything else.
    pub fn open(
        ctx: &mut Ctx<'_>,
        node: &'n Node,
        path: &str,
        anchor: Origin,
        what: &str,
    ) -> Option<Fields<'n>> {
        let entries: &'n [Entry] = match &node.value {
            Value::Map(entries) => entries,
            Value::Null => &[],
            other => {
                ctx.push(
                    Problem::new(
                        node.origin,
                        path,
                        format!(
                            "expected a mapping of {what} fields, found {}",
                            other.describe()
                        ),
                    )
                    .hint("write the fields indented under the key, one `name: value` per line"),
                );
                return None;
            }
        };
        Some(Fields {
            entries,
            path: path.to_string(),
            anchor,
            what: what.to_string(),
            asked: Vec::new(),
        })
    }

    pub fn path(&self, name: &str) -> String {
        join(&self.path, name)
    }

    /// The node of field `name` (`None` when absent or null).
    pub fn node(&mut self, name: &'static str) -> Option<&'n Node> {
        self.asked.push(name);
        self.entries
            .iter()
            .find(|entry| entry.key.name == name)
            .map(|entry| &entry.value)
            .filter(|node| node.value != Value::Null)
    }

    /// An optional string.
    pub fn string(&mut self, ctx: &mut Ctx<'_>, name: &'static str) -> Option<Text> {
        let node = self.node(name)?;
        ctx.text(node, &self.path(name))
    }

    /// A required string; reports a missing one at the mapping's key.
    pub fn required_string(&mut self, ctx: &mut Ctx<'_>, name: &'static str) -> Option<Text> {
        match self.node(name) {
            Some(node) => ctx.text(node, &self.path(name)),
            None => {
                ctx.push(
                    Problem::new(
                        self.anchor,
                        self.path(name),
                        format!(
                            "missing field `{name}` for {} `{}`",
                            self.what,
                            last_segment(&self.path)
                        ),
                    )
                    .hint(format!(
                        "add `{name}: ...` under `{}`",
                        last_segment(&self.path)
                    )),
                );
                None
            }
        }
    }

    /// An optional list of strings: each item with its manifest path
    /// (`workers.api.crons[0]`). Items that are not strings are reported and
    /// left out.
    pub fn strings(
        &mut self,
        ctx: &mut Ctx<'_>,
        name: &'static str,
    ) -> Option<Vec<(String, Text)>> {
        let node = self.node(name)?;
        let path = self.path(name);
        let Value::Seq(items) = &node.value else {
            ctx.push(
                Problem::new(
                    node.origin,
                    path,
                    format!(
                        "expected a list of strings, found {}",
                        node.value.describe()
                    ),
                )
                .hint(format!(
                    "write `{name}: [\"...\"]`, or one `- ...` per line under `{name}:`"
                )),
            );
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let item_path = format!("{path}[{index}]");
            if let Some(text) = ctx.text(item, &item_path) {
                out.push((item_path, text));
            }
        }
        Some(out)
    }

    /// An optional `true`/`false`.
    pub fn bool(&mut self, ctx: &mut Ctx<'_>, name: &'static str) -> Option<bool> {
        let node = self.node(name)?;
        match &node.value {
            Value::Typed {
                kind: ScalarKind::Bool(value),
                ..
            } => Some(*value),
            other => {
                let hint = match other {
                    Value::Str(text) if matches!(text.as_str(), "true" | "false") => {
                        format!("write `{name}: {text}` without quotes")
                    }
                    Value::Str(text)
                        if matches!(text.to_ascii_lowercase().as_str(), "yes" | "on" | "y") =>
                    {
                        format!("write `{name}: true`")
                    }
                    Value::Str(text)
                        if matches!(text.to_ascii_lowercase().as_str(), "no" | "off" | "n") =>
                    {
                        format!("write `{name}: false`")
                    }
                    _ => format!("write `{name}: true` or `{name}: false`"),
                };
                ctx.push(
                    Problem::new(
                        node.origin,
                        self.path(name),
                        format!("expected `true` or `false`, found {}", other.describe()),
                    )
                    .hint(hint),
                );
                None
            }
        }
    }

    /// An optional string that must be one of `values` (after interpolation).
    pub fn one_of<T: Copy>(
        &mut self,
        ctx: &mut Ctx<'_>,
        name: &'static str,
        values: &[T],
        as_str: fn(T) -> &'static str,
    ) -> Option<T> {
        let text = self.string(ctx, name)?;
        if text.unresolved {
            return None;
        }
        if let Some(value) = values
            .iter()
            .copied()
            .find(|value| as_str(*value) == text.value)
        {
            return Some(value);
        }
        let allowed: Vec<&str> = values.iter().map(|value| as_str(*value)).collect();
        let hint = match did_you_mean(&text.value, allowed.iter().copied()) {
            Some(guess) => format!("did you mean `{guess}`? allowed values: {}", list(&allowed)),
            None => format!("allowed values: {}", list(&allowed)),
        };
        let (at, var) = text.origin_at(0);
        let from = var
            .map(|var| format!(" (from `${{{var}}}`)"))
            .unwrap_or_default();
        let mut problem = Problem::new(
            at,
            self.path(name),
            format!("invalid {name} {}{from}", quote_short(&text.value)),
        )
        .hint(hint);
        if var.is_some_and(|var| var != ENV_VAR) {
            problem = problem.related(text.origin, format!("`{name}` is set here"));
        }
        ctx.push(problem);
        None
    }

    /// Reports every entry that was not asked for, with a did-you-mean.
    pub fn finish(self, ctx: &mut Ctx<'_>) {
        for entry in self.entries {
            let name = entry.key.name.as_str();
            if self.asked.contains(&name) {
                continue;
            }
            let known = list(&self.asked);
            let hint = match did_you_mean(name, self.asked.iter().copied()) {
                Some(guess) => format!("did you mean `{guess}`? {} fields: {known}", self.what),
                None => format!("{} fields: {known}", self.what),
            };
            ctx.push(
                Problem::new(
                    entry.key.origin,
                    self.path(name),
                    format!("unknown field `{name}`"),
                )
                .hint(hint),
            );
        }
    }
}

fn last_segment(path: &str) -> &str {
    path.rsplit('.').next().unwrap_or(path)
}
