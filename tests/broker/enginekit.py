"""Shared helpers for the broker engine tests: a broker on a ManualClock and terse publish/consume."""

from __future__ import annotations

from typing import Any

from mqstudio.broker.broker import Broker
from mqstudio.broker.clock import ManualClock
from mqstudio.broker.message import Delivery, Properties
from mqstudio.broker.session import Session
from mqstudio.broker.vhost import RouteResult


class Kit:
    def __init__(self) -> None:
        self.clock = ManualClock(start_ms=1_700_000_000_000)
        self.broker = Broker(self.clock)

    def queue(self, name: str, **arguments: Any) -> str:
        args = {k.replace("_", "-"): v for k, v in arguments.items()}
        return self.broker.declare_queue("/", name, arguments=args or None).name

    def exchange(self, name: str, type_: str = "direct", **kw: Any) -> None:
        self.broker.declare_exchange("/", name, type_, **kw)

    def bind(self, queue: str, exchange: str, key: str = "") -> None:
        self.broker.queue_bind("/", queue, exchange, key)

    def publish(
        self, routing_key: str, body: bytes = b"m", exchange: str = "", mandatory: bool = False, **props: Any
    ) -> RouteResult:
        return self.broker.publish("/", exchange, routing_key, Properties(**props), body, mandatory=mandatory)

    def session(self, connection_id: str = "c1") -> Session:
        return self.broker.open_session("/", connection_id)

    def get_all(self, queue: str) -> list[Delivery]:
        s = self.session("getter")
        out = []
        while (d := s.basic_get(queue, no_ack=True)) is not None:
            out.append(d)
        s.close()
        return out

    def bodies(self, queue: str) -> list[bytes]:
        return [d.body for d in self.get_all(queue)]

    def stats(self, queue: str) -> Any:
        return self.broker.snapshot().queue(queue)

    def tick(self, ms: int = 0) -> int:
        self.clock.advance(ms)
        return self.broker.tick()
