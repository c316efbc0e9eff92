// The apps' settings, served by the gateway next to each app as config.json
// (gateway/console.py): the map's tiles and the local emergency number.
// Read once per page; without an answer (offline) the defaults hold.

export interface AppConfig {
  tile_url: string | null;
  tile_attribution: string;
  max_zoom: number;
  emergency_number: string;
}

export const DEFAULTS: AppConfig = { tile_url: null, tile_attribution: "", max_zoom: 19, emergency_number: "112" };

let loading: Promise<AppConfig> | null = null;

async function fetchConfig(): Promise<AppConfig> {
  try {
    const response = await fetch(`${import.meta.env.BASE_URL}config.json`, { credentials: "omit" });
    if (!response.ok) return DEFAULTS;
    return { ...DEFAULTS, ...((await response.json()) as Partial<AppConfig>) };
  } catch {
    return DEFAULTS;
  }
}

export function loadConfig(): Promise<AppConfig> {
  loading ??= fetchConfig();
  return loading;
}
