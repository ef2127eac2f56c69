"""deploy/docker-compose.yaml, the Dockerfile and the production workspace agree with the code.

This machine has no Docker engine, so the compose file is never brought up here (the production profile
itself runs in test_postgres_instance.py, natively). What can drift silently is checked instead: every
variable the services set is a setting the platform accepts, every command exists, the workspace reaches
the code-location service, and the files the commands name are where the Dockerfile puts them.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from pathlib import Path, PurePosixPath

import pytest
import yaml

from crime_assets.common import settings as settings_module
from crime_assets.common.settings import Settings
from crime_assets_tests.helpers import REPO

DEPLOY = REPO / "deploy"
COMPOSE = yaml.safe_load((DEPLOY / "docker-compose.yaml").read_text())
IMAGE_SERVICES = {name: s for name, s in COMPOSE["services"].items() if s.get("image") == "crime-assets:latest"}
PLATFORM_PREFIXES = ("CRIME_", "SOCRATA_", "MLFLOW_", "ARREST_")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?message} against ``env``."""
    def one(match: re.Match) -> str:
        name, operator, argument = match.groups()
        if env.get(name):
            return env[name]
        if operator == ":?":
            raise KeyError(f"{name}: {argument}")
        return argument or ""
    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", one, str(value))


def service_env(name: str, env: dict[str, str]) -> dict[str, str]:
    return {key: interpolate(value, env) for key, value in IMAGE_SERVICES[name]["environment"].items()}


def dockerfile() -> tuple[PurePosixPath, dict[PurePosixPath, str]]:
    """The image's WORKDIR and what its COPY lines put where (destination -> source in the repository)."""
    workdir, copies = PurePosixPath("/"), {}
    for line in (REPO / "Dockerfile").read_text().splitlines():
        words = [w for w in line.split() if not w.startswith("--")]
        if words[:1] == ["WORKDIR"]:
            workdir = workdir / words[1]
        elif words[:1] == ["COPY"] and len(words) == 3:
            copies[workdir / words[2]] = words[1]
    return workdir, copies


def known_variables() -> set[str]:
    models = [m for m in vars(settings_module).values() if isinstance(m, type) and issubclass(m, settings_module._Group)]
    return {field.alias for model in models for field in model.model_fields.values() if field.alias}


def test_every_platform_variable_the_services_set_is_a_setting_and_valid():
    known = known_variables()
    for name in IMAGE_SERVICES:
        env = service_env(name, {"DAGSTER_PG_PASSWORD": "not-a-secret"})
        unknown = sorted(k for k in env if k.startswith(PLATFORM_PREFIXES) and k not in known)
        assert not unknown, f"{name} sets variables no setting reads: {unknown}"
        settings = Settings.from_env(env)
        assert settings.warehouse.backend == "ducklake" and settings.warehouse.has_ducklake_password
        assert settings.data_dir == Path("/app/data")
    with pytest.raises(KeyError, match="DAGSTER_PG_PASSWORD"):
        service_env("code-location", {})


def test_every_service_command_exists_and_names_a_module_of_the_package():
    bin_dir = str(Path(sys.executable).parent)
    for name, service in IMAGE_SERVICES.items():
        command = service["command"]
        assert shutil.which(command[0], path=bin_dir) or shutil.which(command[0]), f"{name}: no {command[0]}"
        modules = [command[i + 1] for i, word in enumerate(command) if word in ("-m", "--module-name")]
        modules += [word.split(":")[0] for word in command if re.fullmatch(r"[\w.]+:\w+", word)]
        for module in modules:
            assert importlib.util.find_spec(module), f"{name}: no module {module}"


def test_the_instance_and_workspace_the_commands_name_are_where_the_image_puts_them():
    workdir, copies = dockerfile()
    home = PurePosixPath(IMAGE_SERVICES["code-location"]["environment"]["DAGSTER_HOME"])
    assert copies[home / "dagster.yaml"] == "deploy/dagster.prod.yaml"
    for name in ("webserver", "daemon"):
        command = IMAGE_SERVICES[name]["command"]
        workspace = workdir / command[command.index("-w") + 1]
        assert copies[workspace] == "deploy/workspace.prod.yaml", f"{name} reads {workspace}"


def test_the_workspace_reaches_the_code_location_service_on_its_port():
    server = yaml.safe_load((DEPLOY / "workspace.prod.yaml").read_text())["load_from"][0]["grpc_server"]
    command = COMPOSE["services"][server["host"]]["command"]
    assert command[:3] == ["dagster", "api", "grpc"]
    assert int(command[command.index("-p") + 1]) == server["port"]


def test_the_lake_catalog_database_is_created_on_first_start_and_awaited():
    catalog = IMAGE_SERVICES["code-location"]["environment"]["CRIME_DUCKLAKE_CATALOG"]
    database = dict(pair.split("=") for pair in catalog.split())["dbname"]
    init = " ".join(p.read_text() for p in (DEPLOY / "postgres-init").glob("*.sql"))
    assert re.search(rf"CREATE DATABASE {database}\b", init)
    assert f"-d {database}" in " ".join(COMPOSE["services"]["postgres"]["healthcheck"]["test"])


def test_published_ports_are_the_ports_the_services_listen_on():
    for name, service in IMAGE_SERVICES.items():
        command = service["command"]
        listening = next((command[i + 1] for i, word in enumerate(command) if word in ("-p", "--port")), None)
        for mapping in service.get("ports", []):
            assert mapping.split(":")[-1] == listening, f"{name} publishes {mapping} but listens on {listening}"
