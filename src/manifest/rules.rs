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
    fn at(index: usize, message: String, hint: String) -> NameProblem {
        NameProblem {
            index: Some(index),
            message,
            hint,
        }
    }

    fn whole(message: String, hint: String) -> NameProblem {
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
