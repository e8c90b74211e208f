"""Connection profiles: JSON store without secrets, passwords in a (test) keyring, URL parsing."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backend
import keyring.backends.fail
import keyring.backends.null
import pytest
from keyring.errors import KeyringError, PasswordDeleteError

from mqstudio.backends.base import BackendKind
from mqstudio.runtime.profiles import (
    PASSWORD_ENV,
    PASSWORD_IN_URL_WARNING,
    ConnectionProfile,
    ProfileError,
    ProfileStore,
    SecretStore,
    SecretStoreUnavailable,
    parse_url,
    resolve_password,
)


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A keyring that keeps passwords in a dict (a safe backend, as far as mqstudio can tell)."""

    priority = 1  # type: ignore[assignment]
    viable = False  # never chosen by keyring's own discovery, only by set_keyring

    def __init__(self) -> None:
        super().__init__()
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if (service, username) not in self.passwords:
            raise PasswordDeleteError("no such password")
        del self.passwords[(service, username)]


class BrokenKeyring(MemoryKeyring):
    """A keyring whose daemon is locked or gone."""

    def get_password(self, service: str, username: str) -> str | None:
        raise KeyringError("the collection is locked")


class PlaintextKeyring(MemoryKeyring):
    """Named like keyrings.alt's plain-text file backend."""


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def store(tmp_path: Path, memory_keyring: MemoryKeyring) -> ProfileStore:
    return ProfileStore(tmp_path / "config" / "connections.json")


def _rabbit(name: str = "prod", user: str = "app") -> ConnectionProfile:
    return ConnectionProfile(name, BackendKind.RABBITMQ, host="mq.example.com", vhost="orders", user=user)


# -- store -----------------------------------------------------------------------------------------


def test_saved_profiles_load_back_equal(store: ProfileStore) -> None:
    kafka = ConnectionProfile("events", BackendKind.KAFKA, host="k1", port=9093, tls=True, ca_file="/ca.pem")
    store.save(_rabbit())
    store.save(kafka)
    assert store.load() == [kafka, _rabbit()]  # sorted by name
    assert store.get("prod") == _rabbit()


def test_saving_a_profile_of_the_same_name_replaces_it(store: ProfileStore) -> None:
    store.save(_rabbit())
    store.save(_rabbit().copy(host="other"))
    assert [p.host for p in store.load()] == ["other"]


def test_the_json_file_holds_no_password(store: ProfileStore, memory_keyring: MemoryKeyring) -> None:
    profile = _rabbit()
    store.save(profile)
    store.secrets.set_password(profile, "s3cret-pw")
    text = store.path.read_text(encoding="utf-8")
    assert "s3cret-pw" not in text
    assert "password" not in text
    assert json.loads(text)["profiles"][0]["user"] == "app"
    assert memory_keyring.passwords == {("mqstudio", "prod:app"): "s3cret-pw"}


def test_the_profiles_file_is_readable_by_its_owner_only(store: ProfileStore) -> None:
    store.save(_rabbit())
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


def test_deleting_a_profile_deletes_its_password(store: ProfileStore, memory_keyring: MemoryKeyring) -> None:
    profile = _rabbit()
    store.save(profile)
    store.secrets.set_password(profile, "pw")
    assert store.delete("prod")
    assert store.load() == []
    assert memory_keyring.passwords == {}
    assert not store.delete("prod")


def test_renaming_a_profile_moves_its_password(store: ProfileStore, memory_keyring: MemoryKeyring) -> None:
    store.save(_rabbit("old"))
    store.secrets.set_password(_rabbit("old"), "pw")
    store.save(_rabbit("new"), previous_name="old")
    assert [p.name for p in store.load()] == ["new"]
    assert memory_keyring.passwords == {("mqstudio", "new:app"): "pw"}


def test_a_missing_file_is_no_profiles(tmp_path: Path) -> None:
    assert ProfileStore(tmp_path / "none.json").load() == []


def test_a_damaged_file_is_a_profile_error(tmp_path: Path) -> None:
    path = tmp_path / "connections.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ProfileError, match="not valid JSON"):
        ProfileStore(path).load()


def test_an_invalid_profile_is_refused_with_every_problem(store: ProfileStore) -> None:
    bad = ConnectionProfile(" ", BackendKind.RABBITMQ, host="", client_cert="/cert.pem")
    with pytest.raises(ProfileError) as info:
        store.save(bad)
    message = str(info.value)
    assert "name" in message and "host" in message and "key" in message
    assert not store.path.exists()


def test_unknown_keys_in_a_stored_profile_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "connections.json"
    path.write_text(json.dumps({"version": 1, "profiles": [{"name": "x", "kind": "kafka", "future": 1}]}))
    assert ProfileStore(path).load() == [ConnectionProfile("x", BackendKind.KAFKA)]


def test_a_profile_repr_shows_no_secret_field() -> None:
    assert "password" not in repr(_rabbit())


# -- secrets ---------------------------------------------------------------------------------------


def test_the_password_is_stored_under_service_and_profile_user(memory_keyring: MemoryKeyring) -> None:
    secrets = SecretStore()
    secrets.set_password(_rabbit(), "pw")
    assert secrets.get_password(_rabbit()) == "pw"
    assert secrets.get_password(_rabbit(user="other")) is None
    secrets.delete_password(_rabbit())
    secrets.delete_password(_rabbit())  # deleting twice is fine
    assert secrets.get_password(_rabbit()) is None


