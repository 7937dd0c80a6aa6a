//! Snapshot tests of the rendered plans (text and JSON).

use super::*;
use crate::model::{Address, Jurisdiction, LocationHint, ResourceKind, StorageClass};
use crate::plan::{
    Change, ChangeKind, D1Step, Field, FieldDiff, KvStep, Note, Plan, R2Step, Steps, Value,
    VersionRef, VersionStep,
};
use crate::render::markdown::{BODY_LIMIT, FOOTER_RESERVE};

fn sample_plan() -> Plan {
    Plan {
        format_version: crate::plan::FORMAT_VERSION,
        environment: "staging".into(),
        account_id: "0123456789abcdef0123456789abcdef".into(),
        live_fingerprint: "f".repeat(64),
        changes: vec![
            Change {
                conflicts: Vec::new(),
                code_diff: Vec::new(),
                address: Address::new(ResourceKind::KvNamespaces, "users"),
                kind: ChangeKind::Create,
                destructive: false,
                protected: false,
                fields: vec![FieldDiff::added(
                    Field::Title,
                    Value::Text("klear-karma-users-staging".into()),
                )],
                steps: Steps::KvNamespace(vec![KvStep::Create {
                    title: "klear-karma-users-staging".into(),
                }]),
            },
            Change {
                conflicts: Vec::new(),
                code_diff: Vec::new(),
                address: Address::new(ResourceKind::D1Databases, "main"),
                kind: ChangeKind::Replace,
                destructive: true,
                protected: true,
                fields: vec![
                    FieldDiff::changed(
                        Field::Jurisdiction,
                        None,
                        Some(Value::Jurisdiction(Jurisdiction::Eu)),
                    )
                    .forcing_replacement(),
                ],
                steps: Steps::D1Database(vec![
                    D1Step::Delete {
                        uuid: "1111".into(),
                        name: "klear-karma-staging".into(),
                    },
                    D1Step::Create {
                        name: "klear-karma-staging".into(),
                        location_hint: None,
                        jurisdiction: Some(Jurisdiction::Eu),
                    },
                ]),
            },
            Change {
                conflicts: Vec::new(),
                code_diff: Vec::new(),
                address: Address::new(ResourceKind::R2Buckets, "assets"),
                kind: ChangeKind::Update,
                destructive: false,
                protected: false,
                fields: vec![FieldDiff::changed(
                    Field::StorageClass,
                    Some(Value::StorageClass(StorageClass::Standard)),
                    Some(Value::StorageClass(StorageClass::InfrequentAccess)),
                )],
                steps: Steps::R2Bucket(vec![R2Step::SetStorageClass {
                    name: "klear-karma-assets-staging".into(),
                    jurisdiction: None,
                    storage_class: StorageClass::InfrequentAccess,
                }]),
            },
            Change {
                conflicts: Vec::new(),
                code_diff: Vec::new(),
                address: Address::new(ResourceKind::KvNamespaces, "analytics"),
                kind: ChangeKind::Delete,
                destructive: true,
                protected: false,
                fields: vec![FieldDiff::removed(
                    Field::Name,
                    Value::Text("klear-karma-analytics-staging".into()),
                )],
                steps: Steps::KvNamespace(vec![KvStep::Delete {
                    id: "2222".into(),
                    title: "klear-karma-analytics-staging".into(),
                }]),
            },
        ],
        unchanged: vec![Address::new(ResourceKind::KvNamespaces, "reviews")],
        notes: vec![Note::NoLedgerYet],
    }
}

#[test]
fn text_plan() {
    insta::assert_snapshot!(text(&sample_plan()));
}

#[test]
fn json_plan() {
    insta::assert_snapshot!(json(&sample_plan()).expect("json"));
}

#[test]
fn text_plan_without_changes() {
    let mut plan = sample_plan();
    plan.changes.clear();
    let _ = LocationHint::Weur;
    insta::assert_snapshot!(text(&plan));
}

fn worker_change(lines: usize) -> Change {
    let mut diff =
        String::from("--- deployed/src/index.js\n+++ git/src/index.js\n@@ -1,1 +1,1 @@\n");
    for i in 0..lines {
        diff.push_str(&format!(
            "-const a{i} = ```old```;\n+const a{i} = \"new\";\n"
        ));
    }
    Change {
        conflicts: Vec::new(),
        code_diff: vec![crate::plan::ModuleDiff {
            module: "src/index.js".into(),
            diff,
        }],
        address: Address::new(ResourceKind::Workers, "api"),
        kind: ChangeKind::Update,
        destructive: false,
        protected: false,
        fields: vec![FieldDiff::changed(
            Field::Version,
            Some(Value::Version(VersionRef::Deployed {
                number: 3,
                tag: Some("0123456789abcdef0123".into()),
            })),
            Some(Value::Version(VersionRef::New {
                tag: Some("fedcba9876543210fedc".into()),
            })),
        )],
        steps: Steps::Worker(vec![
            VersionStep::UploadVersion {
                name: "api-staging".into(),
                identity: None,
                secrets: Vec::new(),
            }
            .into(),
        ]),
    }
}

