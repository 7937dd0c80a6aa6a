//! Snapshot tests of the rendered plans (text and JSON).

use super::*;
use crate::model::{Address, Jurisdiction, LocationHint, ResourceKind, StorageClass};
use crate::plan::{Change, ChangeKind, FieldDiff, NOTE_NO_DELETES, Plan, Step};
use serde_json::json;

fn sample_plan() -> Plan {
    Plan {
        format_version: crate::plan::FORMAT_VERSION,
        environment: "staging".into(),
        account_id: "0123456789abcdef0123456789abcdef".into(),
        live_fingerprint: "f".repeat(64),
        changes: vec![
            Change {
                conflict: None,
                code_diff: Vec::new(),
                address: Address::new(ResourceKind::KvNamespaces, "users"),
                kind: ChangeKind::Create,
                destructive: false,
                protected: false,
                fields: vec![FieldDiff {
                    field: "title".into(),
                    before: None,
                    after: Some(json!("klear-karma-users-staging")),
                    forces_replacement: false,
                }],
                steps: vec![Step::CreateKvNamespace {
                    title: "klear-karma-users-staging".into(),
                }],
            },
            Change {
                conflict: None,
                code_diff: Vec::new(),
                address: Address::new(ResourceKind::D1Databases, "main"),
                kind: ChangeKind::Replace,
                destructive: true,
                protected: true,
                fields: vec![FieldDiff {
                    field: "jurisdiction".into(),
                    before: None,
                    after: Some(json!("eu")),
                    forces_replacement: true,
                }],
                steps: vec![
                    Step::DeleteD1Database {
                        uuid: "1111".into(),
                        name: "klear-karma-staging".into(),
                    },
                    Step::CreateD1Database {
                        name: "klear-karma-staging".into(),
                        location_hint: None,
                        jurisdiction: Some(Jurisdiction::Eu),
                    },
                ],
            },
            Change {
                conflict: None,
                code_diff: Vec::new(),
                address: Address::new(ResourceKind::R2Buckets, "assets"),
                kind: ChangeKind::Update,
                destructive: false,
                protected: false,
                fields: vec![FieldDiff {
                    field: "storage_class".into(),
                    before: Some(json!("Standard")),
                    after: Some(json!("InfrequentAccess")),
                    forces_replacement: false,
                }],
                steps: vec![Step::SetR2StorageClass {
                    name: "klear-karma-assets-staging".into(),
                    jurisdiction: None,
                    storage_class: StorageClass::InfrequentAccess,
                }],
            },
            Change {
                conflict: None,
                code_diff: Vec::new(),
                address: Address::new(ResourceKind::KvNamespaces, "analytics"),
                kind: ChangeKind::Delete,
                destructive: true,
                protected: false,
                fields: vec![FieldDiff {
                    field: "name".into(),
                    before: Some(json!("klear-karma-analytics-staging")),
                    after: None,
                    forces_replacement: false,
                }],
                steps: vec![Step::DeleteKvNamespace {
                    id: "2222".into(),
                    title: "klear-karma-analytics-staging".into(),
                }],
            },
        ],
        unchanged: vec![Address::new(ResourceKind::KvNamespaces, "reviews")],
        notes: vec![NOTE_NO_DELETES.into()],
    }
}

#[test]
fn text_plan() {
    insta::assert_snapshot!(text(&sample_plan()));
}

#[test]
fn json_plan() {
    insta::assert_snapshot!(json(&sample_plan()));
}

#[test]
fn text_plan_without_changes() {
    let mut plan = sample_plan();
    plan.changes.clear();
    let _ = LocationHint::Weur;
    insta::assert_snapshot!(text(&plan));
}
