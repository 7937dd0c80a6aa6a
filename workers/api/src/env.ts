// The bindings the API worker gets (declared in infra/workers.yaml). Only
// the methods the app calls are typed here.

export interface KV {
  get(key: string, type: "json"): Promise<unknown>;
  put(key: string, value: string): Promise<void>;
  list(options: { prefix: string; limit?: number }): Promise<{ keys: { name: string }[] }>;
}

export interface D1 {
  prepare(query: string): {
    bind(...values: unknown[]): {
      run(): Promise<unknown>;
      all<T>(): Promise<{ results: T[] }>;
    };
  };
}

export interface DurableObjectNamespace {
  idFromName(name: string): unknown;
  get(id: unknown): { fetch(request: Request): Promise<Response> };
}

export interface Queue<T> {
  send(message: T): Promise<void>;
}

/** A booking confirmation to send (NOTIFY). */
export type Confirmation = { bookingId: string; userId: string; startsAt: string };

export type Bindings = {
  USERS_KV: KV;
  PRACTITIONERS_KV: KV;
  APPOINTMENTS_KV: KV;
  MESSAGES_KV: KV;
  SERVICES_KV: KV;
  REVIEWS_KV: KV;
  ANALYTICS_KV: KV;
  DB: D1;
  ASSETS: { get(key: string): Promise<{ body: ReadableStream } | null> };
  CHAT_ROOM: DurableObjectNamespace;
  NOTIFY: Queue<Confirmation>;
  API_VERSION: string;
  JWT_SECRET: string;
  API_KEY: string;
};
