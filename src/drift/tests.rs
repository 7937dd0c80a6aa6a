//! Unit tests of drift classification: real plans from the planner over
//! hand-built desired and live states.

use super::*;
use crate::model::{
    AccountTarget, Address, Declared, InventoryEntry, KvNamespaceSpec, LiveKvNamespace,
    LiveR2Bucket, LocationHint, R2BucketSpec, StorageClass,
};
use crate::plan::plan;

fn desired(storage_class: StorageClass) -> DesiredState {
    let mut state = DesiredState::empty("staging", AccountTarget::Local);
    state.kv_namespaces.insert(
        "users".into(),
        Declared {
            spec: KvNamespaceSpec {
                title: "users-staging".into(),
            },
            protect: false,
        },
    );
    state.r2_buckets.insert(
        "assets".into(),
        Declared {
            spec: R2BucketSpec {
                name: "assets-staging".into(),
                location_hint: Some(LocationHint::Weur),
                storage_class: Some(storage_class),
                jurisdiction: None,
            },
            protect: false,
        },
    );
    state
}

fn entry(kind: ResourceKind, key: &str, id: &str, name: &str) -> InventoryEntry {
    InventoryEntry {
        address: Address::new(kind, key),
        id: id.into(),
        name: name.into(),
        protect: false,
    }
}

/// The account as the last apply left it: both resources, recorded.
fn applied_live(storage_class: StorageClass) -> LiveState {
    let mut live = LiveState {
        account_id: "acc".into(),
        kv_namespaces: vec![LiveKvNamespace {
            id: "kv1".into(),
            title: "users-staging".into(),
        }],
        r2_buckets: vec![LiveR2Bucket {
            name: "assets-staging".into(),
            location: Some(LocationHint::Weur),
            storage_class: crate::model::LiveStorageClass::Known(storage_class),
            jurisdiction: None,
        }],
        r2_jurisdictions_listed: vec![None],
        inventory: Some(vec![
            entry(ResourceKind::KvNamespaces, "users", "kv1", "users-staging"),
            entry(
                ResourceKind::R2Buckets,
                "assets",
                "default:assets-staging",
                "assets-staging",
            ),
        ]),
        ..LiveState::default()
    };
    live.normalize();
    live
}

fn last_apply() -> LastApply {
    LastApply {
        id: "a1".into(),
        started_at: "2026-01-01T00:00:00Z".into(),
        finished_at: Some("2026-01-01T00:00:01Z".into()),
        git_commit: "flareops abc".into(),
        actor: "ci".into(),
        status: crate::ledger::journal::ShownStatus::Succeeded,
    }
}

fn run(
    desired: &DesiredState,
    live: &LiveState,
    reference: Option<&DesiredState>,
    scripts: &[String],
) -> DriftReport {
    let now = plan(desired, live);
    let earlier = reference.map(|d| plan(d, live));
    let apply = last_apply();
    classify(&DriftInputs {
        desired,
        live,
        now: &now,
        reference: match &earlier {
            Some(p) => Reference::LastApply(p),
            None => Reference::LastApply(&now),
        },
        last_apply: Some(&apply),
        scripts,
        elsewhere: &[],
        git_commit: "flareops abc",
    })
}

fn addresses(items: &[DriftChange]) -> Vec<String> {
    items.iter().map(|i| i.change.address.to_string()).collect()
}

#[test]
fn a_matching_account_has_no_drift() {
    let report = run(
        &desired(StorageClass::Standard),
        &applied_live(StorageClass::Standard),
        None,
        &[],
    );
    assert!(!report.has_drift(), "{report:#?}");
}

#[test]
fn a_recorded_resource_gone_from_the_account_was_deleted_outside_git() {
    let mut live = applied_live(StorageClass::Standard);
    live.kv_namespaces.clear();
    let report = run(&desired(StorageClass::Standard), &live, None, &[]);
    assert_eq!(
        addresses(&report.deleted_outside_git),
        ["kv_namespaces.users"]
    );
    assert_eq!(
        report.deleted_outside_git[0].recorded_id.as_deref(),
        Some("kv1")
    );
    assert!(report.changed_outside_git.is_empty() && report.pending.is_empty());
    assert!(report.has_drift());
}

#[test]
fn a_setting_changed_in_the_account_is_changed_outside_git() {
    // Git (then and now) says Standard; someone changed the bucket.
    let live = applied_live(StorageClass::InfrequentAccess);
    let report = run(
        &desired(StorageClass::Standard),
        &live,
        Some(&desired(StorageClass::Standard)),
        &[],
    );
    assert_eq!(
        addresses(&report.changed_outside_git),
        ["r2_buckets.assets"]
    );
    assert!(report.pending.is_empty());
    let field = &report.changed_outside_git[0].change.fields[0];
    assert_eq!(field.field, crate::plan::Field::StorageClass);
}

