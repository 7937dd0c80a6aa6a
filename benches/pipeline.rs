//! Criterion benchmarks of the pure middle of the pipeline at scale:
//! loading manifests, planning 10,000 resources against a prepared live
//! state (no HTTP), and rendering the plan. `cargo bench` prints the
//! figures; no test asserts a time.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use flareops::model::{
    AccountTarget, Binding, D1DatabaseSpec, Declared, DesiredState, InventoryEntry,
    KvNamespaceSpec, LiveD1Database, LiveKvNamespace, LiveR2Bucket, LiveState, LiveStorageClass,
    ModuleKind, R2BucketSpec, Rollout, StorageClass, WorkerModule, WorkerSpec,
};

const RESOURCES: usize = 10_000;

fn declared<T>(spec: T) -> Declared<T> {
    Declared {
        spec,
        protect: false,
    }
}

/// 70% KV namespaces, 13% D1 databases, 13% R2 buckets, 4% workers.
fn desired(total: usize) -> DesiredState {
    let workers = total * 4 / 100;
    let d1 = total * 13 / 100;
    let r2 = total * 13 / 100;
    let kv = total - workers - d1 - r2;
    let mut state = DesiredState::empty("bench", AccountTarget::Local);
    for i in 0..kv {
        state.kv_namespaces.insert(
            format!("kv{i:05}"),
            declared(KvNamespaceSpec {
                title: format!("bench-kv-{i:05}"),
            }),
        );
    }
    for i in 0..d1 {
        state.d1_databases.insert(
            format!("db{i:05}"),
            declared(D1DatabaseSpec {
                name: format!("bench-db-{i:05}"),
                location_hint: None,
                jurisdiction: None,
                migrations: Vec::new(),
            }),
        );
    }
    for i in 0..r2 {
        state.r2_buckets.insert(
            format!("r2{i:05}"),
            declared(R2BucketSpec {
                name: format!("bench-r2-{i:05}"),
                location_hint: None,
                storage_class: Some(StorageClass::Standard),
                jurisdiction: None,
            }),
        );
    }
    for i in 0..workers {
        let mut bindings = BTreeMap::new();
        bindings.insert(
            "KV".to_string(),
            Binding::KvNamespace(format!("kv{:05}", i % kv)),
        );
        bindings.insert("DB".to_string(), Binding::D1(format!("db{:05}", i % d1)));
        bindings.insert(
            "BUCKET".to_string(),
            Binding::R2Bucket(format!("r2{:05}", i % r2)),
        );
        state.workers.insert(
            format!("w{i:04}"),
            declared(WorkerSpec {
                name: format!("bench-worker-{i:04}"),
                main_module: "index.js".into(),
                modules: vec![WorkerModule {
                    name: "index.js".into(),
                    kind: ModuleKind::EsModule,
                    content: format!(
                        "export default {{ fetch() {{ return new Response('{i}'); }} }};\n"
                    )
                    .into_bytes(),
                }],
                compatibility_date: "2025-01-15".into(),
                compatibility_flags: Vec::new(),
                bindings,
                secrets: BTreeMap::new(),
                crons: Vec::new(),
                routes: Vec::new(),
                custom_domains: Vec::new(),
                rollout: Rollout::Immediate,
                build: None,
                source_paths: Vec::new(),
                consumers: Default::default(),
            }),
        );
    }
    state
}

/// The account holding `desired`'s storage (every other namespace missing,
/// so half the KV plan is creates), with a ledger recording it.
fn live(desired: &DesiredState) -> LiveState {
    let mut live = LiveState {
        account_id: "bench".into(),
        r2_jurisdictions_listed: vec![None],
        ..LiveState::default()
    };
    for (i, ns) in desired.kv_namespaces.values().enumerate() {
        if i % 2 == 0 {
            live.kv_namespaces.push(LiveKvNamespace {
                id: format!("id-{i}"),
                title: ns.spec.title.clone(),
            });
        }
    }
    for (i, db) in desired.d1_databases.values().enumerate() {
        live.d1_databases.push(LiveD1Database {
            uuid: format!("uuid-{i}"),
            name: db.spec.name.clone(),
            jurisdiction: None,
            applied_migrations: None,
        });
    }
    for bucket in desired.r2_buckets.values() {
        live.r2_buckets.push(LiveR2Bucket {
            name: bucket.spec.name.clone(),
            location: None,
            storage_class: LiveStorageClass::Known(StorageClass::Standard),
            jurisdiction: None,
        });
    }
    let inventory: Vec<InventoryEntry> = live.inventory_for(desired);
    live.inventory = Some(inventory);
    live.normalize();
    live
}

/// Writes `desired`-like manifests of `total` resources to a temp dir.
fn project(total: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let kv = total * 7 / 10;
    let mut yaml = String::from("kv_namespaces:\n");
    for i in 0..kv {
        yaml.push_str(&format!(
            "  kv{i:05}:\n    title: bench-kv-{i:05}-${{env}}\n"
        ));
    }
    yaml.push_str("r2_buckets:\n");
    for i in 0..total - kv {
        yaml.push_str(&format!(
            "  r2{i:05}:\n    name: bench-r2-{i:05}-${{env}}\n    storage_class: Standard\n"
        ));
    }
    std::fs::create_dir_all(dir.path().join("infra")).expect("infra");
    std::fs::create_dir_all(dir.path().join("environments")).expect("environments");
    std::fs::write(dir.path().join("infra/bench.yaml"), yaml).expect("write");
    std::fs::write(
        dir.path().join("environments/bench.yaml"),
        "account: local\n",
    )
    .expect("write");
    dir
}

fn benchmarks(c: &mut Criterion) {
    let desired = desired(RESOURCES);
    let live = live(&desired);
    c.bench_function("plan 10,000 resources", |b| {
        b.iter(|| flareops::plan::plan(black_box(&desired), black_box(&live)))
    });
    let plan = flareops::plan::plan(&desired, &live);
    c.bench_function("render text, 10,000 resources", |b| {
        b.iter(|| flareops::render::text(black_box(&plan)))
    });
    c.bench_function("render json, 10,000 resources", |b| {
        b.iter(|| flareops::render::json(black_box(&plan)))
    });
    let project = project(2_000);
    c.bench_function("load manifests of 2,000 resources", |b| {
        b.iter(|| flareops::manifest::load(black_box(project.path()), "bench"))
    });
}

criterion_group! {
    name = pipeline;
    config = Criterion::default().sample_size(10);
    targets = benchmarks
}
criterion_main!(pipeline);
