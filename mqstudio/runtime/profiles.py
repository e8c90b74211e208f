"""Connection profiles: where a broker is and how to reach it, without its password.

Owns: `ConnectionProfile`, `ProfileStore` (JSON in the platformdirs user config directory),
`SecretStore` (passwords in the system keyring, service ``"mqstudio"``, username
``"{profile}:{user}"``), `SecretStoreUnavailable`, and `parse_url` for the command line's ``--url``.

Secrets never reach the JSON file, a log line or an export: `ConnectionProfile` has no password field
and its `repr` and `url` leave one out. When the keyring is absent or would store passwords in plain
text (``keyring.backends.fail``, ``null``, keyrings.alt's plaintext file), `SecretStore` raises
`SecretStoreUnavailable` and the caller asks for the password each time instead.

Qt-free; imports the stdlib, keyring, platformdirs and `mqstudio.backends.base` only.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, quote, unquote, urlsplit

from mqstudio.backends.base import BackendKind

SERVICE = "mqstudio"
PASSWORD_ENV = "MQSTUDIO_PASSWORD"
PROFILES_FILE = "connections.json"
FORMAT_VERSION = 1
AMQP_PORT, AMQPS_PORT, KAFKA_PORT = 5672, 5671, 9092
MANAGEMENT_PORT, MANAGEMENT_TLS_PORT = 15672, 15671
PASSWORD_IN_URL_WARNING = (
    "the URL contains a password, which may end up in shell history and process lists; "
    f"store it in the keyring or set {PASSWORD_ENV} instead"
)


class ProfileError(ValueError):
    """A profile or URL that cannot describe a connection (unknown scheme, bad port, no name)."""


class SecretStoreUnavailable(RuntimeError):
    """No keyring that keeps passwords safe: ask for the password each time, never store it."""


# -- the profile -------------------------------------------------------------------------------


@dataclass(slots=True)
class ConnectionProfile:
    """One broker connection. ``port == 0`` means the kind's default port; ``management_url == ""``
    means ``http(s)://host:15672(15671)``. Holds no password by design."""

    name: str
    kind: BackendKind = BackendKind.RABBITMQ
    host: str = "127.0.0.1"
    port: int = 0
    vhost: str = "/"
    user: str = ""
    tls: bool = False
    ca_file: str = ""
    client_cert: str = ""
    client_key: str = ""
    verify: bool = True
    management_url: str = ""

    def __post_init__(self) -> None:
        self.kind = BackendKind(self.kind)

    # -- derived -------------------------------------------------------------------------------
    @property
    def effective_port(self) -> int:
        if self.port:
            return self.port
        if self.kind is BackendKind.KAFKA:
            return KAFKA_PORT
        if self.kind is BackendKind.RABBITMQ:
            return AMQPS_PORT if self.tls else AMQP_PORT
        return 0

    @property
    def effective_management_url(self) -> str:
        if self.management_url:
            return self.management_url.rstrip("/")
        scheme, port = ("https", MANAGEMENT_TLS_PORT) if self.tls else ("http", MANAGEMENT_PORT)
        return f"{scheme}://{_host_for_url(self.host)}:{port}"

    @property
    def bootstrap(self) -> str:
        """Kafka bootstrap servers: ``host:port``, or `host` as given when it lists several."""
        if "," in self.host:
            return self.host
        return f"{_host_for_url(self.host)}:{self.effective_port}"

    @property
    def secret_user(self) -> str:
        """The keyring username a password is stored under."""
        return f"{self.name}:{self.user}"

    @property
    def needs_password(self) -> bool:
        return self.kind is BackendKind.RABBITMQ or (self.kind is BackendKind.KAFKA and bool(self.user))

    @property
    def url(self) -> str:
        """The profile as a URL, never with a password (for the status bar, logs and `--url`)."""
        if self.kind is BackendKind.EMBEDDED:
            return "embedded://"
        user = f"{quote(self.user, safe='')}@" if self.user else ""
        where = f"{_host_for_url(self.host)}:{self.effective_port}"
        if self.kind is BackendKind.KAFKA:
            scheme = "kafka+ssl" if self.tls else "kafka"
            return f"{scheme}://{user}{self.bootstrap if ',' in self.host else where}"
        scheme = "amqps" if self.tls else "amqp"
        return f"{scheme}://{user}{where}/{quote(self.vhost, safe='')}"

    def describe(self) -> str:
        """``name (url)`` for lists and the status bar."""
        return self.name if self.name == self.url else f"{self.name} ({self.url})"

    def validate(self) -> list[str]:
        """What is wrong with the profile, as sentences; empty when it can be used."""
        problems = []
        if not self.name.strip():
            problems.append("The profile needs a name.")
        if self.kind is not BackendKind.EMBEDDED and not self.host.strip():
            problems.append("The host is empty.")
        if not 0 <= self.port <= 65535:
            problems.append(f"Port {self.port} is outside 1-65535.")
        if self.kind is BackendKind.RABBITMQ and not self.vhost:
            problems.append("The vhost is empty (the default vhost is “/”).")
        if (self.client_cert or self.client_key) and not (self.client_cert and self.client_key):
            problems.append("A client certificate needs both the certificate and its key file.")
        return problems

    # -- JSON ----------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = self.kind.value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ConnectionProfile:
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        if "name" not in values:
            raise ProfileError("a stored profile has no name")
        try:
            return cls(**values)
        except (TypeError, ValueError) as exc:
            raise ProfileError(f"stored profile {values['name']!r} is invalid: {exc}") from None

    def copy(self, **changes: Any) -> ConnectionProfile:
        return replace(self, **changes)


