// The Klear Karma API: a small ES module worker that serves a few routes of
// the seed's API from its bindings. No build step: flareops uploads these
// files as they are.

import { json, notFound, requireApiKey } from "./lib/http.js";

export { ChatRoom } from "./lib/chat-room.js";

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const path = url.pathname;

    if (path === "/health") {
      return json({ status: "ok", version: env.API_VERSION });
    }
    if (path === "/api/practitioners" && request.method === "GET") {
      const list = await env.PRACTITIONERS_KV.list({ prefix: "practitioner:", limit: 50 });
      const practitioners = await Promise.all(
        list.keys.map((key) => env.PRACTITIONERS_KV.get(key.name, "json")),
      );
      return json({ success: true, practitioners: practitioners.filter(Boolean) });
    }
    const user = path.match(/^\/api\/users\/([A-Za-z0-9_-]+)$/);
    if (user && request.method === "GET") {
      const denied = requireApiKey(request, env);
      if (denied) return denied;
      const profile = await env.USERS_KV.get(`user:${user[1]}`, "json");
      return profile ? json({ success: true, user: profile }) : notFound("user");
    }
    if (path === "/api/services" && request.method === "GET") {
      const { results } = await env.DB.prepare(
        "SELECT id, title, rating FROM practitioners ORDER BY rating DESC LIMIT 20",
      ).all();
      return json({ success: true, services: results });
    }
    const asset = path.match(/^\/assets\/(.+)$/);
    if (asset) {
      const object = await env.ASSETS.get(asset[1]);
      return object ? new Response(object.body) : notFound("asset");
    }
    const room = path.match(/^\/api\/chat\/([A-Za-z0-9_-]+)$/);
    if (room) {
      const id = env.CHAT_ROOM.idFromName(room[1]);
      return env.CHAT_ROOM.get(id).fetch(request);
    }
    return notFound("route");
  },

  // Hourly: roll the request counters up into the analytics namespace.
  async scheduled(controller, env) {
    const hour = new Date(controller.scheduledTime).toISOString().slice(0, 13);
    await env.ANALYTICS_KV.put(`rollup:${hour}`, JSON.stringify({ at: hour }));
  },
};
