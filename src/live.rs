//! Reads the live state of an account with as few requests as the API
//! allows. KV, D1 and R2: one paginated list per kind (per R2
//! jurisdiction), fetched concurrently at the largest page size, never a
//! per-resource GET. Workers: the script list, then per declared worker its
//! deployments, secrets and schedules, and the deployed versions' metadata;
//! module contents only when the deployed version does not carry the
//! identity git declares (to compare by content and show a code diff).
//! The ledger is read in the same pass (one request). A failure says which
//! of the two failed ([`FetchError`]).

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::cloudflare::{Client, ClientError, D1Database, KvNamespace, R2Bucket, Statement};
use crate::ledger::LedgerError;
use crate::model::{
    DesiredState, Jurisdiction, LiveContent, LiveCustomDomain, LiveD1Database, LiveDeploymentShare,
    LiveKvNamespace, LiveR2Bucket, LiveRoute, LiveState, LiveStorageClass, LiveVersion, LiveWorker,
    LocationHint, ModuleKind, WorkerModule,
};
use crate::plan;

/// Why the live state could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// A request to the account's API failed.
    #[error("reading the account failed")]
    Api(#[from] ClientError),
    /// Reading the ledger failed (a request, or what it answered).
    #[error("reading the ledger (D1 database {database}) failed")]
    Ledger {
        database: String,
        #[source]
        source: LedgerError,
    },
}

/// Fetches what the account holds for what `desired` declares. R2 is listed
/// in the default jurisdiction and in every jurisdiction `desired` uses.
pub async fn fetch(client: &Client, desired: &DesiredState) -> Result<LiveState, FetchError> {
    fetch_for(client, &[desired]).await
}

/// Fetches, in one read, what any of `states` declares: several versions of
/// one environment's manifests (drift plans the manifests now and those of
/// the last apply against the same account). The first state names the
/// environment, its ledger and its zone. [`view`] gives each state the live
/// state a fetch of it alone would have read.
pub async fn fetch_for(client: &Client, states: &[&DesiredState]) -> Result<LiveState, FetchError> {
    fetch_scoped(client, Scope::of(states), None).await
}

/// Fetches every worker of the account with its serving version's modules,
/// not only those `desired` declares (`flareops import` writes manifests
/// from them).
pub async fn fetch_everything(
    client: &Client,
    desired: &DesiredState,
) -> Result<LiveState, FetchError> {
    let states = [desired];
    let scope = Scope {
        states: &states,
        everything: true,
    };
    fetch_scoped(client, scope, None).await
}

/// [`fetch`] for an apply that holds the lock of ledger `database` and has
/// read it under the lock (`reads`): the ledger is not read again.
pub async fn fetch_locked(
    client: &Client,
    desired: &DesiredState,
    database: &str,
    reads: crate::ledger::PlanReads,
) -> Result<LiveState, FetchError> {
    let states = [desired];
    fetch_scoped(
        client,
        Scope::of(&states),
        Some((database.to_string(), reads)),
    )
    .await
}