fn comment(environments: &[EnvironmentPlan], local: bool) -> String {
    plan_comment(&PlanComment {
        commit: "flareops 0123456789ab",
        local,
        environments,
    })
}

#[test]
fn markdown_plan_comment() {
    let mut staging = sample_plan();
    staging.changes.push(worker_change(2));
    let mut production = sample_plan();
    production.environment = "production".into();
    production.changes.clear();
    insta::assert_snapshot!(comment(
        &[
            EnvironmentPlan::Planned(staging),
            EnvironmentPlan::Planned(production),
        ],
        false
    ));
}

#[test]
fn markdown_plan_comment_with_an_error_and_the_local_account() {
    let body = comment(
        &[
            EnvironmentPlan::Planned(sample_plan()),
            EnvironmentPlan::Failed {
                environment: "production".into(),
                error: "CLOUDFLARE_API_TOKEN is not set\nhint: export a token".into(),
            },
        ],
        true,
    );
    insta::assert_snapshot!(body);
}

/// Every fenced block is closed and `<details>` tags balance.
fn assert_well_formed(body: &str) {
    let mut open: Option<String> = None;
    for line in body.lines() {
        let ticks = line.chars().take_while(|c| *c == '`').count();
        if ticks >= 3 {
            match &open {
                None => open = Some("`".repeat(ticks)),
                Some(fence) if line.trim_end() == fence => open = None,
                Some(_) => {}
            }
        }
    }
    assert!(open.is_none(), "a code block is left open");
    assert_eq!(
        body.matches("<details>").count(),
        body.matches("</details>").count()
    );
}

#[test]
fn markdown_bodies_over_the_limit_are_cut_with_a_note() {
    let mut staging = sample_plan();
    // About 2 x 40 bytes x 200 lines shown per worker: many workers
    // overflow the limit.
    for i in 0..60 {
        let mut change = worker_change(300);
        change.address = Address::new(ResourceKind::Workers, format!("api{i:02}"));
        staging.changes.push(change);
    }
    let mut production = staging.clone();
    production.environment = "production".into();
    let whole_size: usize = [&staging, &production].iter().map(|p| text(p).len()).sum();
    assert!(
        whole_size > BODY_LIMIT,
        "the test needs a plan over the limit"
    );
    let body = comment(
        &[
            EnvironmentPlan::Planned(staging),
            EnvironmentPlan::Planned(production),
        ],
        false,
    );
    assert!(
        body.len() <= BODY_LIMIT - FOOTER_RESERVE,
        "{} bytes",
        body.len()
    );
    assert!(
        body.len() > BODY_LIMIT - 2_000,
        "the budget is used: {}",
        body.len()
    );
    assert!(body.starts_with(PLAN_MARKER));
    assert!(body.contains("cut to stay under GitHub's limit of 65,536 characters"));
    assert!(body.contains("artifacts"));
    // The summary table is whole, and the later section keeps its summary.
    assert!(body.contains("| `production` | 1 | 61 | 1 | 1 | **yes** |"));
    assert!(body.contains("<details><summary><b>production</b>"));
    assert_well_formed(&body);
}

#[test]
fn markdown_fences_outlast_backticks_in_the_content() {
    let mut staging = sample_plan();
    staging.changes.push(worker_change(1));
    let body = comment(&[EnvironmentPlan::Planned(staging)], false);
    // The diff holds a run of three backticks: its fence has four.
    assert!(body.contains("````diff\n--- deployed/src/index.js"));
    assert_well_formed(&body);
}

