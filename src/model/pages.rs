//! Pages projects: as declared (a folder of static files and its file
//! manifest) and as the account holds them (the deployment serving
//! production, and the earlier ones a revert can go back to).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One file of a site, as a deployment's manifest names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PagesFile {
    /// `/index.html`: the path under the site's folder, with a leading `/`.
    pub path: String,
    /// What Pages names the content by (see [`asset_hash`]).
    pub hash: String,
    pub size: u64,
    pub content_type: String,
    /// Where the file is on disk (read again at upload).
    #[serde(skip)]
    pub local: PathBuf,
}

/// A Pages project as declared (`pages_projects.<key>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PagesProjectSpec {
    pub name: String,
    pub production_branch: String,
    /// The folder of static files, relative to the project root.
    pub dir: String,
    /// Sorted by path.
    pub files: Vec<PagesFile>,
    /// Hostnames; sorted, without duplicates.
    pub custom_domains: Vec<String>,
    /// The project files the site is made from (the folder, or the
    /// build's inputs), for what makes a checkout dirty.
    #[serde(skip)]
    pub source_paths: Vec<String>,
}

impl PagesProjectSpec {
    /// The identity of the site's content: see [`manifest_digest`].
    pub fn digest(&self) -> String {
        manifest_digest(
            self.files
                .iter()
                .map(|f| (f.path.as_str(), f.hash.as_str())),
        )
    }

    /// The manifest as a map (path -> hash).
    pub fn manifest(&self) -> BTreeMap<String, String> {
        self.files
            .iter()
            .map(|f| (f.path.clone(), f.hash.clone()))
            .collect()
    }
}

/// What Pages names a file by, as `wrangler pages deploy` computes it:
/// BLAKE3 of the base64 of the content followed by the file's extension,
/// the first 32 hex digits. Equal content under one extension uploads once.
pub fn asset_hash(content: &[u8], path: &str) -> String {
    use base64::Engine as _;
    let name = path.rsplit('/').next().unwrap_or(path);
    // Node's `extname`: after the last dot, unless the name starts with it.
    let extension = match name.rfind('.') {
        Some(0) | None => "",
        Some(dot) => &name[dot + 1..],
    };
    let mut hasher = blake3::Hasher::new();
    hasher.update(
        base64::engine::general_purpose::STANDARD
            .encode(content)
            .as_bytes(),
    );
    hasher.update(extension.as_bytes());
    hasher.finalize().to_hex()[..32].to_string()
}

/// Whether `wrangler pages deploy` leaves the file at `site_path` (`/a/b`,
/// under the site's folder) out: `_worker.js`, `_redirects`, `_headers`,
/// `_routes.json`, `functions/` and `.wrangler/` at the top; `.DS_Store`,
/// `node_modules` and `.git` anywhere.
pub fn site_path_ignored(site_path: &str) -> bool {
    const TOP: [&str; 6] = [
        "_worker.js",
        "_redirects",
        "_headers",
        "_routes.json",
        "functions",
        ".wrangler",
    ];
    const ANYWHERE: [&str; 3] = [".DS_Store", "node_modules", ".git"];
    let mut parts = site_path.trim_start_matches('/').split('/');
    let first = parts.next().unwrap_or_default();
    TOP.contains(&first) || ANYWHERE.contains(&first) || parts.any(|part| ANYWHERE.contains(&part))
}

/// The identity of a file manifest: SHA-256 over its sorted `path hash`
/// lines, the first 32 hex digits. Two deployments with the same files
/// have the same digest, whoever made them.
pub fn manifest_digest<'a>(files: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    use sha2::Digest as _;
    let mut lines: Vec<String> = files
        .map(|(path, hash)| format!("{path} {hash}\n"))
        .collect();
    lines.sort();
    let digest = sha2::Sha256::digest(lines.concat());
    hex::encode(digest)[..32].to_string()
}

/// The marker flareops writes in a deployment's commit message, and reads
/// back: the digest of the files it deployed.
pub fn digest_marker(digest: &str) -> String {
    format!("[flareops files {digest}]")
}

/// The digest a commit message carries, if flareops wrote one.
pub fn digest_in(message: &str) -> Option<String> {
    let start = message.rfind("[flareops files ")? + "[flareops files ".len();
    let rest = &message[start..];
    let end = rest.find(']')?;
    let digest = &rest[..end];
    (digest.len() == 32 && digest.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| digest.to_string())
}

/// A deployment of a project, as the account holds it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LivePagesDeployment {
    pub id: String,
    /// The digest of its files, when flareops made it.
    pub digest: Option<String>,
    /// The commit it was made from (`deployment_trigger.metadata`).
    pub commit: String,
    pub created_on: String,
}

/// A Pages project as the account holds it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LivePagesProject {
    pub id: String,
    pub name: String,
    pub production_branch: String,
    /// Custom domains (not the `pages.dev` subdomain); sorted.
    pub custom_domains: Vec<String>,
    /// The deployment serving production.
    pub canonical: Option<LivePagesDeployment>,
    /// Its production deployments, newest first (a revert goes back to one).
    pub deployments: Vec<LivePagesDeployment>,
    /// The files of the serving deployment as git holds them at its commit
    /// (for the plan's file list); `None` when unknown. Not part of the
    /// state's fingerprint.
    #[serde(skip)]
    pub deployed_files: Option<BTreeMap<String, String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_follow_wrangler() {
        // The same content under another extension is another asset.
        assert_ne!(asset_hash(b"x", "/a.html"), asset_hash(b"x", "/a.css"));
        assert_eq!(asset_hash(b"x", "/a.html"), asset_hash(b"x", "/b/c.html"));
        // A dot file has no extension (Node's extname).
        assert_eq!(asset_hash(b"x", "/.well-known"), asset_hash(b"x", "/noext"));
        assert_eq!(asset_hash(b"x", "/a.html").len(), 32);
    }

    #[test]
    fn ignored_like_wrangler() {
        assert!(site_path_ignored("/_headers"));
        assert!(site_path_ignored("/functions/api.js"));
        assert!(site_path_ignored("/a/node_modules/x.js"));
        assert!(site_path_ignored("/a/.DS_Store"));
        assert!(!site_path_ignored("/a/_headers"));
        assert!(!site_path_ignored("/index.html"));
    }

    #[test]
    fn digests_ignore_order_and_round_trip_through_messages() {
        let one = manifest_digest([("/a", "1"), ("/b", "2")].into_iter());
        let two = manifest_digest([("/b", "2"), ("/a", "1")].into_iter());
        assert_eq!(one, two);
        let message = format!("flareops 0123abcd {}", digest_marker(&one));
        assert_eq!(digest_in(&message), Some(one));
        assert_eq!(digest_in("a hand deploy"), None);
    }
}