async fn fetch_scoped(
    client: &Client,
    scope: Scope<'_>,
    read: Option<(String, crate::ledger::PlanReads)>,
) -> Result<LiveState, FetchError> {
    let desired = scope.primary();
    let jurisdictions = scope.jurisdictions();
    let r2_lists = futures::future::try_join_all(
        jurisdictions
            .iter()
            .map(|j| client.list_r2_buckets(j.map(Jurisdiction::as_str))),
    );
    // Queues are listed when a state declares one (or, below, when the
    // ledger records one): an account without queues costs no request.
    let declares_queues = scope.everything || scope.states.iter().any(|d| !d.queues.is_empty());
    let queue_list = async {
        if declares_queues {
            client.list_queues().await.map(Some)
        } else {
            Ok(None)
        }
    };
    // Pages projects likewise: listed when a state declares one (or the
    // ledger records one).
    let declares_pages =
        scope.everything || scope.states.iter().any(|d| !d.pages_projects.is_empty());
    let pages_list = async {
        if declares_pages {
            client.list_pages_projects().await.map(Some)
        } else {
            Ok(None)
        }
    };
    let (kv, d1, r2, queues, pages, (zone_id, workers, script_names, dns_records)) = futures::try_join!(
        client.list_kv_namespaces(),
        client.list_d1_databases(),
        r2_lists,
        queue_list,
        pages_list,
        fetch_workers(client, &scope)
    )?;
    let (ledger, read) = match read {
        Some((database, reads)) => (Some(database), Some(reads)),
        None => (crate::ledger::find(&d1, &desired.ledger_database), None),
    };
    let (inventory, secret_fingerprints, migration_hashes, recorded_elsewhere) = match &ledger {
        Some(ledger) => {
            let reads = match read {
                Some(reads) => reads,
                None => crate::ledger::read_for_plan(client, ledger, &desired.environment)
                    .await
                    .map_err(|source| FetchError::Ledger {
                        database: desired.ledger_database.clone(),
                        source,
                    })?,
            };
            (
                Some(reads.inventory),
                reads.fingerprints,
                reads.migration_hashes,
                reads.elsewhere,
            )
        }
        None => (None, None, Default::default(), Vec::new()),
    };
    // The ledger may record workers git no longer declares: they are
    // deleted by name, so the script list is needed after all.
    let recorded_workers = inventory
        .iter()
        .flatten()
        .any(|entry| entry.address.kind == crate::model::ResourceKind::Workers);
    let recorded_queues = inventory
        .iter()
        .flatten()
        .any(|entry| entry.address.kind == crate::model::ResourceKind::Queues);
    let queues = match queues {
        None if recorded_queues => client.list_queues().await?,
        listed => listed.unwrap_or_default(),
    };
    let recorded_pages: Vec<&str> = inventory
        .iter()
        .flatten()
        .filter(|entry| entry.address.kind == crate::model::ResourceKind::PagesProjects)
        .map(|entry| entry.id.as_str())
        .collect();
    let pages = match pages {
        None if !recorded_pages.is_empty() => client.list_pages_projects().await?,
        listed => listed.unwrap_or_default(),
    };
    let pages_projects = fetch_pages(client, &scope, pages).await?;
    // Records the ledger records are read (to delete them) even when git
    // declares none any more.
    let recorded_records = inventory
        .iter()
        .flatten()
        .any(|entry| entry.address.kind == crate::model::ResourceKind::DnsRecords);
    let (zone_id, dns_records) = match dns_records {
        None if recorded_records => {
            let zone_id = match zone_id {
                Some(id) => Some(id),
                None => find_zone(client, &scope).await?,
            };
            let records = list_records(client, zone_id.as_deref(), true).await?;
            (zone_id, records.unwrap_or_default())
        }
        listed => (zone_id, listed.unwrap_or_default()),
    };
    let script_names = match script_names {
        None if recorded_workers => Some(
            client
                .list_worker_scripts()
                .await?
                .into_iter()
                .map(|s| s.id)
                .collect(),
        ),
        listed => listed,
    };
    let mut live = LiveState {
        recorded_elsewhere,
        inventory,
        secret_fingerprints,
        migration_hashes,
        empty: Vec::new(),
        ledger,
        script_names,
        account_id: client.account_id().to_string(),
        kv_namespaces: kv.into_iter().map(kv_from_wire).collect(),
        // The ledger's own database is flareops' bookkeeping, not a
        // resource: it is never planned, and creating it on the first apply
        // (or taking the lock) must not look like a change to the account.
        d1_databases: d1
            .into_iter()
            .filter(|db| db.name != desired.ledger_database)
            .map(d1_from_wire)
            .collect(),
        r2_buckets: r2.into_iter().flatten().map(r2_from_wire).collect(),
        dns_records,
        pages_projects,
        queues: queues
            .into_iter()
            .map(|q| crate::model::LiveQueue {
                id: q.queue_id,
                name: q.queue_name,
                delivery_delay: q.settings.delivery_delay,
                message_retention_period: q.settings.message_retention_period,
                consumers: q
                    .consumers
                    .iter()
                    .map(|c| crate::model::LiveConsumer {
                        id: c.consumer_id.clone(),
                        script: c.script().map(str::to_string),
                        settings: (&c.settings).into(),
                        dead_letter_queue: c.dead_letter_queue.clone(),
                    })
                    .collect(),
            })
            .collect(),
        r2_jurisdictions_listed: jurisdictions,
        zone_id,
        workers,
    };
    fetch_contents(client, &scope, &mut live).await?;
    fetch_applied_migrations(client, &scope, &mut live).await?;
    live.empty = fetch_empty(client, desired, &live).await?;
    live.normalize();
    Ok(live)
}

