//! The one resolver from a declared address to the live resource it
//! stands for, shared by plan, apply, the ledger and drift: the id the
//! ledger recorded first (a renamed KV namespace keeps its id), then the
//! declared name. Pure.

use std::collections::{HashMap, HashSet};

use super::{
    Address, DesiredState, InventoryEntry, LiveD1Database, LiveDnsRecord, LiveKvNamespace,
    LivePagesProject, LiveQueue, LiveR2Bucket, LiveState, LiveWorker, ResourceKind,
};

/// A live resource, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveResource<'a> {
    KvNamespace(&'a LiveKvNamespace),
    D1Database(&'a LiveD1Database),
    R2Bucket(&'a LiveR2Bucket),
    Queue(&'a LiveQueue),
    DnsRecord(&'a LiveDnsRecord),
    PagesProject(&'a LivePagesProject),
    /// A worker script (by name): the declared ones are read in detail,
    /// others only by name.
    Worker(&'a str),
}

impl LiveResource<'_> {
    /// The id the ledger records for it (KV id, D1 uuid, R2
    /// `jurisdiction:name`, the script name).
    pub fn id(&self) -> String {
        match self {
            LiveResource::KvNamespace(ns) => ns.id.clone(),
            LiveResource::D1Database(db) => db.uuid.clone(),
            LiveResource::R2Bucket(b) => InventoryEntry::r2_id(&b.name, b.jurisdiction),
            LiveResource::Queue(q) => q.id.clone(),
            LiveResource::DnsRecord(r) => r.id.clone(),
            LiveResource::PagesProject(p) => p.id.clone(),
            LiveResource::Worker(name) => (*name).to_string(),
        }
    }

    /// Its Cloudflare name (KV title, D1 name, R2 name, script name).
    pub fn name(&self) -> &str {
        match self {
            LiveResource::KvNamespace(ns) => &ns.title,
            LiveResource::D1Database(db) => &db.name,
            LiveResource::R2Bucket(b) => &b.name,
            LiveResource::Queue(q) => &q.name,
            LiveResource::DnsRecord(r) => &r.name,
            LiveResource::PagesProject(p) => &p.name,
            LiveResource::Worker(name) => name,
        }
    }
}

/// Lookups into one live state by id and by name, built once (in linear
/// time) so that resolving every address of a large environment stays
/// linear. Holds references into the state.
pub struct LiveIndex<'a> {
    live: &'a LiveState,
    recorded: HashMap<&'a Address, &'a InventoryEntry>,
    kv_by_id: HashMap<&'a str, &'a LiveKvNamespace>,
    kv_by_title: HashMap<&'a str, &'a LiveKvNamespace>,
    d1_by_uuid: HashMap<&'a str, &'a LiveD1Database>,
    d1_by_name: HashMap<&'a str, &'a LiveD1Database>,
    r2_by_id: HashMap<String, &'a LiveR2Bucket>,
    queue_by_id: HashMap<&'a str, &'a LiveQueue>,
    queue_by_name: HashMap<&'a str, &'a LiveQueue>,
    dns_by_id: HashMap<&'a str, &'a LiveDnsRecord>,
    pages_by_id: HashMap<&'a str, &'a LivePagesProject>,
    pages_by_name: HashMap<&'a str, &'a LivePagesProject>,
    /// The records flareops may manage (not Cloudflare's own), by type
    /// and name.
    dns_by_name: HashMap<(&'a str, &'a str), Vec<&'a LiveDnsRecord>>,
    /// The names of the records Cloudflare made (custom domains').
    dns_held: HashSet<&'a str>,
    scripts: HashSet<&'a str>,
    workers: HashMap<&'a str, &'a LiveWorker>,
}

impl<'a> LiveIndex<'a> {
    /// Indexes `live`. Where two resources share a name, the first in
    /// the state's order is the one found.
    pub fn new(live: &'a LiveState) -> LiveIndex<'a> {
        fn first<'a, K: std::hash::Hash + Eq, V>(
            items: impl Iterator<Item = (K, &'a V)>,
        ) -> HashMap<K, &'a V> {
            let mut map = HashMap::new();
            for (key, value) in items {
                map.entry(key).or_insert(value);
            }
            map
        }
        LiveIndex {
            live,
            recorded: first(
                live.inventory
                    .iter()
                    .flatten()
                    .map(|entry| (&entry.address, entry)),
            ),
            kv_by_id: first(live.kv_namespaces.iter().map(|ns| (ns.id.as_str(), ns))),
            kv_by_title: first(live.kv_namespaces.iter().map(|ns| (ns.title.as_str(), ns))),
            d1_by_uuid: first(live.d1_databases.iter().map(|db| (db.uuid.as_str(), db))),
            d1_by_name: first(live.d1_databases.iter().map(|db| (db.name.as_str(), db))),
            r2_by_id: first(
                live.r2_buckets
                    .iter()
                    .map(|b| (InventoryEntry::r2_id(&b.name, b.jurisdiction), b)),
            ),
            queue_by_id: first(live.queues.iter().map(|q| (q.id.as_str(), q))),
            queue_by_name: first(live.queues.iter().map(|q| (q.name.as_str(), q))),
            dns_by_id: first(
                live.dns_records
                    .iter()
                    .filter(|r| !r.managed)
                    .map(|r| (r.id.as_str(), r)),
            ),
            pages_by_id: first(live.pages_projects.iter().map(|p| (p.id.as_str(), p))),
            pages_by_name: first(live.pages_projects.iter().map(|p| (p.name.as_str(), p))),
            dns_by_name: {
                let mut map: HashMap<(&str, &str), Vec<&LiveDnsRecord>> = HashMap::new();
                for record in live.dns_records.iter().filter(|r| !r.managed) {
                    map.entry((record.record_type.as_str(), record.name.as_str()))
                        .or_default()
                        .push(record);
                }
                map
            },
            dns_held: live
                .dns_records
                .iter()
                .filter(|r| r.managed)
                .map(|r| r.name.as_str())
                .collect(),
            scripts: live
                .workers
                .iter()
                .map(|w| w.name.as_str())
                .chain(live.script_names.iter().flatten().map(String::as_str))
                .collect(),
            workers: first(live.workers.iter().map(|w| (w.name.as_str(), w))),
        }
    }

    /// The state this index looks into.
    pub fn live(&self) -> &'a LiveState {
        self.live
    }

    /// The id of the live resource declared `address` stands for when it
    /// was found by its name and the ledger does not record it (or records
    /// an id that no longer exists): a resource to adopt.
    pub fn adoptable(&self, desired: &DesiredState, address: &Address) -> Option<String> {
        if self
            .recorded(address)
            .and_then(|entry| self.by_recorded_id(entry))
            .is_some()
        {
            return None;
        }
        self.resolve(desired, address).map(|found| found.id())
    }

    /// The other environment whose inventory records the resource of kind
    /// `kind` with id `id`, if one does.
    pub fn recorded_elsewhere(&self, kind: ResourceKind, id: &str) -> Option<&'a str> {
        self.live
            .recorded_elsewhere
            .iter()
            .find(|(_, entry)| entry.address.kind == kind && entry.id == id)
            .map(|(environment, _)| environment.as_str())
    }

    /// The KV namespace titled `title`, if any.
    pub fn kv_titled(&self, title: &str) -> Option<&'a LiveKvNamespace> {
        self.kv_by_title.get(title).copied()
    }

    /// The ledger's entry for `address`, if it records one.
    pub fn recorded(&self, address: &Address) -> Option<&'a InventoryEntry> {
        self.recorded.get(address).copied()
    }

    /// The worker script of that name, when it exists (in the script
    /// list, or among the declared workers read in detail).
    pub fn script(&self, name: &str) -> Option<&'a str> {
        self.scripts.get(name).copied()
    }

    /// The live resource with the recorded id of `entry`, if it still exists.
    pub fn by_recorded_id(&self, entry: &InventoryEntry) -> Option<LiveResource<'a>> {
        let id = entry.id.as_str();
        match entry.address.kind {
            ResourceKind::KvNamespaces => self
                .kv_by_id
                .get(id)
                .map(|ns| LiveResource::KvNamespace(ns)),
            ResourceKind::D1Databases => self
                .d1_by_uuid
                .get(id)
                .map(|db| LiveResource::D1Database(db)),
            ResourceKind::R2Buckets => self.r2_by_id.get(id).map(|b| LiveResource::R2Bucket(b)),
            ResourceKind::Queues => self.queue_by_id.get(id).map(|q| LiveResource::Queue(q)),
            ResourceKind::DnsRecords => self.dns_by_id.get(id).map(|r| LiveResource::DnsRecord(r)),
            ResourceKind::Workers => self.script(id).map(LiveResource::Worker),
            ResourceKind::PagesProjects => self
                .pages_by_id
                .get(id)
                .map(|p| LiveResource::PagesProject(p)),
        }
    }

    /// The live resource that declared `address` stands for: the recorded
    /// id first, then the declared name (for R2, within its
    /// jurisdiction). `None` when it does not exist (or is not declared).
    pub fn resolve(&self, desired: &DesiredState, address: &Address) -> Option<LiveResource<'a>> {
        if let Some(found) = self
            .recorded(address)
            .and_then(|entry| self.by_recorded_id(entry))
        {
            return Some(found);
        }
        let key = address.key.as_str();
        match address.kind {
            ResourceKind::KvNamespaces => {
                let title = desired.kv_namespaces.get(key)?.spec.title.as_str();
                self.kv_by_title
                    .get(title)
                    .map(|ns| LiveResource::KvNamespace(ns))
            }
            ResourceKind::D1Databases => {
                let name = desired.d1_databases.get(key)?.spec.name.as_str();
                self.d1_by_name
                    .get(name)
                    .map(|db| LiveResource::D1Database(db))
            }
            ResourceKind::R2Buckets => {
                let spec = &desired.r2_buckets.get(key)?.spec;
                let id = InventoryEntry::r2_id(&spec.name, spec.jurisdiction);
                self.r2_by_id.get(&id).map(|b| LiveResource::R2Bucket(b))
            }
            ResourceKind::Queues => {
                let name = desired.queues.get(key)?.spec.name.as_str();
                self.queue_by_name.get(name).map(|q| LiveResource::Queue(q))
            }
            ResourceKind::DnsRecords => {
                let spec = &desired.dns_records.get(key)?.spec;
                self.dns_record_for(desired, spec)
                    .map(LiveResource::DnsRecord)
            }
            ResourceKind::PagesProjects => {
                let name = desired.pages_projects.get(key)?.spec.name.as_str();
                self.pages_by_name
                    .get(name)
                    .map(|p| LiveResource::PagesProject(p))
            }
            ResourceKind::Workers => {
                let name = desired.workers.get(key)?.spec.name.as_str();
                self.script(name).map(LiveResource::Worker)
            }
        }
    }

    /// The unrecorded record a declared one stands for: the one with its
    /// type, name and content; else, when git declares one record of that
    /// type and name and the zone holds one, that one (its content
    /// changed).
    fn dns_record_for(
        &self,
        desired: &DesiredState,
        spec: &crate::model::DnsRecordSpec,
    ) -> Option<&'a LiveDnsRecord> {
        let kind = spec.record_type.as_str();
        let candidates = self.dns_by_name.get(&(kind, spec.name.as_str()))?;
        if let Some(same) = candidates.iter().find(|r| r.same_identity(spec)) {
            return Some(same);
        }
        let declared = desired
            .dns_records
            .values()
            .filter(|d| d.spec.record_type == spec.record_type && d.spec.name == spec.name)
            .count();
        match candidates.as_slice() {
            [only] if declared == 1 => Some(only),
            _ => None,
        }
    }

    /// Whether Cloudflare holds a record named `name` (a custom domain's).
    pub fn held_by_cloudflare(&self, name: &str) -> bool {
        self.dns_held.contains(name)
    }

    /// The queue named `name`, if any.
    pub fn queue_named(&self, name: &str) -> Option<&'a LiveQueue> {
        self.queue_by_name.get(name).copied()
    }

    /// The declared worker `key` as read in detail, found by script name.
    pub fn worker(&self, desired: &DesiredState, key: &str) -> Option<&'a LiveWorker> {
        let name = desired.workers.get(key)?.spec.name.as_str();
        self.workers.get(name).copied()
    }

    /// What the ledger should record for the environment now: every
    /// declared address that resolves, plus every recorded address git no
    /// longer declares whose resource still exists (an apply without
    /// `--allow-delete` leaves it managed). Sorted.
    pub fn inventory_for(&self, desired: &DesiredState) -> Vec<InventoryEntry> {
        let mut entries: Vec<InventoryEntry> = desired
            .addresses()
            .into_iter()
            .filter_map(|(address, protect)| {
                let found = self.resolve(desired, &address)?;
                Some(InventoryEntry {
                    id: found.id(),
                    name: found.name().to_string(),
                    address,
                    protect,
                })
            })
            .collect();
        for entry in self.live.inventory.iter().flatten() {
            if !desired.declares(&entry.address) && self.by_recorded_id(entry).is_some() {
                entries.push(entry.clone());
            }
        }
        entries.sort();
        entries
    }
}

