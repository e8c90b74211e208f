"""SASL responses of Connection.Start-Ok and who may log in to which virtual host.

Owns the PLAIN (RFC 4616) and AMQPLAIN response parsers, the pluggable `Authenticator`
protocol the connection asks, and `InMemoryAuthenticator`, a user table with RabbitMQ's defaults:
user guest/guest with access to "/", allowed to log in from loopback peers only
(RabbitMQ's `loopback_users = [guest]`).

Must not import: sockets, asyncio, Qt, or any mqstudio package other than mqstudio.broker.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import ipaddress
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from pamqp import decode

__all__ = [
    "DEFAULT_VHOST",
    "MECHANISMS",
    "AuthError",
    "AuthResult",
    "Authenticator",
    "Credentials",
    "InMemoryAuthenticator",
    "User",
    "VhostAccess",
    "is_loopback",
    "parse_amqplain",
    "parse_plain",
    "parse_response",
]

DEFAULT_VHOST = "/"
#: Offered in Connection.Start, in preference order (space-separated on the wire).
MECHANISMS = ("PLAIN", "AMQPLAIN")


class AuthError(Exception):
    """A Start-Ok response that cannot be parsed for its mechanism."""


@dataclass(frozen=True, slots=True)
class Credentials:
    mechanism: str
    username: str
    password: str = field(repr=False)


def _as_bytes(response: str | bytes) -> bytes:
    # pamqp decodes a longstr to str when it is valid UTF-8, so undo that losslessly.
    return response.encode("utf-8") if isinstance(response, str) else bytes(response)


def parse_plain(response: str | bytes) -> Credentials:
    """RFC 4616: [authzid] NUL authcid NUL passwd. Like RabbitMQ, the authzid is ignored."""
    parts = _as_bytes(response).split(b"\x00")
    if len(parts) != 3:
        raise AuthError("PLAIN response is not 'authzid NUL user NUL password'")
    try:
        return Credentials("PLAIN", parts[1].decode("utf-8"), parts[2].decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise AuthError("PLAIN response is not UTF-8") from exc


def parse_amqplain(response: str | bytes) -> Credentials:
    """AMQPLAIN: a field table *without* its length prefix, holding LOGIN and PASSWORD."""
    raw = _as_bytes(response)
    try:
        _, table = decode.field_table(len(raw).to_bytes(4, "big") + raw)
    except (ValueError, LookupError) as exc:
        raise AuthError(f"AMQPLAIN response is not a field table: {exc}") from exc
    login, password = table.get("LOGIN"), table.get("PASSWORD")
    if isinstance(login, bytes):
        login = login.decode("utf-8", errors="replace")
    if isinstance(password, bytes):
        password = password.decode("utf-8", errors="replace")
    if not isinstance(login, str) or not isinstance(password, str):
        raise AuthError("AMQPLAIN response lacks LOGIN or PASSWORD")
    return Credentials("AMQPLAIN", login, password)


_PARSERS = {"PLAIN": parse_plain, "AMQPLAIN": parse_amqplain}


def parse_response(mechanism: str, response: str | bytes) -> Credentials:
    """Parse a Start-Ok response; raises KeyError for a mechanism we do not offer."""
    return _PARSERS[mechanism](response)


def is_loopback(host: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and IPv4-mapped loopback; unknown peers are not loopback."""
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


@dataclass(frozen=True, slots=True)
class AuthResult:
    """Outcome of a login. `reason` is for the log only: the wire says just "refused"."""

    username: str
    ok: bool
    reason: str = ""


class VhostAccess(enum.Enum):
    GRANTED = "granted"
    NO_SUCH_VHOST = "no such vhost"
    REFUSED = "refused"


class Authenticator(Protocol):
    """What the connection asks during the handshake; the broker may provide its own."""

    def authenticate(self, credentials: Credentials, peer_host: str | None) -> AuthResult: ...

    def vhost_access(self, username: str, vhost: str) -> VhostAccess: ...


def _hash_password(password: str, salt: bytes) -> bytes:
    # RabbitMQ's rabbit_password_hashing_sha256: 4-octet salt, sha256(salt ++ password).
    return salt + hashlib.sha256(salt + password.encode("utf-8")).digest()


@dataclass(frozen=True, slots=True)
class User:
    name: str
    password_hash: bytes = field(repr=False)
    #: Virtual hosts this user may open; None means every existing vhost.
    vhosts: frozenset[str] | None = frozenset({DEFAULT_VHOST})
    loopback_only: bool = False
    tags: frozenset[str] = frozenset()

    @classmethod
    def create(
        cls,
        name: str,
        password: str,
        vhosts: Iterable[str] | None = (DEFAULT_VHOST,),
        *,
        loopback_only: bool = False,
        tags: Iterable[str] = (),
    ) -> User:
        return cls(
            name,
            _hash_password(password, os.urandom(4)),
            None if vhosts is None else frozenset(vhosts),
            loopback_only,
            frozenset(tags),
        )

    def check_password(self, password: str) -> bool:
        salt = self.password_hash[:4]
        return hmac.compare_digest(self.password_hash, _hash_password(password, salt))


class InMemoryAuthenticator:
    """A user table and a vhost set, with RabbitMQ's out-of-the-box defaults."""

    def __init__(
        self,
        users: Iterable[User] | None = None,
        vhosts: Iterable[str] = (DEFAULT_VHOST,),
    ) -> None:
        if users is None:
            users = [User.create("guest", "guest", loopback_only=True, tags=("administrator",))]
        self._users: dict[str, User] = {u.name: u for u in users}
        self._vhosts: set[str] = set(vhosts)

    @property
    def users(self) -> Mapping[str, User]:
        return dict(self._users)

    @property
    def vhosts(self) -> frozenset[str]:
        return frozenset(self._vhosts)

    def add_user(self, user: User) -> None:
        self._users[user.name] = user

    def remove_user(self, name: str) -> None:
        self._users.pop(name, None)

    def add_vhost(self, name: str) -> None:
        self._vhosts.add(name)

    def remove_vhost(self, name: str) -> None:
        self._vhosts.discard(name)

    def authenticate(self, credentials: Credentials, peer_host: str | None) -> AuthResult:
        user = self._users.get(credentials.username)
        name = credentials.username
        if user is None:
            return AuthResult(name, False, f"user '{name}' not found")
        if not user.check_password(credentials.password):
            return AuthResult(name, False, f"invalid credentials for user '{name}'")
        if user.loopback_only and not is_loopback(peer_host):
            # RabbitMQ logs this and refuses with the same generic 403 as a bad password.
            return AuthResult(name, False, f"user '{name}' can only connect via localhost")
        return AuthResult(name, True)

    def vhost_access(self, username: str, vhost: str) -> VhostAccess:
        if vhost not in self._vhosts:
            return VhostAccess.NO_SUCH_VHOST
        user = self._users.get(username)
        if user is None or (user.vhosts is not None and vhost not in user.vhosts):
            return VhostAccess.REFUSED
        return VhostAccess.GRANTED