/// What one fetch reads for: one or more desired states of one environment.
struct Scope<'a> {
    states: &'a [&'a DesiredState],
    /// Every worker of the account, with its modules.
    everything: bool,
}

impl<'a> Scope<'a> {
    fn of(states: &'a [&'a DesiredState]) -> Scope<'a> {
        Scope {
            states,
            everything: false,
        }
    }

    fn primary(&self) -> &DesiredState {
        self.states[0]
    }

    /// Every R2 jurisdiction any state uses, and the default one.
    fn jurisdictions(&self) -> Vec<Option<Jurisdiction>> {
        let mut all: Vec<Option<Jurisdiction>> = self
            .states
            .iter()
            .flat_map(|d| d.r2_jurisdictions())
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// The script names any state declares.
    /// Whether the zone's records are read: a state declares records or
    /// routes (a route without a proxied record is warned about).
    fn wants_records(&self) -> bool {
        self.everything || self.states.iter().any(|d| declares_records_or_routes(d))
    }

    fn worker_names(&self) -> BTreeSet<&str> {
        self.states
            .iter()
            .flat_map(|d| d.workers.values().map(|w| w.spec.name.as_str()))
            .collect()
    }

    /// Whether any state declares migrations for the database named `name`.
    fn declares_migrations(&self, name: &str) -> bool {
        self.states.iter().any(|d| {
            d.d1_databases
                .values()
                .any(|db| db.spec.name == name && !db.spec.migrations.is_empty())
        })
    }
}

fn declares_records_or_routes(desired: &DesiredState) -> bool {
    !desired.dns_records.is_empty() || desired.workers.values().any(|w| !w.spec.routes.is_empty())
}

/// The part of `live` (read by [`fetch_for`] for several states) that a
/// fetch of `desired` alone reads: its R2 jurisdictions, its workers, the
/// migrations of its databases that declare them. Planning `desired`
/// against the view is planning it against its own fetch.
pub fn view(live: &LiveState, desired: &DesiredState) -> LiveState {
    let jurisdictions = desired.r2_jurisdictions();
    let workers: BTreeSet<&str> = desired
        .workers
        .values()
        .map(|w| w.spec.name.as_str())
        .collect();
    let mut view = live.clone();
    view.r2_buckets
        .retain(|b| jurisdictions.contains(&b.jurisdiction));
    view.r2_jurisdictions_listed = jurisdictions;
    view.workers.retain(|w| workers.contains(w.name.as_str()));
    let records_recorded = view
        .inventory
        .iter()
        .flatten()
        .any(|entry| entry.address.kind == crate::model::ResourceKind::DnsRecords);
    // Pages projects as a fetch of `desired` alone reads them: listed when
    // it declares or records one, in detail only the declared ones.
    let declared_sites: BTreeSet<&str> = desired
        .pages_projects
        .values()
        .map(|p| p.spec.name.as_str())
        .collect();
    let sites_recorded = view
        .inventory
        .iter()
        .flatten()
        .any(|entry| entry.address.kind == crate::model::ResourceKind::PagesProjects);
    if declared_sites.is_empty() && !sites_recorded {
        view.pages_projects.clear();
    }
    for project in &mut view.pages_projects {
        if !declared_sites.contains(project.name.as_str()) {
            project.deployments.clear();
            project.custom_domains.clear();
        }
    }
    if !declares_records_or_routes(desired) && !records_recorded {
        view.dns_records.clear();
    }
    if workers.is_empty() && desired.dns_records.is_empty() && !records_recorded {
        view.zone_id = None;
    }
    for database in &mut view.d1_databases {
        let declares = desired
            .d1_databases
            .values()
            .any(|db| db.spec.name == database.name && !db.spec.migrations.is_empty());
        if !declares {
            database.applied_migrations = None;
        }
    }
    view
}

