// Positions as both apps handle them (pure; tested): the distance between two
// fixes, distances and arrival times in words, and when a fix is worth
// sending (the battery: a phone that did not move stays quiet).

export interface Point {
  latitude: number;
  longitude: number;
}

const EARTH_M = 6_371_008.8;

/** Great-circle distance in metres (haversine, mean Earth radius). */
export function metresBetween(a: Point, b: Point): number {
  const rad = Math.PI / 180;
  const dLat = (b.latitude - a.latitude) * rad;
  const dLon = (b.longitude - a.longitude) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.latitude * rad) * Math.cos(b.latitude * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_M * Math.asin(Math.sqrt(h));
}

export function distanceText(metres: number): string {
  return metres < 1000 ? `${Math.round(metres)} m away` : `${(metres / 1000).toFixed(1)} km away`;
}

/** An estimated arrival (`alert.eta`'s `eta_s`) in plain words. */
export function etaText(seconds: number): string {
  if (seconds <= 30) return "Arriving now";
  const minutes = Math.ceil(seconds / 60);
  if (minutes < 60) return `Arriving in about ${minutes} min`;
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  return rest === 0 ? `Arriving in about ${hours} h` : `Arriving in about ${hours} h ${rest} min`;
}

/** Send a fix when it moved at least `minMetres` since the last one sent, or `maxAgeMs` passed. */
export function worthSending(
  last: (Point & { at: number }) | null,
  next: Point & { at: number },
  minMetres = 25,
  maxAgeMs = 30_000,
): boolean {
  if (!last) return true;
  return metresBetween(last, next) >= minMetres || next.at - last.at >= maxAgeMs;
}
