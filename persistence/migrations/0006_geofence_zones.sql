-- 0006_geofence_zones: what shards need to follow zones (cluster/zones.py).
--
-- * cells: the H3 cells the zone covers at the deployment's region
--   resolution, grown by the largest fix accuracy used for geofencing
--   (geo/coverage.py), so "which zones near this fix" is one GIN lookup.
-- * revision: taken from one sequence on every insert and update, so "what
--   changed since revision R" is one indexed query. Writers are serialised
--   by a transaction-level advisory lock taken before the revision is drawn,
--   so revisions become visible in order: a reader that has seen R never
--   later finds a smaller revision committed (no change is skipped).
-- * deleted_at: deletes are soft, so a shard learns of a deletion by its
--   revision like any other change; deleted zones are invisible to reads.
-- * geojson: the geometry exactly as it was given and validated (ST_AsGeoJSON
--   would round coordinates); `geometry` is what spatial queries use.

ALTER TABLE geofence_zones
    ADD COLUMN cells text[] NOT NULL DEFAULT '{}',
    ADD COLUMN deleted_at timestamptz,
    ADD COLUMN geojson jsonb;

CREATE SEQUENCE geofence_zones_revision_seq AS bigint;
ALTER TABLE geofence_zones ADD COLUMN revision bigint;
UPDATE geofence_zones SET revision = nextval('geofence_zones_revision_seq');
ALTER TABLE geofence_zones
    ALTER COLUMN revision SET NOT NULL,
    ALTER COLUMN revision SET DEFAULT nextval('geofence_zones_revision_seq');
ALTER SEQUENCE geofence_zones_revision_seq OWNED BY geofence_zones.revision;

CREATE FUNCTION geofence_zones_revision() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- Held until commit: the next writer draws a larger revision and commits later.
    PERFORM pg_advisory_xact_lock(hashtextextended('panic_alert.geofence_zones.revision', 0));
    NEW.revision := nextval('geofence_zones_revision_seq');
    RETURN NEW;
END;
$$;
CREATE TRIGGER geofence_zones_revision BEFORE INSERT OR UPDATE ON geofence_zones
    FOR EACH ROW EXECUTE FUNCTION geofence_zones_revision();

CREATE UNIQUE INDEX geofence_zones_revision_idx ON geofence_zones (revision);
CREATE INDEX geofence_zones_cells_gin ON geofence_zones USING gin (cells)
    WHERE deleted_at IS NULL;
-- Listings: newest first, keyset on (created_at, id), live zones only.
CREATE INDEX geofence_zones_listing_idx ON geofence_zones (created_at DESC, id DESC)
    WHERE deleted_at IS NULL;