@pytest.mark.parametrize(
    "backend",
    [keyring.backends.fail.Keyring(), keyring.backends.null.Keyring(), PlaintextKeyring()],
    ids=["fail", "null", "plaintext"],
)
def test_an_insecure_or_absent_keyring_is_unavailable(backend: keyring.backend.KeyringBackend) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    try:
        secrets = SecretStore()
        assert not secrets.available
        with pytest.raises(SecretStoreUnavailable):
            secrets.set_password(_rabbit(), "pw")
        with pytest.raises(SecretStoreUnavailable):
            secrets.get_password(_rabbit())
    finally:
        keyring.set_keyring(previous)


def test_a_failing_keyring_is_unavailable_without_naming_the_password() -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(BrokenKeyring())
    try:
        with pytest.raises(SecretStoreUnavailable, match="locked") as info:
            SecretStore().get_password(_rabbit())
        assert "pw" not in str(info.value)
    finally:
        keyring.set_keyring(previous)


def test_the_password_comes_from_the_url_then_the_environment_then_the_keyring(
    memory_keyring: MemoryKeyring,
) -> None:
    SecretStore().set_password(_rabbit(), "from-keyring")
    env = {PASSWORD_ENV: "from-env"}
    assert resolve_password(_rabbit(), "from-url", environ=env) == "from-url"
    assert resolve_password(_rabbit(), None, environ=env) == "from-env"
    assert resolve_password(_rabbit(), None, environ={}) == "from-keyring"
    assert resolve_password(_rabbit(user="nobody"), None, environ={}) is None


def test_no_password_is_resolved_when_the_keyring_is_unavailable() -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    try:
        assert resolve_password(_rabbit(), None, environ={}) is None
    finally:
        keyring.set_keyring(previous)


# -- URLs ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "kind", "host", "port", "vhost", "user", "tls"),
    [
        ("amqp://user@host:5672/vhost", BackendKind.RABBITMQ, "host", 5672, "vhost", "user", False),
        ("amqp://host", BackendKind.RABBITMQ, "host", 5672, "/", "guest", False),
        ("amqp://host/", BackendKind.RABBITMQ, "host", 5672, "/", "guest", False),
        ("amqp://host/%2F", BackendKind.RABBITMQ, "host", 5672, "/", "guest", False),
        ("amqp://host/a%2Fb", BackendKind.RABBITMQ, "host", 5672, "a/b", "guest", False),
        ("amqps://u@mq.example.com/prod", BackendKind.RABBITMQ, "mq.example.com", 5671, "prod", "u", True),
        ("AMQP://[::1]:5673/x", BackendKind.RABBITMQ, "::1", 5673, "x", "guest", False),
        ("amqp://us%40er@h/v", BackendKind.RABBITMQ, "h", 5672, "v", "us@er", False),
        ("kafka://host:9092", BackendKind.KAFKA, "host", 9092, "/", "", False),
        ("kafka://host", BackendKind.KAFKA, "host", 9092, "/", "", False),
        ("kafka+ssl://host:9093", BackendKind.KAFKA, "host", 9093, "/", "", True),
        ("embedded://", BackendKind.EMBEDDED, "", 0, "/", "", False),
    ],
)
def test_url_parsing(
    url: str, kind: BackendKind, host: str, port: int, vhost: str, user: str, tls: bool
) -> None:
    parsed = parse_url(url)
    profile = parsed.profile
    assert (profile.kind, profile.host, profile.effective_port, profile.vhost, profile.user, profile.tls) == (
        kind, host, port, vhost, user, tls,
    )
    assert parsed.password is None
    assert parsed.warning == ""


def test_a_password_in_the_url_is_returned_with_a_warning_and_left_out_of_the_profile() -> None:
    parsed = parse_url("amqp://app:p%40ss@host/v")
    assert parsed.password == "p@ss"
    assert parsed.warning == PASSWORD_IN_URL_WARNING
    assert "p@ss" not in repr(parsed.profile) and "p%40ss" not in parsed.profile.url
    assert parsed.profile.url == "amqp://app@host:5672/v"


def test_tls_query_parameters_follow_the_rabbitmq_uri_spec() -> None:
    profile = parse_url(
        "amqps://h/v?cacertfile=/ca.pem&certfile=/c.pem&keyfile=/k.pem&verify=verify_none"
        "&management=https://h:15671"
    ).profile
    assert (profile.ca_file, profile.client_cert, profile.client_key) == ("/ca.pem", "/c.pem", "/k.pem")
    assert profile.verify is False
    assert profile.effective_management_url == "https://h:15671"


def test_kafka_urls_may_list_several_bootstrap_servers() -> None:
    profile = parse_url("kafka://k1:9092,k2:9092").profile
    assert profile.bootstrap == "k1:9092,k2:9092"


def test_the_management_url_defaults_to_the_amqp_host() -> None:
    assert parse_url("amqp://h").profile.effective_management_url == "http://h:15672"
    assert parse_url("amqps://h").profile.effective_management_url == "https://h:15671"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("localhost:5672", "not a URL"),
        ("http://host", "unknown scheme"),
        ("amqp://:5672/", "no host"),
        ("amqp://host:99999/", "port"),
        ("amqp://host:abc/", "port"),
        ("amqp://host/a/b", "%2F"),
    ],
)
def test_bad_urls_are_refused_with_the_reason(url: str, message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        parse_url(url)


def test_a_profile_url_parses_back_to_the_same_connection() -> None:
    profile = _rabbit().copy(vhost="/", tls=True)
    again = parse_url(profile.url).profile
    assert (again.host, again.effective_port, again.vhost, again.user, again.tls) == (
        profile.host, profile.effective_port, profile.vhost, profile.user, profile.tls,
    )
