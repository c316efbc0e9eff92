import { type KeyboardEvent, useEffect, useRef, useState } from "react";

import { HOLD_MS, TAP_WINDOW_MS } from "./progress";

/**
 * "Send panic alert": a deliberate gesture, so a pocket can't send it. Hold
 * it for 1.5 s (pointer, or Space/Enter held), or press it twice in quick
 * succession (what a screen reader's double activation gives).
 */
export function PanicButton({ onSend, disabled }: { onSend: () => void; disabled: boolean }) {
  const [holding, setHolding] = useState(false);
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const lastTap = useRef(0);
  const sent = useRef(false);

  useEffect(() => () => clearTimeout(timer.current), []);

  function start() {
    if (disabled || holding) return;
    sent.current = false;
    setHolding(true);
    timer.current = setTimeout(() => {
      sent.current = true;
      setHolding(false);
      onSend();
    }, HOLD_MS);
  }

  function stop() {
    clearTimeout(timer.current);
    setHolding(false);
  }

  function tap() {
    if (disabled || sent.current) return;
    const now = Date.now();
    if (now - lastTap.current < TAP_WINDOW_MS) {
      lastTap.current = 0;
      stop();
      onSend();
      return;
    }
    lastTap.current = now;
  }

  function keyDown(event: KeyboardEvent<HTMLButtonElement>) {
    if ((event.key === " " || event.key === "Enter") && !event.repeat) {
      event.preventDefault();
      start();
    }
  }

  function keyUp(event: KeyboardEvent<HTMLButtonElement>) {
    if (event.key === " " || event.key === "Enter") {
      event.preventDefault();
      stop();
    }
  }

  return (
    <div className="panic">
      <button
        type="button"
        className={`panic-button${holding ? " holding" : ""}`}
        disabled={disabled}
        aria-describedby="panic-how"
        onPointerDown={start}
        onPointerUp={stop}
        onPointerLeave={stop}
        onPointerCancel={stop}
        onKeyDown={keyDown}
        onKeyUp={keyUp}
        onClick={tap}
        onContextMenu={(e) => e.preventDefault()}
      >
        Send panic alert
      </button>
      <p id="panic-how" className="hint">
        {holding ? "Keep holding…" : "Hold for a second and a half, or press twice."}
      </p>
    </div>
  );
}