impl LiveState {
    /// An index of this state for lookups by id and name.
    pub fn index(&self) -> LiveIndex<'_> {
        LiveIndex::new(self)
    }

    /// What the ledger should record for the environment now (see
    /// [`LiveIndex::inventory_for`]).
    pub fn inventory_for(&self, desired: &DesiredState) -> Vec<InventoryEntry> {
        self.index().inventory_for(desired)
    }

    /// The worker script of that name, when it exists.
    pub fn script(&self, name: &str) -> Option<&str> {
        self.workers
            .iter()
            .map(|w| w.name.as_str())
            .chain(self.script_names.iter().flatten().map(String::as_str))
            .find(|script| *script == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AccountTarget, Declared, KvNamespaceSpec};

    fn desired(title: &str) -> DesiredState {
        let mut desired = DesiredState::empty("staging", AccountTarget::Local);
        desired.kv_namespaces.insert(
            "users".into(),
            Declared {
                spec: KvNamespaceSpec {
                    title: title.into(),
                },
                protect: false,
            },
        );
        desired
    }

    fn live(inventory: Option<Vec<InventoryEntry>>) -> LiveState {
        LiveState {
            kv_namespaces: vec![
                LiveKvNamespace {
                    id: "id-old".into(),
                    title: "users-old".into(),
                },
                LiveKvNamespace {
                    id: "id-new".into(),
                    title: "users-new".into(),
                },
            ],
            inventory,
            ..LiveState::default()
        }
    }

    fn entry(id: &str) -> InventoryEntry {
        InventoryEntry {
            address: Address::new(ResourceKind::KvNamespaces, "users"),
            id: id.into(),
            name: "users-old".into(),
            protect: false,
        }
    }

    #[test]
    fn the_recorded_id_wins_over_the_name() {
        let address = Address::new(ResourceKind::KvNamespaces, "users");
        let live = live(Some(vec![entry("id-old")]));
        let found = live.index().resolve(&desired("users-new"), &address);
        assert_eq!(found.map(|f| f.id()), Some("id-old".to_string()));
    }

    #[test]
    fn without_a_live_recorded_id_the_name_decides() {
        let address = Address::new(ResourceKind::KvNamespaces, "users");
        let live = live(Some(vec![entry("id-gone")]));
        let found = live.index().resolve(&desired("users-new"), &address);
        assert_eq!(found.map(|f| f.id()), Some("id-new".to_string()));
        assert_eq!(
            live.index().resolve(&desired("users-other"), &address),
            None
        );
    }

    #[test]
    fn the_inventory_keeps_undeclared_entries_that_still_exist() {
        let mut other = entry("id-new");
        other.address = Address::new(ResourceKind::KvNamespaces, "removed");
        let gone = InventoryEntry {
            address: Address::new(ResourceKind::KvNamespaces, "gone"),
            ..entry("id-gone")
        };
        let live = live(Some(vec![entry("id-old"), other.clone(), gone]));
        let inventory = live.inventory_for(&desired("users-old"));
        let addresses: Vec<String> = inventory.iter().map(|e| e.address.to_string()).collect();
        assert_eq!(addresses, ["kv_namespaces.removed", "kv_namespaces.users"]);
    }
}
