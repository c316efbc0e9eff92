import { describe, expect, it } from "vitest";

import { type ChatMessage, mergeMessages, outgoing, senderText } from "./alertFrames";

function message(id: string, at: string, sender_role: ChatMessage["sender_role"] = "user"): ChatMessage {
  return { alert_id: "a", message_id: id, sender_role, sender_id: "s", text: id, at };
}

describe("the chat's rules", () => {
  it("keeps each message once, oldest first", () => {
    const first = message("m1", "2026-01-01T00:00:01Z");
    const second = message("m2", "2026-01-01T00:00:02Z");
    expect(mergeMessages([second], [first, second]).map((m) => m.message_id)).toEqual(["m1", "m2"]);
    expect(mergeMessages([], [])).toEqual([]);
  });

  it("sends nothing blank and nothing longer than the server takes", () => {
    expect(outgoing("   ")).toBeNull();
    expect(outgoing("  on my way \n")).toBe("on my way");
    expect(outgoing("x".repeat(600))).toHaveLength(500);
  });

  it("names the sender from the reader's side", () => {
    const fromAgent = message("m", "2026-01-01T00:00:00Z", "agent");
    expect(senderText(fromAgent, "agent")).toBe("You");
    expect(senderText(fromAgent, "user")).toBe("Responder");
    expect(senderText(message("m", "2026-01-01T00:00:00Z", "admin"), "user")).toBe("Dispatcher");
  });
});
