//! Pages against the emulator with the real wrangler: `pages project
//! create` and `list`, `pages deploy <dir>` (Direct Upload: upload token,
//! missing-hash check, uploads, hash upsert, deployment with the file
//! manifest), `pages deployment list`; then a second deploy of the same
//! folder uploads nothing (the hashes are known).

use serde_json::Value;

use crate::support::{TestEmulator, run_flareops as run};
use crate::wrangler::{Wrangler, wrangler_or_skip};

use crate::pages_kind::site_project;

#[test]
fn wrangler_pages_project_create_list_deploy_and_deployment_list() {
    let Some(bin) =
        wrangler_or_skip("wrangler_pages_project_create_list_deploy_and_deployment_list")
    else {
        return;
    };
    let emulator = TestEmulator::start();
    let wrangler = Wrangler::new(bin, &emulator);
    wrangler
        .run(&[
            "pages",
            "project",
            "create",
            "kk-web",
            "--production-branch=main",
        ])
        .success();
    let listed = wrangler.run(&["pages", "project", "list"]).success();
    assert!(listed.stdout.contains("kk-web"), "{}", listed.output());
    assert!(
        listed.stdout.contains("kk-web.pages.dev"),
        "{}",
        listed.output()
    );

    wrangler.write("site/index.html", "<!doctype html><h1>Klear Karma</h1>\n");
    wrangler.write("site/app.js", "console.log('hello');\n");
    wrangler.write("site/css/style.css", "body { margin: 0 }\n");
    let deployed = wrangler
        .run(&[
            "pages",
            "deploy",
            "site",
            "--project-name=kk-web",
            "--branch=main",
            "--commit-hash=abc1234",
            "--commit-message=first",
        ])
        .success();
    assert!(
        deployed.output().contains("Deployment complete"),
        "{}",
        deployed.output()
    );
    let uploads = emulator.endpoint_count("POST /pages/assets/upload");
    assert!(uploads >= 1, "the files were uploaded");

    let project = emulator.get(&emulator.account_path("/pages/projects/kk-web"));
    let canonical = &project["result"]["canonical_deployment"];
    assert_eq!(canonical["environment"], "production", "{project}");
    assert_eq!(
        canonical["deployment_trigger"]["metadata"]["commit_hash"],
        "abc1234"
    );

    // The same folder again: every hash is known, nothing is uploaded.
    wrangler
        .run(&[
            "pages",
            "deploy",
            "site",
            "--project-name=kk-web",
            "--branch=main",
            "--commit-message=again",
        ])
        .success();
    assert_eq!(
        emulator.endpoint_count("POST /pages/assets/upload"),
        uploads
    );

    let deployments = wrangler
        .run(&[
            "pages",
            "deployment",
            "list",
            "--project-name=kk-web",
            "--json",
        ])
        .success();
    let listed: Value = deployments.json();
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
}

/// flareops and wrangler agree on a deployment's files: after `wrangler
/// pages deploy` of a folder, flareops declaring that folder uploads
/// nothing (every hash is one wrangler uploaded); a deployment made by
/// hand afterwards is drift (its files are not the declared ones), healed
/// by serving flareops' deployment again; a project deleted outside git is
/// drift, healed by making it again.
#[test]
fn flareops_and_wrangler_agree_on_a_deployments_files_and_hand_deploys_are_drift() {
    let Some(bin) = wrangler_or_skip(
        "flareops_and_wrangler_agree_on_a_deployments_files_and_hand_deploys_are_drift",
    ) else {
        return;
    };
    let emulator = TestEmulator::start_with_zones(&["klearkarma.com"]);
    let wrangler = Wrangler::new(bin, &emulator);
    let root = site_project(&emulator);
    let root = root.path();
    wrangler
        .run(&[
            "pages",
            "project",
            "create",
            "kk-web-staging",
            "--production-branch=main",
        ])
        .success();
    let site = root.join("web");
    let site = site.to_str().expect("utf-8 path");
    wrangler
        .run(&[
            "pages",
            "deploy",
            site,
            "--project-name=kk-web-staging",
            "--branch=main",
        ])
        .success();
    let uploads = emulator.endpoint_count("POST /pages/assets/upload");
    let (code, out) = run(root, &emulator, &["apply", "--env", "staging", "--yes"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("made outside flareops"), "{out}");
    assert!(out.contains("(0 uploaded"), "{out}");
    assert_eq!(
        emulator.endpoint_count("POST /pages/assets/upload"),
        uploads
    );

    // A hand deploy of other files: drift, then healed.
    wrangler.write("other/index.html", "<h1>hot fix</h1>\n");
    wrangler
        .run(&[
            "pages",
            "deploy",
            "other",
            "--project-name=kk-web-staging",
            "--branch=main",
        ])
        .success();
    let out = crate::support::assert_drift_healed(root, &emulator, "pages_projects.web");
    assert!(out.contains("served again, no upload"), "{out}");
    crate::support::assert_no_changes(root, &emulator);

    // Deleted outside git.
    wrangler
        .run(&["pages", "project", "delete", "kk-web-staging", "--yes"])
        .success();
    let (code, out) = run(root, &emulator, &["drift", "--env", "staging"]);
    assert_eq!(code, 2, "{out}");
    let (code, out) = run(
        root,
        &emulator,
        &["drift", "--env", "staging", "--heal", "--yes"],
    );
    assert_eq!(code, 0, "{out}");
    let listed = wrangler.run(&["pages", "project", "list"]).success();
    assert!(
        listed.stdout.contains("kk-web-staging"),
        "{}",
        listed.output()
    );
}
