//! The naming rules: logical keys and environment names (ours), and the names
//! Cloudflare accepts for each kind of resource (theirs). Each check returns
//! the first problem, with the byte index of the offending character when
//! there is one, so the caller can point at the exact text (which may come
//! from a variable).

/// Longest logical key (the part after `kind.` in an address).
pub(crate) const MAX_KEY_CHARS: usize = 64;
/// KV namespace titles: the API reference gives no maximum (OAS 2024-08-06
/// `workers-kv_namespace_title` has no `maxLength`); 512 bytes is the limit
/// Cloudflare applies to KV key names and the one we assume for titles.
pub(crate) const MAX_KV_TITLE_BYTES: usize = 512;
/// R2 bucket names: 3-63 characters (Cloudflare's R2 docs; the 2024 OAS says
/// `maxLength: 64`, we keep to the documented 63).
pub(crate) const R2_NAME_CHARS: std::ops::RangeInclusive<usize> = 3..=63;

/// A name that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NameProblem {
    /// Byte index of the offending character, when one character is at fault.
    pub index: Option<usize>,
    pub message: String,
    pub hint: String,
}

impl NameProblem {
    pub(crate) fn at(index: usize, message: String, hint: String) -> NameProblem {
        NameProblem {
            index: Some(index),
            message,
            hint,
        }
    }

    pub(crate) fn whole(message: String, hint: String) -> NameProblem {
        NameProblem {
            index: None,
            message,
            hint,
        }
    }
}

/// Logical keys and environment names: `[a-z0-9_][a-z0-9_-]*`, at most 64
/// characters. No `.` (it separates kind and key in an address), no
/// uppercase (addresses are compared as written).
pub(crate) fn key(value: &str, what: &str) -> Option<NameProblem> {
    let hint = || match suggest(
        value,
        |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_',
        '_',
    ) {
        Some(better) => format!(
            "{what}s are lowercase letters, digits, `_` and `-`, not starting with `-`; for example `{better}`"
        ),
        None => {
            format!("{what}s are lowercase letters, digits, `_` and `-`, not starting with `-`")
        }
    };
    if value.is_empty() {
        return Some(NameProblem::whole(format!("empty {what}"), hint()));
    }
    if value.chars().count() > MAX_KEY_CHARS {
        return Some(NameProblem::whole(
            format!("{what} `{value}` is longer than {MAX_KEY_CHARS} characters"),
            hint(),
        ));
    }
    for (index, c) in value.char_indices() {
        let ok =
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || (c == '-' && index > 0);
        if !ok {
            return Some(NameProblem::at(
                index,
                format!(
                    "invalid {what} `{value}`: {} is not allowed{}",
                    describe_char(c),
                    position(index)
                ),
                hint(),
            ));
        }
    }
    None
}

/// KV namespace title: not empty, no control characters, at most 512 bytes.
pub(crate) fn kv_title(value: &str) -> Option<NameProblem> {
    if value.is_empty() {
        return Some(NameProblem::whole(
            "the KV namespace title is empty".to_string(),
            "write a title, e.g. `myapp-sessions-${env}`".to_string(),
        ));
    }
    if let Some((index, c)) = value.char_indices().find(|(_, c)| c.is_control()) {
        return Some(NameProblem::at(
            index,
            format!("the KV namespace title contains {}", describe_char(c)),
            "titles are one line of printable text".to_string(),
        ));
    }
    if value.len() > MAX_KV_TITLE_BYTES {
        return Some(NameProblem::whole(
            format!(
                "the KV namespace title is {} bytes long, more than the {MAX_KV_TITLE_BYTES} Cloudflare accepts",
                value.len()
            ),
            "shorten the title (or the variables it uses)".to_string(),
        ));
    }
    None
}