def _host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") and "," not in host else host


# -- URLs --------------------------------------------------------------------------------------


class ParsedUrl(NamedTuple):
    profile: ConnectionProfile
    password: str | None

    @property
    def warning(self) -> str:
        """Non-empty when the URL carried a password."""
        return PASSWORD_IN_URL_WARNING if self.password is not None else ""


_SCHEMES = {
    "amqp": (BackendKind.RABBITMQ, False),
    "amqps": (BackendKind.RABBITMQ, True),
    "kafka": (BackendKind.KAFKA, False),
    "kafka+ssl": (BackendKind.KAFKA, True),
    "kafkas": (BackendKind.KAFKA, True),
    "embedded": (BackendKind.EMBEDDED, False),
}
_FALSE = {"0", "false", "no", "off", "verify_none", "none"}


def parse_url(url: str, name: str | None = None) -> ParsedUrl:
    """``amqp[s]://[user[:password]@]host[:port][/vhost][?cacertfile=…&certfile=…&keyfile=…&verify=…]``,
    ``kafka[+ssl]://host:port[,host:port…]`` or ``embedded://`` → a profile and the URL's password.

    The vhost is percent-decoded (``%2F`` is ``/``); no path, or ``/``, means the default vhost ``/``.
    The query keys are those of RabbitMQ's URI spec (``cacertfile``, ``certfile``, ``keyfile``,
    ``verify``) plus ``management`` for the HTTP API. A password is returned, never stored.
    """
    text = url.strip()
    scheme, sep, _ = text.partition("://")
    if not sep:
        raise ProfileError(f"{url!r} is not a URL: expected amqp://, amqps://, kafka:// or embedded://")
    scheme = scheme.lower()
    if scheme not in _SCHEMES:
        raise ProfileError(f"unknown scheme {scheme!r}: expected one of {', '.join(sorted(_SCHEMES))}")
    kind, tls = _SCHEMES[scheme]
    if kind is BackendKind.EMBEDDED:
        return ParsedUrl(ConnectionProfile(name or "embedded", BackendKind.EMBEDDED, host="", port=0), None)

    parts = urlsplit(text)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    user = password = None
    if at:
        raw_user, colon, raw_password = userinfo.partition(":")
        user = unquote(raw_user)
        password = unquote(raw_password) if colon else None
    host, port = _host_port(hostport, url, allow_list=kind is BackendKind.KAFKA)
    vhost = "/"
    if kind is BackendKind.RABBITMQ and parts.path not in ("", "/"):
        vhost = unquote(parts.path[1:])
        if "/" in parts.path[1:]:
            raise ProfileError(f"{url!r}: a vhost named with '/' must be percent-encoded (%2F)")
    query = {key.lower(): values[-1] for key, values in parse_qs(parts.query).items()}
    profile = ConnectionProfile(
        name="",
        kind=kind,
        host=host,
        port=port,
        vhost=vhost,
        user=user or ("guest" if kind is BackendKind.RABBITMQ else ""),
        tls=tls,
        ca_file=query.get("cacertfile", ""),
        client_cert=query.get("certfile", ""),
        client_key=query.get("keyfile", ""),
        verify=query.get("verify", "true").lower() not in _FALSE,
        management_url=query.get("management", ""),
    )
    profile.name = name or profile.url
    return ParsedUrl(profile, password)


