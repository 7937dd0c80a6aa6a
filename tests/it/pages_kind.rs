//! The `pages_projects` kind through flareops against the emulator:
//! create with files and a custom domain, a changed folder (files listed,
//! only new content uploaded), the production branch in place, an earlier
//! deployment served again (revert), delete only with `--allow-delete`.

use crate::support::{TestEmulator, run_flareops as run};

pub(crate) const SITE: &str = "pages_projects:\n  web:\n    name: kk-web-${env}\n    production_branch: BRANCH\n    dir: web\n    custom_domains: [\"app-${env}.klearkarma.com\"]\n";

pub(crate) fn site_project(emulator: &TestEmulator) -> tempfile::TempDir {
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
    crate::support::assert_no_changes(root, &emulator);

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
    let uploads = emulator.endpoint_count("POST /pages/assets/upload");
    let (code, out) = run(root, &emulator, &["apply", "--env", "staging", "--yes"]);
    assert_eq!(code, 0, "{out}");
    // The plan apply shows lists them too.
    assert!(
        out.contains(r#"["+ /robots.txt", "~ /index.html", "- /old.txt"]"#),
        "{out}"
    );
    assert!(
        out.contains("deployed 3 files") && out.contains("(2 uploaded"),
        "{out}"
    );
    assert_eq!(
        emulator.endpoint_count("POST /pages/assets/upload"),
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
    let uploads = emulator.endpoint_count("POST /pages/assets/upload");
    let deploys = emulator
        .endpoint_count("POST /accounts/{account_id}/pages/projects/{project_name}/deployments");
    let (code, out) = run(root, &emulator, &["apply", "--env", "staging", "--yes"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("served again, no upload"), "{out}");
    assert_eq!(
        emulator.endpoint_count("POST /pages/assets/upload"),
        uploads
    );
    assert_eq!(
        emulator.endpoint_count(
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

/// A site with a build: the build runs (as a worker's) and its output is
/// what is deployed; a failing build is an error at its command, and
/// nothing is applied.
#[test]
fn a_built_site_deploys_what_its_build_writes() {
    let emulator = TestEmulator::start();
    let manifest = |command: &str| {
        format!(
            "pages_projects:\n  web:\n    name: kk-built-${{env}}\n    dir: site/dist\n    build:\n      command: {command}\n      dir: site\n      inputs: [\"src/*.html\"]\n      output: dist\n"
        )
    };
    let root = crate::support::project(&[
        (
            "environments/staging.yaml",
            &format!("account_id: {}\n", emulator.account_id),
        ),
        ("site/src/index.html", "<h1>built</h1>\n"),
        (
            "infra/pages.yaml",
            &manifest(
                "\"mkdir -p dist && cp src/index.html dist/index.html && echo built > dist/version.txt\"",
            ),
        ),
    ]);
    let root = root.path();
    let cache = tempfile::tempdir().expect("build cache");
    let run_built = |args: &[&str]| {
        let output = crate::support::flareops(root, &emulator)
            .args(args)
            .env("FLAREOPS_BUILD_CACHE", cache.path())
            .output()
            .expect("run flareops");
        (
            output.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        )
    };
    let (code, out) = run_built(&["apply", "--env", "staging", "--yes"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("deployed 2 files"), "{out}");
    assert_eq!(
        std::fs::read_to_string(root.join("site/dist/index.html")).expect("built"),
        "<h1>built</h1>\n"
    );

    crate::support::write(root, "infra/pages.yaml", &manifest("\"exit 3\""));
    crate::support::write(root, "site/src/index.html", "<h1>changed</h1>\n");
    let deploys = emulator
        .endpoint_count("POST /accounts/{account_id}/pages/projects/{project_name}/deployments");
    let (code, out) = run_built(&["apply", "--env", "staging", "--yes"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("infra/pages.yaml:") && out.contains("pages_projects.web.build.command"),
        "{out}"
    );
    assert_eq!(
        emulator.endpoint_count(
            "POST /accounts/{account_id}/pages/projects/{project_name}/deployments"
        ),
        deploys
    );
}

/// Pages cannot rename a project: a new name is a replacement (a new
/// project with the files, the old one deleted), which needs
/// `--allow-delete`.
#[test]
fn a_renamed_site_is_replaced_only_with_permission() {
    let emulator = TestEmulator::start_with_zones(&["klearkarma.com"]);
    let root = site_project(&emulator);
    let root = root.path();
    let (code, out) = run(root, &emulator, &["apply", "--env", "staging", "--yes"]);
    assert_eq!(code, 0, "{out}");
    crate::support::write(
        root,
        "infra/pages.yaml",
        &SITE
            .replace("BRANCH", "main")
            .replace("kk-web-", "kk-site-"),
    );
    let (code, out) = run(root, &emulator, &["apply", "--env", "staging", "--yes"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("-/+ replace pages_projects.web")
            || out.contains("replace pages_projects.web"),
        "{out}"
    );
    assert!(out.contains("--allow-delete"), "{out}");
    let old = emulator.get(&emulator.account_path("/pages/projects/kk-web-staging"));
    assert_eq!(old["success"], true, "nothing applied: {old}");
    let (code, out) = run(
        root,
        &emulator,
        &["apply", "--env", "staging", "--yes", "--allow-delete"],
    );
    assert_eq!(code, 0, "{out}");
    let old = emulator.get(&emulator.account_path("/pages/projects/kk-web-staging"));
    assert_eq!(old["errors"][0]["code"], 8000007, "{old}");
    let new = emulator.get(&emulator.account_path("/pages/projects/kk-site-staging"));
    assert_eq!(
        new["result"]["canonical_deployment"]["environment"], "production",
        "{new}"
    );
    crate::support::assert_no_changes(root, &emulator);
}
