import type { Feature, FeatureCollection, Geometry } from "geojson";
import type { GeoJSONSource, Map as MapLibreMap } from "maplibre-gl";
import { useEffect, useRef } from "react";

import type { Zone } from "@panic-alert/shared/api/types";
import { useBaseMap } from "@panic-alert/shared/map/baseMap";
import { addZoneLayers } from "../../shared/map/zones";
import { type Position, zoneFeatures } from "./geometry";

const DRAFT_COLOUR = "#a34400";

const EMPTY: FeatureCollection = { type: "FeatureCollection", features: [] };

function addEditorLayers(map: MapLibreMap): void {
  addZoneLayers(map, "zones", EMPTY);
  map.addSource("draft", { type: "geojson", data: EMPTY });
  map.addLayer({
    id: "draft-fill",
    type: "fill",
    source: "draft",
    filter: ["==", ["geometry-type"], "Polygon"],
    paint: { "fill-color": DRAFT_COLOUR, "fill-opacity": 0.2 },
  });
  map.addLayer({
    id: "draft-line",
    type: "line",
    source: "draft",
    filter: ["in", ["geometry-type"], ["literal", ["Polygon", "LineString"]]],
    paint: { "line-color": DRAFT_COLOUR, "line-width": 2.5, "line-dasharray": [3, 1.5] },
  });
  map.addLayer({
    id: "draft-points",
    type: "circle",
    source: "draft",
    filter: ["==", ["geometry-type"], "Point"],
    paint: { "circle-radius": 5, "circle-color": "#ffffff", "circle-stroke-color": DRAFT_COLOUR, "circle-stroke-width": 2.5 },
  });
}

export interface ZoneMapProps {
  zones: readonly Zone[];
  /** The shape being drawn: its geometries (points, a line, a polygon). */
  draft: readonly Geometry[];
  /** Clicks add vertices or set the centre; the crosshair shows when they do. */
  drawing: boolean;
  onMapClick: (at: Position) => void;
  /** Bounds to show, [[w, s], [e, n]]; a new array moves the map. */
  focus: [Position, Position] | null;
}

/** The zones page's own map: every zone by kind, and the draft being drawn. */
export function ZoneMap({ zones, draft, drawing, onMapClick, focus }: ZoneMapProps) {
  const container = useRef<HTMLDivElement>(null);
  const clickRef = useRef(onMapClick);

  useEffect(() => {
    clickRef.current = onMapClick;
  }, [onMapClick]);

  const map = useBaseMap(container, (loaded) => {
    // Clicks draw here: two quick ones are two vertices, not a zoom.
    loaded.doubleClickZoom.disable();
    loaded.on("click", (event) => clickRef.current([event.lngLat.lng, event.lngLat.lat]));
    addEditorLayers(loaded);
  });

  useEffect(() => {
    void map?.getSource<GeoJSONSource>("zones")?.setData(zoneFeatures(zones));
  }, [map, zones]);

  useEffect(() => {
    const features: Feature[] = draft.map((geometry) => ({ type: "Feature", geometry, properties: {} }));
    void map?.getSource<GeoJSONSource>("draft")?.setData({ type: "FeatureCollection", features });
  }, [map, draft]);

  useEffect(() => {
    if (map) map.getCanvas().style.cursor = drawing ? "crosshair" : "";
  }, [map, drawing]);

  useEffect(() => {
    if (!map || !focus) return;
    const [[w, s], [e, n]] = focus;
    map.fitBounds([w, s, e, n], { padding: 48, maxZoom: 16, duration: 0 });
  }, [map, focus]);

  return (
    <section className="zone-map" aria-label="Zones map">
      <div ref={container} className="map-canvas" data-testid="zones-map-canvas" />
      <p className="map-legend">
        <span className="swatch safe" aria-hidden="true" /> Safe <span className="swatch danger" aria-hidden="true" /> Danger{" "}
        <span className="swatch service_area" aria-hidden="true" /> Service area{" "}
        <span className="swatch draft" aria-hidden="true" /> Shape being drawn; dashed outlines are inactive zones.
      </p>
    </section>
  );
}
