// ChatRoom: one Durable Object per conversation, keeping its messages in
// the object's SQLite storage.

export class ChatRoom {
  constructor(state) {
    this.state = state;
  }

  async fetch(request) {
    const messages = (await this.state.storage.get("messages")) ?? [];
    if (request.method === "POST") {
      const message = await request.json();
      messages.push({ ...message, at: Date.now() });
      await this.state.storage.put("messages", messages.slice(-100));
    }
    return new Response(JSON.stringify({ messages }), {
      headers: { "content-type": "application/json" },
    });
  }
}
