// Names for the generated OpenAPI shapes the user app's extra screens use
// (contacts, check-ins, attachments): never a hand-copied server shape. The
// generated file is a declaration file, hence the `.d` in the import.
import type { components } from "@panic-alert/shared/api/schema.d";

type Schemas = components["schemas"];

export type Contact = Schemas["ContactOut"];
export type ContactList = Schemas["ContactList"];
export type Channel = Contact["notify_via"][number];
export type CheckIn = Schemas["CheckInOut"];
export type CheckInStart = Schemas["CheckInStart"];
export type Media = Schemas["MediaOut"];
export type MediaList = Schemas["MediaList"];
