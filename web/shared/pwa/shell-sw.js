// The app's shell offline: on install, the page and every asset it names are
// cached; navigations go to the network first and fall back to the cached
// page; assets (content-hashed, immutable) come from the cache first. API
// calls and the socket are never cached: an emergency app must not show
// stale state as if it were live.
const CACHE = "shell-v1";
const SCOPE = new URL(self.registration.scope);

async function precache() {
  const cache = await caches.open(CACHE);
  const page = await fetch(SCOPE, { cache: "no-cache" });
  const html = await page.clone().text();
  await cache.put(SCOPE, page);
  const assets = [...html.matchAll(/(?:src|href)="([^"]+\/assets\/[^"]+)"/g)].map((m) => new URL(m[1], SCOPE).href);
  await cache.addAll([...new Set(assets)]);
}

self.addEventListener("install", (event) => {
  event.waitUntil(precache().then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== SCOPE.origin || !url.pathname.startsWith(SCOPE.pathname)) return;
  if (request.mode === "navigate") {
    event.respondWith(
      fetch(request).catch(async () => (await caches.match(SCOPE)) ?? Response.error()),
    );
    return;
  }
  if (url.pathname.includes("/assets/") || url.pathname.endsWith(".png") || url.pathname.endsWith(".webmanifest")) {
    event.respondWith(
      caches.match(request).then(
        (hit) =>
          hit ??
          fetch(request).then(async (response) => {
            if (response.ok) await (await caches.open(CACHE)).put(request, response.clone());
            return response;
          }),
      ),
    );
  }
});
