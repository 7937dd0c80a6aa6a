//! DNS records: the emulator's `/zones/{id}/dns_records` (Cloudflare's
//! validation, the batch endpoint, custom domains' read-only records) and
//! the `dns_records` kind through flareops: create, in-place update,
//! refusals, delete only with `--allow-delete`, drift, heal, revert, and
//! the warning for a route without a proxied record.

use serde_json::{Value, json};

use crate::support::{TestEmulator, run_flareops as flareops_run};

const ZONE: &str = "klearkarma.com";

fn records_path() -> String {
    format!("/zones/{}/dns_records", flareops::emulator::zone_id(ZONE))
}

/// Every record of the zone, as the emulator lists it.
fn records(emulator: &TestEmulator) -> Vec<Value> {
    let answer = emulator.send(
        "GET",
        &format!("{}?per_page=1000", records_path()),
        None,
        &[],
    );
    assert_eq!(answer["success"], true, "{answer}");
    answer["result"].as_array().cloned().unwrap_or_default()
}

fn record_named<'a>(records: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    records
        .iter()
        .find(|r| r["type"] == kind && r["name"] == name)
}

/// The emulator answers like Cloudflare: names qualified in the zone,
/// content checked by type, a CNAME never beside another record of its
/// name, an identical record refused, filters and pages, and a batch that
/// is all or nothing.
#[test]
fn the_emulator_validates_records_filters_pages_and_batches_atomically() {
    let emulator = TestEmulator::start_with_zones(&[ZONE]);
    let path = records_path();
    let post = |body: Value| emulator.send("POST", &path, Some(body), &[]);
    let created = post(
        json!({"type": "A", "name": "www", "content": "192.0.2.1", "proxied": true, "ttl": 300}),
    );
    assert_eq!(created["success"], true, "{created}");
    let www = &created["result"];
    assert_eq!(www["name"], "www.klearkarma.com");
    assert_eq!(www["proxiable"], true);
    assert_eq!(www["ttl"], 1, "a proxied record's TTL is automatic");

    let refused = |body: Value, code: u64| {
        let answer = post(body.clone());
        assert_eq!(answer["success"], false, "{body} was accepted: {answer}");
        assert_eq!(answer["errors"][0]["code"], code, "{body}: {answer}");
    };
    refused(
        json!({"type": "A", "name": "bad", "content": "192.0.2.300"}),
        9005,
    );
    refused(
        json!({"type": "AAAA", "name": "bad", "content": "192.0.2.1"}),
        9006,
    );
    refused(
        json!({"type": "TXT", "name": "txt", "content": "x", "proxied": true}),
        9004,
    );
    refused(
        json!({"type": "A", "name": "ttl", "content": "192.0.2.1", "ttl": 30}),
        9021,
    );
    refused(
        json!({"type": "MX", "name": "mail", "content": "mx.example.net"}),
        9101,
    );
    refused(
        json!({"type": "CNAME", "name": "www", "content": "example.net"}),
        81053,
    );
    refused(
        json!({"type": "A", "name": "www", "content": "192.0.2.1"}),
        81058,
    );
    let alias = post(json!({"type": "CNAME", "name": "alias", "content": "www.klearkarma.com"}));
    assert_eq!(alias["success"], true, "{alias}");
    refused(
        json!({"type": "TXT", "name": "alias", "content": "v=spf1 -all"}),
        81054,
    );
    let srv = post(
        json!({"type": "SRV", "name": "_sip._tcp", "data": {"priority": 10, "weight": 5, "port": 5060, "target": "sip.example.net"}}),
    );
    assert_eq!(srv["result"]["content"], "5 5060 sip.example.net", "{srv}");
    assert_eq!(srv["result"]["priority"], 10, "{srv}");

    // Filters and pages.
    let answer = emulator.send("GET", &format!("{path}?type=A&name=www"), None, &[]);
    assert_eq!(
        answer["result"].as_array().map(Vec::len),
        Some(1),
        "{answer}"
    );
    let answer = emulator.send(
        "GET",
        &format!("{path}?per_page=2&page=2&order=name"),
        None,
        &[],
    );
    assert_eq!(answer["result_info"]["total_count"], 3, "{answer}");
    assert_eq!(answer["result_info"]["total_pages"], 2, "{answer}");
    assert_eq!(
        answer["result"][0]["name"], "www.klearkarma.com",
        "{answer}"
    );
    let answer = emulator.send(
        "GET",
        &format!("{path}?name.endswith=_tcp.klearkarma.com"),
        None,
        &[],
    );
    assert_eq!(answer["result"][0]["type"], "SRV", "{answer}");

    // A batch with one bad operation changes nothing.
    let www_id = www["id"].as_str().expect("id").to_string();
    let batch = emulator.send(
        "POST",
        &format!("{path}/batch"),
        Some(json!({
            "deletes": [{"id": www_id}],
            "posts": [{"type": "A", "name": "new", "content": "192.0.2.9"}, {"type": "A", "name": "broken", "content": "nope"}],
        })),
        &[],
    );
    assert_eq!(batch["success"], false, "{batch}");
    let now = records(&emulator);
    assert!(
        record_named(&now, "A", "www.klearkarma.com").is_some(),
        "the delete was rolled back"
    );
    assert!(
        record_named(&now, "A", "new.klearkarma.com").is_none(),
        "the first post was rolled back"
    );
    // A good batch: deletes, puts and posts in order, in one request.
    let batch = emulator.send(
        "POST",
        &format!("{path}/batch"),
        Some(json!({
            "deletes": [{"id": www_id}],
            "puts": [{"id": alias["result"]["id"], "type": "CNAME", "name": "alias", "content": "target.example.net", "comment": "moved"}],
            "posts": [{"type": "A", "name": "www", "content": "192.0.2.2"}],
        })),
        &[],
    );
    assert_eq!(batch["success"], true, "{batch}");
    assert_eq!(batch["result"]["deletes"][0]["id"], www_id.as_str());
    assert_eq!(batch["result"]["puts"][0]["content"], "target.example.net");
    assert_eq!(batch["result"]["puts"][0]["id"], alias["result"]["id"]);
    assert_eq!(batch["result"]["posts"][0]["content"], "192.0.2.2");
    let gone = emulator.send("GET", &format!("{path}/{www_id}"), None, &[]);
    assert_eq!(gone["errors"][0]["code"], 81044, "{gone}");
}

