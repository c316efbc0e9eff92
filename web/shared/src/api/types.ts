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

/** An alert as admins see it (duress, escalation step and offer time included). */
export type AdminAlert = Alert;
/** One agent of the fleet: `fleet.agents` diffs, and `GET /admin/fleet` items (with who it is). */
export type FleetAgent = Schemas["FleetAgent"] & Partial<Pick<Schemas["FleetMember"], "full_name" | "badge_number" | "vetting">>;
export type FleetPage = Schemas["FleetOut"];
export type FleetFrame = Schemas["WsServer_fleet_agents"];
export type AlertCreated = Schemas["WsServer_alert_created"];
export type Rendition = Schemas["RenditionOut"];
export type Candidate = Schemas["CandidateOut"];
export type CandidatePage = Schemas["CandidatesOut"];
export type Delivery = Schemas["NotificationOut"];
export type ResponseTimes = Schemas["ResponseTimesOut"];
export type ResponseTimeItem = Schemas["ResponseTimeItem"];
export type ZoneKind = Schemas["ZoneKind"];
export type ZoneRulesIn = Schemas["ZoneRulesIn"];
export type Bucket = Schemas["Bucket"];
export type Stage = Schemas["StageOut"];
