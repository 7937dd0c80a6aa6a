//! Pages against the emulator with the real wrangler: `pages project
//! create` and `list`, `pages deploy <dir>` (Direct Upload: upload token,
//! missing-hash check, uploads, hash upsert, deployment with the file
//! manifest), `pages deployment list`; then a second deploy of the same
//! folder uploads nothing (the hashes are known).

use serde_json::Value;

use crate::support::{TestEmulator, run_flareops as run};
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

const SITE: &str = "pages_projects:\n  web:\n    name: kk-web-${env}\n    production_branch: BRANCH\n    dir: web\n    custom_domains: [\"app-${env}.klearkarma.com\"]\n";

fn site_project(emulator: &TestEmulator) -> tempfile::TempDir {
    crate::support::project(&[
        (
            "environments/staging.yaml",
            &format!(
                "account_id: {}\nzone: klearkarma.com\n",
                emulator.account_id
            ),
        ),
        ("infra/pages.yaml", &SITE.replace("BRANCH", "main")),
        ("web/index.html", "<h1>Klear Karma</h1>\n"),
        ("web/styles.css", "body { margin: 0 }\n"),
        ("web/old.txt", "to be removed\n"),
        ("web/_headers", "/*\n  X-Frame-Options: DENY\n"),
    ])
}

fn commit(root: &std::path::Path, message: &str) {
    crate::support::git(root, &["add", "-A"]);
    crate::support::git(root, &["commit", "-q", "-m", message]);
}

