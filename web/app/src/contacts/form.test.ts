import { describe, expect, it } from "vitest";

import { EMPTY_FORM, bodyOf, fieldErrors, formOf, localErrors } from "./form";

describe("fieldErrors", () => {
  it("puts a field's issue next to that field", () => {
    expect(fieldErrors([{ loc: ["body", "email"], msg: "value is not a valid email address" }])).toEqual({
      email: "Value is not a valid email address",
    });
  });

  it("says the phone format in words, not as a pattern", () => {
    const found = fieldErrors([{ loc: ["body", "phone"], msg: "String should match pattern '^\\+[1-9][0-9]{1,14}$'" }]);
    expect(found.phone).toBe("Use the international format, e.g. +447700900123.");
  });

  it("maps notify_via items to the channels' group", () => {
    expect(fieldErrors([{ loc: ["body", "notify_via", 0], msg: "Input should be 'sms', 'email' or 'push'" }])).toEqual({
      notifyVia: "Input should be 'sms', 'email' or 'push'",
    });
  });

  it("gives a cross-field rule to the field it names, without pydantic's prefix", () => {
    expect(fieldErrors([{ loc: ["body"], msg: "Value error, notify_via 'sms' needs a phone" }])).toEqual({
      phone: "A text message needs a phone number.",
    });
    expect(fieldErrors([{ loc: ["body"], msg: "Value error, notify_via 'email' needs an email" }]).email).toBeDefined();
  });

  it("keeps what belongs to no field for the form, and the first message per field", () => {
    const found = fieldErrors([
      { loc: ["body"], msg: "Value error, a contact needs a phone or an email" },
      { loc: ["body"], msg: "Value error, something else" },
      { loc: ["body", "name"], msg: "first" },
      { loc: ["body", "name"], msg: "second" },
    ]);
    expect(found).toEqual({ form: "Give a phone number or an email address.", name: "First" });
  });
});

describe("bodyOf and formOf", () => {
  it("sends blanks as null, a phone without spaces and channels in a fixed order", () => {
    const body = bodyOf({ name: " Ann ", phone: "+44 7700 900123", email: " ", relationship: "", notifyVia: ["push", "sms"] });
    expect(body).toEqual({ name: "Ann", phone: "+447700900123", email: null, relationship: null, notify_via: ["sms", "push"] });
  });

  it("round-trips a contact", () => {
    const form = formOf({ id: "x", name: "Bo", phone: null, email: "bo@example.org", relationship: "friend", notify_via: ["email"] });
    expect(form).toEqual({ name: "Bo", phone: "", email: "bo@example.org", relationship: "friend", notifyVia: ["email"] });
  });
});

describe("localErrors", () => {
  it("asks for a name, a channel, and what each channel needs", () => {
    expect(localErrors({ ...EMPTY_FORM, notifyVia: [] })).toEqual({
      name: "Enter a name.",
      notifyVia: "Choose at least one way to tell them.",
      form: "Give a phone number or an email address.",
    });
    expect(localErrors({ ...EMPTY_FORM, name: "Ann", notifyVia: ["sms", "email"] })).toEqual({
      phone: "A text message needs a phone number.",
      email: "An email needs an email address.",
    });
    expect(localErrors({ ...EMPTY_FORM, name: "Ann", phone: "+447700900123" })).toEqual({});
  });
});