/// Which recorded resources that git no longer declares are empty: only
/// those are looked at (one request each).
async fn fetch_empty(
    client: &Client,
    desired: &DesiredState,
    live: &LiveState,
) -> Result<Vec<crate::model::Address>, ClientError> {
    use crate::model::ResourceKind;
    let candidates: Vec<&crate::model::InventoryEntry> = live
        .inventory
        .iter()
        .flatten()
        .filter(|entry| match entry.address.kind {
            ResourceKind::KvNamespaces => !desired.kv_namespaces.contains_key(&entry.address.key),
            ResourceKind::D1Databases => !desired.d1_databases.contains_key(&entry.address.key),
            ResourceKind::R2Buckets => !desired.r2_buckets.contains_key(&entry.address.key),
            _ => false,
        })
        .collect();
    let checks = futures::future::try_join_all(candidates.iter().map(|entry| async move {
        let empty = match entry.address.kind {
            ResourceKind::KvNamespaces => {
                if !live.kv_namespaces.iter().any(|ns| ns.id == entry.id) {
                    return Ok(None);
                }
                client.kv_namespace_is_empty(&entry.id).await?
            }
            ResourceKind::R2Buckets => {
                let Some(bucket) = live
                    .r2_buckets
                    .iter()
                    .find(|b| crate::model::InventoryEntry::r2_id(&b.name, b.jurisdiction) == entry.id)
                else {
                    return Ok(None);
                };
                let jurisdiction = bucket.jurisdiction.map(Jurisdiction::as_str);
                client.r2_bucket_is_empty(&bucket.name, jurisdiction).await?
            }
            _ => {
                if !live.d1_databases.iter().any(|db| db.uuid == entry.id) {
                    return Ok(None);
                }
                #[derive(Deserialize)]
                struct Count {
                    n: i64,
                }
                let tables = Statement::new(
                    "SELECT count(*) AS n FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' AND name != ?1",
                )
                .bind(MIGRATIONS_TABLE);
                let counts = client.d1_query_as::<Count>(&entry.id, &tables).await?;
                counts.first().map(|count| count.n) == Some(0)
            }
        };
        Ok::<_, ClientError>(empty.then(|| entry.address.clone()))
    }))
    .await?;
    Ok(checks.into_iter().flatten().collect())
}

/// The table wrangler records applied D1 migrations in.
pub const MIGRATIONS_TABLE: &str = "d1_migrations";

