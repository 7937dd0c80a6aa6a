//! Planner tests: pure inputs, exact expectations, no server.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::model::{
    AccountTarget, D1DatabaseSpec, Declared, DesiredState, InventoryEntry, KvNamespaceSpec,
    LiveD1Database, LiveKvNamespace, LiveR2Bucket, LiveState, R2BucketSpec, ResourceKind,
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
            storage_class: crate::model::LiveStorageClass::Known(StorageClass::Standard),
            jurisdiction: None,
        }],
        r2_jurisdictions_listed: vec![None],
        // The ledger records all three: nothing to adopt.
        inventory: Some(vec![
            entry(ResourceKind::KvNamespaces, "users", "kv1", "users-staging"),
            entry(ResourceKind::D1Databases, "main", "db1", "main-staging"),
            entry(
                ResourceKind::R2Buckets,
                "assets",
                &InventoryEntry::r2_id("assets-staging", None),
                "assets-staging",
            ),
        ]),
        ..LiveState::default()
    };
    live.normalize();
    live
}

fn entry(kind: ResourceKind, key: &str, id: &str, name: &str) -> InventoryEntry {
    InventoryEntry {
        address: Address::new(kind, key),
        id: id.into(),
        name: name.into(),
        protect: false,
    }
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
        Steps::R2Bucket(vec![R2Step::SetStorageClass {
            name: "assets-staging".into(),
            jurisdiction: None,
            storage_class: StorageClass::InfrequentAccess,
        }])
    );
}

#[test]
fn a_location_hint_that_differs_is_a_note_not_a_replacement() {
    let mut desired = desired();
    desired
        .r2_buckets
        .get_mut("assets")
        .unwrap()
        .spec
        .location_hint = Some(LocationHint::Apac);
    let plan = check(&desired, &matching_live(), &[]);
    assert!(plan.notes.contains(&Note::LocationDiffers {
        address: Address::new(ResourceKind::R2Buckets, "assets"),
        declared: LocationHint::Apac,
        actual: Some(LocationHint::Weur),
    }));
}

#[test]
fn what_exists_by_name_but_is_not_recorded_is_adopted_never_silently() {
    let mut live = matching_live();
    live.inventory = Some(Vec::new());
    live.recorded_elsewhere = vec![(
        "production".into(),
        entry(ResourceKind::D1Databases, "main", "db1", "main-staging"),
    )];
    let plan = check(
        &desired(),
        &live,
        &[
            "Adopt kv_namespaces.users",
            "Adopt d1_databases.main",
            "Adopt r2_buckets.assets",
        ],
    );
    assert_eq!(plan.summary().adopt, 3);
    // Adopting changes nothing in the account: no step.
    assert!(plan.changes.iter().all(|c| c.steps.is_empty()));
    // What another environment records is refused, naming it.
    let main = plan
        .change(&Address::new(ResourceKind::D1Databases, "main"))
        .unwrap();
    assert_eq!(
        main.conflicts,
        vec![Conflict::RecordedElsewhere {
            environment: "production".into(),
            adopter: "staging".into(),
        }]
    );
    // Once recorded, nothing is left to do.
    check(&desired(), &matching_live(), &[]);
}

