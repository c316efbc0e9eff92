// The base map: a plain background and the bundled world outline, with the
// configured raster tiles above them (OpenStreetMap by default, with its
// attribution). Tiles that fail to load leave the outline visible.
import { Map as MapLibreMap, NavigationControl, type StyleSpecification, setWorkerUrl } from "maplibre-gl";
import { type RefObject, useEffect, useState } from "react";
// MapLibre looks for its worker next to its own module, which the bundle
// moves: point it at the copy the build emits (hashed, under assets/).
import workerUrl from "maplibre-gl/dist/maplibre-gl-worker.mjs?url";

import { type AppConfig, loadConfig } from "../config";
import { worldLand } from "./world";

/** The map's part of the apps' settings. */
export type MapConfig = Pick<AppConfig, "tile_url" | "tile_attribution" | "max_zoom">;

export function baseStyle(config: MapConfig): StyleSpecification {
  const style: StyleSpecification = {
    version: 8,
    sources: { world: { type: "geojson", data: worldLand() } },
    layers: [
      { id: "background", type: "background", paint: { "background-color": "#cfdde6" } },
      { id: "world-land", type: "fill", source: "world", paint: { "fill-color": "#f3f1ea" } },
      {
        id: "world-outline",
        type: "line",
        source: "world",
        paint: { "line-color": "#6b7b86", "line-width": 0.8 },
      },
    ],
  };
  if (config.tile_url) {
    style.sources.tiles = {
      type: "raster",
      tiles: [config.tile_url],
      tileSize: 256,
      maxzoom: config.max_zoom,
      attribution: config.tile_attribution,
    };
    style.layers.push({ id: "tiles", type: "raster", source: "tiles" });
  }
  return style;
}

setWorkerUrl(workerUrl);

/** A map in `container` with the base style (a page may hold one per view). */
export function createMap(container: HTMLElement, config: MapConfig): MapLibreMap {
  const map = new MapLibreMap({
    container,
    style: baseStyle(config),
    center: [0, 20],
    zoom: 1.5,
    attributionControl: { compact: false },
    keyboard: true,
    // No cross-fade of symbols after each update: live data changes every
    // second, and each fade is 300 ms of extra frames to draw.
    fadeDuration: 0,
  });
  map.addControl(new NavigationControl({ visualizePitch: false }), "top-right");
  // Unreachable tiles (no internet, a tile server down) are expected: the
  // outline underneath still shows; don't flood the console with them.
  map.on("error", (event) => {
    if (!event.error.message.includes("Failed to fetch")) console.warn(event.error);
  });
  return map;
}

/**
 * The base map in `container`, once loaded (null until then); `prepare`
 * adds a view's sources, layers and handlers at load. Removed on unmount.
 */
export function useBaseMap(
  container: RefObject<HTMLElement | null>,
  prepare: (map: MapLibreMap) => void,
): MapLibreMap | null {
  const [map, setMap] = useState<MapLibreMap | null>(null);
  useEffect(() => {
    let made: MapLibreMap | null = null;
    let cancelled = false;
    void loadConfig().then((config) => {
      if (cancelled || !container.current) return;
      const created = createMap(container.current, config);
      made = created;
      created.once("load", () => {
        prepare(created);
        setMap(created);
      });
    });
    return () => {
      cancelled = true;
      made?.remove();
    };
    // The map is made once per mount; `prepare` is read at that time.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  return map;
}
