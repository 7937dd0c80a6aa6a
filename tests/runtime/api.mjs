// Runs the example API's bundle (workers/api/dist, as flareops built it) in
// the local Workers runtime that ships with the pinned wrangler (workerd,
// through miniflare), with KV, D1 and the Durable Object bound locally, and
// checks what a client sees. Usage:
//   node tests/runtime/api.mjs <miniflare module> <dist dir> <migrations dir>
// Exits 0 when every check passes; prints one line per check.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [miniflarePath, dist, migrations] = process.argv.slice(2);
const { Miniflare } = await import(pathToFileURL(miniflarePath).href);

const JWT_SECRET = "runtime-test-jwt-secret";
const mf = new Miniflare({
  modules: [
    { type: "ESModule", path: join(dist, "index.js"), contents: readFileSync(join(dist, "index.js")) },
  ],
  modulesRoot: dist,
  compatibilityDate: "2025-01-15",
  kvNamespaces: [
    "USERS_KV", "PRACTITIONERS_KV", "APPOINTMENTS_KV", "MESSAGES_KV",
    "SERVICES_KV", "REVIEWS_KV", "ANALYTICS_KV",
  ],
  d1Databases: ["DB"],
  r2Buckets: ["ASSETS"],
  durableObjects: { CHAT_ROOM: "ChatRoom" },
  queueProducers: { NOTIFY: "notifications" },
  queueConsumers: { notifications: { maxBatchSize: 10, maxBatchTimeout: 1, maxRetries: 3 } },
  bindings: { API_VERSION: "v1", JWT_SECRET, API_KEY: "runtime-test-api-key" },
});

const checks = [];
async function check(name, body) {
  await body();
  checks.push(name);
  console.log(`ok - ${name}`);
}

