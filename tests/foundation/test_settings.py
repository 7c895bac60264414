"""Settings: defaults, then the TOML file, then HUB_* variables; cast, validated, documented."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from nrhub.config.errors import ConfigError
from nrhub.config.settings import TABLE_SETTINGS, Settings, load_settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


@pytest.fixture
def toml(tmp_path):
    def write(text: str) -> Path:
        path = tmp_path / "hub.toml"
        path.write_text(text, encoding="utf-8")
        return path

    return write


def test_no_file_and_no_variable_gives_the_defaults_and_the_embedded_database():
    settings = load_settings(environ={"PATH": "/usr/bin", "HOME": "/root"})
    assert settings == Settings()
    assert settings.embedded and settings.port == 8000 and settings.host == "127.0.0.1"


def test_the_environment_overrides_the_file(toml):
    path = toml('[hub]\nhost = "0.0.0.0"\nport = 9000\nintrospection = true\n')
    settings = load_settings(path, environ={"HUB_PORT": "9100"})
    assert (settings.host, settings.port, settings.introspection) == ("0.0.0.0", 9100, True)


def test_hub_config_names_the_file_and_config_argument_wins(toml, tmp_path):
    path = toml("[hub]\nport = 9000\n")
    assert load_settings(environ={"HUB_CONFIG": str(path)}).port == 9000
    other = tmp_path / "other.toml"
    other.write_text("[hub]\nport = 9001\n")
    assert load_settings(other, environ={"HUB_CONFIG": str(path)}).port == 9001


def test_environment_strings_are_cast_to_each_settings_type():
    settings = load_settings(
        environ={
            "HUB_PORT": "8123",
            "HUB_MIGRATE_ON_START": "false",
            "HUB_INTROSPECTION": "YES",
            "HUB_EXECUTION_TIMEOUT": "2.5",
            "HUB_DATA_DIR": "/srv/hub",
            "HUB_DATABASE_URL": "postgresql://hub@db.example/hub",
        }
    )
    assert settings.port == 8123
    assert settings.migrate_on_start is False
    assert settings.introspection is True
    assert settings.execution_timeout == 2.5
    assert settings.data_dir == Path("/srv/hub")
    assert settings.database_url == "postgresql://hub@db.example/hub" and not settings.embedded


def test_an_empty_database_url_means_the_embedded_server():
    assert load_settings(environ={"HUB_DATABASE_URL": ""}).embedded


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("HUB_PORT", "8000.5"),
        ("HUB_PORT", "0"),
        ("HUB_MIGRATE_ON_START", "maybe"),
        ("HUB_EXECUTION_TIMEOUT", "soon"),
        ("HUB_EXECUTION_TIMEOUT", "0"),
        ("HUB_LOG_LEVEL", "verbose"),
        ("HUB_POOL_MIN_SIZE", "20"),
        ("HUB_MAX_DEPTH", "-1"),
        ("HUB_DATABASE_URL", "mysql://db/hub"),
        ("HUB_REQUEST_DATABASE_URL", "postgresql://nrhub_app@db/hub"),  # without HUB_DATABASE_URL
    ],
)
def test_a_bad_value_is_refused_naming_the_setting(name, raw):
    with pytest.raises(ConfigError) as refused:
        load_settings(environ={name: raw})
    assert name.removeprefix("HUB_").lower() in str(refused.value)


def test_the_request_database_url_goes_with_a_database_url():
    owner, requests = "postgresql://hub@db/hub", "postgresql://nrhub_app:secret@db/hub"
    settings = load_settings(environ={"HUB_DATABASE_URL": owner, "HUB_REQUEST_DATABASE_URL": requests})
    assert settings.request_database_url == requests
    with pytest.raises(ConfigError, match="request_database_url must be a postgresql:// URL"):
        load_settings(environ={"HUB_DATABASE_URL": owner, "HUB_REQUEST_DATABASE_URL": "db/hub"})


def test_toml_values_keep_their_types_and_are_checked(toml):
    assert load_settings(toml("[hub]\nmigrate_on_start = false\n"), environ={}).migrate_on_start is False
    with pytest.raises(ConfigError, match="port"):
        load_settings(toml("[hub]\nport = true\n"), environ={})
    with pytest.raises(ConfigError, match=r"\[hub\] must be a table"):
        load_settings(toml('hub = "yes"\n'), environ={})


@pytest.mark.parametrize(
    ("line", "variable", "value", "problem"),
    [
        ("port = 70000", "HUB_PORT", "9000", "between 1 and 65535"),
        ('port = "eighty"', "HUB_PORT", "9000", "type int"),
        ('log_level = "verbose"', "HUB_LOG_LEVEL", "debug", "log_level must be"),
        ("migrate_on_start = 3", "HUB_MIGRATE_ON_START", "false", "type bool"),
        ("pool_max_size = 1", "HUB_POOL_MAX_SIZE", "5", "pool_min_size <= pool_max_size"),  # with the default min 2
    ],
)
def test_an_invalid_value_in_the_file_is_refused_though_a_variable_overrides_it(toml, line, variable, value, problem):
    path = toml(f"[hub]\n{line}\n")
    with pytest.raises(ConfigError) as refused:
        load_settings(path, environ={variable: value})
    message = str(refused.value)
    assert "\n" not in message
    for part in (str(path), line, problem, variable):
        assert part in message


def test_a_file_invalid_only_with_another_of_its_values_is_refused(toml):
    # pool_min_size stays 5 from the file: without HUB_POOL_MAX_SIZE, the file's 3 is below it.
    path = toml("[hub]\npool_min_size = 5\npool_max_size = 3\n")
    with pytest.raises(ConfigError, match=r"pool_max_size = 3 .*HUB_POOL_MAX_SIZE"):
        load_settings(path, environ={"HUB_POOL_MAX_SIZE": "10"})


def test_the_file_is_valid_alone_when_variables_make_an_invalid_pair_valid(toml):
    # Each value is valid with the file's others; what the variables set is checked as it is in force.
    path = toml("[hub]\npool_min_size = 1\npool_max_size = 1\n")
    settings = load_settings(path, environ={"HUB_POOL_MIN_SIZE": "5", "HUB_POOL_MAX_SIZE": "10"})
    assert (settings.pool_min_size, settings.pool_max_size) == (5, 10)


def test_a_url_in_the_file_that_a_variable_overrides_is_named_but_not_shown(toml):
    path = toml('[hub]\ndatabase_url = "mysql://hub:s3cret@db/hub"\n')
    with pytest.raises(ConfigError) as refused:
        load_settings(path, environ={"HUB_DATABASE_URL": "postgresql://hub@db/hub"})
    assert "database_url" in str(refused.value) and "HUB_DATABASE_URL" in str(refused.value)
    assert "s3cret" not in str(refused.value)


def test_a_config_path_that_cannot_be_read_is_said_in_one_line(tmp_path):
    folder, missing, broken, latin1 = tmp_path / "hub", tmp_path / "absent.toml", tmp_path / "link", tmp_path / "l1"
    folder.mkdir()
    broken.symlink_to(missing)
    latin1.write_bytes("[hub]\nhost = 'Hà Nội'\n".encode("latin-1", errors="replace"))
    cases = [
        (folder, "is a directory, not a file"),
        (missing, "does not exist"),
        (broken, f"is a broken symbolic link (to {missing}"),
        (tmp_path / "absent.toml" / "hub.toml", "does not exist"),
        (latin1, "is not UTF-8 text"),
    ]
    for path, problem in cases:
        with pytest.raises(ConfigError) as refused:
            load_settings(path, environ={})
        assert str(refused.value).startswith(f"config file {path} {problem}"), refused.value


def test_a_file_no_one_may_read_is_said_as_permission_denied(tmp_path):
    # As root a file's mode is no obstacle; a PermissionError is made to happen where it can.
    cannot = tmp_path / "hub.toml"
    cannot.write_text("[hub]\n")
    cannot.chmod(0)
    try:
        cannot.read_bytes()
    except PermissionError:
        pass
    else:
        cannot = Path("/proc/sys/vm/drop_caches")  # write-only, even for root
        if not cannot.exists():
            pytest.skip("no file refuses this user here")
    with pytest.raises(ConfigError, match=rf"^config file {cannot} cannot be read: permission denied$"):
        load_settings(cannot, environ={})


def test_unknown_names_are_refused_wherever_they_are(toml):
    with pytest.raises(ConfigError, match="HUB_PROT"):
        load_settings(environ={"HUB_PROT": "1"})
    with pytest.raises(ConfigError, match="'prot'"):
        load_settings(toml("[hub]\nprot = 1\n"), environ={})


def test_variables_that_are_not_settings_are_allowed():
    # HUB_CONFIG names the file; HUB_TEST_DATABASE_URL belongs to the test suite.
    environ = {"HUB_TEST_DATABASE_URL": "postgresql://localhost/postgres", "OTHER": "x"}
    assert load_settings(environ=environ) == Settings()


def test_settings_are_frozen_and_replace_revalidates():
    settings = Settings()
    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]
    assert settings.replace(port=8001).port == 8001
    with pytest.raises(ConfigError):
        settings.replace(port=0)


def _readme_rows() -> dict[str, list[str]]:
    rows = {}
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\|\s*`(HUB_[A-Z_]+)`\s*\|(.*)\|\s*$", line)
        if match:
            rows[match[1]] = [cell.strip() for cell in match[2].split("|")]
    return rows


def _as_documented(value: object) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def test_every_setting_is_in_the_documented_table_with_its_default():
    rows = _readme_rows()
    # Settings only the TOML file's own tables give (sources: [[source]]) have no variable.
    for field in (f for f in fields(Settings) if f.name not in TABLE_SETTINGS):
        name = f"HUB_{field.name.upper()}"
        assert name in rows, f"{name} is missing from the configuration table in docs/operations.md"
        default_cell = rows[name][0]
        assert _as_documented(field.default) in default_cell, (name, default_cell)
    documented = set(rows) - {"HUB_CONFIG", "HUB_TEST_DATABASE_URL"}
    assert documented == {f"HUB_{f.name.upper()}" for f in fields(Settings) if f.name not in TABLE_SETTINGS}
