//! Planner tests: pure inputs, exact expectations, no server.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::model::{
    AccountTarget, D1DatabaseSpec, Declared, DesiredState, KvNamespaceSpec, LiveD1Database,
    LiveKvNamespace, LiveR2Bucket, LiveState, R2BucketSpec,
};

fn desired() -> DesiredState {
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
    state.d1_databases.insert(
        "main".into(),
        Declared {
            spec: D1DatabaseSpec {
                name: "main-staging".into(),
                location_hint: None,
                jurisdiction: None,
                migrations: Vec::new(),
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
                storage_class: Some(StorageClass::Standard),
                jurisdiction: None,
            },
            protect: false,
        },
    );
    state
}

fn matching_live() -> LiveState {
    let mut live = LiveState {
        account_id: "acc".into(),
        kv_namespaces: vec![LiveKvNamespace {
            id: "kv1".into(),
            title: "users-staging".into(),
        }],
        d1_databases: vec![LiveD1Database {
            uuid: "db1".into(),
            name: "main-staging".into(),
            jurisdiction: None,
            applied_migrations: None,
        }],
        r2_buckets: vec![LiveR2Bucket {
            name: "assets-staging".into(),
            location: Some(LocationHint::Weur),
            storage_class: StorageClass::Standard,
            jurisdiction: None,
        }],
        r2_jurisdictions_listed: vec![None],
        ..LiveState::default()
    };
    live.normalize();
    live
}

/// Runs the planner and compares `kind address` lines.
fn check(desired: &DesiredState, live: &LiveState, expected: &[&str]) -> Plan {
    let plan = plan(desired, live);
    let got: Vec<String> = plan
        .changes
        .iter()
        .map(|c| format!("{:?} {}", c.kind, c.address))
        .collect();
    assert_eq!(got, expected, "plan: {plan:#?}");
    plan
}

#[test]
fn empty_account_creates_everything() {
    let live = LiveState {
        account_id: "acc".into(),
        ..LiveState::default()
    };
    let plan = check(
        &desired(),
        &live,
        &[
            "Create kv_namespaces.users",
            "Create d1_databases.main",
            "Create r2_buckets.assets",
        ],
    );
    assert!(plan.changes.iter().all(|c| !c.destructive));
    assert_eq!(plan.summary().create, 3);
}

#[test]
fn matching_account_plans_nothing() {
    let plan = check(&desired(), &matching_live(), &[]);
    assert_eq!(plan.unchanged.len(), 3);
    assert!(plan.is_empty());
}

#[test]
fn storage_class_change_is_an_in_place_update() {
    let mut desired = desired();
    desired
        .r2_buckets
        .get_mut("assets")
        .unwrap()
        .spec
        .storage_class = Some(StorageClass::InfrequentAccess);
    let plan = check(&desired, &matching_live(), &["Update r2_buckets.assets"]);
    let change = &plan.changes[0];
    assert!(!change.destructive);
    assert_eq!(
        change.steps,
        vec![Step::SetR2StorageClass {
            name: "assets-staging".into(),
            jurisdiction: None,
            storage_class: StorageClass::InfrequentAccess,
        }]
    );
}

#[test]
fn location_change_replaces_the_bucket_destructively() {
    let mut desired = desired();
    desired
        .r2_buckets
        .get_mut("assets")
        .unwrap()
        .spec
        .location_hint = Some(LocationHint::Apac);
    let plan = check(&desired, &matching_live(), &["Replace r2_buckets.assets"]);
    let change = &plan.changes[0];
    assert!(change.destructive);
    assert!(change.fields[0].forces_replacement);
    assert!(matches!(change.steps[0], Step::DeleteR2Bucket { .. }));
    assert!(matches!(change.steps[1], Step::CreateR2Bucket { .. }));
}