/// D1 database name: `^[a-z0-9][a-z0-9-_]*$` (OAS `d1_database-name`; the API
/// documents no length limit).
pub(crate) fn d1_name(value: &str) -> Option<NameProblem> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
    let hint = || match suggest(value, allowed, '-') {
        Some(better) => format!(
            "D1 names are lowercase letters, digits, `-` and `_`, starting with a letter or digit; for example `{better}`"
        ),
        None => {
            "D1 names are lowercase letters, digits, `-` and `_`, starting with a letter or digit"
                .to_string()
        }
    };
    if value.is_empty() {
        return Some(NameProblem::whole(
            "the D1 database name is empty".to_string(),
            hint(),
        ));
    }
    for (index, c) in value.char_indices() {
        let ok = allowed(c) && !(index == 0 && (c == '-' || c == '_'));
        if !ok {
            return Some(NameProblem::at(
                index,
                format!(
                    "invalid D1 database name `{value}`: {} is not allowed{}",
                    describe_char(c),
                    position(index)
                ),
                hint(),
            ));
        }
    }
    None
}

/// Queue names: 1-63 lowercase letters, digits and `-`, starting and
/// ending with a letter or digit.
pub(crate) fn queue_name(value: &str) -> Option<NameProblem> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    let hint = || {
        match suggest(value, allowed, '-') {
        Some(better) => format!(
            "queue names are 1-63 lowercase letters, digits and `-`, starting and ending with a letter or digit; for example `{better}`"
        ),
        None => "queue names are 1-63 lowercase letters, digits and `-`, starting and ending with a letter or digit".to_string(),
    }
    };
    if value.is_empty() {
        return Some(NameProblem::whole(
            "the queue name is empty".to_string(),
            hint(),
        ));
    }
    for (index, c) in value.char_indices() {
        if !allowed(c) {
            return Some(NameProblem::at(
                index,
                format!(
                    "invalid queue name `{value}`: {} is not allowed{}",
                    describe_char(c),
                    position(index)
                ),
                hint(),
            ));
        }
    }
    if value.starts_with('-') || value.ends_with('-') {
        return Some(NameProblem::whole(
            format!("invalid queue name `{value}`: it starts or ends with `-`"),
            hint(),
        ));
    }
    if value.len() > 63 {
        return Some(NameProblem::whole(
            format!(
                "invalid queue name `{value}`: {} characters, more than 63",
                value.len()
            ),
            hint(),
        ));
    }
    None
}

/// R2 bucket name: 3-63 characters of `[a-z0-9-]`, starting and ending with a
/// letter or digit.
pub(crate) fn r2_name(value: &str) -> Option<NameProblem> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    let hint = || {
        match suggest(value, allowed, '-') {
        Some(better) if R2_NAME_CHARS.contains(&better.len()) => format!(
            "R2 bucket names are 3-63 lowercase letters, digits and `-`, starting and ending with a letter or digit; for example `{better}`"
        ),
        _ => "R2 bucket names are 3-63 lowercase letters, digits and `-`, starting and ending with a letter or digit"
            .to_string(),
    }
    };
    for (index, c) in value.char_indices() {
        if !allowed(c) {
            return Some(NameProblem::at(
                index,
                format!(
                    "invalid R2 bucket name `{value}`: {} is not allowed{}",
                    describe_char(c),
                    position(index)
                ),
                hint(),
            ));
        }
    }
    let count = value.chars().count();
    if !R2_NAME_CHARS.contains(&count) {
        return Some(NameProblem::whole(
            format!(
                "the R2 bucket name `{value}` is {count} characters long; Cloudflare accepts {} to {}",
                R2_NAME_CHARS.start(),
                R2_NAME_CHARS.end()
            ),
            hint(),
        ));
    }
    if value.starts_with('-') {
        return Some(NameProblem::at(
            0,
            format!("invalid R2 bucket name `{value}`: it starts with `-`"),
            hint(),
        ));
    }
    if value.ends_with('-') {
        return Some(NameProblem::at(
            value.len() - 1,
            format!("invalid R2 bucket name `{value}`: it ends with `-`"),
            hint(),
        ));
    }
    None
}

