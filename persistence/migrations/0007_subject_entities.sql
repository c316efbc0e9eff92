-- 0007_subject_entities: subject-tracker entities (actors/subject.py).
--
-- A subject (a user or an agent whose locations are geofenced) is an entity
-- of kind 'subject', id '<role>:<uuid>'; its snapshot holds the zones it is
-- inside. Its state follows the subject, not a region, so moving from one H3
-- cell to the next keeps it.

ALTER TABLE entity_snapshots DROP CONSTRAINT entity_snapshots_kind_check;
ALTER TABLE entity_snapshots ADD CONSTRAINT entity_snapshots_kind_check
    CHECK (kind IN ('alert', 'agent', 'region', 'subject'));
ALTER TABLE entity_timers DROP CONSTRAINT entity_timers_kind_check;
ALTER TABLE entity_timers ADD CONSTRAINT entity_timers_kind_check
    CHECK (kind IN ('alert', 'agent', 'region', 'subject'));
