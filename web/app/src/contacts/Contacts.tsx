// "Emergency contacts": the people told when this user needs help. List, add,
// edit and delete (`/users/emergency-contacts`); the server's 422 problems are
// shown next to the field they concern (form.ts).
import "../extras.css";

import { ApiError, api } from "@panic-alert/shared/api/client";
import { type ReactNode, type SubmitEvent, useEffect, useId, useState } from "react";

import type { Channel, Contact, ContactList } from "../schemas";
import { CHANNELS, type ContactForm, EMPTY_FORM, type FieldErrors, bodyOf, fieldErrors, formOf, localErrors } from "./form";

function Field({
  label,
  error,
  hint,
  children,
}: {
  label: string;
  error: string | undefined;
  hint?: string;
  children: (ids: { id: string; describedBy: string | undefined; invalid: boolean }) => ReactNode;
}) {
  const id = useId();
  const describedBy = [hint ? `${id}-hint` : "", error ? `${id}-error` : ""].filter(Boolean).join(" ") || undefined;
  // The hint and the error describe the input (aria-describedby); its name is the label alone.
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {hint && (
        <span id={`${id}-hint`} className="hint">
          {hint}
        </span>
      )}
      {children({ id, describedBy, invalid: Boolean(error) })}
      {error && (
        <span id={`${id}-error`} className="field-error">
          {error}
        </span>
      )}
    </div>
  );
}

