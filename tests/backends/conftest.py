"""Backend fixtures owned here: `broker_thread` (an embedded broker on a free port) and
`embedded_backend` (a connected `EmbeddedBackend` on it), both stopped and joined after the test;
`broker_thread` also checks that the test leaked no thread (tails, sessions) once it is stopped."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from mqstudio.backends.embedded import EmbeddedBackend
from mqstudio.runtime.brokerthread import EmbeddedBrokerThread


@pytest.fixture
def broker_thread() -> Iterator[EmbeddedBrokerThread]:
    baseline = threading.active_count()
    bt = EmbeddedBrokerThread(port=0)
    bt.start()
    yield bt
    assert bt.stop(10.0)
    assert threading.active_count() == baseline, [t.name for t in threading.enumerate()]


@pytest.fixture
def embedded_backend(broker_thread: EmbeddedBrokerThread) -> Iterator[EmbeddedBackend]:
    backend = EmbeddedBackend(broker_thread)
    backend.connect()
    yield backend
    backend.close()
