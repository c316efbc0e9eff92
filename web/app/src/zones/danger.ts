// A `geofence.alert` frame (actors/subject_fences.py) as the warning the user
// sees: the zone's name and what to do (pure; tested).
import type { Frame } from "@panic-alert/shared/live/socket";

export interface DangerWarning {
  /** One warning per zone: a second entry replaces the first. */
  zoneId: string;
  zoneName: string;
  at: string;
}

/** The warning a frame asks for: an entry into a danger zone; null for anything else. */
export function warningOf(frame: Frame): DangerWarning | null {
  if (frame.type !== "geofence.alert") return null;
  const { zone_id: zoneId, zone_name: zoneName, zone_kind: kind, event, at } = frame.data;
  if (typeof zoneId !== "string" || zoneId === "") return null;
  if (event !== undefined && event !== "enter") return null;
  if (kind !== undefined && kind !== "danger") return null;
  return {
    zoneId,
    zoneName: typeof zoneName === "string" && zoneName.trim() !== "" ? zoneName.trim() : "a danger zone",
    at: typeof at === "string" ? at : new Date().toISOString(),
  };
}

/** The warnings after `next`: newest first, one per zone. */
export function added(warnings: readonly DangerWarning[], next: DangerWarning): DangerWarning[] {
  return [next, ...warnings.filter((w) => w.zoneId !== next.zoneId)];
}

/** What to do, in a few calm words. */
export const ADVICE =
  "Stay aware of your surroundings, keep to busy, well-lit streets and leave the area if you can. If you feel unsafe, send an alert.";