#[test]
fn a_setting_git_changed_since_the_last_apply_is_pending() {
    // The last apply ran with Standard; git now says InfrequentAccess.
    let live = applied_live(StorageClass::Standard);
    let report = run(
        &desired(StorageClass::InfrequentAccess),
        &live,
        Some(&desired(StorageClass::Standard)),
        &[],
    );
    assert_eq!(addresses(&report.pending), ["r2_buckets.assets"]);
    assert!(report.changed_outside_git.is_empty());
}

#[test]
fn a_resource_new_in_git_is_pending_and_one_removed_from_git_too() {
    let mut now = desired(StorageClass::Standard);
    now.kv_namespaces.remove("users");
    now.kv_namespaces.insert(
        "reviews".into(),
        Declared {
            spec: KvNamespaceSpec {
                title: "reviews-staging".into(),
            },
            protect: false,
        },
    );
    let live = applied_live(StorageClass::Standard);
    let report = run(&now, &live, Some(&desired(StorageClass::Standard)), &[]);
    let mut pending = addresses(&report.pending);
    pending.sort();
    assert_eq!(pending, ["kv_namespaces.reviews", "kv_namespaces.users"]);
    // Removed from git but recorded: pending delete, not a look-alike.
    assert!(report.unmanaged.is_empty(), "{:?}", report.unmanaged);
}

#[test]
fn unrecorded_resources_named_like_the_environment_are_unmanaged_look_alikes() {
    let mut live = applied_live(StorageClass::Standard);
    live.kv_namespaces.push(LiveKvNamespace {
        id: "kv9".into(),
        title: "users-staging-copy".into(),
    });
    live.kv_namespaces.push(LiveKvNamespace {
        id: "kv8".into(),
        title: "users-production".into(),
    });
    live.kv_namespaces.push(LiveKvNamespace {
        id: "kv7".into(),
        title: "stagingish".into(),
    });
    let scripts = vec!["api-staging-test".to_string(), "api-production".to_string()];
    let report = run(&desired(StorageClass::Standard), &live, None, &scripts);
    let names: Vec<&str> = report.unmanaged.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["users-staging-copy", "api-staging-test"]);
    assert_eq!(report.unmanaged[0].id, "kv9");
    assert!(report.has_drift());
}

#[test]
fn without_an_apply_every_difference_is_pending() {
    let desired = desired(StorageClass::Standard);
    let mut live = applied_live(StorageClass::InfrequentAccess);
    live.kv_namespaces.clear();
    live.inventory = None;
    let now = plan(&desired, &live);
    let report = classify(&DriftInputs {
        desired: &desired,
        live: &live,
        now: &now,
        reference: Reference::NeverApplied,
        last_apply: None,
        scripts: &[],
        elsewhere: &[],
        git_commit: "flareops abc",
    });
    let mut pending = addresses(&report.pending);
    pending.sort();
    assert_eq!(pending, ["kv_namespaces.users", "r2_buckets.assets"]);
    assert!(report.notes.contains(&DriftNote::NeverApplied));
}

#[test]
fn with_unknown_manifests_of_the_last_apply_differences_count_as_outside_git() {
    let desired = desired(StorageClass::InfrequentAccess);
    let live = applied_live(StorageClass::Standard);
    let now = plan(&desired, &live);
    let apply = LastApply {
        status: crate::ledger::journal::ShownStatus::Interrupted,
        ..last_apply()
    };
    let report = classify(&DriftInputs {
        desired: &desired,
        live: &live,
        now: &now,
        reference: Reference::Unknown(None),
        last_apply: Some(&apply),
        scripts: &[],
        elsewhere: &[],
        git_commit: "flareops abc",
    });
    assert_eq!(
        addresses(&report.changed_outside_git),
        ["r2_buckets.assets"]
    );
    assert!(
        report
            .notes
            .contains(&DriftNote::ReferenceUnknown { reason: None })
    );
    assert!(report.notes.iter().any(|n| matches!(
        n,
        DriftNote::LastApplyUnfinished {
            status: crate::ledger::journal::ShownStatus::Interrupted,
            ..
        }
    )));
    let words: Vec<String> = report.notes.iter().map(ToString::to_string).collect();
    assert!(
        words.iter().any(|n| n.contains("cannot be told")),
        "{words:?}"
    );
    assert!(words.iter().any(|n| n.contains("interrupted")), "{words:?}");
}

#[test]
fn names_look_like_an_environment_by_whole_words() {
    assert!(looks_like("klear-karma-users-staging", "staging"));
    assert!(looks_like("Staging_users", "staging"));
    assert!(looks_like("api.staging.example", "staging"));
    assert!(!looks_like("klear-karma-users-stagingx", "staging"));
    assert!(!looks_like("prestaging", "staging"));
}

