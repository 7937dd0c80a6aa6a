//! Pages against the emulator with the real wrangler: `pages project
//! create` and `list`, `pages deploy <dir>` (Direct Upload: upload token,
//! missing-hash check, uploads, hash upsert, deployment with the file
//! manifest), `pages deployment list`; then a second deploy of the same
//! folder uploads nothing (the hashes are known).

use serde_json::Value;

use crate::support::TestEmulator;
use crate::wrangler::{Wrangler, wrangler_or_skip};

fn endpoint_count(emulator: &TestEmulator, key: &str) -> u64 {
    emulator.stats()["endpoints"][key].as_u64().unwrap_or(0)
}

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
    let uploads = endpoint_count(&emulator, "POST /pages/assets/upload");
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
        endpoint_count(&emulator, "POST /pages/assets/upload"),
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
