"""Settings: every source, their order, and one-line errors."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from cachegrid.config import (
    DEFAULT_CONFIG_FILE,
    ConfigError,
    Settings,
    default_snapshot_path,
    load_settings,
    snapshots_by_default,
)

REPO = Path(__file__).resolve().parent.parent


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run each test where no etc/cachegrid.toml is found by default."""
    monkeypatch.chdir(tmp_path)


def test_defaults() -> None:
    settings = load_settings()
    assert (settings.host, settings.port, settings.max_size) == ("127.0.0.1", 8080, 10_000)
    assert settings.max_memory_bytes == 512 * 1024 * 1024
    assert settings.eviction_policy == "adaptive" and settings.log_level == "info"
    assert settings.cleanup_interval == 60 and settings.auth_token is None
    assert settings.loadtest_max_operations == 5_000  # tens of ms at most in one request
    assert settings.node_id


def test_every_environment_variable_of_the_product_description(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "CACHEGRID_NODE_ID": "node-1",
        "CACHEGRID_MAX_SIZE": "10000",
        "CACHEGRID_MAX_MEMORY_MB": "512",
        "CACHEGRID_CLEANUP_INTERVAL": "60",
        "CACHEGRID_HOST": "0.0.0.0",
        "CACHEGRID_PORT": "8080",
        "CACHEGRID_LOG_LEVEL": "info",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CACHEGRID_MAX_SIZE", "20000")
    monkeypatch.setenv("CACHEGRID_MAX_MEMORY_MB", "1024")
    monkeypatch.setenv("CACHEGRID_LOG_LEVEL", "ERROR")
    settings = load_settings()
    assert settings.node_id == "node-1" and settings.host == "0.0.0.0" and settings.port == 8080
    assert settings.max_size == 20_000 and settings.max_memory_bytes == 1024 * 1024 * 1024
    assert settings.cleanup_interval == 60 and settings.log_level == "error"


def test_other_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHEGRID_EVICTION_POLICY", "LFU")
    monkeypatch.setenv("CACHEGRID_AUTH_TOKEN", "s3cret")
    monkeypatch.setenv("CACHEGRID_LOADTEST_ENABLED", "false")
    monkeypatch.setenv("CACHEGRID_URL", "http://ignored")  # the CLI's, not a server setting
    settings = load_settings()
    assert settings.eviction_policy == "lfu" and not settings.loadtest_enabled
    assert settings.auth_token is not None and settings.auth_token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)


def test_compression_settings_have_defaults_and_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert (settings.compress_threshold, settings.compress_min_saving) == (1024, 0.2)
    monkeypatch.setenv("CACHEGRID_COMPRESS_THRESHOLD", "0")
    monkeypatch.setenv("CACHEGRID_COMPRESS_MIN_SAVING", "0.5")
    settings = load_settings()
    assert (settings.compress_threshold, settings.compress_min_saving) == (0, 0.5)
    assert load_settings().inflated_cache_size == 4 * 1024 * 1024
    monkeypatch.setenv("CACHEGRID_INFLATED_CACHE_SIZE", "0")
    assert load_settings().inflated_cache_size == 0


def test_empty_token_means_no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHEGRID_AUTH_TOKEN", "")
    assert load_settings().auth_token is None


def test_precedence_arguments_over_environment_over_file_over_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write(tmp_path / "c.toml", "[cachegrid]\nport = 9001\nmax_size = 7\nnode_id = 'from-file'\n")
    monkeypatch.setenv("CACHEGRID_PORT", "9002")
    monkeypatch.setenv("CACHEGRID_MAX_SIZE", "8")
    settings = load_settings(config, port=9003)
    assert settings.port == 9003  # argument
    assert settings.max_size == 8  # environment
    assert settings.node_id == "from-file"  # file
    assert settings.max_key_length == 250  # default


def test_none_arguments_do_not_override(tmp_path: Path) -> None:
    config = write(tmp_path / "c.toml", "[cachegrid]\nport = 9001\n")
    assert load_settings(config, port=None).port == 9001


def test_config_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHEGRID_CONFIG", str(write(tmp_path / "c.toml", "[cachegrid]\nmax_size = 5\n")))
    assert load_settings().max_size == 5


def test_default_config_file_in_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    write(tmp_path / DEFAULT_CONFIG_FILE, "[cachegrid]\nmax_size = 6\n")
    assert load_settings().max_size == 6


@pytest.mark.parametrize(
    ("variable", "value", "setting"),
    [
        ("CACHEGRID_MAX_SIZE", "-5", "max_size"),
        ("CACHEGRID_MAX_SIZE", "many", "max_size"),
        ("CACHEGRID_PORT", "70000", "port"),
        ("CACHEGRID_MAX_MEMORY_MB", "0", "max_memory_mb"),
        ("CACHEGRID_CLEANUP_INTERVAL", "-1", "cleanup_interval"),
        ("CACHEGRID_EVICTION_POLICY", "random", "eviction_policy"),
        ("CACHEGRID_LOG_LEVEL", "loud", "log_level"),
        ("CACHEGRID_MAX_BODY_SIZE", "10", "max_body_size"),
        ("CACHEGRID_COMPRESS_THRESHOLD", "-1", "compress_threshold"),
        ("CACHEGRID_COMPRESS_THRESHOLD", "1k", "compress_threshold"),
        ("CACHEGRID_COMPRESS_MIN_SAVING", "1", "compress_min_saving"),
        ("CACHEGRID_COMPRESS_MIN_SAVING", "-0.1", "compress_min_saving"),
        ("CACHEGRID_INFLATED_CACHE_SIZE", "-1", "inflated_cache_size"),
    ],
)
def test_invalid_environment_value_is_one_line_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, setting: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"invalid setting {setting} ")
    assert variable in message and repr(value) in message