def _host_port(hostport: str, url: str, *, allow_list: bool) -> tuple[str, int]:
    if allow_list and "," in hostport:
        return hostport, 0
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        port_text = rest.removeprefix(":")
    else:
        host, _, port_text = hostport.partition(":")
    if not host:
        raise ProfileError(f"{url!r} names no host")
    if not port_text:
        return host, 0
    if not port_text.isdigit() or not 0 < int(port_text) <= 65535:
        raise ProfileError(f"{url!r}: port {port_text!r} is not a number in 1-65535")
    return host, int(port_text)


# -- the store ---------------------------------------------------------------------------------


def default_profiles_path() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir("mqstudio", appauthor=False)) / PROFILES_FILE


class ProfileStore:
    """Profiles as one JSON file (``{"version": 1, "profiles": [...]}``), written atomically with
    owner-only permissions. Names are unique; a password never goes in the file."""

    def __init__(self, path: Path | None = None, secrets: SecretStore | None = None) -> None:
        self.path = path if path is not None else default_profiles_path()
        self.secrets = secrets if secrets is not None else SecretStore()

    def load(self) -> list[ConnectionProfile]:
        """Every stored profile, by name. A missing file is no profiles; a damaged one is a ProfileError."""
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ProfileError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ProfileError(f"{self.path} is not valid JSON: {exc}") from None
        items = data.get("profiles", []) if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise ProfileError(f"{self.path} has no list of profiles")
        profiles = [ConnectionProfile.from_json(item) for item in items if isinstance(item, dict)]
        return sorted(profiles, key=lambda p: p.name.lower())

    def get(self, name: str) -> ConnectionProfile | None:
        return next((p for p in self.load() if p.name == name), None)

    def save(self, profile: ConnectionProfile, *, previous_name: str | None = None) -> None:
        """Add or replace `profile` (by name; `previous_name` when it was renamed)."""
        problems = profile.validate()
        if problems:
            raise ProfileError(" ".join(problems))
        old = previous_name if previous_name is not None else profile.name
        profiles = [p for p in self.load() if p.name not in (old, profile.name)]
        if previous_name is not None and previous_name != profile.name:
            moved = self.get(previous_name)
            if moved is not None:
                self._move_secret(moved, profile)
        self._write([*profiles, profile])

    def delete(self, name: str) -> bool:
        """Remove the profile and its stored password; False when there was no such profile."""
        profiles = self.load()
        gone = [p for p in profiles if p.name == name]
        if not gone:
            return False
        self._write([p for p in profiles if p.name != name])
        for profile in gone:
            with contextlib.suppress(SecretStoreUnavailable):
                self.secrets.delete_password(profile)
        return True

    def _move_secret(self, old: ConnectionProfile, new: ConnectionProfile) -> None:
        with contextlib.suppress(SecretStoreUnavailable):
            password = self.secrets.get_password(old)
            if password is not None:
                self.secrets.set_password(new, password)
                self.secrets.delete_password(old)

    def _write(self, profiles: list[ConnectionProfile]) -> None:
        data = {
            "version": FORMAT_VERSION,
            "profiles": [p.to_json() for p in sorted(profiles, key=lambda p: p.name.lower())],
        }
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".connections-", suffix=".json", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


