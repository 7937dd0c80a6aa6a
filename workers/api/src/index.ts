// The Klear Karma API: a Hono app on Workers, bundled by esbuild (the
// worker's `build:` in infra/workers.yaml).

import { Hono } from "hono";
import { cors } from "hono/cors";
import { hashPassword, issueToken, requireUser, type User, type Variables } from "./auth";
import type { Bindings, Confirmation } from "./env";
import { searchPractitioners } from "./practitioners";

export { ChatRoom } from "./chat-room";

const app = new Hono<{ Bindings: Bindings; Variables: Variables }>();

app.use("*", cors({ origin: "https://app.klearkarma.com", credentials: true }));

app.get("/health", (c) => c.json({ status: "ok", version: c.env.API_VERSION }));

app.post("/api/auth/login", async (c) => {
  const { email, password } = await c.req.json<{ email: string; password: string }>();
  const user = (await c.env.USERS_KV.get(`user:${email}`, "json")) as User | null;
  if (!user || user.password_hash !== (await hashPassword(password))) {
    return c.json({ success: false, error: "invalid credentials" }, 401);
  }
  return c.json({ success: true, token: await issueToken(user, c.env.JWT_SECRET) });
});

app.get("/api/practitioners/search", async (c) => {
  const minRating = c.req.query("min_rating");
  const practitioners = await searchPractitioners(c.env.PRACTITIONERS_KV, {
    specialization: c.req.query("specialization"),
    minRating: minRating === undefined ? undefined : Number(minRating),
  });
  return c.json({ success: true, practitioners });
});

app.use("/api/me/*", requireUser);
app.use("/api/bookings", requireUser);

app.get("/api/me/profile", (c) => c.json({ success: true, user: c.get("userId") }));

app.get("/api/bookings", async (c) => {
  const { results } = await c.env.DB.prepare(
    "SELECT id, practitioner_id, starts_at, status FROM appointments WHERE customer_id = ? ORDER BY starts_at",
  )
    .bind(c.get("userId"))
    .all();
  return c.json({ success: true, bookings: results });
});

app.post("/api/bookings", async (c) => {
  const { practitionerId, startsAt } = await c.req.json<{ practitionerId: string; startsAt: string }>();
  const id = crypto.randomUUID();
  await c.env.DB.prepare(
    "INSERT INTO appointments (id, customer_id, practitioner_id, starts_at) VALUES (?, ?, ?, ?)",
  )
    .bind(id, c.get("userId"), practitionerId, startsAt)
    .run();
  // The confirmation is sent in the background (the queue's consumer below).
  await c.env.NOTIFY.send({ bookingId: id, userId: c.get("userId"), startsAt });
  return c.json({ success: true, id }, 201);
});

app.all("/api/chat/:room", (c) => {
  const id = c.env.CHAT_ROOM.idFromName(c.req.param("room"));
  return c.env.CHAT_ROOM.get(id).fetch(c.req.raw);
});

app.notFound((c) => c.json({ success: false, error: "route not found" }, 404));

export default {
  fetch: app.fetch,

  // Booking confirmations: recorded in MESSAGES_KV (a stand-in for the
  // email a real system sends); a message that fails 3 times goes to the
  // dead-letter queue.
  async queue(batch: { messages: { body: Confirmation; ack(): void }[] }, env: Bindings): Promise<void> {
    for (const message of batch.messages) {
      const { bookingId, userId, startsAt } = message.body;
      await env.MESSAGES_KV.put(
        `confirmation:${bookingId}`,
        JSON.stringify({ userId, startsAt, text: `Your session on ${startsAt} is booked.` }),
      );
      message.ack();
    }
  },

  // Hourly: record the roll-up of the hour in the analytics namespace.
  async scheduled(controller: { scheduledTime: number }, env: Bindings): Promise<void> {
    const hour = new Date(controller.scheduledTime).toISOString().slice(0, 13);
    await env.ANALYTICS_KV.put(`rollup:${hour}`, JSON.stringify({ at: hour }));
  },
};
