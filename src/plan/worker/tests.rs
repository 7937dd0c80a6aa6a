//! Worker planning: identity, new versions, secrets, triggers, routing,
//! split deployments. Pure inputs, no server.

use std::collections::BTreeMap;

use super::*;
use crate::model::{
    AccountTarget, Declared, KvNamespaceSpec, LiveContent, LiveDeploymentShare, LiveKvNamespace,
    LiveRoute, LiveVersion, ModuleKind, Rollout, SecretRef, SecretSource, SecretValue, Zone,
};
use crate::plan::{
    ChangeKind, Conflict, Field, RoutingStep, SettingStep, Steps, Value, VersionStep, WorkerStep,
    plan,
};

fn module(name: &str, text: &str) -> WorkerModule {
    WorkerModule {
        name: name.into(),
        kind: ModuleKind::EsModule,
        content: text.as_bytes().to_vec(),
    }
}

fn desired() -> DesiredState {
    let mut state = DesiredState::empty("staging", AccountTarget::Local);
    state.zone = Some(Zone {
        name: "example.com".into(),
        id: None,
    });
    state.kv_namespaces.insert(
        "users".into(),
        Declared {
            spec: KvNamespaceSpec {
                title: "users-staging".into(),
            },
            protect: false,
        },
    );
    let mut bindings = BTreeMap::new();
    bindings.insert("USERS".to_string(), Binding::KvNamespace("users".into()));
    bindings.insert("VERSION".to_string(), Binding::Text("v1".into()));
    let mut secrets = BTreeMap::new();
    secrets.insert(
        "JWT_SECRET".to_string(),
        SecretRef {
            source: SecretSource::FromEnv("KK_JWT".into()),
            value: SecretValue::new("canary-secret"),
        },
    );
    state.workers.insert(
        "api".into(),
        Declared {
            spec: WorkerSpec {
                name: "api-staging".into(),
                main_module: "index.js".into(),
                modules: vec![module(
                    "index.js",
                    "export default {\n  fetch() {\n    return new Response('a');\n  }\n};\n",
                )],
                compatibility_date: "2025-01-15".into(),
                compatibility_flags: vec![],
                bindings,
                secrets,
                crons: vec!["0 * * * *".into()],
                routes: vec!["api-staging.example.com/*".into()],
                custom_domains: vec![],
                rollout: Rollout::Immediate,
                build: None,
                source_paths: Vec::new(),
                consumers: Default::default(),
            },
            protect: false,
        },
    );
    state
}

fn live_storage() -> LiveState {
    LiveState {
        account_id: "acc".into(),
        kv_namespaces: vec![LiveKvNamespace {
            id: "kv-1".into(),
            title: "users-staging".into(),
        }],
        zone_id: Some("zone-1".into()),
        ..LiveState::default()
    }
}

/// The account after a faithful apply of `desired`.
fn deployed(desired: &DesiredState) -> LiveState {
    deployed_with(desired, live_storage())
}

/// `live` plus the worker as a faithful apply of `desired` leaves it.
fn deployed_with(desired: &DesiredState, mut live: LiveState) -> LiveState {
    let spec = &desired.workers["api"].spec;
    let identity = worker_identity(desired, &live, "api").expect("resolvable");
    live.workers.push(LiveWorker {
        name: spec.name.clone(),
        deployment: vec![LiveDeploymentShare {
            version_id: "v-1".into(),
            percentage: 100,
        }],
        versions: vec![LiveVersion {
            id: "v-1".into(),
            number: 1,
            tag: Some(identity_tag(&identity)),
            message: None,
            author: None,
            compatibility_date: Some(spec.compatibility_date.clone()),
            compatibility_flags: vec![],
            bindings: resolve_bindings(desired, &live, spec).expect("resolvable"),
        }],
        secrets: spec.secrets.keys().cloned().collect(),
        crons: spec.crons.clone(),
        routes: vec![LiveRoute {
            id: "r-1".into(),
            pattern: spec.routes[0].clone(),
        }],
        ..LiveWorker::default()
    });
    // The apply recorded what it made.
    live.inventory = Some(live.inventory_for(desired));
    live
}

fn worker_change(desired: &DesiredState, live: &LiveState) -> Option<Change> {
    plan(desired, live)
        .changes
        .into_iter()
        .find(|c| c.address.kind == crate::model::ResourceKind::Workers)
}