/// Cloudflare account ids: 32 lowercase hexadecimal characters.
pub(crate) fn account_id(value: &str) -> Option<NameProblem> {
    let is_hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
    let hint = "the account id is the 32-character hex string in the dashboard URL (or under Account details)";
    if value.len() == 32
        && value.chars().all(|c| c.is_ascii_hexdigit())
        && !value.chars().all(is_hex)
    {
        return Some(NameProblem::whole(
            format!("invalid account id `{value}`: account ids are lowercase"),
            format!("write `{}`", value.to_ascii_lowercase()),
        ));
    }
    if let Some((index, c)) = value.char_indices().find(|(_, c)| !is_hex(*c)) {
        return Some(NameProblem::at(
            index,
            format!(
                "invalid account id `{value}`: {} is not a hexadecimal digit{}",
                describe_char(c),
                position(index)
            ),
            hint.to_string(),
        ));
    }
    if value.len() != 32 {
        return Some(NameProblem::whole(
            format!(
                "invalid account id `{value}`: it has {} characters, not 32",
                value.len()
            ),
            hint.to_string(),
        ));
    }
    None
}

/// Zone ids: 32 lowercase hexadecimal characters, like account ids.
pub(crate) fn zone_id(value: &str) -> Option<NameProblem> {
    let mut problem = account_id(value)?;
    problem.message = problem.message.replace("account id", "zone id");
    problem.hint =
        "the zone id is the 32-character hex string under API on the zone's Overview page"
            .to_string();
    if problem.message.contains("are lowercase") {
        problem.hint = format!("write `{}`", value.to_ascii_lowercase());
    }
    Some(problem)
}

/// Worker script names: `^[a-z0-9_][a-z0-9-_]*$` (the OAS pattern for
/// `script_name`), at most 63 characters (the length of a DNS label: the
/// name is the `<name>.<subdomain>.workers.dev` hostname).
pub(crate) const MAX_WORKER_NAME_CHARS: usize = 63;

pub(crate) fn worker_name(value: &str) -> Option<NameProblem> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
    let hint = || match suggest(value, allowed, '-') {
        Some(better) => format!(
            "Worker names are lowercase letters, digits, `-` and `_`, not starting with `-`; for example `{better}`"
        ),
        None => "Worker names are lowercase letters, digits, `-` and `_`, not starting with `-`"
            .to_string(),
    };
    if value.is_empty() {
        return Some(NameProblem::whole(
            "the Worker name is empty".to_string(),
            hint(),
        ));
    }
    for (index, c) in value.char_indices() {
        if !allowed(c) || (index == 0 && c == '-') {
            return Some(NameProblem::at(
                index,
                format!(
                    "invalid Worker name `{value}`: {} is not allowed{}",
                    describe_char(c),
                    position(index)
                ),
                hint(),
            ));
        }
    }
    let count = value.chars().count();
    if count > MAX_WORKER_NAME_CHARS {
        return Some(NameProblem::whole(
            format!(
                "the Worker name `{value}` is {count} characters long; Cloudflare accepts at most {MAX_WORKER_NAME_CHARS}"
            ),
            "shorten the name (or the variables it uses)".to_string(),
        ));
    }
    None
}

/// Words a JavaScript binding cannot be named (ECMAScript reserved words,
/// including those reserved in strict mode and module code).
const JS_RESERVED: &[&str] = &[
    "await",
    "break",
    "case",
    "catch",
    "class",
    "const",
    "continue",
    "debugger",
    "default",
    "delete",
    "do",
    "else",
    "enum",
    "export",
    "extends",
    "false",
    "finally",
    "for",
    "function",
    "if",
    "implements",
    "import",
    "in",
    "instanceof",
    "interface",
    "let",
    "new",
    "null",
    "package",
    "private",
    "protected",
    "public",
    "return",
    "static",
    "super",
    "switch",
    "this",
    "throw",
    "true",
    "try",
    "typeof",
    "var",
    "void",
    "while",
    "with",
    "yield",
];