def test_invalid_file_value_names_the_file(tmp_path: Path) -> None:
    config = write(tmp_path / "c.toml", "[cachegrid]\nmax_size = 0\n")
    with pytest.raises(ConfigError, match=r"invalid setting max_size = 0 \(from config file .*c\.toml\)"):
        load_settings(config)


def test_unknown_key_in_the_file_is_an_error(tmp_path: Path) -> None:
    config = write(tmp_path / "c.toml", "[cachegrid]\nmax_sise = 10\n")
    with pytest.raises(ConfigError, match="unknown setting 'max_sise'"):
        load_settings(config)


def test_settings_outside_the_table_are_an_error(tmp_path: Path) -> None:
    config = write(tmp_path / "c.toml", "max_size = 10\n")
    with pytest.raises(ConfigError, match=r"unknown top-level key 'max_size'.*\[cachegrid\]"):
        load_settings(config)


def test_broken_toml_is_one_line(tmp_path: Path) -> None:
    config = write(tmp_path / "c.toml", "[cachegrid\nmax_size = \n")
    with pytest.raises(ConfigError) as raised:
        load_settings(config)
    assert "cannot read config file" in str(raised.value) and "\n" not in str(raised.value)


def test_missing_explicit_config_file_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")
    monkeypatch.setenv("CACHEGRID_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match="CACHEGRID_CONFIG"):
        load_settings()


def test_the_token_is_never_echoed_in_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(auth_token=12345)  # not a string
    assert "12345" not in str(raised.value)


def test_shipped_file_documents_every_setting_at_its_default() -> None:
    text = (REPO / "etc" / "cachegrid.toml").read_text(encoding="utf-8")
    documented = set(re.findall(r"^# (\w+) = ", text, flags=re.MULTILINE))
    assert documented == set(Settings.model_fields)
    loaded = load_settings(REPO / "etc" / "cachegrid.toml")
    defaults = load_settings()
    assert loaded.model_dump(exclude={"node_id"}) == defaults.model_dump(exclude={"node_id"})
    # The commented values are the defaults (bar the examples of free-form ones).
    for name, literal in re.findall(r"^# (\w+) = (.+)$", text, flags=re.MULTILINE):
        if name not in ("node_id", "auth_token", "snapshot_path", "acl_file"):
            assert str(getattr(defaults, name)).lower() == literal.strip('"').lower() or float(literal) == float(
                getattr(defaults, name)
            ), name


# -- warm by default: the node's name and its snapshot file --------------------------


def test_the_default_node_id_is_host_and_port() -> None:
    assert load_settings().node_id == "127.0.0.1:8080"
    assert load_settings(port=9001).node_id == "127.0.0.1:9001"
    assert load_settings(host="::1", port=9001).node_id == "[::1]:9001"
    assert load_settings(host="0.0.0.0").node_id == f"{socket.gethostname()}:8080"
    assert load_settings(node_id="mine").node_id == "mine"
    assert "node_id" not in load_settings().model_fields_set  # still a default


def test_the_default_snapshot_file_is_under_the_state_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_snapshot_path("h:1", {"STATE_DIRECTORY": "/var/lib/cachegrid:/other"}) == Path(
        "/var/lib/cachegrid/h:1.snap"
    )
    assert default_snapshot_path("h:1", {"XDG_STATE_HOME": "/x"}) == Path("/x/cachegrid/h:1.snap")
    home = Path.home() / ".local" / "state" / "cachegrid"
    assert default_snapshot_path("h:1", {}) == home / "h:1.snap"
    assert default_snapshot_path("h:1", {"XDG_STATE_HOME": "relative"}) == home / "h:1.snap"  # the XDG rule
    assert default_snapshot_path("a/b", {"XDG_STATE_HOME": "/x"}) == Path("/x/cachegrid/a_b.snap")
    assert snapshots_by_default(load_settings())
    assert not snapshots_by_default(load_settings(snapshot_path=""))
    monkeypatch.setenv("CACHEGRID_SNAPSHOT_PATH", "")
    assert not snapshots_by_default(load_settings()) and load_settings().snapshot_path is None


def test_serve_resolves_the_default_snapshot_file_or_starts_cold(tmp_path: Path) -> None:
    from cachegrid.daemon.snapshot_default import with_default_snapshot

    warm = with_default_snapshot(load_settings(port=9001), {"XDG_STATE_HOME": str(tmp_path)})
    assert warm.snapshot_path == tmp_path / "cachegrid" / "127.0.0.1:9001.snap"
    assert (tmp_path / "cachegrid").stat().st_mode & 0o777 == 0o700
    off = load_settings(snapshot_path="")
    assert with_default_snapshot(off, {"XDG_STATE_HOME": str(tmp_path)}).snapshot_path is None
    (tmp_path / "file").write_text("")
    cold = with_default_snapshot(load_settings(), {"XDG_STATE_HOME": str(tmp_path / "file")})
    assert cold.snapshot_path is None
