"""The alert policy the shards build from settings (actors.policies: dispatch and escalation)."""

from __future__ import annotations

from datetime import timedelta
from typing import get_args

import pytest
from pydantic import ValidationError

from actors.alert_messages import DEFAULT_ESCALATION, EscalationStep
from actors.alert_state import AlertType
from actors.policies import alert_policy
from config.settings import AlertTypeName, Settings


def test_the_settings_name_every_alert_type() -> None:
    assert set(get_args(AlertTypeName)) == {t.value for t in AlertType}


def test_escalation_steps_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "PANIC_ACTORS__ESCALATION",
        '{"medical": [{"after_s": 20, "rings": 4}, {"after_s": 45, "escalate": true}],'
        ' "other": []}',
    )
    monkeypatch.setenv("PANIC_ACTORS__OFFER_TO", "2")
    policy = alert_policy(Settings().actors)
    assert policy.offer_to == 2
    assert policy.steps(AlertType.MEDICAL) == (
        EscalationStep(after=timedelta(seconds=20), rings=4),
        EscalationStep(after=timedelta(seconds=45), escalate=True),
    )
    assert policy.steps(AlertType.OTHER) == ()
    assert policy.steps(AlertType.FIRE) == DEFAULT_ESCALATION


def test_bad_escalation_settings_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PANIC_ACTORS__ESCALATION", '{"flood": [{"after_s": 20}]}')
    with pytest.raises(ValidationError, match="flood"):
        Settings()
    monkeypatch.setenv("PANIC_ACTORS__ESCALATION", '{"fire": [{"after_s": 20, "ring": 4}]}')
    with pytest.raises(ValidationError, match="ring"):
        Settings()
    monkeypatch.setenv("PANIC_ACTORS__ESCALATION", '{"fire": [{"after_s": 60}, {"after_s": 30}]}')
    with pytest.raises(ValidationError, match="order"):
        Settings()