/// Uploads a worker outside flareops (as wrangler would).
fn upload_worker(emulator: &TestEmulator, name: &str, script: &str) {
    let body = format!(
        "--X\r\nContent-Disposition: form-data; name=\"metadata\"\r\nContent-Type: application/json\r\n\r\n{{\"main_module\":\"index.js\",\"compatibility_date\":\"2025-01-15\"}}\r\n--X\r\nContent-Disposition: form-data; name=\"index.js\"; filename=\"index.js\"\r\nContent-Type: application/javascript+module\r\n\r\n{script}\r\n--X--\r\n"
    );
    let answer = emulator.send_bytes(
        "PUT",
        &emulator.account_path(&format!("/workers/scripts/{name}")),
        body.into_bytes(),
        "multipart/form-data; boundary=X",
    );
    assert_eq!(answer["success"], true, "{answer}");
}

fn project(emulator: &TestEmulator, records: &str) -> tempfile::TempDir {
    crate::support::project(&[
        (
            "environments/staging.yaml",
            &format!("account_id: {}\nzone: {ZONE}\n", emulator.account_id),
        ),
        ("infra/dns.yaml", records),
    ])
}

const RECORDS: &str = "dns_records:\n  api:\n    type: AAAA\n    name: api-${env}\n    content: \"100::\"\n    proxied: true\n  mail:\n    type: MX\n    name: ${env}\n    content: route1.mx.cloudflare.net\n    priority: PRIORITY\n  spf:\n    type: TXT\n    name: ${env}\n    content: \"v=spf1 -all\"\n    ttl: 1h\n    tags: [\"team:platform\"]\n";