/// A report with every category, as text and as an issue body.
#[test]
fn drift_report_views() {
    let mut now = desired(StorageClass::Standard);
    now.kv_namespaces.insert(
        "reviews".into(),
        Declared {
            spec: KvNamespaceSpec {
                title: "reviews-staging".into(),
            },
            protect: false,
        },
    );
    let mut live = applied_live(StorageClass::InfrequentAccess);
    live.kv_namespaces = vec![LiveKvNamespace {
        id: "kv9".into(),
        title: "users-staging-copy".into(),
    }];
    let report = run(
        &now,
        &live,
        Some(&desired(StorageClass::Standard)),
        &["api-staging-test".to_string()],
    );
    insta::assert_snapshot!("drift_text", crate::render::drift_text(&report));
    insta::assert_snapshot!("drift_markdown", crate::render::drift_markdown(&report));
    // As GitHub renders the issue body: the table, the sections, the code.
    let html =
        crate::render::tests::assert_renders(&crate::render::drift_markdown(&report), "Category");
    assert!(
        html.contains("<details><summary><b>Changed outside git</b>"),
        "{html}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&crate::render::drift_json(&report).expect("json")).expect("json");
    assert_eq!(json["drift"], serde_json::Value::Bool(true));
    assert_eq!(
        json["deleted_outside_git"][0]["address"],
        "kv_namespaces.users"
    );
    assert_eq!(json["deleted_outside_git"][0]["recorded_id"], "kv1");
    assert_eq!(json["pending"][0]["address"], "kv_namespaces.reviews");
}

#[test]
fn resources_another_environment_manages_or_declares_are_not_look_alikes() {
    let mut live = applied_live(StorageClass::Standard);
    // Environment `staging-eu` shares the account: its names carry `staging`.
    live.kv_namespaces.push(LiveKvNamespace {
        id: "kv5".into(),
        title: "users-staging-eu".into(),
    });
    live.kv_namespaces.push(LiveKvNamespace {
        id: "kv6".into(),
        title: "cache-staging-eu".into(),
    });
    let desired = desired(StorageClass::Standard);
    let now = plan(&desired, &live);
    let elsewhere = vec![
        (ResourceKind::KvNamespaces, "users-staging-eu".to_string()),
        (ResourceKind::KvNamespaces, "kv6".to_string()),
    ];
    let report = classify(&DriftInputs {
        desired: &desired,
        live: &live,
        now: &now,
        reference: Reference::LastApply(&now),
        last_apply: None,
        scripts: &[],
        elsewhere: &elsewhere,
        git_commit: "flareops abc",
    });
    assert!(report.unmanaged.is_empty(), "{:?}", report.unmanaged);
    assert!(!report.has_drift());
}

#[test]
fn a_secret_value_rotated_in_ci_is_pending_not_changed_outside_git() {
    let desired = desired(StorageClass::Standard);
    let live = applied_live(StorageClass::Standard);
    let mut now = plan(&desired, &live);
    let secret = |name: &str| {
        crate::plan::FieldDiff::changed(
            crate::plan::Field::Secret(name.into()),
            Some(crate::plan::Value::Secret(crate::plan::SecretState::Set)),
            Some(crate::plan::Value::Secret(
                crate::plan::SecretState::Changed,
            )),
        )
    };
    now.changes.push(Change {
        address: Address::new(ResourceKind::Workers, "api"),
        kind: ChangeKind::Update,
        destructive: false,
        protected: false,
        fields: vec![secret("JWT_SECRET")],
        steps: crate::plan::Steps::Worker(Vec::new()),
        conflicts: Vec::new(),
        code_diff: Vec::new(),
    });
    let report = classify(&DriftInputs {
        desired: &desired,
        live: &live,
        now: &now,
        reference: Reference::LastApply(&now),
        last_apply: None,
        scripts: &[],
        elsewhere: &[],
        git_commit: "flareops abc",
    });
    assert_eq!(addresses(&report.pending), ["workers.api"]);
    assert!(report.changed_outside_git.is_empty());
}

#[test]
fn notes_serialize_as_objects_with_their_kind() {
    let notes = vec![
        DriftNote::NeverApplied,
        DriftNote::Plan(crate::plan::Note::NoLedgerYet),
        DriftNote::LastApplyUnfinished {
            id: "a1".into(),
            status: crate::ledger::journal::ShownStatus::Failed,
        },
    ];
    assert_eq!(
        serde_json::to_value(&notes).expect("json"),
        serde_json::json!([
            {"note": "never_applied"},
            {"note": "no_ledger_yet"},
            {"note": "last_apply_unfinished", "id": "a1", "status": "failed"},
        ])
    );
}
