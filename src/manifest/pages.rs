//! `pages_projects.<key>`: a Pages project and the folder of static files
//! it serves.
//!
//! `{name, production_branch, dir, build, custom_domains}`. The folder is
//! what `build` writes when the site has a build (the worker's `build:`,
//! run and cached the same way); it is read at
//! load time, as `wrangler pages deploy` reads it: every file, but
//! `_worker.js`, `_redirects`, `_headers`, `_routes.json` and `functions/`
//! at its top, and `.DS_Store`, `node_modules` and `.git` anywhere; each
//! file hashed the way Pages names assets, so the deployment's identity
//! (the digest of its file manifest) is known before any request.

use crate::model::{PagesFile, PagesProjectSpec, asset_hash, site_path_ignored};

use super::decode::{Ctx, Fields, Text};
use super::files::Project;
use super::report::Problem;
use super::rules;
use super::yaml::Origin;

/// Files one deployment may hold (Cloudflare's limit on the free plan).
const MAX_FILES: usize = 20_000;

pub(crate) struct DecodedProject {
    pub spec: PagesProjectSpec,
    pub name: Text,
    /// Each custom domain with where it is written.
    pub domains: Vec<(String, Origin)>,
}

pub(crate) fn decode(
    fields: &mut Fields<'_>,
    ctx: &mut Ctx<'_>,
    inputs: &super::worker::Inputs<'_>,
) -> Option<DecodedProject> {
    let project = &inputs.project;
    let name = fields.required_string(ctx, "name");
    let build = super::worker::decode_build(fields, ctx, project);
    let branch = fields.string(ctx, "production_branch");
    let dir = fields.required_string(ctx, "dir");
    let domains = fields.strings(ctx, "custom_domains").unwrap_or_default();
    let name = super::infra::checked(ctx, fields, "name", name?, rules::pages_project_name)?;
    let production_branch = match branch {
        Some(text) if text.value.trim().is_empty() || text.value.contains(char::is_whitespace) => {
            ctx.push(
                Problem::new(
                    text.origin,
                    fields.path("production_branch"),
                    format!("invalid production branch `{}`", text.value),
                )
                .hint("a git branch name, like `main`"),
            );
            return None;
        }
        Some(text) => text.value,
        None => "main".to_string(),
    };
    let mut custom_domains = Vec::new();
    let mut domain_origins = Vec::new();
    let mut ok = true;
    for (path, text) in domains {
        if text.unresolved {
            ok = false;
            continue;
        }
        match rules::custom_domain(&text.value, None) {
            Some(problem) => {
                ctx.push(super::infra::name_problem(path, &text, problem));
                ok = false;
            }
            None => {
                custom_domains.push(text.value.clone());
                domain_origins.push((text.value.clone(), text.origin));
            }
        }
    }
    custom_domains.sort();
    custom_domains.dedup();
    let dir = dir?;
    if dir.unresolved {
        return None;
    }
    let field = fields.path("dir");
    let relative = match project.relative(&dir.value, "site folder") {
        Ok(relative) => relative,
        Err(problem) => {
            ctx.push(Problem::new(dir.origin, field, problem.message).hint(problem.hint));
            return None;
        }
    };
    // A site with a build deploys what the build writes.
    let mut source_paths = vec![relative.clone()];
    match build {
        None => {}
        Some(None) => return None,
        Some(Some(build)) => {
            let output = &build.spec.output;
            if relative != *output && !relative.starts_with(&format!("{output}/")) {
                ctx.push(
                    Problem::new(
                        dir.origin,
                        field,
                        format!("the site folder `{relative}` is not the build's output `{output}`"),
                    )
                    .hint(format!("a built site deploys what its build writes: set `dir: {output}`, or `build.output`")),
                );
                return None;
            }
            let owner = fields.path("build");
            let owner = owner.strip_suffix(".build").unwrap_or(&owner).to_string();
            let command_path = format!("{}.command", fields.path("build"));
            super::worker::ensure_built(ctx, inputs, &owner, command_path, &build)?;
            // As a built worker's: the build's directory, less its packages
            // and its output.
            source_paths = vec![
                build.spec.dir.clone(),
                format!(":(exclude){}/node_modules", build.spec.dir),
                format!(":(exclude){}", build.spec.output),
            ];
        }
    }
    let files = match collect(project, &relative) {
        Ok(files) if files.is_empty() => {
            ctx.push(
                Problem::new(
                    dir.origin,
                    field,
                    format!("the site folder `{relative}` holds no file to deploy"),
                )
                .hint("point `dir` at the folder of built static files (with an index.html)"),
            );
            return None;
        }
        Ok(files) => files,
        Err((message, hint)) => {
            ctx.push(Problem::new(dir.origin, field, message).hint(hint));
            return None;
        }
    };
    if !ok {
        return None;
    }
    Some(DecodedProject {
        spec: PagesProjectSpec {
            name: name.value.clone(),
            production_branch,
            dir: relative,
            files,
            custom_domains,
            source_paths,
        },
        name,
        domains: domain_origins,
    })
}

/// Every file of the site folder `relative`, hashed, sorted by path.
fn collect(project: &Project, relative: &str) -> Result<Vec<PagesFile>, (String, String)> {
    let mut files = Vec::new();
    let mut pending = vec![(relative.to_string(), String::new())];
    while let Some((dir, prefix)) = pending.pop() {
        let entries = project
            .list_dir(&dir, "site folder")
            .map_err(|problem| (problem.message, problem.hint))?;
        for (name, kind) in entries {
            let name = name.to_string_lossy().into_owned();
            let path = format!("{dir}/{name}");
            let site_path = format!("{prefix}/{name}");
            if site_path_ignored(&site_path) {
                continue;
            }
            if kind.is_dir() || (kind.is_symlink() && project.is_dir(&path)) {
                pending.push((path, site_path));
                continue;
            }
            let content = project
                .read_capped(
                    &path,
                    "site file",
                    "a Pages asset is at most 25 MiB, and flareops reads files of at most 10 MiB: keep large media in R2",
                )
                .map_err(|problem| (problem.message, problem.hint))?;
            files.push(PagesFile {
                hash: asset_hash(&content, &site_path),
                size: content.len() as u64,
                content_type: mime_guess::from_path(&name)
                    .first_raw()
                    .unwrap_or("application/octet-stream")
                    .to_string(),
                local: project.root().join(&path),
                path: site_path,
            });
            if files.len() > MAX_FILES {
                return Err((
                    format!("the site folder `{relative}` holds more than {MAX_FILES} files"),
                    "a Pages deployment holds at most 20,000 files".to_string(),
                ));
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}
