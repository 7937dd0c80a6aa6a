//! Queues against the emulator with the real wrangler: `queues create`
//! (with its settings), `queues list`, `deploy` of a worker that produces
//! to one queue and consumes another with a dead-letter queue, `queues
//! consumer remove` and `add`, `queues delete`. Each command's effect is
//! read back through the raw API.

use serde_json::{Value, json};

use crate::support::{TestEmulator, queue, queues};
use crate::wrangler::{Wrangler, wrangler_or_skip};

#[test]
fn wrangler_queue_commands_and_deploy_with_producers_and_consumers() {
    let Some(bin) =
        wrangler_or_skip("wrangler_queue_commands_and_deploy_with_producers_and_consumers")
    else {
        return;
    };
    let emulator = TestEmulator::start();
    let wrangler = Wrangler::new(bin, &emulator);
    wrangler
        .run(&[
            "queues",
            "create",
            "kk-notifications",
            "--delivery-delay-secs=5",
            "--message-retention-period-secs=3600",
        ])
        .success();
    wrangler
        .run(&["queues", "create", "kk-notifications-dlq"])
        .success();
    let created = queue(&emulator, "kk-notifications");
    assert_eq!(created["settings"]["delivery_delay"], 5, "{created}");
    assert_eq!(created["settings"]["message_retention_period"], 3600);
    let listed = wrangler.run(&["queues", "list"]).success();
    assert!(
        listed.stdout.contains("kk-notifications")
            && listed.stdout.contains("kk-notifications-dlq"),
        "{}",
        listed.stdout
    );
    // A name taken, and a queue that does not exist, are refused.
    let again = wrangler.run(&["queues", "create", "kk-notifications"]);
    assert!(!again.status.success());

    wrangler.write(
        "src/index.js",
        "export default {\n  async fetch(request, env) { await env.NOTIFY.send({ at: Date.now() }); return new Response('queued'); },\n  async queue(batch) { for (const m of batch.messages) m.ack(); },\n};\n",
    );
    wrangler.write(
        "wrangler.toml",
        r#"name = "kk-api"
main = "src/index.js"
compatibility_date = "2025-01-15"

[[queues.producers]]
binding = "NOTIFY"
queue = "kk-notifications"

[[queues.consumers]]
queue = "kk-notifications"
max_batch_size = 10
max_batch_timeout = 2
max_retries = 3
dead_letter_queue = "kk-notifications-dlq"
"#,
    );
    wrangler.run(&["deploy"]).success();
    let deployed = queue(&emulator, "kk-notifications");
    assert_eq!(
        deployed["producers"],
        json!([{"type": "worker", "script": "kk-api"}]),
        "{deployed}"
    );
    let consumer = &deployed["consumers"][0];
    assert_eq!(consumer["type"], "worker", "{deployed}");
    assert_eq!(consumer["script"], "kk-api");
    assert_eq!(consumer["dead_letter_queue"], "kk-notifications-dlq");
    assert_eq!(consumer["settings"]["batch_size"], 10);
    assert_eq!(consumer["settings"]["max_retries"], 3);
    assert_eq!(consumer["settings"]["max_wait_time_ms"], 2000);
    // Deploying again updates the consumer in place.
    wrangler.run(&["deploy"]).success();
    assert_eq!(
        queue(&emulator, "kk-notifications")["consumers_total_count"],
        1
    );

    wrangler
        .run(&["queues", "consumer", "remove", "kk-notifications", "kk-api"])
        .success();
    assert_eq!(queue(&emulator, "kk-notifications")["consumers"], json!([]));
    wrangler
        .run(&[
            "queues",
            "consumer",
            "add",
            "kk-notifications",
            "kk-api",
            "--batch-size=5",
            "--message-retries=1",
        ])
        .success();
    let added = queue(&emulator, "kk-notifications");
    assert_eq!(
        added["consumers"][0]["settings"]["batch_size"], 5,
        "{added}"
    );
    assert_eq!(added["consumers"][0]["settings"]["max_retries"], 1);

    wrangler
        .run(&["queues", "delete", "kk-notifications-dlq"])
        .success();
    let names: Vec<Value> = queues(&emulator)
        .iter()
        .map(|q| q["queue_name"].clone())
        .collect();
    assert_eq!(names, [json!("kk-notifications")]);
    // A worker bound to a queue that does not exist is refused.
    wrangler.write(
        "wrangler.toml",
        "name = \"kk-api\"\nmain = \"src/index.js\"\ncompatibility_date = \"2025-01-15\"\n\n[[queues.producers]]\nbinding = \"NOTIFY\"\nqueue = \"kk-missing\"\n",
    );
    let missing = wrangler.run(&["deploy"]);
    assert!(!missing.status.success());
    assert!(
        missing.output().contains("kk-missing"),
        "{}",
        missing.output()
    );
}
