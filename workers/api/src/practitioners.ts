// Practitioner search over PRACTITIONERS_KV (`practitioner:<id>` -> JSON).

import type { KV } from "./env";

export type Practitioner = {
  id: string;
  title: string;
  specializations: string[];
  rating: number;
};

export async function searchPractitioners(
  kv: KV,
  filter: { specialization?: string; minRating?: number },
): Promise<Practitioner[]> {
  const listed = await kv.list({ prefix: "practitioner:", limit: 100 });
  const found = await Promise.all(listed.keys.map((k) => kv.get(k.name, "json")));
  return (found as (Practitioner | null)[])
    .filter((p): p is Practitioner => p !== null)
    .filter((p) => !filter.specialization || p.specializations.includes(filter.specialization))
    .filter((p) => filter.minRating === undefined || p.rating >= filter.minRating)
    .sort((a, b) => b.rating - a.rating);
}
