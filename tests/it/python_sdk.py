"""The official Python SDK (`cloudflare` 5.x) against the flareops emulator.

Run by tests/it/python_sdk.rs with the environment it sets: CLOUDFLARE_BASE_URL,
CLOUDFLARE_API_TOKEN, FLAREOPS_ACCOUNT_ID, FLAREOPS_ZONE_ID. It writes through the SDK, then lists
and reads back over KV, D1, R2 and Workers, letting the SDK's own auto-paginators walk every list
(with and without `per_page`), and checks that every object the emulator returned carries the
fields the SDK's types mark as required. It prints one JSON summary line on success; any
failure raises, so the process exits non-zero with a traceback.
"""

import base64
import json
import os
import sys
import typing

import cloudflare
from cloudflare import Cloudflare
from pydantic import BaseModel

ACCOUNT = os.environ["FLAREOPS_ACCOUNT_ID"]
ZONE = os.environ["FLAREOPS_ZONE_ID"]
WORKER = "sdk-worker"
# A paginator that yields more than this has not terminated.
RUNAWAY = 500

summary = {"required_checks": 0}


def is_optional(annotation) -> bool:
    return typing.get_origin(annotation) is typing.Union and type(None) in typing.get_args(
        annotation
    )


def check_required(value, where: str) -> None:
    """Every field the SDK's type declares required was in the emulator's JSON, recursively."""
    if isinstance(value, list):
        for index, item in enumerate(value):
            check_required(item, f"{where}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            check_required(item, f"{where}.{key}")
        return
    if not isinstance(value, BaseModel):
        return
    summary["required_checks"] += 1
    for name, field in type(value).model_fields.items():
        if field.is_required() and not is_optional(field.annotation):
            assert name in value.model_fields_set, (
                f"{where}: {type(value).__name__} lacks the required field "
                f"{field.alias or name!r}; it has {sorted(value.model_fields_set)}"
            )
        if name in value.model_fields_set:
            check_required(getattr(value, name), f"{where}.{field.alias or name}")


def walk(paginator, where: str) -> list:
    """All items of an auto-paginating list, failing if it does not terminate."""
    items = []
    for item in paginator:
        items.append(item)
        assert len(items) <= RUNAWAY, f"{where}: the paginator did not terminate"
    check_required(items, where)
    return items


def pages(first_page, where: str) -> int:
    """The number of pages the SDK fetches, following `has_next_page` as iteration does (a page
    paginator stops at the first empty page, which counts; a cursor one at the empty cursor)."""
    count = 1
    page = first_page
    while page.has_next_page():
        page = page.get_next_page()
        count += 1
        assert count <= RUNAWAY, f"{where}: the pages did not end"
    return count


def main() -> None:
    client = Cloudflare(max_retries=0, timeout=30)

    # Accounts and zones.
    accounts = walk(client.accounts.list(), "accounts.list")
    assert [account.id for account in accounts] == [ACCOUNT], accounts
    memberships = walk(client.memberships.list(), "memberships.list")
    assert [membership.account.id for membership in memberships] == [ACCOUNT], memberships
    zones = walk(client.zones.list(), "zones.list")
    assert [zone.id for zone in zones] == [ZONE], zones
    assert [zone.id for zone in walk(client.zones.list(per_page=5), "zones by 5")] == [ZONE]
    check_required(client.zones.get(zone_id=ZONE), "zones.get")

    # KV: 12 namespaces, listed with the default page size and in pages of 5.
    created = []
    for index in range(12):
        namespace = client.kv.namespaces.create(account_id=ACCOUNT, title=f"sdk-ns-{index:02}")
        check_required(namespace, "kv.namespaces.create")
        created.append(namespace.id)
    listed = walk(client.kv.namespaces.list(account_id=ACCOUNT), "kv.namespaces.list")
    assert sorted(namespace.id for namespace in listed) == sorted(created)
    paged = walk(client.kv.namespaces.list(account_id=ACCOUNT, per_page=5), "kv pages of 5")
    assert sorted(namespace.id for namespace in paged) == sorted(created)
    assert pages(client.kv.namespaces.list(account_id=ACCOUNT, per_page=5), "kv") == 4
    past_end = client.kv.namespaces.list(account_id=ACCOUNT, per_page=5, page=9)
    assert past_end.result == [] and past_end.result_info is not None, past_end
    check_required(
        client.kv.namespaces.get(namespace_id=created[0], account_id=ACCOUNT), "kv.namespaces.get"
    )
    summary["kv_namespaces"] = len(listed)

    # KV keys: 25 written in bulk, one with metadata; listed with the default limit and by 10.
    namespace = created[0]
    client.kv.namespaces.bulk_update(
        namespace,
        account_id=ACCOUNT,
        body=[{"key": f"key-{index:02}", "value": f"value {index}"} for index in range(25)],
    )
    client.kv.namespaces.values.update(
        "key-00",
        account_id=ACCOUNT,
        namespace_id=namespace,
        value=b"first",
        metadata={"owner": "sdk"},
    )
    keys = walk(client.kv.namespaces.keys.list(namespace, account_id=ACCOUNT), "kv keys")
    assert [key.name for key in keys] == [f"key-{index:02}" for index in range(25)], keys
    assert keys[0].metadata == {"owner": "sdk"}, keys[0]
    by_ten = walk(client.kv.namespaces.keys.list(namespace, account_id=ACCOUNT, limit=10), "kv by 10")
    assert len(by_ten) == 25
    assert pages(client.kv.namespaces.keys.list(namespace, account_id=ACCOUNT, limit=10), "keys") == 3
    value = client.kv.namespaces.values.get("key-00", account_id=ACCOUNT, namespace_id=namespace)
    assert value.text() == "first"
    metadata = client.kv.namespaces.metadata.get(
        "key-00", account_id=ACCOUNT, namespace_id=namespace
    )
    assert metadata == {"owner": "sdk"}, metadata
    bulk = client.kv.namespaces.bulk_get(
        namespace, account_id=ACCOUNT, keys=["key-01", "key-02"]
    )
    check_required(bulk, "kv.bulk_get")
    assert bulk.values == {"key-01": "value 1", "key-02": "value 2"}, bulk
    summary["kv_keys"] = len(keys)

    # D1: 11 databases, listed with the default page size and in pages of 10.
    databases = []
    for index in range(11):
        database = client.d1.database.create(account_id=ACCOUNT, name=f"sdk-db-{index:02}")
        check_required(database, "d1.database.create")
        databases.append(database.uuid)
    listed = walk(client.d1.database.list(account_id=ACCOUNT), "d1.database.list")
    assert sorted(database.uuid for database in listed) == sorted(databases)
    assert pages(client.d1.database.list(account_id=ACCOUNT, per_page=10), "d1") == 3
    paged = walk(client.d1.database.list(account_id=ACCOUNT, per_page=10), "d1 pages of 10")
    assert len(paged) == 11
    check_required(
        client.d1.database.get(database_id=databases[0], account_id=ACCOUNT), "d1.database.get"
    )
    results = walk(
        client.d1.database.query(
            databases[0],
            account_id=ACCOUNT,
            sql="CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO t (name) VALUES (?1); SELECT name FROM t",
            params=["ada"],
        ),
        "d1.query",
    )
    assert len(results) == 3 and results[2].results == [{"name": "ada"}], results
    raw = walk(
        client.d1.database.raw(databases[0], account_id=ACCOUNT, sql="SELECT id, name FROM t"),
        "d1.raw",
    )
    assert raw[0].results.columns == ["id", "name"] and raw[0].results.rows == [[1, "ada"]], raw
    summary["d1_databases"] = len(listed)

    # R2: a bucket, objects with metadata, lists by the SDK's cursor paginator.
    bucket = client.r2.buckets.create(account_id=ACCOUNT, name="sdk-bucket")
    check_required(bucket, "r2.buckets.create")
    buckets = client.r2.buckets.list(account_id=ACCOUNT)
    check_required(buckets, "r2.buckets.list")
    assert [bucket.name for bucket in buckets.buckets] == ["sdk-bucket"], buckets
    check_required(
        client.r2.buckets.get("sdk-bucket", account_id=ACCOUNT), "r2.buckets.get"
    )
    keys = [f"photos/{index}.txt" for index in range(5)] + ["readme.md"]
    for key in keys:
        uploaded = client.r2.buckets.objects.upload(
            key,
            f"content of {key}".encode(),
            account_id=ACCOUNT,
            bucket_name="sdk-bucket",
            extra_headers={
                "Content-Type": "text/plain",
                "cf-r2-custom-metadata": json.dumps({"source": "sdk"}),
            },
        )
        check_required(uploaded, "r2.objects.upload")
        assert uploaded.key == key and uploaded.size == str(len(f"content of {key}")), uploaded
    objects = walk(
        client.r2.buckets.objects.list("sdk-bucket", account_id=ACCOUNT), "r2.objects.list"
    )
    assert [item.key for item in objects] == sorted(keys), objects
    assert objects[0].http_metadata.content_type == "text/plain", objects[0]
    assert objects[0].custom_metadata == {"source": "sdk"}, objects[0]
    by_two = walk(
        client.r2.buckets.objects.list("sdk-bucket", account_id=ACCOUNT, per_page=2),
        "r2 objects by 2",
    )
    assert [item.key for item in by_two] == sorted(keys)
    first = client.r2.buckets.objects.list("sdk-bucket", account_id=ACCOUNT, per_page=2)
    assert pages(first, "r2 objects") == 3
    photos = walk(
        client.r2.buckets.objects.list("sdk-bucket", account_id=ACCOUNT, prefix="photos/"),
        "r2 prefix",
    )
    assert len(photos) == 5
    top = client.r2.buckets.objects.list("sdk-bucket", account_id=ACCOUNT, delimiter="/")
    assert [item.key for item in top.result] == ["readme.md"], top
    assert top.result_info.model_extra.get("delimited") == ["photos/"], top.result_info
    body = client.r2.buckets.objects.get("readme.md", account_id=ACCOUNT, bucket_name="sdk-bucket")
    assert body.text() == "content of readme.md"
    deleted = client.r2.buckets.objects.delete(
        "readme.md", account_id=ACCOUNT, bucket_name="sdk-bucket"
    )
    check_required(deleted, "r2.objects.delete")
    assert deleted.key == "readme.md", deleted
    summary["r2_objects"] = len(objects)

    # Workers: a module worker uploaded by the SDK, a secret, then every list and read.
    script = client.workers.scripts.update(
        WORKER,
        account_id=ACCOUNT,
        metadata={
            "main_module": "index.js",
            "compatibility_date": "2025-01-01",
            "bindings": [{"type": "plain_text", "name": "GREETING", "text": "hello"}],
            "migrations": {"new_tag": "v1", "new_sqlite_classes": ["Counter"]},
        },
        files=[
            (
                "index.js",
                b"export class Counter {}\nexport default { fetch() { return new Response('hi') } }",
                "application/javascript+module",
            )
        ],
    )
    check_required(script, "workers.scripts.update")
    client.workers.scripts.secrets.update(
        WORKER, account_id=ACCOUNT, name="API_KEY", text="sdk-secret-value", type="secret_text"
    )
    # The SDK cannot parse a version (5.9's `ResourcesBindings` is not a pydantic type), so
    # versions are created and read through its raw responses.
    for index in range(3):
        created = client.workers.scripts.versions.with_raw_response.create(
            WORKER,
            account_id=ACCOUNT,
            metadata={"main_module": "index.js", "annotations": {"workers/tag": f"v{index}"}},
            files=[("index.js", f"export default {{}} // {index}".encode(), "application/javascript+module")],
        )
        version = created.json()["result"]
        assert version["annotations"]["workers/tag"] == f"v{index}", version
        assert {"id", "number", "metadata", "resources"} <= version.keys(), version
    scripts = walk(client.workers.scripts.list(account_id=ACCOUNT), "workers.scripts.list")
    assert [script.id for script in scripts] == [WORKER], scripts
    versions = walk(
        client.workers.scripts.versions.list(WORKER, account_id=ACCOUNT), "versions.list"
    )
    assert len(versions) == 5, versions
    # Without per_page the whole list is page 1; the SDK stops at the empty page 2.
    assert pages(client.workers.scripts.versions.list(WORKER, account_id=ACCOUNT), "versions") == 2
    by_two = walk(
        client.workers.scripts.versions.list(WORKER, account_id=ACCOUNT, per_page=2),
        "versions by 2",
    )
    assert [version.id for version in by_two] == [version.id for version in versions]
    version = client.workers.scripts.versions.with_raw_response.get(
        versions[0].id, account_id=ACCOUNT, script_name=WORKER
    ).json()["result"]
    # `resources` is the field VersionGetResponse requires.
    assert version["id"] == versions[0].id and "resources" in version, version
    deployments = client.workers.scripts.deployments.list(WORKER, account_id=ACCOUNT)
    assert not deployments.has_next_page(), "the deployments list is one page"
    walk(deployments, "deployments.list")
    secrets = walk(client.workers.scripts.secrets.list(WORKER, account_id=ACCOUNT), "secrets.list")
    assert [secret.name for secret in secrets] == ["API_KEY"], secrets
    assert "sdk-secret-value" not in json.dumps([secret.model_dump() for secret in secrets])
    check_required(
        client.workers.scripts.schedules.get(WORKER, account_id=ACCOUNT), "schedules.get"
    )
    settings = client.workers.scripts.script_and_version_settings.get(WORKER, account_id=ACCOUNT)
    check_required(settings, "script_and_version_settings.get")
    check_required(client.workers.scripts.settings.get(WORKER, account_id=ACCOUNT), "settings.get")
    check_required(client.workers.subdomains.get(account_id=ACCOUNT), "subdomains.get")
    check_required(
        client.workers.scripts.subdomain.get(WORKER, account_id=ACCOUNT), "script subdomain.get"
    )
    route = client.workers.routes.create(zone_id=ZONE, pattern="sdk.example.com/*", script=WORKER)
    check_required(route, "routes.create")
    routes = walk(client.workers.routes.list(zone_id=ZONE), "routes.list")
    assert [route.pattern for route in routes] == ["sdk.example.com/*"], routes
    domain = client.workers.domains.update(
        account_id=ACCOUNT,
        hostname="app.example.com",
        service=WORKER,
        zone_id=ZONE,
    )
    check_required(domain, "domains.update")
    domains = walk(client.workers.domains.list(account_id=ACCOUNT), "domains.list")
    assert [domain.hostname for domain in domains] == ["app.example.com"], domains
    # DNS records: created one by one and in a batch, listed page by page, read, typed.
    created = client.dns.records.create(
        zone_id=ZONE, type="A", name="www", content="192.0.2.1", proxied=True, ttl=1
    )
    check_required(created, "dns.records.create")
    assert created.name == "www.example.com", created
    client.dns.records.create(
        zone_id=ZONE, type="MX", name="@", content="mx.example.net", priority=10, ttl=300
    )
    client.dns.records.create(
        zone_id=ZONE,
        type="SRV",
        name="_sip._tcp",
        data={"priority": 10, "weight": 5, "port": 5060, "target": "sip.example.net"},
        ttl=1,
    )
    client.dns.records.create(
        zone_id=ZONE, type="CAA", name="@", ttl=1, data={"flags": 0, "tag": "issue", "value": "ca.example"}
    )
    batch = client.dns.records.batch(
        zone_id=ZONE,
        posts=[
            {"type": "TXT", "name": f"txt{i}", "content": f"value {i}", "tags": ["sdk:yes"]}
            for i in range(6)
        ],
        patches=[{"id": created.id, "comment": "front door"}],
    )
    assert batch is not None and len(batch.posts or []) == 6, batch
    check_required(batch.posts, "dns.records.batch.posts")
    records = walk(client.dns.records.list(zone_id=ZONE), "dns.records.list")
    # Eleven made here, and the custom domain's read-only record.
    assert len(records) == 11, [record.name for record in records]
    by_page = client.dns.records.list(zone_id=ZONE, per_page=5)
    assert pages(by_page, "dns records by 5") == 4
    managed = [record for record in records if record.name == "app.example.com"]
    assert [(record.type, record.content, record.meta.read_only) for record in managed] == [
        ("AAAA", "100::", True)
    ], managed
    txt = walk(client.dns.records.list(zone_id=ZONE, type="TXT"), "dns.records.list type=TXT")
    assert len(txt) == 6 and all(record.tags == ["sdk:yes"] for record in txt), txt
    srv = client.dns.records.list(zone_id=ZONE, type="SRV").result[0]
    assert (srv.data.port, srv.data.target, srv.content) == (5060, "sip.example.net", "5 5060 sip.example.net"), srv
    www = client.dns.records.get(created.id, zone_id=ZONE)
    check_required(www, "dns.records.get")
    assert (www.type, www.proxied, www.comment) == ("A", True, "front door"), www
    edited = client.dns.records.edit(
        created.id, zone_id=ZONE, type="A", name="www", content="192.0.2.2", ttl=1
    )
    assert edited.content == "192.0.2.2" and edited.proxied, edited
    try:
        client.dns.records.create(
            zone_id=ZONE, type="CNAME", name="www", content="example.net", ttl=1
        )
    except cloudflare.BadRequestError:
        pass
    else:
        raise AssertionError("a CNAME beside the A record is refused")
    client.dns.records.delete(created.id, zone_id=ZONE)
    summary["dns_records"] = len(walk(client.dns.records.list(zone_id=ZONE), "dns after delete"))

    # Pages: projects, Direct Upload with the project's token, deployments, domains.
    for i in range(3):
        created = client.pages.projects.create(
            account_id=ACCOUNT, name=f"sdk-site-{i}", production_branch="main"
        )
        check_required(created, "pages.projects.create")
    projects = walk(client.pages.projects.list(account_id=ACCOUNT), "pages.projects.list")
    assert sorted(p.name for p in projects) == ["sdk-site-0", "sdk-site-1", "sdk-site-2"], projects
    # Two full pages, then the empty one that ends the walk.
    assert pages(client.pages.projects.list(account_id=ACCOUNT, per_page=2), "projects by 2") == 3
    token = client.pages.projects.get_upload_token("sdk-site-0", account_id=ACCOUNT)
    assets = Cloudflare(api_token=token.jwt, base_url=os.environ["CLOUDFLARE_BASE_URL"])
    content = base64.b64encode(b"<h1>sdk</h1>").decode()
    digest = "0123456789abcdef0123456789abcdef"
    missing = assets.pages.assets.check_missing(hashes=[digest])
    assert list(missing) == [digest], missing
    assets.pages.assets.upload(
        body=[{"key": digest, "value": content, "metadata": {"content_type": "text/html"}, "base64": True}]
    )
    assert list(assets.pages.assets.check_missing(hashes=[digest])) == []
    assets.pages.assets.upsert_hashes(hashes=[digest])
    deployment = client.pages.projects.deployments.create(
        "sdk-site-0",
        account_id=ACCOUNT,
        manifest=json.dumps({"/index.html": digest}),
        branch="main",
        commit_message="from the SDK",
    )
    check_required(deployment, "pages.deployments.create")
    assert deployment.environment == "production", deployment
    deployments = walk(
        client.pages.projects.deployments.list("sdk-site-0", account_id=ACCOUNT),
        "pages.deployments.list",
    )
    assert [d.id for d in deployments] == [deployment.id], deployments
    got = client.pages.projects.get("sdk-site-0", account_id=ACCOUNT)
    check_required(got, "pages.projects.get")
    assert got.canonical_deployment is not None and got.canonical_deployment.id == deployment.id
    domain = client.pages.projects.domains.create("sdk-site-0", account_id=ACCOUNT, name="www.example.com")
    check_required(domain, "pages.domains.create")
    domains = walk(
        client.pages.projects.domains.list("sdk-site-0", account_id=ACCOUNT), "pages.domains.list"
    )
    assert [d.name for d in domains] == ["www.example.com"], domains
    summary["pages_projects"] = len(projects)

    namespaces = walk(
        client.durable_objects.namespaces.list(account_id=ACCOUNT),
        "durable_objects.namespaces.list",
    )
    assert [namespace.class_ for namespace in namespaces] == ["Counter"], namespaces
    first = client.durable_objects.namespaces.list(account_id=ACCOUNT, per_page=1)
    assert pages(first, "durable object namespaces") == 2
    summary["worker_versions"] = len(versions)

    # Errors come back as the SDK's typed exceptions.
    try:
        client.kv.namespaces.get(namespace_id="0" * 32, account_id=ACCOUNT)
    except cloudflare.NotFoundError:
        pass
    else:
        raise AssertionError("an unknown namespace is a 404")

    print(json.dumps(summary))


if __name__ == "__main__":
    try:
        main()
    except Exception:  # noqa: BLE001 - the traceback is the test's failure message
        import traceback

        traceback.print_exc()
        sys.exit(1)
