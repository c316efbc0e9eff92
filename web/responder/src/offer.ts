// The responder app's pure decisions (tested): distances in words, the
// offer's countdown, and when a position is worth sending (the battery).

export function distanceText(metres: number): string {
  return metres < 1000 ? `${Math.round(metres)} m away` : `${(metres / 1000).toFixed(1)} km away`;
}

export function secondsLeft(expiresAt: string, now: number): number {
  return Math.max(0, Math.ceil((Date.parse(expiresAt) - now) / 1000));
}

const EARTH_M = 6_371_008.8;

export function metresBetween(a: { latitude: number; longitude: number }, b: { latitude: number; longitude: number }): number {
  const rad = Math.PI / 180;
  const dLat = (b.latitude - a.latitude) * rad;
  const dLon = (b.longitude - a.longitude) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.latitude * rad) * Math.cos(b.latitude * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_M * Math.asin(Math.sqrt(h));
}

/** Send a fix when it moved at least `minMetres` since the last one sent, or `maxAgeMs` passed. */
export function worthSending(
  last: { latitude: number; longitude: number; at: number } | null,
  next: { latitude: number; longitude: number; at: number },
  minMetres = 25,
  maxAgeMs = 30_000,
): boolean {
  if (!last) return true;
  return metresBetween(last, next) >= minMetres || next.at - last.at >= maxAgeMs;
}
