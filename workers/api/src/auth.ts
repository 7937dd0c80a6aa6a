// Login and tokens: HS256 JWTs signed with JWT_SECRET (jose), and the
// middleware that guards the routes that need a user.

import type { MiddlewareHandler } from "hono";
import { SignJWT, jwtVerify } from "jose";
import type { Bindings } from "./env";

export type User = { id: string; email: string; password_hash: string; user_type: string };
export type Variables = { userId: string };

const ISSUER = "klear-karma-api";

function key(secret: string): Uint8Array {
  return new TextEncoder().encode(secret);
}

/** Hex SHA-256 of a password (the seed stores `password_hash`). */
export async function hashPassword(password: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(password));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export async function issueToken(user: User, secret: string): Promise<string> {
  return new SignJWT({ type: user.user_type })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(user.id)
    .setIssuer(ISSUER)
    .setIssuedAt()
    .setExpirationTime("1h")
    .sign(key(secret));
}

/** 401 unless the request carries a valid bearer token; sets `userId`. */
export const requireUser: MiddlewareHandler<{ Bindings: Bindings; Variables: Variables }> = async (
  c,
  next,
) => {
  const header = c.req.header("authorization") ?? "";
  const token = header.startsWith("Bearer ") ? header.slice(7) : "";
  if (!token) {
    return c.json({ success: false, error: "missing token" }, 401);
  }
  try {
    const { payload } = await jwtVerify(token, key(c.env.JWT_SECRET), { issuer: ISSUER });
    c.set("userId", String(payload.sub));
  } catch {
    return c.json({ success: false, error: "invalid token" }, 401);
  }
  await next();
};
