// Small response helpers shared by the routes.

export function json(body, status = 200) {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

export function notFound(what) {
  return json({ success: false, error: `${what} not found` }, 404);
}

export function requireApiKey(request, env) {
  if (request.headers.get("x-api-key") !== env.API_KEY) {
    return json({ success: false, error: "unauthorized" }, 401);
  }
  return null;
}
