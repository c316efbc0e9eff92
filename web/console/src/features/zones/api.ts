// The zones page's calls to /geofencing/zones (admins write, anyone reads).
import { ApiError, api } from "@panic-alert/shared/api/client";
import type { RosterPage, Zone, ZoneIn } from "@panic-alert/shared/api/types";

export { listZones } from "../../shared/map/zones";

export const createZone = (body: ZoneIn) => api.post<Zone>("/geofencing/zones", body);
export const replaceZone = (id: string, body: ZoneIn) => api.put<Zone>(`/geofencing/zones/${encodeURIComponent(id)}`, body);
export const deleteZone = (id: string) => api.del(`/geofencing/zones/${encodeURIComponent(id)}`);

/** One line for a failed call: each validation issue with its field, else the problem's detail. */
export function problemText(caught: unknown): string {
  if (caught instanceof ApiError) {
    if (caught.issues.length > 0) {
      return caught.issues
        .map((issue) => {
          const where = issue.loc.filter((part) => part !== "body").join(".");
          return where ? `${where}: ${issue.msg}` : issue.msg;
        })
        .join("; ");
    }
    return caught.message;
  }
  return caught instanceof Error ? caught.message : "the request failed";
}

export interface Responder {
  id: string;
  label: string;
}

/** Approved responders a service area may offer its alerts to (the first 500). */
export async function listResponders(): Promise<Responder[]> {
  const all: Responder[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 5; page += 1) {
    const answer: RosterPage = await api.get<RosterPage>("/admin/agents", { status: "approved", limit: 100, cursor });
    for (const agent of answer.items) {
      all.push({ id: agent.id, label: agent.badge_number ? `${agent.full_name} (${agent.badge_number})` : agent.full_name });
    }
    cursor = answer.next_cursor;
    if (!cursor) break;
  }
  return all;
}
