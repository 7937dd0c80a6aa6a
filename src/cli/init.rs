//! `flareops init [--example]`: a first project in the current directory:
//! manifests that plan against the embedded local account at once, the
//! JSON Schemas the manifests name, CI workflows and a `.gitignore`; with
//! `--example`, the Klear Karma example (a TypeScript Hono API with KV, D1,
//! R2, a Durable Object and a cron). Never overwrites: when a file exists,
//! nothing is written.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};

use super::Printer;

const GITIGNORE: &str =
    "# flareops' local state and build cache; a worker's packages and build output.
/.flareops/
node_modules/
dist/
";

const STARTER_INFRA: &str = r#"# yaml-language-server: $schema=../schemas/infra.schema.json
# Your resources, by logical key (docs/manifest.md in flareops' repository
# lists every kind and field). `${env}` is the environment's name, so each
# environment gets its own.
kv_namespaces:
  cache:
    title: my-app-cache-${env}

# d1_databases:
#   main:
#     name: my-app-${env}
#     migrations: migrations/main
#
# r2_buckets:
#   assets:
#     name: my-app-assets-${env}
#
# workers:
#   api:
#     name: my-app-api-${env}
#     main: workers/api/index.js
#     compatibility_date: "2025-01-15"
#     bindings:
#       CACHE: {kv_namespace: cache}
"#;

const STARTER_STAGING: &str = r#"# yaml-language-server: $schema=../schemas/environment.schema.json
# Staging. `account: local` is the embedded local account: `flareops plan
# --env staging` works with no Cloudflare account. Replace it with
# `account_id: <32 hex>` (and add `zone: example.com` for routes).
account: local
"#;

const STARTER_PRODUCTION: &str = r#"# yaml-language-server: $schema=../schemas/environment.schema.json
# Production. The account comes from CLOUDFLARE_ACCOUNT_ID, or write
# `account_id: <32 hex>` here.
{}
"#;

/// The example project, as this version of flareops ships it.
const EXAMPLE: [(&str, &str); 21] = [
    ("infra/dns.yaml", include_str!("../../infra/dns.yaml")),
    ("infra/pages.yaml", include_str!("../../infra/pages.yaml")),
    ("web/index.html", include_str!("../../web/index.html")),
    ("web/404.html", include_str!("../../web/404.html")),
    ("web/styles.css", include_str!("../../web/styles.css")),
    ("web/app.js", include_str!("../../web/app.js")),
    (
        "infra/storage.yaml",
        include_str!("../../infra/storage.yaml"),
    ),
    (
        "infra/workers.yaml",
        include_str!("../../infra/workers.yaml"),
    ),
    (
        "environments/staging.yaml",
        include_str!("../../environments/staging.yaml"),
    ),
    (
        "environments/production.yaml",
        include_str!("../../environments/production.yaml"),
    ),
    (
        "workers/api/package.json",
        include_str!("../../workers/api/package.json"),
    ),
    (
        "workers/api/package-lock.json",
        include_str!("../../workers/api/package-lock.json"),
    ),
    (
        "workers/api/tsconfig.json",
        include_str!("../../workers/api/tsconfig.json"),
    ),
    (
        "workers/api/src/index.ts",
        include_str!("../../workers/api/src/index.ts"),
    ),
    (
        "workers/api/src/auth.ts",
        include_str!("../../workers/api/src/auth.ts"),
    ),
    (
        "workers/api/src/env.ts",
        include_str!("../../workers/api/src/env.ts"),
    ),
    (
        "workers/api/src/chat-room.ts",
        include_str!("../../workers/api/src/chat-room.ts"),
    ),
    (
        "workers/api/src/practitioners.ts",
        include_str!("../../workers/api/src/practitioners.ts"),
    ),
    (
        "migrations/main/0001_initial_schema.sql",
        include_str!("../../migrations/main/0001_initial_schema.sql"),
    ),
    (
        "migrations/main/0002_bookings.sql",
        include_str!("../../migrations/main/0002_bookings.sql"),
    ),
    (".gitignore", GITIGNORE),
];

/// The CI workflows of a repository of manifests.
const WORKFLOWS: [(&str, &str); 3] = [
    (
        ".github/workflows/plan.yml",
        include_str!("../../docs/examples/workflows/plan.yml"),
    ),
    (
        ".github/workflows/apply.yml",
        include_str!("../../docs/examples/workflows/apply.yml"),
    ),
    (
        ".github/workflows/drift.yml",
        include_str!("../../docs/examples/workflows/drift.yml"),
    ),
];

/// The files `init` writes (path, content).
fn files(example: bool) -> anyhow::Result<Vec<(String, String)>> {
    let mut files: Vec<(String, String)> = if example {
        EXAMPLE
            .iter()
            .map(|(p, c)| (p.to_string(), c.to_string()))
            .collect()
    } else {
        vec![
            ("infra/main.yaml".into(), STARTER_INFRA.into()),
            ("environments/staging.yaml".into(), STARTER_STAGING.into()),
            (
                "environments/production.yaml".into(),
                STARTER_PRODUCTION.into(),
            ),
            (".gitignore".into(), GITIGNORE.into()),
        ]
    };
    files.extend(
        WORKFLOWS
            .iter()
            .map(|(p, c)| (p.to_string(), c.to_string())),
    );
    let schema = crate::manifest::json_schema();
    for (kind, file) in [
        ("infra", "schemas/infra.schema.json"),
        ("environment", "schemas/environment.schema.json"),
    ] {
        files.push((
            file.into(),
            format!("{}\n", serde_json::to_string_pretty(&schema[kind])?),
        ));
    }
    Ok(files)
}

pub fn run(root: &Path, example: bool, printer: &Printer) -> anyhow::Result<ExitCode> {
    let files = files(example)?;
    let existing: Vec<&str> = files
        .iter()
        .map(|(path, _)| path.as_str())
        .filter(|path| root.join(path).exists())
        .collect();
    if !existing.is_empty() {
        bail!(
            "nothing was written: these files exist: {}\nhint: init starts a project in an empty directory; move them away or run it elsewhere (`--dir DIR`)",
            existing.join(", ")
        );
    }
    for (path, content) in &files {
        let full = root.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&full, content).with_context(|| format!("writing {path}"))?;
        printer.message(&format!("wrote {path}"));
    }
    printer.message(if example {
        "next: `flareops plan --env staging --local` (the worker's build installs its npm packages), then `flareops apply --env staging --local --yes`"
    } else {
        "next: `flareops plan --env staging` (staging is the embedded local account), then edit infra/ and environments/"
    });
    Ok(ExitCode::SUCCESS)
}