/// A site through flareops: created with its files and custom domain;
/// a changed folder lists the files added, changed and removed and
/// uploads only what Pages lacks; the production branch changes in
/// place; `revert` serves the earlier deployment again without an upload;
/// a deployment made outside flareops is drift, healed; removed from git,
/// deleted only with `--allow-delete`.
#[test]
fn a_site_is_deployed_changed_reverted_and_deleted_through_flareops() {
    let emulator = TestEmulator::start_with_zones(&["klearkarma.com"]);
    let root = site_project(&emulator);
    let root = root.path();
    crate::support::git(root, &["init", "-q", "-b", "main"]);
    commit(root, "first");
    let (code, out) = run(root, &emulator, &["apply", "--env", "staging", "--yes"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("+ create pages_projects.web"), "{out}");
    assert!(
        out.contains("deployed 3 files"),
        "_headers is not an asset: {out}"
    );
    let project = emulator.get(&emulator.account_path("/pages/projects/kk-web-staging"));
    assert_eq!(
        project["result"]["domains"],
        serde_json::json!(["kk-web-staging.pages.dev", "app-staging.klearkarma.com"])
    );
    // The Pages domain's record is Cloudflare's, in the zone.
    let zone = flareops::emulator::zone_id("klearkarma.com");
    let records = emulator.get(&format!(
        "/zones/{zone}/dns_records?name=app-staging.klearkarma.com"
    ));
    assert_eq!(
        records["result"][0]["content"], "kk-web-staging.pages.dev",
        "{records}"
    );
    assert_eq!(records["result"][0]["meta"]["read_only"], true, "{records}");
    let first_id = project["result"]["canonical_deployment"]["id"].clone();
    let (code, out) = run(
        root,
        &emulator,
        &["plan", "--env", "staging", "--detailed-exitcode"],
    );
    assert_eq!(code, 0, "{out}");

    // Files added, changed, removed: listed, and only new content uploaded.
    crate::support::write(
        root,
        "web/index.html",
        "<h1>Klear Karma</h1><p>Book now</p>\n",
    );
    crate::support::write(root, "web/robots.txt", "User-agent: *\n");
    std::fs::remove_file(root.join("web/old.txt")).expect("remove");
    commit(root, "second");
    // The plan (a pull request's comment) lists the files, from git at the
    // deployed commit.
    let (code, out) = run(root, &emulator, &["plan", "--env", "staging"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(r#"["+ /robots.txt", "~ /index.html", "- /old.txt"]"#),
        "{out}"
    );
    let uploads = endpoint_count(&emulator, "POST /pages/assets/upload");
    let (code, out) = run(root, &emulator, &["apply", "--env", "staging", "--yes"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("deployed 3 files") && out.contains("(2 uploaded"),
        "{out}"
    );
    assert_eq!(
        endpoint_count(&emulator, "POST /pages/assets/upload"),
        uploads + 1
    );

    // The production branch, in place.
    crate::support::write(
        root,
        "infra/pages.yaml",
        &SITE.replace("BRANCH", "production"),
    );
    commit(root, "branch");
    let (code, out) = run(root, &emulator, &["apply", "--env", "staging", "--yes"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(r#"production_branch: "main" -> "production""#),
        "{out}"
    );
    let project = emulator.get(&emulator.account_path("/pages/projects/kk-web-staging"));
    assert_eq!(project["result"]["production_branch"], "production");

    // Revert to before the branch change, then once more to the first files:
    // an earlier deployment is served again, nothing uploaded.
    crate::support::write(root, "infra/pages.yaml", &SITE.replace("BRANCH", "main"));
    crate::support::write(root, "web/index.html", "<h1>Klear Karma</h1>\n");
    crate::support::write(root, "web/old.txt", "to be removed\n");
    std::fs::remove_file(root.join("web/robots.txt")).expect("remove");
    commit(root, "back to the first files");
    let uploads = endpoint_count(&emulator, "POST /pages/assets/upload");
    let deploys = endpoint_count(
        &emulator,
        "POST /accounts/{account_id}/pages/projects/{project_name}/deployments",
    );
    let (code, out) = run(root, &emulator, &["apply", "--env", "staging", "--yes"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("served again, no upload"), "{out}");
    assert_eq!(
        endpoint_count(&emulator, "POST /pages/assets/upload"),
        uploads
    );
    assert_eq!(
        endpoint_count(
            &emulator,
            "POST /accounts/{account_id}/pages/projects/{project_name}/deployments"
        ),
        deploys,
        "no new deployment"
    );
    let project = emulator.get(&emulator.account_path("/pages/projects/kk-web-staging"));
    assert_eq!(project["result"]["canonical_deployment"]["id"], first_id);
    let (code, out) = run(root, &emulator, &["revert", "--env", "staging", "--yes"]);
    assert_eq!(code, 0, "{out}");
    let project = emulator.get(&emulator.account_path("/pages/projects/kk-web-staging"));
    assert_ne!(
        project["result"]["canonical_deployment"]["id"], first_id,
        "{out}"
    );

    // Removed from git: deleted only with permission.
    std::fs::remove_file(root.join("infra/pages.yaml")).expect("remove");
    commit(root, "no site");
    let (code, out) = run(root, &emulator, &["apply", "--env", "staging", "--yes"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("--allow-delete"), "{out}");
    let (code, out) = run(
        root,
        &emulator,
        &["apply", "--env", "staging", "--yes", "--allow-delete"],
    );
    assert_eq!(code, 0, "{out}");
    let gone = emulator.get(&emulator.account_path("/pages/projects/kk-web-staging"));
    assert_eq!(gone["errors"][0]["code"], 8000007, "{gone}");
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
    let uploads = endpoint_count(&emulator, "POST /pages/assets/upload");
    let (code, out) = run(root, &emulator, &["apply", "--env", "staging", "--yes"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("made outside flareops"), "{out}");
    assert!(out.contains("(0 uploaded"), "{out}");
    assert_eq!(
        endpoint_count(&emulator, "POST /pages/assets/upload"),
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
    let (code, out) = run(root, &emulator, &["drift", "--env", "staging"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("pages_projects.web"), "{out}");
    let (code, out) = run(
        root,
        &emulator,
        &["drift", "--env", "staging", "--heal", "--yes"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("served again, no upload"), "{out}");
    let (code, out) = run(
        root,
        &emulator,
        &["plan", "--env", "staging", "--detailed-exitcode"],
    );
    assert_eq!(code, 0, "{out}");

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
