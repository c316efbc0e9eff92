// Live timers without re-rendering: one interval for the whole page writes
// the text of every mounted <Elapsed>, so 500 queue entries ticking each
// second cost 500 text updates, not a React pass over the whole queue.
import { useCallback } from "react";

const mounted = new Map<HTMLElement, number>();
let timer: ReturnType<typeof setInterval> | undefined;

/** "45 s", "3 min 05 s", "2 h 04 min". */
export function elapsed(fromMs: number, nowMs: number): string {
  const total = Math.max(0, Math.floor((nowMs - fromMs) / 1000));
  if (total < 60) return `${total} s`;
  const minutes = Math.floor(total / 60);
  if (minutes < 60) return `${minutes} min ${String(total % 60).padStart(2, "0")} s`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
}

function tick(): void {
  const now = Date.now();
  for (const [element, since] of mounted) element.textContent = elapsed(since, now);
}

/** The time since `since` (RFC 3339 or ms), kept current every second. */
export function Elapsed({ since }: { since: string | number }) {
  const from = typeof since === "number" ? since : Date.parse(since);
  const ref = useCallback(
    (element: HTMLSpanElement | null) => {
      if (!element) return;
      element.textContent = elapsed(from, Date.now());
      mounted.set(element, from);
      timer ??= setInterval(tick, 1000);
      return () => {
        mounted.delete(element);
        if (mounted.size === 0) {
          clearInterval(timer);
          timer = undefined;
        }
      };
    },
    [from],
  );
  return <span ref={ref} />;
}