/// Binding and secret names: JavaScript identifiers (`env.NAME` in the
/// worker), `^[A-Za-z_$][A-Za-z0-9_$]*$`, not a reserved word.
pub(crate) fn js_identifier(value: &str, what: &str) -> Option<NameProblem> {
    let hint = || match suggest_identifier(value) {
        Some(better) => format!(
            "{what}s are JavaScript identifiers: letters, digits, `_` and `$`, not starting with a digit; for example `{better}`"
        ),
        None => format!(
            "{what}s are JavaScript identifiers: letters, digits, `_` and `$`, not starting with a digit"
        ),
    };
    if value.is_empty() {
        return Some(NameProblem::whole(format!("empty {what}"), hint()));
    }
    for (index, c) in value.char_indices() {
        let ok =
            c.is_ascii_alphabetic() || c == '_' || c == '$' || (index > 0 && c.is_ascii_digit());
        if !ok {
            return Some(NameProblem::at(
                index,
                format!(
                    "invalid {what} `{value}`: {} is not allowed{}",
                    describe_char(c),
                    position(index)
                ),
                hint(),
            ));
        }
    }
    if JS_RESERVED.contains(&value) {
        return Some(NameProblem::whole(
            format!("invalid {what} `{value}`: it is a reserved word in JavaScript"),
            format!("pick another name, e.g. `{}`", value.to_ascii_uppercase()),
        ));
    }
    None
}

fn suggest_identifier(value: &str) -> Option<String> {
    let mut out: String = value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '$' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    (!out.is_empty() && out != value).then_some(out)
}

/// Environment variable names (`from_env`): `[A-Za-z_][A-Za-z0-9_]*`.
pub(crate) fn env_var_name(value: &str) -> Option<NameProblem> {
    let hint = "environment variable names are letters, digits and `_`, not starting with a digit";
    if value.is_empty() {
        return Some(NameProblem::whole(
            "empty environment variable name".to_string(),
            hint.to_string(),
        ));
    }
    for (index, c) in value.char_indices() {
        let ok = c.is_ascii_alphabetic() || c == '_' || (index > 0 && c.is_ascii_digit());
        if !ok {
            return Some(NameProblem::at(
                index,
                format!(
                    "invalid environment variable name `{value}`: {} is not allowed{}",
                    describe_char(c),
                    position(index)
                ),
                hint.to_string(),
            ));
        }
    }
    None
}

/// A compatibility date: `YYYY-MM-DD`, a date that exists. It may be in the
/// future (Cloudflare then refuses the upload; flareops does not read the
/// clock while loading manifests).
pub(crate) fn compatibility_date(value: &str) -> Option<NameProblem> {
    let hint = || "write the date as `YYYY-MM-DD`, e.g. `2025-01-15`".to_string();
    let bytes = value.as_bytes();
    let shape_ok = bytes.len() == 10
        && bytes.iter().enumerate().all(|(index, b)| match index {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        });
    if !shape_ok {
        return Some(NameProblem::whole(
            format!("invalid compatibility date {value:?}: expected `YYYY-MM-DD`"),
            hint(),
        ));
    }
    let year: i32 = value[0..4].parse().unwrap_or(0);
    let month: u8 = value[5..7].parse().unwrap_or(0);
    let day: u8 = value[8..10].parse().unwrap_or(0);
    let valid = time::Month::try_from(month)
        .ok()
        .and_then(|month| time::Date::from_calendar_date(year, month, day).ok())
        .is_some();
    if !valid {
        return Some(NameProblem::whole(
            format!("invalid compatibility date `{value}`: there is no such day"),
            hint(),
        ));
    }
    None
}

/// Compatibility flags: lowercase letters, digits and `_` (`nodejs_compat`).
pub(crate) fn compatibility_flag(value: &str) -> Option<NameProblem> {
    let hint = || {
        "compatibility flags are lowercase letters, digits and `_`, e.g. `nodejs_compat`"
            .to_string()
    };
    if value.is_empty() {
        return Some(NameProblem::whole(
            "empty compatibility flag".to_string(),
            hint(),
        ));
    }
    if let Some((index, c)) = value
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        return Some(NameProblem::at(
            index,
            format!(
                "invalid compatibility flag `{value}`: {} is not allowed",
                describe_char(c)
            ),
            hint(),
        ));
    }
    None
}