/// Reads wrangler's migrations table of every declared database that has
/// migrations (one read-only query each). A database without the table has
/// applied none.
async fn fetch_applied_migrations(
    client: &Client,
    scope: &Scope<'_>,
    live: &mut LiveState,
) -> Result<(), ClientError> {
    let wanted: Vec<(usize, String)> = live
        .d1_databases
        .iter()
        .enumerate()
        .filter(|(_, db)| scope.declares_migrations(&db.name))
        .map(|(i, db)| (i, db.uuid.clone()))
        .collect();
    #[derive(Deserialize)]
    struct Applied {
        name: Option<String>,
    }
    let names = Statement::new(format!("SELECT name FROM {MIGRATIONS_TABLE} ORDER BY id"));
    let applied = futures::future::try_join_all(wanted.iter().map(|(_, uuid)| {
        let names = &names;
        async move {
            match client.d1_query_as::<Applied>(uuid, names).await {
                Ok(rows) => Ok(rows
                    .into_iter()
                    .filter_map(|row| row.name)
                    .collect::<Vec<_>>()),
                Err(error) if error.is_no_such_table() => Ok(Vec::new()),
                Err(error) => Err(error),
            }
        }
    }))
    .await?;
    for ((index, _), names) in wanted.into_iter().zip(applied) {
        live.d1_databases[index].applied_migrations = Some(names);
    }
    Ok(())
}

/// The Pages projects of the account: the declared ones (or, reading
/// everything, all) with their newest production deployments and custom
/// domains; the others as listed.
async fn fetch_pages(
    client: &Client,
    scope: &Scope<'_>,
    projects: Vec<crate::cloudflare::PagesProject>,
) -> Result<Vec<crate::model::LivePagesProject>, ClientError> {
    let declared: BTreeSet<&str> = scope
        .states
        .iter()
        .flat_map(|d| d.pages_projects.values().map(|p| p.spec.name.as_str()))
        .collect();
    futures::future::try_join_all(projects.into_iter().map(|project| {
        let detailed = scope.everything || declared.contains(project.name.as_str());
        async move {
            let (deployments, domains) = if detailed {
                futures::try_join!(
                    client.list_pages_deployments(&project.name),
                    client.list_pages_domains(&project.name)
                )?
            } else {
                (Vec::new(), Vec::new())
            };
            let subdomain = format!("{}.pages.dev", project.name);
            let mut custom_domains: Vec<String> = domains
                .into_iter()
                .map(|d| d.name)
                .filter(|d| *d != subdomain)
                .collect();
            custom_domains.sort();
            Ok::<_, ClientError>(crate::model::LivePagesProject {
                canonical: project
                    .canonical_deployment
                    .as_ref()
                    .map(crate::model::LivePagesDeployment::from),
                deployments: deployments
                    .iter()
                    .filter(|d| d.succeeded_in_production())
                    .map(crate::model::LivePagesDeployment::from)
                    .collect(),
                production_branch: project.production_branch.unwrap_or_default(),
                custom_domains,
                deployed_files: None,
                id: project.id,
                name: project.name,
            })
        }
    }))
    .await
}

/// The zone's id, when the environment names a zone that exists.
async fn find_zone(client: &Client, scope: &Scope<'_>) -> Result<Option<String>, ClientError> {
    match &scope.primary().zone {
        Some(zone) => match &zone.id {
            Some(id) => Ok(Some(id.clone())),
            None => client.find_zone(&zone.name).await,
        },
        None => Ok(None),
    }
}

/// The zone's DNS records, when the zone exists and `wanted`.
async fn list_records(
    client: &Client,
    zone_id: Option<&str>,
    wanted: bool,
) -> Result<Option<Vec<crate::model::LiveDnsRecord>>, ClientError> {
    match zone_id {
        Some(id) if wanted => Ok(Some(
            client
                .list_dns_records(id)
                .await?
                .into_iter()
                .map(crate::model::LiveDnsRecord::from)
                .collect(),
        )),
        _ => Ok(None),
    }
}

/// What [`fetch_workers`] reads: the zone id, the declared workers that
/// exist, every script name (`None`: not listed, when no worker is
/// declared) and the zone's DNS records (`None`: not listed).
type WorkersRead = (
    Option<String>,
    Vec<LiveWorker>,
    Option<Vec<String>>,
    Option<Vec<crate::model::LiveDnsRecord>>,
);

