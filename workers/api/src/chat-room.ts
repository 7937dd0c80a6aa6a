// ChatRoom: one Durable Object per conversation, keeping its last messages
// in the object's storage.

type Message = { from: string; text: string; at: number };

export class ChatRoom {
  constructor(private state: { storage: { get<T>(k: string): Promise<T | undefined>; put(k: string, v: unknown): Promise<void> } }) {}

  async fetch(request: Request): Promise<Response> {
    const messages = (await this.state.storage.get<Message[]>("messages")) ?? [];
    if (request.method === "POST") {
      const body = (await request.json()) as { from: string; text: string };
      messages.push({ from: body.from, text: body.text, at: Date.now() });
      await this.state.storage.put("messages", messages.slice(-100));
    }
    return Response.json({ messages });
  }
}
