// The web front talks to the API worker of its environment:
// app-<env>.klearkarma.com -> api-<env>.klearkarma.com.
const api = location.hostname.replace(/^app-/, "https://api-");

document.querySelector("#search").addEventListener("submit", async (event) => {
  event.preventDefault();
  const q = new FormData(event.target).get("q");
  const response = await fetch(`${api}/practitioners?q=${encodeURIComponent(q)}`);
  const { practitioners = [] } = await response.json();
  const list = document.querySelector("#results");
  list.replaceChildren(
    ...practitioners.map((p) => Object.assign(document.createElement("li"), { textContent: `${p.name}: ${p.specialty}` })),
  );
});
