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

// Web push (notify/webpush.py): the server pushes only while the app is not
// open, a JSON payload {type, alert_id, title, body} that never holds an
// offer's position, description or the user's name. tag = alert_id, so a
// repeated push (at-least-once) replaces the notification instead of adding one.
self.addEventListener("push", (event) => {
  let data;
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = {};
  }
  const offer = data.type === "alert.offer";
  event.waitUntil(
    self.registration.showNotification(data.title || "Panic Alert", {
      body: data.body || "",
      icon: new URL("icon-192.png", SCOPE).href,
      tag: data.alert_id || "panic-alert",
      renotify: true,
      requireInteraction: offer,
      vibrate: offer ? [400, 200, 400, 200, 400] : [200],
      data: { type: data.type, alert_id: data.alert_id },
    }),
  );
});

// A tap focuses an open window of the app, or opens the app.
self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((windows) => {
      const open = windows.find((w) => new URL(w.url).pathname.startsWith(SCOPE.pathname));
      return open ? open.focus() : self.clients.openWindow(SCOPE.href);
    }),
  );
});