/// The longest hostname (RFC 1035).
const MAX_HOSTNAME_BYTES: usize = 253;
/// The longest DNS label (RFC 1035).
const MAX_LABEL_BYTES: usize = 63;

/// A hostname as Cloudflare stores it: lowercase LDH labels (punycode for
/// internationalized names) separated by `.`, at most 253 characters.
/// `offset` is added to reported indices (the hostname may be part of a
/// longer value, such as a route).
pub(crate) fn hostname(value: &str, offset: usize, what: &str) -> Option<NameProblem> {
    let hint = || {
        let lower = value.to_ascii_lowercase();
        if lower != value && hostname(&lower, 0, what).is_none() {
            format!("hostnames are lowercase: write `{lower}`")
        } else {
            "hostnames are labels of lowercase letters, digits and `-` separated by `.` (punycode, `xn--...`, for international names)".to_string()
        }
    };
    if value.is_empty() {
        return Some(NameProblem::whole(format!("empty {what}"), hint()));
    }
    if value.len() > MAX_HOSTNAME_BYTES {
        return Some(NameProblem::whole(
            format!(
                "the {what} `{value}` is {} characters long; hostnames are at most {MAX_HOSTNAME_BYTES}",
                value.len()
            ),
            hint(),
        ));
    }
    let mut start = 0;
    for label in value.split('.') {
        if label.is_empty() {
            return Some(NameProblem::at(
                offset + start.min(value.len().saturating_sub(1)),
                format!("invalid {what} `{value}`: empty label (two dots, or a dot at an end)"),
                hint(),
            ));
        }
        if label.len() > MAX_LABEL_BYTES {
            return Some(NameProblem::at(
                offset + start,
                format!(
                    "invalid {what} `{value}`: the label `{label}` is longer than {MAX_LABEL_BYTES} characters"
                ),
                hint(),
            ));
        }
        for (index, c) in label.char_indices() {
            let ok = c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || (c == '-' && index > 0 && index + 1 < label.len());
            if !ok {
                let problem = if c == '-' {
                    "a label starts or ends with `-`".to_string()
                } else {
                    format!("{} is not allowed", describe_char(c))
                };
                return Some(NameProblem::at(
                    offset + start + index,
                    format!("invalid {what} `{value}`: {problem}"),
                    hint(),
                ));
            }
        }
        start += label.len() + 1;
    }
    None
}

/// A zone name: a hostname with at least two labels (`example.com`).
pub(crate) fn zone_name(value: &str) -> Option<NameProblem> {
    if let Some(problem) = hostname(value, 0, "zone name") {
        return Some(problem);
    }
    if !value.contains('.') {
        return Some(NameProblem::whole(
            format!("invalid zone name `{value}`: a zone is a domain such as `example.com`"),
            "write the zone's domain name as shown in the Cloudflare dashboard".to_string(),
        ));
    }
    None
}