function ContactEditor({
  editing,
  onSaved,
  onCancel,
}: {
  editing: Contact | null;
  onSaved: (contact: Contact) => void;
  onCancel: () => void;
}) {
  const [form, setForm] = useState<ContactForm>(editing ? formOf(editing) : EMPTY_FORM);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [busy, setBusy] = useState(false);
  const channelsId = useId();
  const set = (patch: Partial<ContactForm>) => setForm((f) => ({ ...f, ...patch }));

  function toggle(channel: Channel, on: boolean) {
    set({ notifyVia: on ? [...form.notifyVia, channel] : form.notifyVia.filter((c) => c !== channel) });
  }

  async function submit(event: SubmitEvent<HTMLFormElement>) {
    event.preventDefault();
    const local = localErrors(form);
    setErrors(local);
    if (Object.keys(local).length > 0) return;
    setBusy(true);
    try {
      const body = bodyOf(form);
      const saved = editing
        ? await api.put<Contact>(`/users/emergency-contacts/${editing.id}`, body)
        : await api.post<Contact>("/users/emergency-contacts", body);
      onSaved(saved);
    } catch (caught) {
      if (caught instanceof ApiError && caught.status === 422 && caught.issues.length > 0) setErrors(fieldErrors(caught.issues));
      else if (caught instanceof ApiError && caught.status === 409) setErrors({ form: "You have the most contacts allowed: delete one first." });
      else if (caught instanceof ApiError && caught.status === 404) setErrors({ form: "That contact was deleted meanwhile." });
      else setErrors({ form: caught instanceof ApiError ? caught.message : "The server could not be reached. Try again." });
    } finally {
      setBusy(false);
    }
  }

  const title = editing ? `Edit ${editing.name}` : "Add a contact";
  return (
    <form className="contact-form" aria-label={title} noValidate onSubmit={(e) => void submit(e)}>
      <h3>{title}</h3>
      <Field label="Name" error={errors.name}>
        {({ id, describedBy, invalid }) => (
          <input
            id={id}
            required
            autoComplete="off"
            maxLength={200}
            value={form.name}
            aria-invalid={invalid}
            aria-describedby={describedBy}
            onChange={(e) => set({ name: e.target.value })}
          />
        )}
      </Field>
      <Field label="Phone number" hint="International format, e.g. +447700900123" error={errors.phone}>
        {({ id, describedBy, invalid }) => (
          <input
            id={id}
            type="tel"
            autoComplete="off"
            value={form.phone}
            aria-invalid={invalid}
            aria-describedby={describedBy}
            onChange={(e) => set({ phone: e.target.value })}
          />
        )}
      </Field>
      <Field label="Email address" error={errors.email}>
        {({ id, describedBy, invalid }) => (
          <input
            id={id}
            type="email"
            autoComplete="off"
            value={form.email}
            aria-invalid={invalid}
            aria-describedby={describedBy}
            onChange={(e) => set({ email: e.target.value })}
          />
        )}
      </Field>
      <Field label="Relationship (optional)" error={errors.relationship}>
        {({ id, describedBy, invalid }) => (
          <input
            id={id}
            maxLength={100}
            value={form.relationship}
            aria-invalid={invalid}
            aria-describedby={describedBy}
            onChange={(e) => set({ relationship: e.target.value })}
          />
        )}
      </Field>
      <fieldset className="channels" aria-describedby={errors.notifyVia ? `${channelsId}-error` : undefined}>
        <legend>Tell them by</legend>
        {CHANNELS.map((channel) => (
          <label key={channel.value} className="check">
            <input
              type="checkbox"
              checked={form.notifyVia.includes(channel.value)}
              onChange={(e) => toggle(channel.value, e.target.checked)}
            />
            {channel.label}
          </label>
        ))}
        {errors.notifyVia && (
          <span id={`${channelsId}-error`} className="field-error">
            {errors.notifyVia}
          </span>
        )}
      </fieldset>
      {errors.form && (
        <p role="alert" className="error">
          {errors.form}
        </p>
      )}
      {Object.keys(errors).length > 0 && !errors.form && (
        <p role="alert" className="error">
          Check the fields marked above.
        </p>
      )}
      <div className="row">
        <button type="submit" disabled={busy}>
          {editing ? "Save contact" : "Add contact"}
        </button>
        <button type="button" className="secondary" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function ContactItem({
  contact,
  onEdit,
  onDeleted,
}: {
  contact: Contact;
  onEdit: () => void;
  onDeleted: (id: string) => void;
}) {
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const how = contact.notify_via.map((c) => CHANNELS.find((k) => k.value === c)?.label ?? c).join(", ");

  async function remove() {
    setError(null);
    try {
      await api.del(`/users/emergency-contacts/${contact.id}`);
      onDeleted(contact.id);
    } catch (caught) {
      if (caught instanceof ApiError && caught.status === 404) onDeleted(contact.id);
      else setError(caught instanceof ApiError ? caught.message : "Not deleted: the server could not be reached.");
    }
  }

  return (
    <li className="contact">
      <div>
        <strong>{contact.name}</strong>
        {contact.relationship && <span className="detail"> ({contact.relationship})</span>}
        <span className="detail">{[contact.phone, contact.email].filter(Boolean).join(" · ")}</span>
        <span className="detail">By: {how}</span>
      </div>
      {confirming ? (
        <div className="row" role="group" aria-label={`Delete ${contact.name}?`}>
          <button type="button" className="secondary" onClick={() => void remove()}>
            Yes, delete {contact.name}
          </button>
          <button type="button" className="link" onClick={() => setConfirming(false)}>
            Keep
          </button>
        </div>
      ) : (
        <div className="row">
          <button type="button" className="link" aria-label={`Edit ${contact.name}`} onClick={onEdit}>
            Edit
          </button>
          <button type="button" className="link" aria-label={`Delete ${contact.name}`} onClick={() => setConfirming(true)}>
            Delete
          </button>
        </div>
      )}
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
    </li>
  );
}

/** The emergency contacts screen (a section with its own heading). */
export function Contacts() {
  const [contacts, setContacts] = useState<Contact[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [editing, setEditing] = useState<Contact | "new" | null>(null);
  const [said, setSaid] = useState<string | null>(null);
  const [version, setVersion] = useState(0);

  useEffect(() => {
    api
      .get<ContactList>("/users/emergency-contacts")
      .then((list) => {
        setContacts(list.items);
        setError(null);
      })
      .catch((caught: unknown) => setError(caught instanceof ApiError ? caught.message : "Your contacts could not be loaded."));
  }, [version]);

  function saved(contact: Contact) {
    const known = contacts?.some((c) => c.id === contact.id) ?? false;
    setContacts((list) => (known ? (list ?? []).map((c) => (c.id === contact.id ? contact : c)) : [...(list ?? []), contact]));
    setSaid(known ? `${contact.name} saved.` : `${contact.name} added.`);
    setEditing(null);
  }

  return (
    <section className="extra" aria-labelledby="contacts-heading">
      <h2 id="contacts-heading">Emergency contacts</h2>
      <p className="detail">Told when you raise an alert or miss a check-in.</p>
      <p role="status" className="detail">
        {said}
      </p>
      {error && (
        <p role="alert" className="error">
          {error}{" "}
          <button type="button" className="link" onClick={() => setVersion((v) => v + 1)}>
            Try again
          </button>
        </p>
      )}
      {contacts === null && !error && <p>Loading…</p>}
      {contacts?.length === 0 && <p>No contacts yet.</p>}
      {contacts && contacts.length > 0 && (
        <ul className="contacts" aria-label="Your emergency contacts">
          {contacts.map((contact) => (
            <ContactItem
              key={contact.id}
              contact={contact}
              onEdit={() => {
                setSaid(null);
                setEditing(contact);
              }}
              onDeleted={(id) => {
                setContacts((list) => (list ?? []).filter((c) => c.id !== id));
                setSaid(`${contact.name} deleted.`);
              }}
            />
          ))}
        </ul>
      )}
      {editing === null ? (
        <button
          type="button"
          onClick={() => {
            setSaid(null);
            setEditing("new");
          }}
        >
          Add a contact
        </button>
      ) : (
        <ContactEditor
          key={editing === "new" ? "new" : editing.id}
          editing={editing === "new" ? null : editing}
          onSaved={saved}
          onCancel={() => setEditing(null)}
        />
      )}
    </section>
  );
}