/// Records through flareops: created in one batch request, updated in
/// place (same id), drift when one is changed or deleted outside git,
/// healed, and deleted only with `--allow-delete`.
#[test]
fn records_are_created_updated_in_place_drift_and_deleted_with_permission() {
    let emulator = TestEmulator::start_with_zones(&[ZONE]);
    let root = project(&emulator, &RECORDS.replace("PRIORITY", "10"));
    let root = root.path();
    let (code, out) = flareops_run(root, &emulator, &["apply", "--env", "staging", "--yes"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("+ create dns_records.mail"), "{out}");
    assert_eq!(
        emulator.endpoint_count("POST /zones/{zone_id}/dns_records/batch"),
        1,
        "three records, one batch request"
    );
    let live = records(&emulator);
    let mail = record_named(&live, "MX", "staging.klearkarma.com").expect("the MX record");
    assert_eq!(mail["priority"], 10);
    let spf = record_named(&live, "TXT", "staging.klearkarma.com").expect("the TXT record");
    assert_eq!(spf["ttl"], 3600);
    assert_eq!(spf["tags"], json!(["team:platform"]));
    let api = record_named(&live, "AAAA", "api-staging.klearkarma.com").expect("the AAAA record");
    assert_eq!(api["proxied"], true);
    crate::support::assert_no_changes(root, &emulator);

    // In place: the MX priority.
    crate::support::write(root, "infra/dns.yaml", &RECORDS.replace("PRIORITY", "20"));
    let (code, out) = flareops_run(root, &emulator, &["apply", "--env", "staging", "--yes"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("~ update dns_records.mail"), "{out}");
    assert!(out.contains(r#"priority: "10" -> "20""#), "{out}");
    let after = records(&emulator);
    let updated = record_named(&after, "MX", "staging.klearkarma.com").expect("the MX record");
    assert_eq!(updated["id"], mail["id"], "the same record");
    assert_eq!(updated["priority"], 20);

    // Changed outside git (proxying turned off), then deleted outside git.
    let api_id = api["id"].as_str().expect("id");
    let patched = emulator.send(
        "PATCH",
        &format!("{}/{api_id}", records_path()),
        Some(json!({"proxied": false})),
        &[],
    );
    assert_eq!(patched["success"], true, "{patched}");
    crate::support::assert_changed_outside_git(root, &emulator, "dns_records.api", "proxied");
    let spf_id = spf["id"].as_str().expect("id");
    emulator.send("DELETE", &format!("{}/{spf_id}", records_path()), None, &[]);
    crate::support::assert_drift_healed(root, &emulator, "dns_records.spf");
    let healed = records(&emulator);
    assert_eq!(
        record_named(&healed, "AAAA", "api-staging.klearkarma.com").expect("api")["proxied"],
        true
    );
    assert!(
        record_named(&healed, "TXT", "staging.klearkarma.com").is_some(),
        "{healed:?}"
    );

    // Removed from git: deleted only with permission.
    crate::support::write(root, "infra/dns.yaml", "{}\n");
    let (code, out) = flareops_run(root, &emulator, &["apply", "--env", "staging", "--yes"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("--allow-delete"), "{out}");
    assert_eq!(records(&emulator).len(), 3);
    let (code, out) = flareops_run(
        root,
        &emulator,
        &["apply", "--env", "staging", "--yes", "--allow-delete"],
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(records(&emulator), Vec::<Value>::new());
}

/// What can never be applied is refused before any change: a CNAME
/// beside another declared record (a located manifest error), a record on
/// a Worker custom domain's hostname (a conflict: Cloudflare owns that
/// record, which flareops shows and never touches). A worker route with
/// no proxied record for its hostname is warned about.
#[test]
fn collisions_are_refused_and_a_route_without_a_record_is_warned_about() {
    let emulator = TestEmulator::start_with_zones(&[ZONE]);
    let root = project(
        &emulator,
        "dns_records:\n  www:\n    type: CNAME\n    name: www-${env}\n    content: app.example.net\n  www-txt:\n    type: TXT\n    name: www-${env}\n    content: hello\n",
    );
    let root = root.path();
    let (code, out) = flareops_run(root, &emulator, &["plan", "--env", "staging"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("infra/dns.yaml:"), "{out}");
    assert!(out.contains("a CNAME cannot share its name"), "{out}");
    assert_eq!(records(&emulator), Vec::<Value>::new());

    // A worker with a custom domain, made outside flareops; a record on it.
    let script = "export default { fetch() { return new Response('ok'); } };\n";
    upload_worker(&emulator, "site-staging", script);
    let attached = emulator.send(
        "PUT",
        &emulator.account_path("/workers/domains"),
        Some(json!({"hostname": "shop-staging.klearkarma.com", "service": "site-staging", "zone_name": ZONE})),
        &[],
    );
    assert_eq!(attached["success"], true, "{attached}");
    let managed = records(&emulator);
    let domain_record = record_named(&managed, "AAAA", "shop-staging.klearkarma.com")
        .expect("the custom domain's record");
    assert_eq!(domain_record["meta"]["read_only"], true, "{domain_record}");
    crate::support::write(
        root,
        "infra/dns.yaml",
        "dns_records:\n  shop:\n    type: A\n    name: shop-${env}\n    content: 192.0.2.7\n    proxied: true\n",
    );
    crate::support::write(
        root,
        "infra/workers.yaml",
        "workers:\n  api:\n    name: api-${env}\n    main: workers/api/index.js\n    compatibility_date: \"2025-01-15\"\n    routes: [\"api-${env}.klearkarma.com/*\"]\n",
    );
    crate::support::write(root, "workers/api/index.js", script);
    let (code, out) = flareops_run(root, &emulator, &["apply", "--env", "staging", "--yes"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "shop-staging.klearkarma.com is a custom domain (of a Worker or a Pages project)"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "the route `api-staging.klearkarma.com/*` of `workers.api` will never see traffic"
        ),
        "{out}"
    );
    assert_eq!(
        records(&emulator).len(),
        1,
        "nothing applied: {:?}",
        records(&emulator)
    );
    // Cloudflare's own record is refused by the API too.
    let id = domain_record["id"].as_str().expect("id");
    let edit = emulator.send(
        "PATCH",
        &format!("{}/{id}", records_path()),
        Some(json!({"content": "100::1"})),
        &[],
    );
    assert_eq!(edit["success"], false, "{edit}");

    // With a proxied record for the route's hostname, and no record on the
    // custom domain: applied, no warning.
    crate::support::write(
        root,
        "infra/dns.yaml",
        "dns_records:\n  api:\n    type: AAAA\n    name: api-${env}\n    content: \"100::\"\n    proxied: true\n",
    );
    let (code, out) = flareops_run(root, &emulator, &["apply", "--env", "staging", "--yes"]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("will never see traffic"), "{out}");
}

/// `revert` goes back to the apply before the last: a record the last
/// apply changed gets its earlier content back (in place), a record it
/// added is deleted (a record holds no data, like a worker).
#[test]
fn revert_restores_a_record_and_removes_one_the_last_apply_added() {
    let emulator = TestEmulator::start_with_zones(&[ZONE]);
    let root = project(
        &emulator,
        "dns_records:\n  www:\n    type: A\n    name: www-${env}\n    content: 192.0.2.1\n",
    );
    let root = root.path();
    crate::support::git(root, &["init", "-q", "-b", "main"]);
    crate::support::git(root, &["add", "-A"]);
    crate::support::git(root, &["commit", "-q", "-m", "first"]);
    let (code, out) = flareops_run(root, &emulator, &["apply", "--env", "staging", "--yes"]);
    assert_eq!(code, 0, "{out}");
    let first = records(&emulator);
    crate::support::write(
        root,
        "infra/dns.yaml",
        "dns_records:\n  www:\n    type: A\n    name: www-${env}\n    content: 192.0.2.2\n  txt:\n    type: TXT\n    name: www-${env}\n    content: verified\n",
    );
    crate::support::git(root, &["add", "-A"]);
    crate::support::git(root, &["commit", "-q", "-m", "second"]);
    let (code, out) = flareops_run(root, &emulator, &["apply", "--env", "staging", "--yes"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(records(&emulator).len(), 2);

    // A record holds no data: a revert deletes what the last apply added
    // without `--allow-delete` (as it deletes a worker).
    let (code, out) = flareops_run(root, &emulator, &["revert", "--env", "staging", "--yes"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("- delete dns_records.txt"), "{out}");
    assert!(
        out.contains(r#"content: "192.0.2.2" -> "192.0.2.1""#),
        "{out}"
    );
    let reverted = records(&emulator);
    assert_eq!(reverted.len(), 1, "{reverted:?}");
    assert_eq!(reverted[0]["content"], "192.0.2.1");
    assert_eq!(reverted[0]["id"], first[0]["id"], "in place");
}

/// `import --env` writes the zone's records the environment owns
/// (`${env}` in their names), leaves Cloudflare's own and another
/// environment's to themselves, and the plan after it is empty.
#[test]
fn import_writes_the_zones_records_and_the_plan_after_is_empty() {
    let emulator = TestEmulator::start_with_zones(&[ZONE]);
    let path = records_path();
    for body in [
        json!({"type": "A", "name": "api-staging", "content": "192.0.2.1", "proxied": true}),
        json!({"type": "MX", "name": "staging", "content": "mx.example.net", "priority": 10, "ttl": 3600}),
        json!({"type": "TXT", "name": "staging", "content": "v=spf1 -all", "comment": "mail", "tags": ["team:mail"]}),
        json!({"type": "A", "name": "api-production", "content": "192.0.2.2"}),
    ] {
        let answer = emulator.send("POST", &path, Some(body), &[]);
        assert_eq!(answer["success"], true, "{answer}");
    }
    let root = tempfile::tempdir().expect("project");
    let root = root.path();
    crate::support::write(
        root,
        "environments/staging.yaml",
        &format!("account_id: {}\nzone: {ZONE}\n", emulator.account_id),
    );
    crate::support::write(root, "environments/production.yaml", "{}\n");
    let (code, out) = flareops_run(root, &emulator, &["import", "--env", "staging"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("wrote infra/dns.yaml"), "{out}");
    assert!(
        out.contains("skipped DNS record `api-production.klearkarma.com`: its name names environment `production`"),
        "{out}"
    );
    let dns = std::fs::read_to_string(root.join("infra/dns.yaml")).expect("dns.yaml");
    for expected in [
        r#"name: "api-${env}""#,
        r#"name: "${env}""#,
        r#"content: "mx.example.net""#,
        "priority: 10",
        r#"ttl: "3600""#,
        r#"tags: ["team:mail"]"#,
    ] {
        assert!(dns.contains(expected), "`{expected}` in:\n{dns}");
    }
    assert!(!dns.contains("production"), "{dns}");
    crate::support::assert_no_changes(root, &emulator);
}

/// A zone of a thousand declared records: one list and five batch
/// requests create them all (200 per batch); a plan afterwards reads the
/// zone once and is empty; changing every record is five more batches.
#[test]
fn a_thousand_records_go_in_batches_of_two_hundred() {
    let emulator = TestEmulator::start_with_zones(&[ZONE]);
    let manifest = |octet: u8| {
        let mut out = String::from("dns_records:\n");
        for i in 0..1000 {
            out.push_str(&format!(
                "  r{i:04}:\n    type: A\n    name: host-{i:04}-${{env}}\n    content: 192.0.{octet}.{}\n",
                i % 250 + 1
            ));
        }
        out
    };
    let root = project(&emulator, &manifest(2));
    let root = root.path();
    let batch = "POST /zones/{zone_id}/dns_records/batch";
    let list = "GET /zones/{zone_id}/dns_records";
    let (code, out) = flareops_run(root, &emulator, &["apply", "--env", "staging", "--yes"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        emulator.endpoint_count(batch),
        5,
        "1000 records, 200 per batch"
    );
    assert_eq!(emulator.endpoint_count(list), 1);
    assert_eq!(records(&emulator).len(), 1000);
    let lists = emulator.endpoint_count(list);
    crate::support::assert_no_changes(root, &emulator);
    assert_eq!(
        emulator.endpoint_count(list),
        lists + 1,
        "a plan reads the zone once"
    );
    crate::support::write(root, "infra/dns.yaml", &manifest(3));
    let (code, out) = flareops_run(root, &emulator, &["apply", "--env", "staging", "--yes"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        emulator.endpoint_count(batch),
        10,
        "1000 updates in place, 200 per batch"
    );
    assert!(records(&emulator).iter().all(|r| {
        r["content"]
            .as_str()
            .is_some_and(|c| c.starts_with("192.0.3."))
    }));
}