# -- secrets -----------------------------------------------------------------------------------

# Backends that do not keep a password safe: they fail, drop it, or write it in clear text.
_INSECURE = {
    "keyring.backends.fail.Keyring",
    "keyring.backends.null.Keyring",
    "keyrings.alt.file.PlaintextKeyring",
    "keyrings.alt.Gnome.Keyring",  # deprecated GnomeKeyring bindings; unmaintained
}


def _qualname(backend: object) -> str:
    cls = type(backend)
    return f"{cls.__module__}.{cls.__qualname__}"


def _insecure_reason(backend: Any) -> str:
    name = _qualname(backend)
    if name == "keyring.backends.fail.Keyring":
        return "no system keyring is available (install and unlock one, e.g. GNOME Keyring or KWallet)"
    if name in _INSECURE or "plaintext" in name.lower():
        return f"the keyring backend {name} would not keep the password safe"
    if name == "keyring.backends.chainer.ChainerBackend":
        children = list(getattr(backend, "backends", []))
        if not children:
            return "no system keyring is available (install and unlock one, e.g. GNOME Keyring or KWallet)"
        reasons = [_insecure_reason(child) for child in children]
        if all(reasons):
            return reasons[0]
    return ""


class SecretStore:
    """Passwords in the system keyring: service ``"mqstudio"``, username ``"{profile}:{user}"``.

    Every method raises `SecretStoreUnavailable` when the keyring is absent, insecure or fails; the
    caller then asks for the password and keeps it in memory only.
    """

    def __init__(self, service: str = SERVICE) -> None:
        self.service = service

    def _backend(self) -> Any:
        import keyring

        backend = keyring.get_keyring()
        reason = _insecure_reason(backend)
        if reason:
            raise SecretStoreUnavailable(reason)
        return backend

    def check(self) -> None:
        """Raise `SecretStoreUnavailable` unless passwords can be stored safely."""
        self._backend()

    @property
    def available(self) -> bool:
        try:
            self._backend()
        except SecretStoreUnavailable:
            return False
        return True

    def get_password(self, profile: ConnectionProfile) -> str | None:
        value = self._call("read", lambda b: b.get_password(self.service, profile.secret_user))
        return None if value is None else str(value)

    def set_password(self, profile: ConnectionProfile, password: str) -> None:
        self._call("store", lambda b: b.set_password(self.service, profile.secret_user, password))

    def delete_password(self, profile: ConnectionProfile) -> None:
        from keyring.errors import PasswordDeleteError

        def delete(backend: Any) -> None:
            with contextlib.suppress(PasswordDeleteError):
                backend.delete_password(self.service, profile.secret_user)

        self._call("delete", delete)

    def _call(self, what: str, operation: Any) -> Any:
        from keyring.errors import KeyringError

        backend = self._backend()
        try:
            return operation(backend)
        except KeyringError as exc:
            # The message names the backend's failure only; the password is never part of it.
            raise SecretStoreUnavailable(f"the keyring could not {what} the password: {exc}") from None


def resolve_password(
    profile: ConnectionProfile,
    url_password: str | None = None,
    secrets: SecretStore | None = None,
    environ: dict[str, str] | None = None,
) -> str | None:
    """The password without asking: the URL's, else ``$MQSTUDIO_PASSWORD``, else the keyring's."""
    if url_password is not None:
        return url_password
    env = os.environ if environ is None else environ
    if PASSWORD_ENV in env:
        return env[PASSWORD_ENV]
    store = secrets if secrets is not None else SecretStore()
    try:
        return store.get_password(profile)
    except SecretStoreUnavailable:
        return None
