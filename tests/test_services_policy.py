"""A missing service fails the run under CI and skips locally."""

from __future__ import annotations

import pytest

from tests.fixtures import services


def test_missing_service_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="RabbitMQ is not available"):
        services.service_missing("RabbitMQ", "nothing listens on 127.0.0.1:5672")


def test_missing_service_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="Kafka is not available"):
        services.service_missing("Kafka", "tansu did not start")


def test_port_open_tells_a_closed_port() -> None:
    assert not services.port_open("127.0.0.1", 1, timeout=0.2)
