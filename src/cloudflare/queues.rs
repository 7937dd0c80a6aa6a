//! Queues: `/accounts/{a}/queues` and their consumers. A create whose
//! answer is lost is looked up by name (queue names are unique in an
//! account) before it is sent again.

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::retry::Repeat;
use super::transport::Exchange;
use super::{Body, Client, ClientError, Request};

/// A queue as the API returns it (with its consumers).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Queue {
    pub queue_id: String,
    pub queue_name: String,
    #[serde(default)]
    pub settings: QueueSettings,
    #[serde(default)]
    pub consumers: Vec<QueueConsumer>,
}

/// A queue's settings (seconds).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct QueueSettings {
    #[serde(default)]
    pub delivery_delay: Option<u64>,
    #[serde(default)]
    pub message_retention_period: Option<u64>,
}

/// A queue's consumer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct QueueConsumer {
    pub consumer_id: String,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// The consuming script.
    #[serde(default)]
    pub script: Option<String>,
    /// What some answers call it instead.
    #[serde(default)]
    script_name: Option<String>,
    #[serde(default)]
    pub settings: ConsumerSettings,
    #[serde(default)]
    pub dead_letter_queue: Option<String>,
}

impl QueueConsumer {
    /// The consuming script, however the answer names it.
    pub fn script(&self) -> Option<&str> {
        self.script.as_deref().or(self.script_name.as_deref())
    }
}

/// A worker consumer's settings, as the API names them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ConsumerSettings {
    #[serde(default)]
    pub batch_size: Option<u64>,
    #[serde(default)]
    pub max_retries: Option<u64>,
    #[serde(default)]
    pub max_wait_time_ms: Option<u64>,
    #[serde(default)]
    pub max_concurrency: Option<u64>,
    #[serde(default)]
    pub retry_delay: Option<u64>,
}

impl From<&crate::model::ConsumerSettings> for ConsumerSettings {
    fn from(settings: &crate::model::ConsumerSettings) -> Self {
        ConsumerSettings {
            batch_size: settings.batch_size,
            max_retries: settings.max_retries,
            max_wait_time_ms: settings.max_wait_time_ms,
            max_concurrency: settings.max_concurrency,
            retry_delay: settings.retry_delay,
        }
    }
}

impl From<&ConsumerSettings> for crate::model::ConsumerSettings {
    fn from(settings: &ConsumerSettings) -> Self {
        crate::model::ConsumerSettings {
            batch_size: settings.batch_size,
            max_retries: settings.max_retries,
            max_wait_time_ms: settings.max_wait_time_ms,
            max_concurrency: settings.max_concurrency,
            retry_delay: settings.retry_delay,
        }
    }
}

/// A worker consumer to create or replace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRequest<'a> {
    pub script: &'a str,
    pub settings: &'a ConsumerSettings,
    pub dead_letter_queue: Option<&'a str>,
}

impl ConsumerRequest<'_> {
    fn body(&self) -> Value {
        let mut settings = serde_json::Map::new();
        for (name, value) in [
            ("batch_size", self.settings.batch_size),
            ("max_retries", self.settings.max_retries),
            ("max_wait_time_ms", self.settings.max_wait_time_ms),
            ("max_concurrency", self.settings.max_concurrency),
            ("retry_delay", self.settings.retry_delay),
        ] {
            if let Some(value) = value {
                settings.insert(name.into(), json!(value));
            }
        }
        let mut body = json!({
            "type": "worker",
            "script_name": self.script,
            "settings": settings,
        });
        if let Some(dlq) = self.dead_letter_queue {
            body["dead_letter_queue"] = json!(dlq);
        }
        body
    }
}

/// The largest `per_page` the queue list accepts.
const MAX_PER_PAGE: u32 = 1000;

/// `{"delivery_delay": .., "message_retention_period": ..}` of what is set.
fn settings_body(settings: &QueueSettings) -> Value {
    let mut body = serde_json::Map::new();
    if let Some(delay) = settings.delivery_delay {
        body.insert("delivery_delay".into(), json!(delay));
    }
    if let Some(retention) = settings.message_retention_period {
        body.insert("message_retention_period".into(), json!(retention));
    }
    Value::Object(body)
}

impl Client {
    pub async fn list_queues(&self) -> Result<Vec<Queue>, ClientError> {
        let path = self.account_path("/queues");
        self.get_all_pages(&path, MAX_PER_PAGE, &[]).await
    }

    pub async fn create_queue(
        &self,
        name: &str,
        settings: &QueueSettings,
    ) -> Result<Queue, ClientError> {
        let path = self.account_path("/queues");
        let body = json!({ "queue_name": name, "settings": settings_body(settings) });
        let request = Request::new(Method::POST, &path)
            .body(Body::Json(&body))
            .repeat(Repeat::Unsafe);
        self.create_or_find(
            &format!("queue {name:?}"),
            async |state: &mut Exchange| self.fetch_result_with(&request, state).await,
            async || {
                Ok(self
                    .list_queues()
                    .await?
                    .into_iter()
                    .find(|q| q.queue_name == name))
            },
        )
        .await
    }

    /// Renames a queue and sets its settings (`PATCH`: what is not given
    /// is kept; the backlog stays).
    pub async fn update_queue(
        &self,
        id: &str,
        name: &str,
        settings: &QueueSettings,
    ) -> Result<(), ClientError> {
        let path = self.account_path(&format!("/queues/{id}"));
        let body = json!({ "queue_name": name, "settings": settings_body(settings) });
        self.call_unit(Method::PATCH, &path, &[], Body::Json(&body))
            .await
    }

    pub async fn delete_queue(&self, id: &str) -> Result<(), ClientError> {
        let path = self.account_path(&format!("/queues/{id}"));
        self.call_unit(Method::DELETE, &path, &[], Body::None).await
    }

    pub async fn create_queue_consumer(
        &self,
        queue_id: &str,
        consumer: &ConsumerRequest<'_>,
    ) -> Result<(), ClientError> {
        let path = self.account_path(&format!("/queues/{queue_id}/consumers"));
        let body = consumer.body();
        self.call_unit(Method::POST, &path, &[], Body::Json(&body))
            .await
    }

    pub async fn update_queue_consumer(
        &self,
        queue_id: &str,
        consumer_id: &str,
        consumer: &ConsumerRequest<'_>,
    ) -> Result<(), ClientError> {
        let path = self.account_path(&format!("/queues/{queue_id}/consumers/{consumer_id}"));
        let body = consumer.body();
        self.call_unit(Method::PUT, &path, &[], Body::Json(&body))
            .await
    }

    pub async fn delete_queue_consumer(
        &self,
        queue_id: &str,
        consumer_id: &str,
    ) -> Result<(), ClientError> {
        let path = self.account_path(&format!("/queues/{queue_id}/consumers/{consumer_id}"));
        self.call_unit(Method::DELETE, &path, &[], Body::None).await
    }
}