#[test]
fn d1_jurisdiction_change_replaces_and_keeps_protect() {
    let mut desired = desired();
    let db = desired.d1_databases.get_mut("main").unwrap();
    db.spec.jurisdiction = Some(Jurisdiction::Eu);
    db.protect = true;
    let plan = check(&desired, &matching_live(), &["Replace d1_databases.main"]);
    assert!(plan.changes[0].destructive && plan.changes[0].protected);
    let Steps::D1Database(steps) = &plan.changes[0].steps else {
        panic!("D1 steps expected");
    };
    assert_eq!(
        steps[0],
        D1Step::Delete {
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
    live.r2_buckets[0].storage_class =
        crate::model::LiveStorageClass::Known(StorageClass::InfrequentAccess);
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
    let Steps::R2Bucket(steps) = &plan.changes[0].steps else {
        panic!("R2 steps expected");
    };
    // Its objects first: R2 deletes only empty buckets.
    assert_eq!(
        steps[..2],
        [
            R2Step::Empty {
                name: "assets-staging".into(),
                jurisdiction: None
            },
            R2Step::Delete {
                name: "assets-staging".into(),
                jurisdiction: None
            }
        ]
    );
}

#[test]
fn live_resources_not_in_git_are_left_alone_and_the_plan_says_so() {
    let mut live = matching_live();
    live.kv_namespaces.push(LiveKvNamespace {
        id: "x".into(),
        title: "someone-elses".into(),
    });
    check(&desired(), &live, &[]);
    // Without a ledger, what matches git by name is adopted, the rest
    // left alone, and the plan says why nothing would be deleted.
    live.inventory = None;
    let plan = check(
        &desired(),
        &live,
        &[
            "Adopt kv_namespaces.users",
            "Adopt d1_databases.main",
            "Adopt r2_buckets.assets",
        ],
    );
    assert!(plan.notes.contains(&Note::NoLedgerYet));
}

#[test]
fn a_rename_onto_a_title_someone_else_took_is_a_conflict() {
    let mut live = matching_live();
    // The ledger records `users` as namespace kv1, now titled otherwise;
    // someone made a namespace with the declared title by hand.
    live.kv_namespaces[0].title = "users-old".into();
    live.kv_namespaces.push(LiveKvNamespace {
        id: "by-hand".into(),
        title: "users-staging".into(),
    });
    if let Some(inventory) = &mut live.inventory {
        inventory[0].name = "users-old".into();
    }
    live.normalize();
    let plan = check(&desired(), &live, &["Update kv_namespaces.users"]);
    assert_eq!(
        plan.changes[0].conflicts,
        vec![Conflict::NameTaken {
            name: "users-staging".into(),
            id: "by-hand".into(),
        }]
    );
}

#[test]
fn fingerprint_is_recorded() {
    let live = matching_live();
    assert_eq!(plan(&desired(), &live).live_fingerprint, live.fingerprint());
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

/// `live` with every list in another order (as another page size or a
/// retried request could return it).
fn shuffled(live: &LiveState, seed: u64) -> LiveState {
    use rand::SeedableRng;
    use rand::seq::SliceRandom;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut out = live.clone();
    out.kv_namespaces.shuffle(&mut rng);
    out.d1_databases.shuffle(&mut rng);
    out.r2_buckets.shuffle(&mut rng);
    out.r2_jurisdictions_listed.shuffle(&mut rng);
    if let Some(inventory) = &mut out.inventory {
        inventory.shuffle(&mut rng);
    }
    out
}

/// A live state holding `desired`'s storage and some other resources, with
/// a ledger recording part of it.
fn account_for(desired: &DesiredState) -> LiveState {
    let mut live = LiveState {
        account_id: "acc".into(),
        r2_jurisdictions_listed: desired.r2_jurisdictions(),
        ..LiveState::default()
    };
    for (i, spec) in desired.kv_namespaces.values().enumerate() {
        live.kv_namespaces.push(LiveKvNamespace {
            id: format!("kv-{i}"),
            title: spec.spec.title.clone(),
        });
    }
    for (i, spec) in desired.d1_databases.values().enumerate() {
        live.d1_databases.push(LiveD1Database {
            uuid: format!("db-{i}"),
            name: spec.spec.name.clone(),
            jurisdiction: None,
            applied_migrations: None,
        });
    }
    for spec in desired.r2_buckets.values() {
        live.r2_buckets.push(LiveR2Bucket {
            name: spec.spec.name.clone(),
            location: None,
            storage_class: crate::model::LiveStorageClass::Known(StorageClass::Standard),
            jurisdiction: spec.spec.jurisdiction,
        });
    }
    live.kv_namespaces.push(LiveKvNamespace {
        id: "kv-other".into(),
        title: "other".into(),
    });
    live.inventory = Some(live.inventory_for(desired));
    live
}

proptest! {
    /// The plan does not depend on the order the API listed things in:
    /// shuffled listings give the same plan, byte for byte.
    #[test]
    fn planning_does_not_depend_on_listing_order(
        declared in arb_desired(),
        applied in arb_desired(),
        seed in any::<u64>(),
    ) {
        let live = account_for(&applied);
        let one = serde_json::to_string(&plan(&declared, &live)).unwrap();
        let two = serde_json::to_string(&plan(&declared, &shuffled(&live, seed))).unwrap();
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
    assert!(change.destructive && change.conflicts.is_empty());
    assert_eq!(
        change.steps,
        Steps::D1Database(vec![D1Step::RestoreBookmark {
            uuid: "db1".into(),
            name: "main-staging".into(),
            bookmark: "bm-0002_posts.sql".into(),
            undoes: vec!["0002_posts.sql".into(), "0003_tags.sql".into()],
        }])
    );
    assert_eq!(
        change.fields[0].after,
        Some(Value::MigrationChanges {
            undo: vec!["0002_posts.sql".into(), "0003_tags.sql".into()],
            run: vec![],
        })
    );
    assert_eq!(change.fields[1].field, Field::DataLoss);
    assert_eq!(
        change.fields[1].after,
        Some(Value::WritesSince("bm-0002_posts.sql".into()))
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
        Steps::D1Database(vec![
            D1Step::RestoreBookmark {
                uuid: "db1".into(),
                name: "main-staging".into(),
                bookmark: "bm-0002_posts.sql".into(),
                undoes: vec!["0002_posts.sql".into(), "0003_tags.sql".into()],
            },
            D1Step::ApplyMigrations {
                uuid: Some("db1".into()),
                name: "main-staging".into(),
                migrations: vec!["0003_tags.sql".into(), "0004_new.sql".into()],
            }
        ])
    );
    assert_eq!(
        crate::render::value(&change.fields[0].after),
        r#"["- 0002_posts.sql", "- 0003_tags.sql", "+ 0003_tags.sql", "+ 0004_new.sql"]"#
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
    assert_eq!(
        change.conflicts,
        [Conflict::MigrationNotUndoable {
            file: "0002_posts.sql".into()
        }]
    );
    let words = crate::render::conflicts(&change.conflicts);
    assert!(words.contains("no bookmark"), "{words}");
    assert!(crate::apply::check_permission(&plan, &crate::apply::ApplyOptions::default()).is_err());
}

#[test]
fn after_the_restore_the_plan_is_empty() {
    let (desired, live) =
        with_migrations(&["0001_init.sql"], &["0001_init.sql"], &["0001_init.sql"]);
    check(&desired, &live, &[]);
}

#[test]
fn a_storage_class_flareops_does_not_know_is_reported_as_it_is() {
    use crate::model::LiveStorageClass;
    assert_eq!(
        LiveStorageClass::reported(None),
        LiveStorageClass::Known(StorageClass::Standard)
    );
    let mut live = matching_live();
    live.r2_buckets[0].storage_class = LiveStorageClass::reported(Some("DeepArchive"));
    // Declared: the unknown class is shown as reported and changed in place.
    let plan = check(&desired(), &live, &["Update r2_buckets.assets"]);
    assert_eq!(
        plan.changes[0].fields[0].before,
        Some(Value::Text("DeepArchive".into()))
    );
    // Not declared: not managed.
    let mut undeclared = desired();
    undeclared
        .r2_buckets
        .get_mut("assets")
        .unwrap()
        .spec
        .storage_class = None;
    check(&undeclared, &live, &[]);
}
