//! Reads the live state of an account with as few requests as the API
//! allows: one paginated list per kind (per R2 jurisdiction), fetched
//! concurrently at the largest page size; never a per-resource GET.

use crate::cloudflare::{Client, ClientError, D1Database, KvNamespace, R2Bucket};
use crate::model::{
    DesiredState, Jurisdiction, LiveD1Database, LiveKvNamespace, LiveR2Bucket, LiveState,
    LocationHint, StorageClass,
};

/// Fetches what the account holds for the kinds `desired` declares. R2 is
/// listed in the default jurisdiction and in every jurisdiction `desired`
/// uses.
pub async fn fetch(client: &Client, desired: &DesiredState) -> Result<LiveState, ClientError> {
    let jurisdictions = desired.r2_jurisdictions();
    let r2_lists = futures::future::try_join_all(
        jurisdictions
            .iter()
            .map(|j| client.list_r2_buckets(j.map(Jurisdiction::as_str))),
    );
    let (kv, d1, r2) = futures::try_join!(
        client.list_kv_namespaces(),
        client.list_d1_databases(),
        r2_lists
    )?;
    let mut live = LiveState {
        account_id: client.account_id().to_string(),
        kv_namespaces: kv.into_iter().map(kv_from_wire).collect(),
        d1_databases: d1.into_iter().map(d1_from_wire).collect(),
        r2_buckets: r2.into_iter().flatten().map(r2_from_wire).collect(),
        r2_jurisdictions_listed: jurisdictions,
    };
    live.normalize();
    Ok(live)
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
    }
}

fn r2_from_wire(bucket: R2Bucket) -> LiveR2Bucket {
    LiveR2Bucket {
        location: bucket.location.as_deref().and_then(LocationHint::parse),
        storage_class: bucket
            .storage_class
            .as_deref()
            .and_then(StorageClass::parse)
            .unwrap_or(StorageClass::Standard),
        jurisdiction: bucket.jurisdiction.as_deref().and_then(Jurisdiction::parse),
        name: bucket.name,
    }
}
