// An emergency contact as the form edits it, the body sent for it, and the
// server's 422 problem mapped onto the form's fields (pure; tested).
import type { ValidationIssue } from "@panic-alert/shared/api/client";

import type { Channel, Contact } from "../schemas";

export const CHANNELS: readonly { value: Channel; label: string }[] = [
  { value: "sms", label: "Text message (SMS)" },
  { value: "email", label: "Email" },
  { value: "push", label: "App notification" },
];

export interface ContactForm {
  name: string;
  phone: string;
  email: string;
  relationship: string;
  notifyVia: Channel[];
}

export type FieldName = "name" | "phone" | "email" | "relationship" | "notifyVia";
/** Messages per field; `form` holds what belongs to no one field. */
export type FieldErrors = Partial<Record<FieldName | "form", string>>;

export const EMPTY_FORM: ContactForm = { name: "", phone: "", email: "", relationship: "", notifyVia: ["sms"] };

export function formOf(contact: Contact): ContactForm {
  return {
    name: contact.name,
    phone: contact.phone ?? "",
    email: contact.email ?? "",
    relationship: contact.relationship ?? "",
    notifyVia: [...contact.notify_via],
  };
}

/** The request body: blank optional fields are sent as null, channels in a fixed order. */
export function bodyOf(form: ContactForm): Record<string, unknown> {
  const blank = (text: string) => (text.trim() === "" ? null : text.trim());
  return {
    name: form.name.trim(),
    phone: blank(form.phone.replace(/[\s()-]/g, "")),
    email: blank(form.email),
    relationship: blank(form.relationship),
    notify_via: CHANNELS.map((c) => c.value).filter((c) => form.notifyVia.includes(c)),
  };
}

const API_FIELDS: Record<string, FieldName> = {
  name: "name",
  phone: "phone",
  email: "email",
  relationship: "relationship",
  notify_via: "notifyVia",
};

/** pydantic's "Value error, " prefixes and regular expressions are not for people. */
function plain(field: FieldName | "form", msg: string): string {
  if (field === "phone" && /pattern/.test(msg)) return "Use the international format, e.g. +447700900123.";
  const text = msg.replace(/^(Value error|Assertion failed), /i, "");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/**
 * Which field a 422 issue belongs to: its `loc` (`["body", "phone"]`), or for
 * the contact's cross-field rules (`loc` `["body"]`) the field the message
 * names ("notify_via 'sms' needs a phone" is the phone's problem). The first
 * message for a field wins; anything else goes to `form`.
 */
export function fieldErrors(issues: readonly ValidationIssue[]): FieldErrors {
  const found: FieldErrors = {};
  const put = (field: FieldName | "form", msg: string) => {
    found[field] ??= plain(field, msg);
  };
  for (const issue of issues) {
    const [where, field] = issue.loc;
    const named = where === "body" && typeof field === "string" ? API_FIELDS[field] : undefined;
    if (named) put(named, issue.msg);
    else if (/needs a phone$/.test(issue.msg)) put("phone", SAY.phone);
    else if (/needs an email$/.test(issue.msg)) put("email", SAY.email);
    else if (/needs a phone or an email$/.test(issue.msg)) put("form", SAY.either);
    else if (/repeat a channel/.test(issue.msg)) put("notifyVia", issue.msg);
    else put("form", issue.msg);
  }
  return found;
}

/** The contact rules in plain words (the server's words are for developers). */
const SAY = {
  phone: "A text message needs a phone number.",
  email: "An email needs an email address.",
  either: "Give a phone number or an email address.",
} as const;

/** Checks made before sending (the server checks again): the same rules, in words. */
export function localErrors(form: ContactForm): FieldErrors {
  const found: FieldErrors = {};
  if (form.name.trim() === "") found.name = "Enter a name.";
  if (form.notifyVia.length === 0) found.notifyVia = "Choose at least one way to tell them.";
  if (form.notifyVia.includes("sms") && form.phone.trim() === "") found.phone = SAY.phone;
  if (form.notifyVia.includes("email") && form.email.trim() === "") found.email = SAY.email;
  if (!found.phone && !found.email && form.phone.trim() === "" && form.email.trim() === "") {
    found.form = SAY.either;
  }
  return found;
}