fn steps(change: &Change) -> &[WorkerStep] {
    match &change.steps {
        Steps::Worker(steps) => steps,
        other => panic!("worker steps expected: {other:?}"),
    }
}

fn ops(change: &Change) -> Vec<&'static str> {
    steps(change)
        .iter()
        .map(|s| match s {
            WorkerStep::Version(VersionStep::UploadScript { .. }) => "upload_script",
            WorkerStep::Version(VersionStep::UploadVersion { .. }) => "upload_version",
            WorkerStep::Version(VersionStep::Deploy { .. }) => "deploy",
            WorkerStep::Version(VersionStep::Redeploy { .. }) => "redeploy",
            WorkerStep::Version(VersionStep::FinishRollout { .. }) => "finish_rollout",
            WorkerStep::Setting(SettingStep::DeleteSecret { .. }) => "delete_secret",
            WorkerStep::Setting(SettingStep::SetCrons { .. }) => "crons",
            WorkerStep::Setting(SettingStep::DeleteScript { .. }) => "delete_script",
            WorkerStep::Setting(SettingStep::PutConsumer { .. }) => "put_consumer",
            WorkerStep::Setting(SettingStep::DeleteConsumer { .. }) => "delete_consumer",
            WorkerStep::Routing(RoutingStep::CreateRoute { .. }) => "create_route",
            WorkerStep::Routing(RoutingStep::DeleteRoute { .. }) => "delete_route",
            WorkerStep::Routing(RoutingStep::AttachDomain { .. }) => "attach_domain",
            WorkerStep::Routing(RoutingStep::DetachDomain { .. }) => "detach_domain",
        })
        .collect()
}

#[test]
fn a_new_worker_is_uploaded_then_gets_secrets_triggers_and_routes() {
    let desired = desired();
    let change = worker_change(&desired, &live_storage()).expect("a change");
    assert_eq!(change.kind, ChangeKind::Create);
    assert_eq!(ops(&change), ["upload_script", "crons", "create_route"]);
    let WorkerStep::Version(VersionStep::UploadScript { secrets, .. }) = &steps(&change)[0] else {
        panic!("expected an upload");
    };
    assert_eq!(
        secrets,
        &["JWT_SECRET"],
        "the secrets ride on the first upload"
    );
    let rendered = serde_json::to_string(&change).unwrap();
    assert!(!rendered.contains("canary-secret"), "{rendered}");
    let secret = change
        .fields
        .iter()
        .find(|f| f.field == Field::Secret("JWT_SECRET".into()))
        .expect("the secret is named");
    assert_eq!(
        secret.after,
        Some(Value::Secret(crate::plan::SecretState::Set))
    );
    assert_eq!(crate::render::value(&secret.after), "(sensitive)");
}

#[test]
fn an_applied_worker_plans_nothing() {
    let desired = desired();
    assert!(worker_change(&desired, &deployed(&desired)).is_none());
}

#[test]
fn identity_depends_on_code_settings_and_binding_ids_but_not_secrets() {
    let desired = desired();
    let live = live_storage();
    let base = worker_identity(&desired, &live, "api").unwrap();

    let mut other = desired.clone();
    other.workers.get_mut("api").unwrap().spec.modules[0]
        .content
        .push(b'\n');
    assert_ne!(worker_identity(&other, &live, "api").unwrap(), base);

    let mut other = desired.clone();
    other
        .workers
        .get_mut("api")
        .unwrap()
        .spec
        .compatibility_date = "2025-02-01".into();
    assert_ne!(worker_identity(&other, &live, "api").unwrap(), base);

    let mut moved = live.clone();
    moved.kv_namespaces[0].id = "kv-2".into();
    assert_ne!(worker_identity(&desired, &moved, "api").unwrap(), base);

    let mut other = desired.clone();
    other
        .workers
        .get_mut("api")
        .unwrap()
        .spec
        .secrets
        .get_mut("JWT_SECRET")
        .unwrap()
        .value = SecretValue::new("another");
    assert_eq!(worker_identity(&other, &live, "api").unwrap(), base);
}

#[test]
fn a_binding_to_a_namespace_this_plan_creates_is_known_after_apply() {
    let desired = desired();
    let mut live = live_storage();
    live.kv_namespaces.clear();
    assert_eq!(worker_identity(&desired, &live, "api"), None);
    let change = worker_change(&desired, &live).expect("a change");
    let binding = change
        .fields
        .iter()
        .find(|f| f.field == Field::Binding("USERS".into()))
        .unwrap();
    assert_eq!(
        binding.after,
        Some(Value::PendingBinding(Address::new(
            ResourceKind::KvNamespaces,
            "users"
        )))
    );
    assert_eq!(
        crate::render::value(&binding.after),
        "kv_namespaces.users (known after apply)"
    );
}

