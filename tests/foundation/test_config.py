"""Bad configuration stops ``nrhub`` with one line naming the problem, never a traceback."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import asyncpg
import pytest

from tests.foundation.conftest import free_port, hub_env, run_nrhub

ROOT = Path(__file__).resolve().parents[2]
UNREACHABLE = "postgresql://127.0.0.1:1/x"


@pytest.mark.parametrize(
    ("args", "settings"),
    [
        (["migrate"], {}),
        (["status"], {}),
        (["demo", "load"], {}),
        (["serve"], {}),
        (["serve"], {"HUB_MIGRATE_ON_START": "false"}),
    ],
    ids=["migrate", "status", "demo-load", "serve", "serve-without-migrating"],
)
def test_an_unreachable_database(args, settings, one_line_error):
    env = hub_env(HUB_DATABASE_URL=UNREACHABLE, HUB_PORT=str(free_port()), **settings)
    one_line_error(run_nrhub(*args, env=env), "cannot connect", "127.0.0.1:1/x")


def test_a_malformed_database_url(one_line_error):
    env = hub_env(HUB_DATABASE_URL="postgresql://127.0.0.1:99999/x")
    one_line_error(run_nrhub("migrate", env=env), "database_url")


def test_a_malformed_toml_file(tmp_path, one_line_error):
    config = tmp_path / "hub.toml"
    config.write_text("[hub\nport = 8001\n")
    one_line_error(run_nrhub("--config", str(config), "status", env=hub_env()), str(config), "TOML")


def test_a_missing_toml_file(tmp_path, one_line_error):
    missing = tmp_path / "absent.toml"
    one_line_error(run_nrhub("status", env=hub_env(HUB_CONFIG=str(missing))), str(missing))


def test_a_config_path_that_is_no_readable_file(tmp_path, one_line_error):
    broken = tmp_path / "hub.toml"
    broken.symlink_to(tmp_path / "gone.toml")
    for path, problem in [(tmp_path, "is a directory"), (broken, "broken symbolic link")]:
        one_line_error(run_nrhub("--config", str(path), "status", env=hub_env()), str(path), problem)


def test_a_config_file_that_even_root_may_not_read(one_line_error):
    # Tests run as root, which reads any file whatever its mode; a write-only sysctl it may not.
    refusing = Path("/proc/sys/vm/drop_caches")
    try:
        refusing.read_bytes()
    except PermissionError:
        pass
    else:
        pytest.skip(f"{refusing} can be read here")
    one_line_error(run_nrhub("--config", str(refusing), "status", env=hub_env()), str(refusing), "permission denied")


def test_an_invalid_value_in_the_file_is_said_even_when_a_variable_overrides_it(tmp_path, one_line_error):
    # Removing HUB_PORT later must not be when the operator learns that the file is broken.
    config = tmp_path / "hub.toml"
    config.write_text("[hub]\nport = 70000\n")
    result = run_nrhub("--config", str(config), "status", env=hub_env(HUB_PORT=str(free_port())))
    one_line_error(result, str(config), "port = 70000", "between 1 and 65535", "HUB_PORT")


def test_an_unknown_setting_in_the_toml_file(tmp_path, one_line_error):
    config = tmp_path / "hub.toml"
    config.write_text("[hub]\nprot = 8001\n")
    one_line_error(run_nrhub("--config", str(config), "status", env=hub_env()), "prot")


def test_an_unknown_setting_in_the_environment(one_line_error):
    one_line_error(run_nrhub("status", env=hub_env(HUB_FOO="1")), "HUB_FOO")


@pytest.mark.parametrize(("value", "problem"), [("eighty", "type int"), ("70000", "between 1 and 65535")])
def test_a_port_that_is_not_a_port(value, problem, one_line_error):
    one_line_error(run_nrhub("serve", env=hub_env(HUB_PORT=value)), "port", problem, value)


def test_a_port_in_use(database_url, one_line_error):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = hub_env(HUB_DATABASE_URL=database_url)
        one_line_error(run_nrhub("serve", "--port", str(port), env=env), f"127.0.0.1:{port}")
        one_line_error(run_nrhub("serve", env={**env, "HUB_PORT": str(port)}), f"127.0.0.1:{port}")


def test_a_data_dir_that_is_a_file(tmp_path, one_line_error):
    not_a_folder = tmp_path / "data"
    not_a_folder.write_text("")
    one_line_error(run_nrhub("migrate", env=hub_env(HUB_DATA_DIR=str(not_a_folder))), str(not_a_folder))


async def test_a_large_demo_load_over_the_small_set(migrated_url, one_line_error):
    # A database that holds the small set: its synthetic communes are numbered up to 006.
    conn = await asyncpg.connect(migrated_url)
    try:
        await conn.execute(
            """
            WITH nation AS (
                INSERT INTO admin_unit (code, name_vi, name_en, level, valid_from)
                VALUES ('VN', 'Việt Nam', 'Viet Nam', 'NATION', '1976-07-02') RETURNING id
            ), province AS (
                INSERT INTO admin_unit (code, name_vi, name_en, level, parent_id, valid_from)
                SELECT '01', 'Hà Nội', 'Ha Noi', 'PROVINCE', id, '2025-07-01' FROM nation RETURNING id
            )
            INSERT INTO admin_unit (code, name_vi, name_en, level, parent_id, valid_from, synthetic)
            SELECT '01006', 'Xã mẫu 6', 'Synthetic commune 6', 'COMMUNE', id, '2025-07-01', true FROM province
            """
        )
    finally:
        await conn.close()
    env = hub_env(HUB_DATABASE_URL=migrated_url)
    result = await asyncio.to_thread(run_nrhub, "demo", "load", "--scale", "large", env=env)
    one_line_error(result, "small demo set")


@pytest.mark.parametrize("command", [[], ["serve"], ["migrate"], ["status"], ["demo"], ["demo", "load"]])
def test_every_command_explains_itself(command):
    result = run_nrhub(*command, "--help", env=hub_env())
    assert result.returncode == 0, result.stderr
    assert "usage: nrhub" in result.stdout
    assert len(result.stdout.splitlines()) >= 3