/// An adoption is its own kind in every view: text, JSON, and the
/// comment's table (a column appears) and diff.
#[test]
fn adoptions_show_in_text_json_and_markdown() {
    let mut plan = sample_plan();
    plan.changes.push(Change {
        conflicts: Vec::new(),
        code_diff: Vec::new(),
        address: Address::new(ResourceKind::R2Buckets, "uploads"),
        kind: ChangeKind::Adopt,
        destructive: false,
        protected: false,
        fields: Vec::new(),
        steps: Steps::R2Bucket(Vec::new()),
    });
    let shown = text(&plan);
    assert!(shown.contains("<= adopt r2_buckets.uploads"), "{shown}");
    assert!(shown.contains("Plan: 1 to adopt, 1 to create"), "{shown}");
    let json: serde_json::Value = serde_json::from_str(&json(&plan).expect("json")).expect("parse");
    assert_eq!(json["summary"]["adopt"], 1);
    assert!(
        json["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .any(|c| c["kind"] == "adopt" && c["address"] == "r2_buckets.uploads"),
        "{json}"
    );
    let body = comment(&[EnvironmentPlan::Planned(plan)], false);
    assert!(
        body.contains("| Environment | Adopt | Create | Update | Replace | Delete | Destructive |"),
        "{body}"
    );
    assert!(body.contains("| `staging` | 1 | 1 |"), "{body}");
    assert!(body.contains("<= adopt r2_buckets.uploads"), "{body}");
    assert!(body.contains("1 to adopt, 1 to create"), "{body}");
}

/// The comment as GitHub renders it (GitHub-flavoured markdown, raw HTML
/// for `<details>`): `comrak`, a maintained GFM renderer.
fn rendered(markdown: &str) -> String {
    let mut options = comrak::Options::default();
    options.extension.table = true;
    options.extension.strikethrough = true;
    options.extension.autolink = true;
    options.render.r#unsafe = true;
    comrak::markdown_to_html(markdown, &options)
}

/// What must survive rendering: the summary table, the collapsible
/// sections, and every fenced code block as a code block (so a diff line
/// never turns into a heading or a list).
pub(crate) fn assert_renders(markdown: &str, first_column: &str) -> String {
    let html = rendered(markdown);
    assert!(html.contains("<table>"), "no table:\n{html}");
    assert!(html.contains(&format!("<th>{first_column}</th>")), "{html}");
    let fences = markdown
        .lines()
        .filter(|line| line.starts_with("```") && !line.trim_start_matches('`').is_empty())
        .count();
    let code_blocks = html.matches("<pre><code").count();
    assert_eq!(
        code_blocks, fences,
        "every fenced block renders as code:\n{html}"
    );
    assert_eq!(
        html.matches("<details>").count(),
        html.matches("</details>").count(),
        "{html}"
    );
    assert!(
        !html.contains("<h1>") && !html.contains("<ul>\n<li>+ "),
        "{html}"
    );
    html
}

#[test]
fn the_comment_renders_as_intended_on_github() {
    let mut staging = sample_plan();
    staging.changes.push(worker_change(2));
    let mut production = sample_plan();
    production.environment = "production".into();
    production.changes.clear();
    let html = assert_renders(
        &comment(
            &[
                EnvironmentPlan::Planned(staging),
                EnvironmentPlan::Planned(production),
            ],
            false,
        ),
        "Environment",
    );
    assert!(html.contains("<details><summary><b>staging</b>"), "{html}");
    assert!(html.contains("<code class=\"language-diff\">"), "{html}");
    // The backticks in the worker's code stay inside its code block.
    assert!(html.contains("const a0 = ```old```;"), "{html}");
}

#[test]
fn a_comment_cut_at_the_size_limit_still_renders() {
    let mut staging = sample_plan();
    for i in 0..60 {
        let mut change = worker_change(300);
        change.address = Address::new(ResourceKind::Workers, format!("api{i:02}"));
        staging.changes.push(change);
    }
    let body = comment(&[EnvironmentPlan::Planned(staging)], false);
    assert!(body.len() > BODY_LIMIT - 2_000, "the body is cut");
    assert_renders(&body, "Environment");
}

#[test]
fn the_requests_footer_counts_against_the_token_budget() {
    let plan = sample_plan();
    let limited = requests_footer(&plan, 14, Some(crate::cloudflare::RateLimit::DEFAULT));
    assert!(
        limited.starts_with("Requests: this plan made 14; applying it needs about "),
        "{limited}"
    );
    assert!(
        limited.contains("of the token's 1,200 per 5 minutes"),
        "{limited}"
    );
    assert!(
        limited.contains("flareops sends at most 1,000 per 5 minutes"),
        "{limited}"
    );
    // Beyond what the pace lets through at once, the wait is said.
    let slow = requests_footer(&plan, 2_000, Some(crate::cloudflare::RateLimit::DEFAULT));
    assert!(slow.contains("so it takes at least 11 minutes"), "{slow}");
    let off = requests_footer(&plan, 14, None);
    assert!(off.contains("rate limit is off"), "{off}");
}
