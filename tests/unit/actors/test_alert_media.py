"""Evidence in an alert's timeline (``MediaAdded``, ``MediaProcessed``): recorded
once per file and outcome, told to the assigned agent and the admins, never
shown to the user (so a duress "cancel" shows nothing of it either)."""

from __future__ import annotations

from uuid import UUID

from actors_kit import AGENT_A, LAT, LON, USER, Clock, create, pushes_to

from actors import alert
from actors.alert import AcceptOffer, AlertState, SearchResult
from actors.alert_messages import MediaAdded, MediaProcessed
from actors.effects import FrameType, Persist, Push
from actors.search import Candidate

PHOTO = UUID(int=0xF070)


def _added(media_id: UUID = PHOTO) -> MediaAdded:
    return MediaAdded(media_id, "image", "image/jpeg", 1234, "user")


def _assigned(clock: Clock) -> AlertState:
    state = create(clock)
    result = SearchResult(1, (Candidate(AGENT_A, 50, LAT, LON, clock.now),))
    state, _ = alert.decide(state, result, clock.advance(1))
    state, _ = alert.decide(state, AcceptOffer(AGENT_A), clock.advance(1))
    return state


def test_an_upload_is_recorded_and_told_to_the_assignee_and_the_admins() -> None:
    clock = Clock()
    state = _assigned(clock)
    new, effects = alert.decide(state, _added(), clock.advance(1))
    entry = new.timeline[-1]
    assert entry.type == "media_added"
    assert entry.data == {
        "media_id": str(PHOTO),
        "status": "stored",
        "kind": "image",
        "content_type": "image/jpeg",
        "size": 1234,
        "uploader_role": "user",
    }
    assert new.version == state.version + 1
    assert isinstance(effects[0], Persist)
    frames = [e for e in effects if isinstance(e, Push) and e.frame_type is FrameType.MEDIA_ADDED]
    assert {e.audience.kind.value for e in frames} == {"admins", "agent"}
    assert pushes_to(effects, "agent", AGENT_A)[0].data["media_id"] == str(PHOTO)
    assert pushes_to(effects, "user", USER) == []


def test_a_redelivered_event_changes_nothing() -> None:
    clock = Clock()
    state, _ = alert.decide(_assigned(clock), _added(), clock.advance(1))
    again, effects = alert.decide(state, _added(), clock.advance(1))
    assert again is state
    assert not any(isinstance(e, Persist | Push) for e in effects)
    # Another file, and each processing outcome, are new entries.
    done = MediaProcessed(PHOTO, "done", renditions=("thumbnail", "shared"))
    state, _ = alert.decide(state, done, clock.advance(1))
    assert state.timeline[-1].data == {
        "media_id": str(PHOTO),
        "status": "done",
        "renditions": ["thumbnail", "shared"],
    }
    same, _ = alert.decide(state, done, clock.advance(1))
    assert same is state
    other, _ = alert.decide(state, _added(UUID(int=2)), clock.advance(1))
    assert other.version == state.version + 1


def test_without_an_assignee_only_the_admins_hear_and_the_user_sees_nothing() -> None:
    clock = Clock()
    state = create(clock)
    new, effects = alert.decide(state, _added(), clock.advance(1))
    frames = [e for e in effects if isinstance(e, Push)]
    assert [e.audience.kind.value for e in frames] == ["admins"]
    assert [e.type for e in new.as_user_sees().timeline] == [e.type for e in state.timeline]


def test_a_failure_is_recorded_with_its_error() -> None:
    clock = Clock()
    state = create(clock)
    failed = MediaProcessed(PHOTO, "failed", error="the video could not be decoded")
    new, _ = alert.decide(state, failed, clock.advance(1))
    assert new.timeline[-1].data["error"] == "the video could not be decoded"