try {
  // The D1 schema, from the example's migrations, in order.
  const db = await mf.getD1Database("DB");
  for (const file of readdirSync(migrations).filter((f) => f.endsWith(".sql")).sort()) {
    const sql = readFileSync(join(migrations, file), "utf8")
      .split("\n").filter((line) => !line.trim().startsWith("--")).join("\n");
    for (const statement of sql.split(";").map((s) => s.trim()).filter(Boolean)) {
      await db.prepare(statement).run();
    }
  }
  const users = await mf.getKVNamespace("USERS_KV");
  const passwordHash = createHash("sha256").update("correct horse").digest("hex");
  await users.put("user:ana@example.com", JSON.stringify({
    id: "u-ana", email: "ana@example.com", password_hash: passwordHash, user_type: "customer",
  }));
  const practitioners = await mf.getKVNamespace("PRACTITIONERS_KV");
  await practitioners.put("practitioner:p-1", JSON.stringify({
    id: "p-1", title: "Reiki", specializations: ["reiki"], rating: 4.8,
  }));
  await practitioners.put("practitioner:p-2", JSON.stringify({
    id: "p-2", title: "Sound healing", specializations: ["sound"], rating: 4.1,
  }));
  await db.prepare("INSERT INTO users (id, email, password_hash, full_name, user_type) VALUES (?, ?, ?, ?, ?)")
    .bind("u-ana", "ana@example.com", passwordHash, "Ana", "customer").run();
  await db.prepare("INSERT INTO practitioners (id, title) VALUES (?, ?)").bind("p-1", "Reiki").run();

  const base = "https://api-staging.klearkarma.com";

  await check("GET /health answers ok with the API version", async () => {
    const response = await mf.dispatchFetch(`${base}/health`);
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { status: "ok", version: "v1" });
  });

  await check("CORS allows the web app's origin", async () => {
    const response = await mf.dispatchFetch(`${base}/health`, {
      headers: { origin: "https://app.klearkarma.com" },
    });
    assert.equal(response.headers.get("access-control-allow-origin"), "https://app.klearkarma.com");
    await response.arrayBuffer();
  });

  await check("a protected route without a token is 401", async () => {
    const response = await mf.dispatchFetch(`${base}/api/bookings`);
    assert.equal(response.status, 401);
    await response.arrayBuffer();
  });

  await check("a wrong password is refused", async () => {
    const response = await mf.dispatchFetch(`${base}/api/auth/login`, {
      method: "POST",
      body: JSON.stringify({ email: "ana@example.com", password: "wrong" }),
      headers: { "content-type": "application/json" },
    });
    assert.equal(response.status, 401);
    await response.arrayBuffer();
  });

  let token;
  await check("login returns a JWT signed with JWT_SECRET", async () => {
    const response = await mf.dispatchFetch(`${base}/api/auth/login`, {
      method: "POST",
      body: JSON.stringify({ email: "ana@example.com", password: "correct horse" }),
      headers: { "content-type": "application/json" },
    });
    assert.equal(response.status, 200);
    const body = await response.json();
    token = body.token;
    assert.equal(token.split(".").length, 3);
    const payload = JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString());
    assert.equal(payload.sub, "u-ana");
  });

  await check("a forged token is 401", async () => {
    const [header, payload] = token.split(".");
    const response = await mf.dispatchFetch(`${base}/api/me/profile`, {
      headers: { authorization: `Bearer ${header}.${payload}.AAAA` },
    });
    assert.equal(response.status, 401);
    await response.arrayBuffer();
  });

  await check("with the token, a booking is written to D1 and read back", async () => {
    const auth = { authorization: `Bearer ${token}`, "content-type": "application/json" };
    const created = await mf.dispatchFetch(`${base}/api/bookings`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ practitionerId: "p-1", startsAt: "2026-12-24T10:00:00Z" }),
    });
    assert.equal(created.status, 201);
    await created.arrayBuffer();
    const listed = await mf.dispatchFetch(`${base}/api/bookings`, { headers: auth });
    assert.equal(listed.status, 200);
    const { bookings } = await listed.json();
    assert.equal(bookings.length, 1);
    assert.equal(bookings[0].practitioner_id, "p-1");
  });

  await check("a booking's confirmation goes through the queue to its consumer", async () => {
    const messages = await mf.getKVNamespace("MESSAGES_KV");
    let confirmations = [];
    for (let i = 0; i < 50 && confirmations.length === 0; i++) {
      confirmations = (await messages.list({ prefix: "confirmation:" })).keys;
      if (confirmations.length === 0) await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(confirmations.length, 1, "one confirmation consumed");
    const confirmation = await messages.get(confirmations[0].name, "json");
    assert.equal(confirmation.userId, "u-ana");
    assert.equal(confirmation.startsAt, "2026-12-24T10:00:00Z");
  });

  await check("practitioner search reads PRACTITIONERS_KV", async () => {
    const response = await mf.dispatchFetch(`${base}/api/practitioners/search?specialization=reiki`);
    assert.equal(response.status, 200);
    const { practitioners: found } = await response.json();
    assert.deepEqual(found.map((p) => p.id), ["p-1"]);
    const all = await (await mf.dispatchFetch(`${base}/api/practitioners/search`)).json();
    assert.deepEqual(all.practitioners.map((p) => p.id), ["p-1", "p-2"]);
  });

  await check("the ChatRoom Durable Object keeps a room's messages", async () => {
    const post = await mf.dispatchFetch(`${base}/api/chat/room-1`, {
      method: "POST",
      body: JSON.stringify({ from: "ana", text: "hello" }),
    });
    await post.arrayBuffer();
    const read = await (await mf.dispatchFetch(`${base}/api/chat/room-1`)).json();
    assert.deepEqual(read.messages.map((m) => m.text), ["hello"]);
    const other = await (await mf.dispatchFetch(`${base}/api/chat/room-2`)).json();
    assert.deepEqual(other.messages, []);
  });

  await check("the hourly cron writes the hour's roll-up to ANALYTICS_KV", async () => {
    const worker = await mf.getWorker();
    const result = await worker.scheduled({
      scheduledTime: new Date("2026-12-05T10:00:00Z"),
      cron: "0 * * * *",
    });
    assert.equal(result.outcome, "ok");
    const analytics = await mf.getKVNamespace("ANALYTICS_KV");
    assert.deepEqual(await analytics.get("rollup:2026-12-05T10", "json"), { at: "2026-12-05T10" });
  });

  console.log(`${checks.length} checks passed`);
} finally {
  await mf.dispose();
}
