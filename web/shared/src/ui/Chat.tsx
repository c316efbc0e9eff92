// The chat of one alert between the person and the responder (dispatchers
// read it in the console). Messages arrive as `alert.message` frames, heard
// on the app's socket; what was said before is read once from
// `GET /alerts/{id}/messages`. A message goes out as an `alert.message`
// frame on the live socket, or over REST when the socket is down.
import "./ui.css";
import { type SubmitEvent, useCallback, useEffect, useState } from "react";

import { api } from "../api/client";
import { type ChatMessage, MAX_MESSAGE, mergeMessages, outgoing, senderText } from "../live/alertFrames";
import type { LiveSocket } from "../live/socket";

export interface ChatState {
  messages: ChatMessage[];
  send: (text: string) => Promise<void>;
}

/** The chat of `alertId` (none: null), fed by the socket's `alert.message` frames. */
export function useChat(alertId: string | null, socket: LiveSocket | null): ChatState {
  // Kept with the alert they belong to: another alert starts with an empty list.
  const [held, setHeld] = useState<{ alertId: string | null; list: ChatMessage[] }>({ alertId: null, list: [] });
  const add = useCallback(
    (incoming: readonly ChatMessage[]) =>
      setHeld((h) => ({ alertId, list: mergeMessages(h.alertId === alertId ? h.list : [], incoming) })),
    [alertId],
  );
  useEffect(() => {
    if (!alertId) return;
    let current = true;
    api
      .get<{ items: ChatMessage[] }>(`/alerts/${alertId}/messages`)
      .then((page) => current && add(page.items))
      .catch(() => undefined);
    const unsubscribe = socket?.listen((frame) => {
      const message = frame.data as unknown as ChatMessage;
      if (frame.type === "alert.message" && message.alert_id === alertId) add([message]);
    });
    return () => {
      current = false;
      unsubscribe?.();
    };
  }, [alertId, socket, add]);
  const send = useCallback(
    async (text: string) => {
      if (!alertId) return;
      if (socket?.send("alert.message", { alert_id: alertId, text })) return;
      add([await api.post<ChatMessage>(`/alerts/${alertId}/messages`, { text })]);
    },
    [alertId, socket, add],
  );
  return { messages: held.alertId === alertId ? held.list : [], send };
}

function clock(at: string): string {
  return new Date(at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export function Chat({ chat, me }: { chat: ChatState; me: "user" | "agent" }) {
  const [text, setText] = useState("");
  const [error, setError] = useState<string | null>(null);

  async function submit(event: SubmitEvent<HTMLFormElement>) {
    event.preventDefault();
    const out = outgoing(text);
    if (!out) return;
    setError(null);
    try {
      await chat.send(out);
      setText("");
    } catch {
      setError("The message was not sent. Try again.");
    }
  }

  return (
    <section aria-labelledby="chat-title" className="chat">
      <h2 id="chat-title">Messages</h2>
      <div role="log" aria-label="Messages" aria-live="polite" className="chat-log">
        {chat.messages.length === 0 ? (
          <p className="empty">No messages yet.</p>
        ) : (
          <ol>
            {chat.messages.map((m) => (
              <li key={m.message_id} className={m.sender_role === me ? "mine" : "theirs"}>
                <span className="who">{senderText(m, me)}:</span> {m.text}{" "}
                <time dateTime={m.at}>{clock(m.at)}</time>
              </li>
            ))}
          </ol>
        )}
      </div>
      <form onSubmit={(e) => void submit(e)} className="chat-form">
        <label>
          Message
          <input maxLength={MAX_MESSAGE} autoComplete="off" value={text} onChange={(e) => setText(e.target.value)} />
        </label>
        <button type="submit">Send</button>
      </form>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
    </section>
  );
}
