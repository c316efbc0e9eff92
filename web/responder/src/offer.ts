// The responder app's pure decisions (tested): the offer's countdown.
// Distances and when a position is worth sending are shared with the user
// app (@panic-alert/shared/live/position).

export function secondsLeft(expiresAt: string, now: number): number {
  return Math.max(0, Math.ceil((Date.parse(expiresAt) - now) / 1000));
}