#[test]
fn a_code_change_uploads_and_deploys_a_new_version_with_a_diff() {
    let before = desired();
    let mut live = deployed(&before);
    live.workers[0].versions[0].tag = Some("somethingelse".into());
    live.workers[0].content = Some(LiveContent {
        main_module: "index.js".into(),
        modules: before.workers["api"].spec.modules.clone(),
    });
    let mut after = before.clone();
    after.workers.get_mut("api").unwrap().spec.modules[0] = module(
        "index.js",
        "export default {\n  fetch() {\n    return new Response('b');\n  }\n};\n",
    );
    let change = worker_change(&after, &live).expect("a change");
    assert_eq!(change.kind, ChangeKind::Update);
    assert_eq!(ops(&change), ["upload_version", "deploy"]);
    assert_eq!(change.code_diff.len(), 1);
    let diff = &change.code_diff[0].diff;
    assert!(diff.contains("-    return new Response('a');"), "{diff}");
    assert!(diff.contains("+    return new Response('b');"), "{diff}");
}

#[test]
fn a_version_without_our_tag_but_the_same_content_is_unchanged() {
    let desired = desired();
    let mut live = deployed(&desired);
    live.workers[0].versions[0].tag = None;
    live.workers[0].content = Some(LiveContent {
        main_module: "index.js".into(),
        modules: desired.workers["api"].spec.modules.clone(),
    });
    assert!(worker_change(&desired, &live).is_none());
}

#[test]
fn a_var_change_is_a_new_version_and_a_cron_change_is_only_a_cron_change() {
    let before = desired();
    let live = deployed(&before);

    let mut var = before.clone();
    var.workers
        .get_mut("api")
        .unwrap()
        .spec
        .bindings
        .insert("VERSION".into(), Binding::Text("v2".into()));
    let change = worker_change(&var, &live).expect("a change");
    assert_eq!(ops(&change), ["upload_version", "deploy"]);
    assert!(
        change
            .fields
            .iter()
            .any(|f| f.field == Field::Binding("VERSION".into()))
    );

    let mut cron = before.clone();
    cron.workers.get_mut("api").unwrap().spec.crons = vec!["30 * * * *".into()];
    let change = worker_change(&cron, &live).expect("a change");
    assert_eq!(ops(&change), ["crons"]);

    let mut route = before.clone();
    route.workers.get_mut("api").unwrap().spec.routes = vec!["v2.example.com/*".into()];
    let change = worker_change(&route, &live).expect("a change");
    assert_eq!(ops(&change), ["delete_route", "create_route"]);
}

#[test]
fn new_secret_names_are_sent_and_removed_ones_deleted() {
    let before = desired();
    let mut live = deployed(&before);
    live.workers[0].secrets = vec!["OLD".into()];
    let change = worker_change(&before, &live).expect("a change");
    // The new secret rides on a new version; the removed one is deleted
    // only once that version is live.
    assert_eq!(ops(&change), ["upload_version", "deploy", "delete_secret"]);
    let WorkerStep::Version(VersionStep::UploadVersion {
        secrets, identity, ..
    }) = &steps(&change)[0]
    else {
        panic!("expected an upload");
    };
    assert_eq!(secrets, &["JWT_SECRET"]);
    assert_eq!(
        identity,
        &worker_identity(&before, &live, "api"),
        "same code, same identity"
    );
}

#[test]
fn an_interrupted_rollout_of_the_declared_version_is_finished() {
    let desired = desired();
    let mut live = deployed(&desired);
    live.workers[0].deployment = vec![
        LiveDeploymentShare {
            version_id: "v-1".into(),
            percentage: 90,
        },
        LiveDeploymentShare {
            version_id: "v-0".into(),
            percentage: 10,
        },
    ];
    let change = worker_change(&desired, &live).expect("not converged while split");
    assert_eq!(ops(&change), ["finish_rollout"]);
    assert!(change.conflicts.is_empty());
    // The other way round too: ours at the smaller share.
    live.workers[0].deployment = vec![
        LiveDeploymentShare {
            version_id: "v-0".into(),
            percentage: 80,
        },
        LiveDeploymentShare {
            version_id: "v-1".into(),
            percentage: 20,
        },
    ];
    let change = worker_change(&desired, &live).expect("not converged while split");
    assert_eq!(ops(&change), ["finish_rollout"]);
    // A 0% share is not a split.
    live.workers[0].deployment = vec![
        LiveDeploymentShare {
            version_id: "v-1".into(),
            percentage: 100,
        },
        LiveDeploymentShare {
            version_id: "v-0".into(),
            percentage: 0,
        },
    ];
    assert!(worker_change(&desired, &live).is_none());
}