/// The zone id, the declared workers that exist, every script name, and
/// the zone's records when a state declares records or routes.
async fn fetch_workers(client: &Client, scope: &Scope<'_>) -> Result<WorkersRead, ClientError> {
    let declared = scope.worker_names();
    let wants_records = scope.wants_records();
    if declared.is_empty() && !scope.everything {
        if !wants_records {
            return Ok((None, Vec::new(), None, None));
        }
        let zone_id = find_zone(client, scope).await?;
        let records = list_records(client, zone_id.as_deref(), true).await?;
        return Ok((zone_id, Vec::new(), None, records));
    }
    let (zone_id, scripts, namespaces, domains) = futures::try_join!(
        find_zone(client, scope),
        client.list_worker_scripts(),
        client.list_durable_object_namespaces(),
        client.list_custom_domains()
    )?;
    let routes = async {
        match &zone_id {
            Some(id) => client.list_zone_routes(id).await,
            None => Ok(Vec::new()),
        }
    };
    let (routes, records) = futures::try_join!(
        routes,
        list_records(client, zone_id.as_deref(), wants_records)
    )?;
    let script_names: Vec<String> = scripts.iter().map(|s| s.id.clone()).collect();
    let existing: Vec<_> = scripts
        .into_iter()
        .filter(|s| scope.everything || declared.contains(s.id.as_str()))
        .collect();
    let workers = futures::future::try_join_all(existing.into_iter().map(|script| {
        let routes = &routes;
        let namespaces = &namespaces;
        let domains = &domains;
        async move {
            let name = script.id;
            let (deployments, secrets, crons) = futures::try_join!(
                client.list_worker_deployments(&name),
                client.list_worker_secrets(&name),
                client.get_worker_schedules(&name)
            )?;
            let current = deployments.into_iter().next();
            let deployment: Vec<LiveDeploymentShare> = current
                .as_ref()
                .map(|d| {
                    d.versions
                        .iter()
                        .map(|v| LiveDeploymentShare {
                            version_id: v.version_id.clone(),
                            percentage: v.percentage.round().clamp(0.0, 100.0) as u8,
                        })
                        .collect()
                })
                .unwrap_or_default();
            let versions = futures::future::try_join_all(
                deployment
                    .iter()
                    .map(|share| client.get_worker_version(&name, &share.version_id)),
            )
            .await?;
            Ok::<_, ClientError>(LiveWorker {
                deployed_by: current.and_then(|d| d.author_email.or(d.source)),
                versions: versions
                    .into_iter()
                    .map(|v| LiveVersion {
                        id: v.id,
                        number: v.number,
                        tag: v.tag,
                        message: v.message,
                        author: v.author,
                        compatibility_date: v.compatibility_date,
                        compatibility_flags: v.compatibility_flags,
                        bindings: v.bindings,
                    })
                    .collect(),
                deployment,
                secrets,
                crons,
                routes: routes
                    .iter()
                    .filter(|r| r.script.as_deref() == Some(name.as_str()))
                    .map(|r| LiveRoute {
                        id: r.id.clone(),
                        pattern: r.pattern.clone(),
                    })
                    .collect(),
                custom_domains: domains
                    .iter()
                    .filter(|d| d.service.as_deref() == Some(name.as_str()))
                    .map(|d| LiveCustomDomain {
                        id: d.id.clone(),
                        hostname: d.hostname.clone(),
                    })
                    .collect(),
                durable_object_classes: namespaces
                    .iter()
                    .filter(|n| n.script.as_deref() == Some(name.as_str()))
                    .filter_map(|n| n.class.clone())
                    .collect(),
                migration_tag: script.migration_tag,
                content: None,
                declared_version: None,
                deployed_sources: None,
                name,
            })
        }
    }))
    .await?;
    Ok((zone_id, workers, Some(script_names), records))
}