#[test]
fn d1_jurisdiction_change_replaces_and_keeps_protect() {
    let mut desired = desired();
    let db = desired.d1_databases.get_mut("main").unwrap();
    db.spec.jurisdiction = Some(Jurisdiction::Eu);
    db.protect = true;
    let plan = check(&desired, &matching_live(), &["Replace d1_databases.main"]);
    assert!(plan.changes[0].destructive && plan.changes[0].protected);
    assert_eq!(
        plan.changes[0].steps[0],
        Step::DeleteD1Database {
            uuid: "db1".into(),
            name: "main-staging".into()
        }
    );
}

#[test]
fn unset_fields_are_not_managed() {
    let mut desired = desired();
    let bucket = &mut desired.r2_buckets.get_mut("assets").unwrap().spec;
    bucket.location_hint = None;
    bucket.storage_class = None;
    let mut live = matching_live();
    live.r2_buckets[0].storage_class = StorageClass::InfrequentAccess;
    live.r2_buckets[0].location = Some(LocationHint::Apac);
    check(&desired, &live, &[]);
}

#[test]
fn bucket_in_another_listed_jurisdiction_is_replaced() {
    let mut desired = desired();
    desired
        .r2_buckets
        .get_mut("assets")
        .unwrap()
        .spec
        .jurisdiction = Some(Jurisdiction::Eu);
    let plan = check(&desired, &matching_live(), &["Replace r2_buckets.assets"]);
    assert_eq!(
        plan.changes[0].steps[0],
        Step::DeleteR2Bucket {
            name: "assets-staging".into(),
            jurisdiction: None
        }
    );
}

#[test]
fn live_resources_not_in_git_are_left_alone_and_the_plan_says_so() {
    let mut live = matching_live();
    live.kv_namespaces.push(LiveKvNamespace {
        id: "x".into(),
        title: "someone-elses".into(),
    });
    let plan = check(&desired(), &live, &[]);
    assert!(plan.notes.iter().any(|n| n == NOTE_NO_DELETES));
}

#[test]
fn fingerprint_is_recorded() {
    let live = matching_live();
    assert_eq!(plan(&desired(), &live).live_fingerprint, live.fingerprint());
}

/// A pure model of what apply's steps do to an account.
fn simulate(live: &LiveState, plan: &Plan) -> LiveState {
    let mut live = live.clone();
    for (i, step) in plan.changes.iter().flat_map(|c| &c.steps).enumerate() {
        match step {
            Step::CreateKvNamespace { title } => live.kv_namespaces.push(LiveKvNamespace {
                id: format!("{}-{i}", &plan.live_fingerprint[..8]),
                title: title.clone(),
            }),
            Step::CreateD1Database {
                name, jurisdiction, ..
            } => live.d1_databases.push(LiveD1Database {
                uuid: format!("{}-{i}", &plan.live_fingerprint[..8]),
                name: name.clone(),
                jurisdiction: *jurisdiction,
                applied_migrations: None,
            }),
            Step::DeleteD1Database { uuid, .. } => live.d1_databases.retain(|d| &d.uuid != uuid),
            Step::CreateR2Bucket {
                name,
                location_hint,
                storage_class,
                jurisdiction,
            } => live.r2_buckets.push(LiveR2Bucket {
                name: name.clone(),
                location: Some(location_hint.unwrap_or(LocationHint::Enam)),
                storage_class: storage_class.unwrap_or(StorageClass::Standard),
                jurisdiction: *jurisdiction,
            }),
            Step::SetR2StorageClass {
                name,
                jurisdiction,
                storage_class,
            } => {
                for b in &mut live.r2_buckets {
                    if &b.name == name && &b.jurisdiction == jurisdiction {
                        b.storage_class = *storage_class;
                    }
                }
            }
            Step::DeleteR2Bucket { name, jurisdiction } => live
                .r2_buckets
                .retain(|b| !(&b.name == name && &b.jurisdiction == jurisdiction)),
            // These tests declare no workers.
            other => panic!("unexpected worker step {other:?}"),
        }
    }
    live.normalize();
    live
}

