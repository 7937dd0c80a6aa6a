//! Saved plans (`flareops plan --out FILE`, `flareops apply FILE`): the
//! [`Plan`] plus what apply checks before it runs it. Pure: the caller reads
//! and writes the files (schema: `docs/plan-json.md`).
//!
//! Apply refuses a saved plan when the manifests it was made from changed
//! (the manifest fingerprint) or when the account changed (the plan's live
//! fingerprint). A saved plan holds no secret value and no token: secrets
//! appear by name only, and module contents only through their digests.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{FORMAT_VERSION, Plan};
use crate::model::DesiredState;

/// A plan as written to a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedPlan {
    /// The plan itself, exactly (its fields sit at the top level).
    #[serde(flatten)]
    pub plan: Plan,
    /// SHA-256 over every manifest input (see [`manifest_fingerprint`]).
    pub manifest_fingerprint: String,
    /// The plan was made against the embedded local account (`--local`).
    #[serde(default)]
    pub local: bool,
}

/// Why a saved plan cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SavedPlanError {
    #[error("the plan file is not JSON: {0}")]
    NotJson(String),
    #[error("the plan file has no `format_version`: it is not a saved plan")]
    NoVersion,
    #[error(
        "the plan file has format_version {0}, which this flareops does not know (it reads {FORMAT_VERSION})"
    )]
    UnknownVersion(Value),
    #[error("the plan file is not a valid saved plan: {0}")]
    Invalid(String),
}

impl SavedPlan {
    /// The file's text: pretty JSON ending in a newline.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        let mut out = serde_json::to_string_pretty(self)?;
        out.push('\n');
        Ok(out)
    }

    /// Reads a saved plan, checking its `format_version` first.
    pub fn parse(text: &str) -> Result<SavedPlan, SavedPlanError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| SavedPlanError::NotJson(e.to_string()))?;
        match value.get("format_version") {
            None => return Err(SavedPlanError::NoVersion),
            Some(version) if version.as_u64() != Some(u64::from(FORMAT_VERSION)) => {
                return Err(SavedPlanError::UnknownVersion(version.clone()));
            }
            Some(_) => {}
        }
        serde_json::from_value(value).map_err(|e| SavedPlanError::Invalid(e.to_string()))
    }
}

/// SHA-256 (hex) over every manifest input of one environment: the bytes
/// of `files` (`infra/*.yaml` and `environments/<env>.yaml`, as
/// `(relative path, bytes)`, in any order), then from `desired` every
/// worker module's name and content, every D1 migration's name and SQL, the
/// secrets' names (never their values) and the resolved desired state
/// itself (whose serialization shows secret values as a placeholder).
///
/// Every item is length-prefixed, so no two different inputs hash alike by
/// concatenation; the order is fixed (paths sorted, maps ordered).
pub fn manifest_fingerprint(
    desired: &DesiredState,
    files: &[(String, Vec<u8>)],
) -> Result<String, serde_json::Error> {
    let mut hasher = Sha256::new();
    let mut feed = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    feed(b"flareops manifest fingerprint v1");
    let mut sorted: Vec<&(String, Vec<u8>)> = files.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    for (path, bytes) in sorted {
        feed(b"file");
        feed(path.as_bytes());
        feed(bytes);
    }
    for (key, worker) in &desired.workers {
        feed(b"worker");
        feed(key.as_bytes());
        for module in &worker.spec.modules {
            feed(b"module");
            feed(module.name.as_bytes());
            feed(&module.content);
        }
        for name in worker.spec.secrets.keys() {
            feed(b"secret");
            feed(name.as_bytes());
        }
    }
    for (key, database) in &desired.d1_databases {
        feed(b"d1");
        feed(key.as_bytes());
        for migration in &database.spec.migrations {
            feed(b"migration");
            feed(migration.name.as_bytes());
            feed(migration.sql.as_bytes());
        }
    }
    feed(b"desired");
    feed(&serde_json::to_vec(desired)?);
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AccountTarget, LiveState};

    fn saved() -> SavedPlan {
        let desired = DesiredState::empty("staging", AccountTarget::Local);
        SavedPlan {
            plan: crate::plan::plan(&desired, &LiveState::default()),
            manifest_fingerprint: manifest_fingerprint(&desired, &[]).expect("hash"),
            local: false,
        }
    }

    #[test]
    fn saved_plan_round_trips() {
        let saved = saved();
        let parsed = SavedPlan::parse(&saved.to_json().expect("json")).expect("parses");
        assert_eq!(parsed, saved);
    }

    #[test]
    fn unknown_version_and_garbage_are_refused() {
        let mut value: Value =
            serde_json::from_str(&saved().to_json().expect("json")).expect("json");
        value["format_version"] = Value::from(99);
        assert!(matches!(
            SavedPlan::parse(&value.to_string()),
            Err(SavedPlanError::UnknownVersion(_))
        ));
        assert!(matches!(
            SavedPlan::parse("not json"),
            Err(SavedPlanError::NotJson(_))
        ));
        assert!(matches!(
            SavedPlan::parse("{}"),
            Err(SavedPlanError::NoVersion)
        ));
    }

    #[test]
    fn fingerprint_depends_on_files_not_their_order() {
        let desired = DesiredState::empty("staging", AccountTarget::Local);
        let a = ("infra/a.yaml".to_string(), b"a: 1".to_vec());
        let b = ("infra/b.yaml".to_string(), b"b: 1".to_vec());
        let one = manifest_fingerprint(&desired, &[a.clone(), b.clone()]).expect("hash");
        assert_eq!(
            one,
            manifest_fingerprint(&desired, &[b.clone(), a.clone()]).expect("hash")
        );
        let changed = ("infra/b.yaml".to_string(), b"b: 2".to_vec());
        assert_ne!(
            one,
            manifest_fingerprint(&desired, &[a, changed]).expect("hash")
        );
    }
}