#[test]
fn a_worker_bound_to_a_replaced_database_gets_a_new_version() {
    let mut desired = desired();
    desired.d1_databases.insert(
        "main".into(),
        Declared {
            spec: crate::model::D1DatabaseSpec {
                name: "main-staging".into(),
                location_hint: None,
                jurisdiction: Some(crate::model::Jurisdiction::Eu),
                migrations: Vec::new(),
            },
            protect: false,
        },
    );
    desired
        .workers
        .get_mut("api")
        .unwrap()
        .spec
        .bindings
        .insert("DB".into(), Binding::D1("main".into()));
    let mut live = live_storage();
    live.d1_databases.push(crate::model::LiveD1Database {
        uuid: "old-db".into(),
        name: "main-staging".into(),
        jurisdiction: None,
        applied_migrations: None,
    });
    let mut live = {
        let mut with_worker = deployed_with(&desired, live.clone());
        with_worker.d1_databases = live.d1_databases.clone();
        with_worker
    };
    live.normalize();
    let plan = plan(&desired, &live);
    let kinds: Vec<String> = plan
        .changes
        .iter()
        .map(|c| format!("{:?} {}", c.kind, c.address))
        .collect();
    assert_eq!(
        kinds,
        ["Replace d1_databases.main", "Update workers.api"],
        "{plan:#?}"
    );
    let worker = &plan.changes[1];
    let WorkerStep::Version(VersionStep::UploadVersion { identity, .. }) = &steps(worker)[0] else {
        panic!("expected an upload: {worker:#?}");
    };
    assert_eq!(identity, &None, "known after apply");
}

#[test]
fn a_split_deployment_made_by_someone_else_is_a_conflict() {
    let before = desired();
    let mut live = deployed(&before);
    live.workers[0].deployment = vec![
        LiveDeploymentShare {
            version_id: "v-1".into(),
            percentage: 60,
        },
        LiveDeploymentShare {
            version_id: "v-0".into(),
            percentage: 40,
        },
    ];
    live.workers[0].deployed_by = Some("someone@example.com".into());
    let mut after = before.clone();
    after.workers.get_mut("api").unwrap().spec.modules[0]
        .content
        .push(b'\n');
    let change = worker_change(&after, &live).expect("a change");
    let [Conflict::SplitDeployment { deployed_by, .. }] = &change.conflicts[..] else {
        panic!("a split deployment conflict: {:?}", change.conflicts);
    };
    assert_eq!(deployed_by.as_deref(), Some("someone@example.com"));
    let words = crate::render::conflicts(&change.conflicts);
    assert!(words.contains("someone@example.com"), "{words}");
    assert!(words.contains("v-0 at 40%"), "{words}");
}

#[test]
fn a_new_durable_object_class_migrates_with_a_script_upload() {
    let before = desired();
    let live = deployed(&before);
    let mut after = before.clone();
    after
        .workers
        .get_mut("api")
        .unwrap()
        .spec
        .bindings
        .insert("ROOM".into(), Binding::DurableObject("ChatRoom".into()));
    let change = worker_change(&after, &live).expect("a change");
    assert_eq!(ops(&change), ["upload_script"]);
    let WorkerStep::Version(VersionStep::UploadScript {
        migration: Some(migration),
        ..
    }) = &steps(&change)[0]
    else {
        panic!("expected a migration: {change:#?}");
    };
    assert_eq!(migration.new_tag, "v1");
    assert_eq!(migration.new_sqlite_classes, ["ChatRoom"]);
}

#[test]
fn routes_without_the_zone_in_the_account_are_a_conflict() {
    let desired = desired();
    let mut live = live_storage();
    live.zone_id = None;
    let change = worker_change(&desired, &live).expect("a change");
    assert_eq!(
        change.conflicts,
        [Conflict::ZoneNotFound {
            zone: Some("example.com".into())
        }]
    );
}