fn opt_of<T: Clone + std::fmt::Debug + 'static>(
    values: &'static [T],
) -> impl Strategy<Value = Option<T>> {
    proptest::option::of(proptest::sample::select(values))
}

fn arb_desired() -> impl Strategy<Value = DesiredState> {
    let d1 =
        ("[a-c]", opt_of(&Jurisdiction::ALL)).prop_map(|(name, jurisdiction)| D1DatabaseSpec {
            name: format!("db-{name}"),
            location_hint: None,
            jurisdiction,
            migrations: Vec::new(),
        });
    let r2 = (
        "[a-c]",
        opt_of(&LocationHint::ALL),
        opt_of(&StorageClass::ALL),
        opt_of(&Jurisdiction::ALL),
    )
        .prop_map(
            |(name, location_hint, storage_class, jurisdiction)| R2BucketSpec {
                name: format!("bucket-{name}"),
                location_hint,
                storage_class,
                jurisdiction,
            },
        );
    (
        proptest::collection::btree_set("[a-d]", 0..4),
        proptest::collection::vec(d1, 0..3),
        proptest::collection::vec(r2, 0..3),
    )
        .prop_map(|(kv, d1, r2)| {
            let mut state = DesiredState::empty("test", AccountTarget::Local);
            for title in kv {
                state.kv_namespaces.insert(
                    title.clone(),
                    Declared {
                        spec: KvNamespaceSpec { title },
                        protect: false,
                    },
                );
            }
            // Names are unique per kind (validation guarantees it).
            let mut seen = BTreeMap::new();
            for spec in d1 {
                seen.entry(spec.name.clone()).or_insert(spec);
            }
            for (i, spec) in seen.into_values().enumerate() {
                state.d1_databases.insert(
                    format!("d{i}"),
                    Declared {
                        spec,
                        protect: false,
                    },
                );
            }
            let mut seen = BTreeMap::new();
            for spec in r2 {
                seen.entry(spec.name.clone()).or_insert(spec);
            }
            for (i, spec) in seen.into_values().enumerate() {
                state.r2_buckets.insert(
                    format!("r{i}"),
                    Declared {
                        spec,
                        protect: false,
                    },
                );
            }
            state
        })
}

proptest! {
    /// apply(plan) then plan is empty, from any starting account that an
    /// earlier desired state produced.
    #[test]
    fn applying_a_plan_converges(before in arb_desired(), after in arb_desired()) {
        let empty = LiveState { account_id: "acc".into(), ..LiveState::default() };
        let mut live = simulate(&empty, &plan(&before, &empty));
        live.r2_jurisdictions_listed = after.r2_jurisdictions();
        let next = plan(&after, &live);
        let converged = simulate(&live, &next);
        let again = plan(&after, &converged);
        prop_assert!(again.is_empty(), "not converged: {again:#?}");
    }

    /// The same inputs give the same plan, byte for byte.
    #[test]
    fn planning_is_deterministic(desired in arb_desired()) {
        let live = matching_live();
        let one = serde_json::to_string(&plan(&desired, &live)).unwrap();
        let two = serde_json::to_string(&plan(&desired, &live)).unwrap();
        prop_assert_eq!(one, two);
    }
}

/// `desired()` declaring `files` for D1 `main`, and `matching_live()` with
/// `applied` in wrangler's table; flareops recorded each of `recorded`
/// with the bookmark `bm-<file>`.
fn with_migrations(
    files: &[&str],
    applied: &[&str],
    recorded: &[&str],
) -> (DesiredState, LiveState) {
    let mut desired = desired();
    desired
        .d1_databases
        .get_mut("main")
        .unwrap()
        .spec
        .migrations = files
        .iter()
        .map(|name| crate::model::D1Migration {
            name: (*name).into(),
            path: format!("migrations/{name}"),
            sql: String::new(),
            sha256: format!("sha-{name}"),
        })
        .collect();
    let mut live = matching_live();
    live.d1_databases[0].applied_migrations =
        Some(applied.iter().map(|n| (*n).to_string()).collect());
    for name in recorded {
        live.migration_hashes.insert(
            ("main-staging".into(), (*name).into()),
            crate::model::RecordedMigration {
                sha256: format!("sha-{name}"),
                bookmark_before: Some(format!("bm-{name}")),
            },
        );
    }
    (desired, live)
}