/// A Worker route pattern: `host/path`, where the host may start with `*`
/// (the host and its subdomains) or `*.` (subdomains only) and the path may
/// end with `*`; no scheme (a route without one matches http and https), no
/// other wildcard, no query string. With a zone, the host must be in it.
pub(crate) fn route_pattern(value: &str, zone: Option<&str>) -> Option<NameProblem> {
    let hint = || {
        "a route is `host/path`: the host may start with `*` or `*.`, the path may end with `*`, e.g. `api.example.com/*`".to_string()
    };
    if value.is_empty() {
        return Some(NameProblem::whole("empty route".to_string(), hint()));
    }
    if value.contains("://") {
        return Some(NameProblem::at(
            0,
            format!("the route `{value}` has a scheme"),
            "write it without `https://`: a route without a scheme matches both http and https"
                .to_string(),
        ));
    }
    let Some(slash) = value.find('/') else {
        return Some(NameProblem::whole(
            format!("the route `{value}` has no path"),
            format!("add the path: `{value}/*` for every path, `{value}/` for the root only"),
        ));
    };
    let (host, path) = value.split_at(slash);
    let (bare, bare_offset) = if let Some(rest) = host.strip_prefix("*.") {
        (rest, 2)
    } else if let Some(rest) = host.strip_prefix('*') {
        (rest, 1)
    } else {
        (host, 0)
    };
    if let Some(index) = bare.find('*') {
        return Some(NameProblem::at(
            bare_offset + index,
            format!("invalid route `{value}`: `*` may only start the host"),
            hint(),
        ));
    }
    if let Some(problem) = hostname(bare, bare_offset, "route host") {
        return Some(problem);
    }
    for (index, c) in path.char_indices() {
        let problem = match c {
            '*' if index + 1 != path.len() => {
                "`*` may only end the path (Cloudflare has no infix wildcards)".to_string()
            }
            '?' => "a route cannot hold a query string; end the path with `*` to match any query"
                .to_string(),
            '#' => "a route cannot hold a fragment".to_string(),
            c if c.is_whitespace() || c.is_control() => {
                format!("{} is not allowed", describe_char(c))
            }
            _ => continue,
        };
        return Some(NameProblem::at(
            slash + index,
            format!("invalid route `{value}`: {problem}"),
            hint(),
        ));
    }
    if let Some(zone) = zone
        && !in_zone(bare, zone)
    {
        return Some(NameProblem::at(
            bare_offset,
            format!("the route `{value}` is not in the zone `{zone}`"),
            format!(
                "routes attach to the environment's zone: use a host that is `{zone}` or ends in `.{zone}`, or change `zone:` in the environment file"
            ),
        ));
    }
    None
}

/// A custom domain: a hostname (no scheme, path or wildcard), in the zone.
pub(crate) fn custom_domain(value: &str, zone: Option<&str>) -> Option<NameProblem> {
    if value.contains("://") {
        return Some(NameProblem::at(
            0,
            format!("the custom domain `{value}` has a scheme"),
            "a custom domain is a hostname: write it without `https://`".to_string(),
        ));
    }
    if let Some(index) = value.find('/') {
        return Some(NameProblem::at(
            index,
            format!("the custom domain `{value}` has a path"),
            "a custom domain takes the whole hostname; to run the worker on a path only, use `routes:`"
                .to_string(),
        ));
    }
    if let Some(index) = value.find('*') {
        return Some(NameProblem::at(
            index,
            format!("the custom domain `{value}` is a wildcard"),
            "custom domains are single hostnames; use a route (`*.example.com/*`) for a wildcard"
                .to_string(),
        ));
    }
    if let Some(problem) = hostname(value, 0, "custom domain") {
        return Some(problem);
    }
    if let Some(zone) = zone
        && !in_zone(value, zone)
    {
        return Some(NameProblem::whole(
            format!("the custom domain `{value}` is not in the zone `{zone}`"),
            format!(
                "use a hostname that is `{zone}` or ends in `.{zone}`, or change `zone:` in the environment file"
            ),
        ));
    }
    None
}

/// Whether `host` is `zone` or one of its subdomains.
pub(crate) fn in_zone(host: &str, zone: &str) -> bool {
    host == zone
        || host
            .strip_suffix(zone)
            .is_some_and(|prefix| prefix.ends_with('.'))
}

/// A corrected name: lowercase, other characters replaced by `filler`,
/// repeated and edge fillers removed. `None` when nothing would be left or
/// the value is already fine.
fn suggest(value: &str, allowed: impl Fn(char) -> bool, filler: char) -> Option<String> {
    let mut out = String::new();
    for c in value.chars().flat_map(char::to_lowercase) {
        let c = if allowed(c) { c } else { filler };
        if (c == '-' || c == '_') && (out.is_empty() || out.ends_with(['-', '_'])) {
            continue;
        }
        out.push(c);
    }
    let out = out.trim_end_matches(['-', '_']).to_string();
    (!out.is_empty() && out != value).then_some(out)
}