/// Downloads the serving version's modules of every worker whose serving
/// versions do not carry the identity the first state declares for it (to
/// compare by content and show the code diff, as a fetch of that state
/// alone would); and looks for an earlier version with that identity (a
/// revert redeploys it). The other states' plans need no more: a worker
/// whose serving version carries the first state's identity differs from
/// theirs by that identity.
async fn fetch_contents(
    client: &Client,
    scope: &Scope<'_>,
    live: &mut LiveState,
) -> Result<(), ClientError> {
    let desired = scope.primary();
    // Script name -> the tag the first state declares (`None` while a
    // binding target does not exist).
    let declared: BTreeMap<&str, Option<String>> = desired
        .workers
        .iter()
        .map(|(key, worker)| {
            let identity = plan::worker_identity(desired, live, key);
            (
                worker.spec.name.as_str(),
                identity.as_deref().map(plan::identity_tag),
            )
        })
        .collect();
    let mut wanted = Vec::new();
    for worker in &live.workers {
        let (Some(version), Some(tag)) = (
            worker.current_version(),
            declared
                .get(worker.name.as_str())
                .or(scope.everything.then_some(&None)),
        ) else {
            continue;
        };
        // Any version serving traffic that carries the declared identity
        // makes a download pointless.
        let serving = |tag: &str| {
            worker
                .deployment
                .iter()
                .filter(|s| s.percentage > 0)
                .filter_map(|share| worker.versions.iter().find(|v| v.id == share.version_id))
                .any(|v| v.tag.as_deref() == Some(tag))
        };
        if !tag.as_deref().is_some_and(serving) {
            wanted.push((worker.name.clone(), version.id.clone(), tag.clone()));
        }
    }
    let contents =
        futures::future::try_join_all(wanted.iter().map(|(name, version, tag)| async move {
            let (modules, entrypoint) = client.get_worker_content(name, version).await?;
            // An earlier version may carry the declared identity (a revert).
            let earlier = match tag {
                Some(tag) => client
                    .list_worker_versions(name)
                    .await?
                    .into_iter()
                    .find(|(_, t)| t.as_deref() == Some(tag.as_str()))
                    .map(|(id, _)| id),
                None => None,
            };
            Ok::<_, ClientError>((name.clone(), modules, entrypoint, earlier))
        }))
        .await?;
    for (name, modules, entrypoint, earlier) in contents {
        let mut modules: Vec<WorkerModule> = modules
            .into_iter()
            .map(|m| WorkerModule {
                kind: m
                    .content_type
                    .as_deref()
                    .and_then(ModuleKind::from_content_type)
                    .or_else(|| ModuleKind::from_file_name(&m.name))
                    .unwrap_or(ModuleKind::Data),
                name: m.name,
                content: m.content,
            })
            .collect();
        modules.sort_by(|a, b| a.name.cmp(&b.name));
        let main_module = entrypoint
            .or_else(|| modules.first().map(|m| m.name.clone()))
            .unwrap_or_default();
        if let Some(worker) = live.workers.iter_mut().find(|w| w.name == name) {
            worker.content = Some(LiveContent {
                main_module,
                modules,
            });
            worker.declared_version = earlier;
        }
    }
    Ok(())
}

fn kv_from_wire(namespace: KvNamespace) -> LiveKvNamespace {
    LiveKvNamespace {
        id: namespace.id,
        title: namespace.title,
    }
}

fn d1_from_wire(database: D1Database) -> LiveD1Database {
    LiveD1Database {
        uuid: database.uuid,
        name: database.name,
        jurisdiction: database
            .jurisdiction
            .as_deref()
            .and_then(Jurisdiction::parse),
        applied_migrations: None,
    }
}

fn r2_from_wire(bucket: R2Bucket) -> LiveR2Bucket {
    LiveR2Bucket {
        location: bucket.location.as_deref().and_then(LocationHint::parse),
        storage_class: LiveStorageClass::reported(bucket.storage_class.as_deref()),
        jurisdiction: bucket.jurisdiction.as_deref().and_then(Jurisdiction::parse),
        name: bucket.name,
    }
}
