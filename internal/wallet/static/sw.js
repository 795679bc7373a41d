// The wallet's service worker: keeps the app shell so the card and its
// rotating code show without a network. The server replaces the version
// below with a hash of the assets, so a new build installs a new cache.
const VERSION = '@@VERSION@@';
const CACHE = `lintel-wallet-${VERSION}`;
const SHELL = [
  '/wallet/',
  '/wallet/static/app.js',
  '/wallet/static/qr.js',
  '/wallet/static/wallet.css',
  '/wallet/static/icon-192.png',
  '/wallet/static/icon-512.png',
  '/wallet/manifest.webmanifest',
];
// How long to wait for the network before answering from the cache.
const NETWORK_TIMEOUT_MS = 3000;

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    await cache.addAll(SHELL.map((url) => new Request(url, { cache: 'no-store' })));
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith('lintel-wallet-') && name !== CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return; // GraphQL and the rest go to the network
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === 'navigate' && url.pathname.startsWith('/wallet/')) {
    // Every wallet page is the same document; invitation pages are never
    // stored (their URL holds the token).
    event.respondWith(networkFirst(request, '/wallet/', url.pathname === '/wallet/'));
  } else if (SHELL.includes(url.pathname)) {
    event.respondWith(networkFirst(request, url.pathname, true));
  }
});

// Answers from the network and refreshes the cached copy; answers from the
// cache when the network fails or is slower than NETWORK_TIMEOUT_MS.
async function networkFirst(request, key, store) {
  const cache = await caches.open(CACHE);
  const network = fetch(request).then((response) => {
    if (store && response.ok && !response.redirected) {
      cache.put(key, response.clone()).catch(() => {});
    }
    return response;
  });
  network.catch(() => {});
  const cached = cache.match(key);
  const timeout = new Promise((resolve) => setTimeout(resolve, NETWORK_TIMEOUT_MS));
  try {
    return await Promise.race([network, timeout.then(async () => (await cached) || network)]);
  } catch (err) {
    const hit = await cached;
    if (hit) return hit;
    throw err;
  }
}
