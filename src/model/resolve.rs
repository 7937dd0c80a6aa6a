//! The one resolver from a declared address to the live resource it
//! stands for, shared by plan, apply, the ledger and drift: the id the
//! ledger recorded first (a renamed KV namespace keeps its id), then the
//! declared name. Pure.

use super::{
    Address, DesiredState, InventoryEntry, LiveD1Database, LiveKvNamespace, LiveR2Bucket,
    LiveState, LiveWorker, ResourceKind,
};

/// A live resource, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveResource<'a> {
    KvNamespace(&'a LiveKvNamespace),
    D1Database(&'a LiveD1Database),
    R2Bucket(&'a LiveR2Bucket),
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
            LiveResource::Worker(name) => (*name).to_string(),
        }
    }

    /// Its Cloudflare name (KV title, D1 name, R2 name, script name).
    pub fn name(&self) -> &str {
        match self {
            LiveResource::KvNamespace(ns) => &ns.title,
            LiveResource::D1Database(db) => &db.name,
            LiveResource::R2Bucket(b) => &b.name,
            LiveResource::Worker(name) => name,
        }
    }
}

impl LiveState {
    /// The ledger's entry for `address`, if it records one.
    pub fn recorded(&self, address: &Address) -> Option<&InventoryEntry> {
        self.inventory
            .iter()
            .flatten()
            .find(|entry| &entry.address == address)
    }

    /// The live resource with the recorded id of `entry`, if it still exists.
    pub fn by_recorded_id(&self, entry: &InventoryEntry) -> Option<LiveResource<'_>> {
        let id = entry.id.as_str();
        match entry.address.kind {
            ResourceKind::KvNamespaces => self
                .kv_namespaces
                .iter()
                .find(|ns| ns.id == id)
                .map(LiveResource::KvNamespace),
            ResourceKind::D1Databases => self
                .d1_databases
                .iter()
                .find(|db| db.uuid == id)
                .map(LiveResource::D1Database),
            ResourceKind::R2Buckets => self
                .r2_buckets
                .iter()
                .find(|b| InventoryEntry::r2_id(&b.name, b.jurisdiction) == id)
                .map(LiveResource::R2Bucket),
            ResourceKind::Workers => self.script(id).map(LiveResource::Worker),
        }
    }

    /// The worker script of that name, when it exists (in the script
    /// list, or among the declared workers read in detail).
    pub fn script(&self, name: &str) -> Option<&str> {
        self.workers
            .iter()
            .map(|w| w.name.as_str())
            .chain(self.script_names.iter().flatten().map(String::as_str))
            .find(|script| *script == name)
    }

    /// The live resource that declared `address` stands for: the recorded
    /// id first, then the declared name (for R2, within its
    /// jurisdiction). `None` when it does not exist (or is not declared).
    pub fn resolve(&self, desired: &DesiredState, address: &Address) -> Option<LiveResource<'_>> {
        if let Some(found) = self
            .recorded(address)
            .and_then(|entry| self.by_recorded_id(entry))
        {
            return Some(found);
        }
        let key = address.key.as_str();
        match address.kind {
            ResourceKind::KvNamespaces => {
                let title = &desired.kv_namespaces.get(key)?.spec.title;
                self.kv_namespaces
                    .iter()
                    .find(|ns| &ns.title == title)
                    .map(LiveResource::KvNamespace)
            }
            ResourceKind::D1Databases => {
                let name = &desired.d1_databases.get(key)?.spec.name;
                self.d1_databases
                    .iter()
                    .find(|db| &db.name == name)
                    .map(LiveResource::D1Database)
            }
            ResourceKind::R2Buckets => {
                let spec = &desired.r2_buckets.get(key)?.spec;
                self.r2_buckets
                    .iter()
                    .find(|b| b.name == spec.name && b.jurisdiction == spec.jurisdiction)
                    .map(LiveResource::R2Bucket)
            }
            ResourceKind::Workers => {
                let name = desired.workers.get(key)?.spec.name.as_str();
                self.script(name).map(LiveResource::Worker)
            }
        }
    }

    /// The declared worker `key` as read in detail, found by script name.
    pub fn worker(&self, desired: &DesiredState, key: &str) -> Option<&LiveWorker> {
        let name = &desired.workers.get(key)?.spec.name;
        self.workers.iter().find(|w| &w.name == name)
    }

    /// What the ledger should record for the environment now: every
    /// declared address that resolves, plus every recorded address git no
    /// longer declares whose resource still exists (an apply without
    /// `--allow-delete` leaves it managed). Sorted.
    pub fn inventory_for(&self, desired: &DesiredState) -> Vec<InventoryEntry> {
        let declared = desired.addresses();
        let mut entries: Vec<InventoryEntry> = declared
            .iter()
            .filter_map(|(address, protect)| {
                let found = self.resolve(desired, address)?;
                Some(InventoryEntry {
                    address: address.clone(),
                    id: found.id(),
                    name: found.name().to_string(),
                    protect: *protect,
                })
            })
            .collect();
        for entry in self.inventory.iter().flatten() {
            let undeclared = !declared.iter().any(|(a, _)| a == &entry.address);
            if undeclared && self.by_recorded_id(entry).is_some() {
                entries.push(entry.clone());
            }
        }
        entries.sort();
        entries
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
        let found = live.resolve(&desired("users-new"), &address);
        assert_eq!(found.map(|f| f.id()), Some("id-old".to_string()));
    }

    #[test]
    fn without_a_live_recorded_id_the_name_decides() {
        let address = Address::new(ResourceKind::KvNamespaces, "users");
        let live = live(Some(vec![entry("id-gone")]));
        let found = live.resolve(&desired("users-new"), &address);
        assert_eq!(found.map(|f| f.id()), Some("id-new".to_string()));
        assert_eq!(live.resolve(&desired("users-other"), &address), None);
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
