// Danger-zone warnings: `geofence.alert` frames on the user's socket shown as
// a calm, prominent, dismissible warning naming the zone and what to do.
// Wire `onFrame` into the socket's frame callback; render <DangerZoneWarnings>.
import "../extras.css";

import type { Frame } from "@panic-alert/shared/live/socket";
import { useCallback, useState } from "react";

import { ADVICE, type DangerWarning, added, warningOf } from "./danger";

export interface DangerZones {
  warnings: DangerWarning[];
  /** Give it every socket frame; it keeps the `geofence.alert` ones. Stable. */
  onFrame: (frame: Frame) => void;
  dismiss: (zoneId: string) => void;
}

export function useDangerZones(): DangerZones {
  const [warnings, setWarnings] = useState<DangerWarning[]>([]);
  const onFrame = useCallback((frame: Frame) => {
    const warning = warningOf(frame);
    if (warning) setWarnings((now) => added(now, warning));
  }, []);
  const dismiss = useCallback((zoneId: string) => setWarnings((now) => now.filter((w) => w.zoneId !== zoneId)), []);
  return { warnings, onFrame, dismiss };
}

export function DangerZoneWarnings({ zones }: { zones: Pick<DangerZones, "warnings" | "dismiss"> }) {
  return (
    <>
      {zones.warnings.map((warning) => (
        <div key={warning.zoneId} role="alert" className="danger-zone">
          <p>
            <strong>You are in a danger zone: {warning.zoneName}.</strong>
          </p>
          <p>{ADVICE}</p>
          <button
            type="button"
            className="secondary"
            aria-label={`Dismiss warning about ${warning.zoneName}`}
            onClick={() => zones.dismiss(warning.zoneId)}
          >
            Dismiss warning
          </button>
        </div>
      ))}
    </>
  );
}
