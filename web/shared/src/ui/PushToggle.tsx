// "Turn on notifications": web push for when the app is closed (live/push.ts).
// Shown only where the browser can do it; what came of it is said plainly.
import { useState } from "react";

import { enablePush, pushOutcomeText, pushSupported } from "../live/push";

export function PushToggle() {
  const [said, setSaid] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  if (!pushSupported()) return null;
  async function turnOn() {
    setBusy(true);
    setSaid(pushOutcomeText(await enablePush()));
    setBusy(false);
  }
  return (
    <div className="push">
      <button type="button" className="link" disabled={busy} onClick={() => void turnOn()}>
        Turn on notifications
      </button>
      {said && <p role="status">{said}</p>}
    </div>
  );
}
