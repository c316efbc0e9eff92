// Names for the generated OpenAPI types (schema.d.ts, from the gateway's
// document: `npm run gen:api`). Never hand-copy a server shape: add it here.
import type { components } from "./schema";

type Schemas = components["schemas"];

export type Alert = Schemas["AlertOut"];
export type AlertPage = Schemas["AlertPageOut"];
export type AlertStatus = Alert["status"];
export type AlertType = Alert["alert_type"];
export type TimelineEntry = Schemas["TimelineItem"];
export type TokenPair = Schemas["TokenResponse"];
export type Me = Schemas["Me"];
export type RosterAgent = Schemas["RosterAgent"];
export type RosterPage = Schemas["RosterPage"];
export type Media = Schemas["MediaOut"];
export type MediaList = Schemas["MediaList"];
export type Zone = Schemas["ZoneOut"];
export type ZoneIn = Schemas["ZoneIn"];
export type ZonePage = Schemas["ZonePageOut"];
export type AuthOk = Schemas["WsServer_auth_ok"];
export type AlertUpdated = Schemas["WsServer_alert_updated"];
export type AlertEscalated = Schemas["WsServer_alert_escalated"];
export type LocationPush = Schemas["WsServer_alert_location"];
export type MediaAdded = Schemas["WsServer_media_added"];
export type Invite = Schemas["InviteOut"];
export type Problem = Schemas["Problem"];

// Until the gateway's admin additions are in the generated document, the
// fields below are optional on the admin view (see README "console").
export type AdminAlert = Alert &
  Partial<{ duress: boolean; escalation_step: number; offered_at: string | null }>;
export interface FleetAgent {
  agent_id: string;
  status: string;
  available: boolean;
  latitude: number;
  longitude: number;
  heading?: number | null;
  speed_mps?: number | null;
  at: string;
  full_name?: string;
  badge_number?: string | null;
  vetting?: string;
}
export type Rendition = Schemas["RenditionOut"];
export interface Candidate {
  agent_id: string;
  full_name: string;
  badge_number: string | null;
  status: string;
  available: boolean;
  distance_m: number;
  latitude: number;
  longitude: number;
  last_seen_at: string | null;
}
export interface Delivery {
  id: string;
  channel: string;
  contact_name: string | null;
  status: string;
  attempts?: number;
  last_error: string | null;
  updated_at: string;
}