fn describe_char(c: char) -> String {
    match c {
        ' ' => "a space".to_string(),
        '\t' => "a tab".to_string(),
        '\n' => "a line break".to_string(),
        c if c.is_control() => format!("the control character U+{:04X}", c as u32),
        c if c.is_ascii_uppercase() => format!("the uppercase letter `{c}`"),
        c => format!("`{c}`"),
    }
}

fn position(index: usize) -> String {
    if index == 0 {
        " at the start".to_string()
    } else {
        String::new()
    }
}

/// Pages project names: 1-58 lowercase letters, digits and `-`, not
/// starting or ending with `-`.
pub(crate) fn pages_project_name(value: &str) -> Option<NameProblem> {
    let hint = "Pages project names are 1-58 lowercase letters, digits and `-`, not starting or ending with `-` (the name is the `<name>.pages.dev` subdomain)";
    if let Some(index) = value
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        .map(|(index, _)| index)
    {
        return Some(NameProblem::at(
            index,
            format!("invalid Pages project name `{value}`"),
            hint.to_string(),
        ));
    }
    if value.is_empty() || value.len() > 58 || value.starts_with('-') || value.ends_with('-') {
        return Some(NameProblem::whole(
            format!("invalid Pages project name `{value}`"),
            hint.to_string(),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    type Rule = fn(&str) -> Option<NameProblem>;

    /// `None`: valid; `Some(None)`: invalid as a whole; `Some(Some(i))`:
    /// invalid because of the character at byte `i`.
    fn check(rule: Rule, value: &str, expected: Option<Option<usize>>) {
        assert_eq!(
            rule(value).map(|problem| problem.index),
            expected,
            "{value:?}"
        );
    }

    #[test]
    fn names_follow_cloudflare_rules() {
        check(r2_name, "klear-karma-assets-stg", None);
        check(r2_name, "abc", None);
        check(r2_name, &"a".repeat(63), None);
        check(r2_name, "ab", Some(None));
        check(r2_name, &"a".repeat(64), Some(None));
        check(r2_name, "-abc", Some(Some(0)));
        check(r2_name, "abc-", Some(Some(3)));
        check(r2_name, "aBc", Some(Some(1)));
        check(r2_name, "a_c", Some(Some(1)));
        check(d1_name, "klear_karma-1", None);
        check(d1_name, "_klear", Some(Some(0)));
        check(d1_name, "Klear", Some(Some(0)));
        check(d1_name, "klear.db", Some(Some(5)));
        check(d1_name, "", Some(None));
        check(kv_title, "My Own Namespace", None);
        check(kv_title, &"a".repeat(512), None);
        check(kv_title, &"a".repeat(513), Some(None));
        check(kv_title, "tab\there", Some(Some(3)));
        check(kv_title, "", Some(None));
        check(account_id, "0123456789abcdef0123456789abcdef", None);
        check(
            account_id,
            "0123456789abcdef0123456789abcdeg",
            Some(Some(31)),
        );
        check(account_id, "0123456789ABCDEF0123456789ABCDEF", Some(None));
        check(account_id, "0123", Some(None));
        let key = |value: &str| super::key(value, "key");
        check(key, "users", None);
        check(key, "user-sessions_2", None);
        check(key, "_private", None);
        check(key, "-users", Some(Some(0)));
        check(key, "Users", Some(Some(0)));
        check(key, "my.cache", Some(Some(2)));
        check(key, &"a".repeat(65), Some(None));
    }

    #[test]
    fn suggestions_are_valid_names() {
        assert_eq!(
            suggest(
                "Klear Karma__Assets",
                |c| c.is_ascii_lowercase() || c == '-',
                '-'
            )
            .as_deref(),
            Some("klear-karma-assets")
        );
        assert_eq!(suggest("ok", |c| c.is_ascii_lowercase(), '-'), None);
    }
}