#[test]
fn applied_migrations_removed_from_git_are_undone_by_restoring_the_bookmark_before_them() {
    let (desired, live) = with_migrations(
        &["0001_init.sql"],
        &["0001_init.sql", "0002_posts.sql", "0003_tags.sql"],
        &["0001_init.sql", "0002_posts.sql", "0003_tags.sql"],
    );
    let plan = check(&desired, &live, &["Update d1_databases.main"]);
    let change = &plan.changes[0];
    assert!(change.destructive && change.conflict.is_none());
    assert_eq!(
        change.steps,
        vec![Step::RestoreD1Bookmark {
            database_key: "main".into(),
            name: "main-staging".into(),
            bookmark: "bm-0002_posts.sql".into(),
            undoes: vec!["0002_posts.sql".into(), "0003_tags.sql".into()],
        }]
    );
    assert_eq!(
        change.fields[0].after,
        Some(json!(["- 0002_posts.sql", "- 0003_tags.sql"]))
    );
    assert_eq!(change.fields[1].field, "data_loss");
    assert_eq!(
        change.fields[1].after,
        Some(json!("writes since bm-0002_posts.sql are lost"))
    );
    // Without --allow-delete, apply refuses it.
    let refused = crate::apply::check_permission(&plan, &crate::apply::ApplyOptions::default());
    assert!(matches!(
        refused,
        Err(crate::apply::Refusal::NeedsAllowDelete(_))
    ));
}

#[test]
fn files_still_declared_after_the_restored_bookmark_run_again() {
    let (desired, live) = with_migrations(
        &["0001_init.sql", "0003_tags.sql", "0004_new.sql"],
        &["0001_init.sql", "0002_posts.sql", "0003_tags.sql"],
        &["0001_init.sql", "0002_posts.sql", "0003_tags.sql"],
    );
    let plan = check(&desired, &live, &["Update d1_databases.main"]);
    let change = &plan.changes[0];
    assert_eq!(
        change.steps,
        vec![
            Step::RestoreD1Bookmark {
                database_key: "main".into(),
                name: "main-staging".into(),
                bookmark: "bm-0002_posts.sql".into(),
                undoes: vec!["0002_posts.sql".into(), "0003_tags.sql".into()],
            },
            Step::ApplyD1Migrations {
                database: "main".into(),
                name: "main-staging".into(),
                migrations: vec!["0003_tags.sql".into(), "0004_new.sql".into()],
            }
        ]
    );
    assert_eq!(
        change.fields[0].after,
        Some(json!([
            "- 0002_posts.sql",
            "- 0003_tags.sql",
            "+ 0003_tags.sql",
            "+ 0004_new.sql"
        ]))
    );
}

#[test]
fn an_undeclared_migration_wrangler_applied_is_a_conflict_without_a_bookmark() {
    let (desired, live) = with_migrations(
        &["0001_init.sql"],
        &["0001_init.sql", "0002_posts.sql"],
        &["0001_init.sql"],
    );
    let plan = check(&desired, &live, &["Update d1_databases.main"]);
    let change = &plan.changes[0];
    assert!(!change.destructive && change.steps.is_empty());
    let conflict = change.conflict.as_deref().expect("a conflict");
    assert!(conflict.contains("0002_posts.sql"), "{conflict}");
    assert!(conflict.contains("no bookmark"), "{conflict}");
    assert!(crate::apply::check_permission(&plan, &crate::apply::ApplyOptions::default()).is_err());
}

#[test]
fn after_the_restore_the_plan_is_empty() {
    let (desired, live) =
        with_migrations(&["0001_init.sql"], &["0001_init.sql"], &["0001_init.sql"]);
    check(&desired, &live, &[]);
}
