// What the dispatcher is looking at: the page and the selected alert.
import { create } from "zustand";

export type Page = "live" | "responders" | "zones" | "analytics";

interface UiState {
  page: Page;
  selectedAlertId: string | null;
  /** Open the assign dialog for the selected alert (keyboard shortcut "a"). */
  assigning: boolean;
}

export const useUi = create<UiState>(() => ({ page: "live", selectedAlertId: null, assigning: false }));

export function selectAlert(alertId: string | null, assigning = false): void {
  useUi.setState({ selectedAlertId: alertId, assigning, page: "live" });
}
