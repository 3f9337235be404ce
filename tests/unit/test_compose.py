"""docker-compose.yml and the Dockerfile, checked without a Docker engine.

Every service that runs our image must run an ``arrears`` subcommand that exists, in an order
that works (Kafka healthy, then the topics, then everything else), with the config it names.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from arrears.cli import build_parser
from arrears.config import ArrearsConfig, WebhookTransport, parse_config

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

# Commands other engineers are building in parallel with this test. They are accepted as the first
# word of a service's command although `arrears --help` may not list them yet.
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]


def runs_our_image(service: dict[str, Any]) -> bool:
    return "build" in service or str(service.get("image", "")).split(":")[0] == "arrears"


APP_SERVICES = {name: svc for name, svc in SERVICES.items() if runs_our_image(svc)}


def command_of(service: dict[str, Any]) -> list[str]:
    command = service.get("command")
    assert command, "a service of our image must say which subcommand it runs"
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def option(command: list[str], name: str) -> str:
    assert name in command, f"{name} missing from {command}"
    return command[command.index(name) + 1]


def registered_commands() -> set[str]:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))  # noqa: SLF001
    return set(subparsers.choices)


def services_running(subcommand: str) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in APP_SERVICES.items() if command_of(svc)[0] == subcommand}


def host_path(bind: str) -> tuple[Path, str]:
    source, target = bind.split(":")[:2]
    return (COMPOSE_FILE.parent / source).resolve(), target


def the_config() -> ArrearsConfig:
    [path] = {config_path(svc) for svc in APP_SERVICES.values()}
    return parse_config(yaml.safe_load(path.read_text(encoding="utf-8")), str(path))


def config_path(service: dict[str, Any]) -> Path:
    target = service["environment"]["ARREARS_CONFIG"]
    binds = [host_path(v) for v in service.get("volumes", []) if isinstance(v, str) and v.startswith(".")]
    sources = [source for source, mount in binds if mount == target]
    assert sources, f"ARREARS_CONFIG={target} is not mounted from the repository"
    return sources[0]


# --------------------------------------------------------------------------- commands
def test_the_compose_file_runs_our_image_in_several_services() -> None:
    assert len(APP_SERVICES) >= 6
    assert all(svc.get("image") == "arrears:latest" for svc in APP_SERVICES.values())


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_every_app_service_runs_an_arrears_subcommand_that_exists(name: str) -> None:
    command = command_of(APP_SERVICES[name])
    registered = registered_commands()

    assert command[0] in registered, f"{name}: arrears {command[0]} is no command"
    # The options must parse too: a typo'd flag would crash-loop the container.
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        try:
            build_parser().parse_args(command)
        except SystemExit as exc:
            shown = " ".join(command)
            pytest.fail(f"{name}: `arrears {shown}` does not parse ({exc}): {stderr.getvalue()}")


# --------------------------------------------------------------------------- order of startup
def test_topics_is_a_one_shot_that_waits_for_a_healthy_kafka() -> None:
    [topics] = services_running("topics").values()

    assert command_of(topics) == ["topics"]
    assert topics["depends_on"] == {"kafka": {"condition": "service_healthy"}}
    assert str(topics.get("restart", "no")) == "no"
    assert SERVICES["kafka"].get("healthcheck", {}).get("test")


@pytest.mark.parametrize("name", sorted(set(APP_SERVICES) - set(services_running("topics"))))
def test_every_other_app_service_starts_after_the_topics_exist(name: str) -> None:
    [topics_service] = services_running("topics")
    depends = APP_SERVICES[name].get("depends_on")

    assert isinstance(depends, dict), f"{name} must wait for {topics_service}"
    assert depends.get(topics_service) == {"condition": "service_completed_successfully"}


# --------------------------------------------------------------------------- workers
def test_two_workers_run_with_distinct_ports_their_own_host_names_and_rocksdb_state() -> None:
    workers = services_running("worker")
    assert len(workers) >= 2

    ports = [option(command_of(svc), "--web-port") for svc in workers.values()]
    assert len(set(ports)) == len(ports)
    data_volumes = set()
    for name, svc in workers.items():
        command, env = command_of(svc), svc["environment"]
        assert option(command, "--web-host") == name
        assert env["ARREARS_WEB_HOST"] == name
        assert env["ARREARS_STORE"] == "rocksdb"
        mounts = {v.split(":")[1]: v.split(":")[0] for v in svc["volumes"]}
        volume = mounts.get(env["ARREARS_DATA_DIR"])
        assert volume in COMPOSE["volumes"], f"{name}: ARREARS_DATA_DIR must be a named volume"
        data_volumes.add(volume)
        assert svc["healthcheck"]["test"][-1] == f"http://localhost:{option(command, '--web-port')}/health"
    assert len(data_volumes) == len(workers)  # each worker keeps its own state


# --------------------------------------------------------------------------- config and adapters
@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_every_app_service_reaches_kafka_in_network_and_reads_the_same_config(name: str) -> None:
    env = APP_SERVICES[name]["environment"]
    advertised = SERVICES["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]

    assert f"//{env['KAFKA_BOOTSTRAP_SERVERS']}" in advertised
    assert config_path(APP_SERVICES[name]).is_file()


def test_the_config_file_exists_and_parses() -> None:
    config = the_config()
    kinds = sorted(agency.transport.type for agency in config.agencies)
    assert kinds == ["files", "webhook", "webhook"]


def test_one_adapter_runs_per_agency_of_the_config() -> None:
    adapters = services_running("adapter")
    agencies = [option(command_of(svc), "--agency") for svc in adapters.values()]

    assert sorted(agencies) == sorted(agency.id for agency in the_config().agencies)


def test_each_webhook_adapter_gets_its_own_secret_from_the_compose_environment() -> None:
    adapters = {option(command_of(svc), "--agency"): svc for svc in services_running("adapter").values()}
    secrets = {
        agency.id: agency.transport.secret_env
        for agency in the_config().agencies
        if isinstance(agency.transport, WebhookTransport)
    }
    assert secrets

    for agency_id, variable in secrets.items():
        value = str(adapters[agency_id]["environment"].get(variable, ""))
        interpolated = re.fullmatch(rf"\$\{{{variable}(:?[?-].*)?\}}", value)
        assert interpolated, f"{variable} must come from the environment, not the file"
        for other_id, other in adapters.items():
            if other_id != agency_id:
                assert variable not in other["environment"], f"{other_id} must not see {variable}"


def test_a_files_adapter_has_its_outbox_and_inbox_on_a_volume() -> None:
    adapters = {option(command_of(svc), "--agency"): svc for svc in services_running("adapter").values()}
    for agency in the_config().agencies:
        if agency.transport.type != "files":
            continue
        mounts = [v.split(":")[1] for v in adapters[agency.id]["volumes"] if not v.startswith(".")]
        for path in (agency.transport.outbox, agency.transport.inbox):
            assert any(str(path).startswith(mount.rstrip("/") + "/") for mount in mounts), path


def test_the_simulator_is_there_but_only_on_request() -> None:
    [simulator] = services_running("simulate").values()
    assert simulator.get("profiles"), "a synthetic loan book must never reach a real deployment by default"


# --------------------------------------------------------------------------- kafka
def test_kafka_is_a_single_kraft_node_of_the_apache_image_without_zookeeper() -> None:
    kafka = SERVICES["kafka"]
    env = kafka["environment"]

    assert kafka["image"].startswith("apache/kafka:")
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(f"{env['KAFKA_NODE_ID']}@")
    assert "CONTROLLER" in env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert not any("zookeeper" in f"{name} {svc.get('image', '')}".lower() for name, svc in SERVICES.items())
    assert not any("ZOOKEEPER" in key for key in env)
    assert env["KAFKA_LOG_DIRS"] in {v.split(":")[1] for v in kafka["volumes"]}


# --------------------------------------------------------------------------- the image
def test_the_dockerfile_installs_the_package_on_python_311_slim_with_arrears_as_entrypoint() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    stages = re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE)

    assert stages and stages[-1] == "python:3.11-slim"
    assert all(stage == "python:3.11-slim" for stage in stages)
    assert re.search(r"pip install (--\S+ )*\.$", text, flags=re.MULTILINE)
    assert re.search(r'^ENTRYPOINT \["arrears"\]$', text, flags=re.MULTILINE)
    for package in ("arrears", "schemas", "producers", "streams", "consumers"):
        assert re.search(rf"^COPY {package} ", text, flags=re.MULTILINE), package


# --------------------------------------------------------------------------- broker credentials and ACLs
KAFKA_DIR = ROOT / "deploy" / "kafka"
REQUIRED_VARIABLE = re.compile(r"\$\{([A-Z0-9_]+):\?[^}]*\}")


def scram_users() -> dict[str, str]:
    """{user: the variable holding its password} as the broker's bootstrap script reads them."""
    listed = SERVICES["kafka"]["environment"]["ARREARS_KAFKA_SCRAM_USERS"].split()
    return dict(entry.split("=", 1) for entry in listed)


def acl_rules() -> list[tuple[str, str, str, str, frozenset[str]]]:
    rules = []
    for line in (KAFKA_DIR / "acls.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            principal, resource, pattern, name, operations = line.split()
            rules.append((principal, resource, pattern, name, frozenset(operations.split(","))))
    return rules


def expected_user(name: str, service: dict[str, Any]) -> str:
    command = command_of(service)
    if command[0] == "worker":
        return "arrears-worker"
    if command[0] == "adapter":
        return f"arrears-adapter-{option(command, '--agency').lower()}"
    if command[0] == "topics":
        return "admin"
    return {"clock": "arrears-loansystem", "simulate": "arrears-loansystem"}.get(command[0], "arrears-tooling")


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_every_app_service_authenticates_as_its_own_scram_user_with_a_password_from_the_environment(
    name: str,
) -> None:
    env = APP_SERVICES[name]["environment"]
    user = expected_user(name, APP_SERVICES[name])

    assert (env["KAFKA_SECURITY_PROTOCOL"], env["KAFKA_SASL_MECHANISM"]) == ("SASL_PLAINTEXT", "SCRAM-SHA-512")
    assert env["KAFKA_SASL_USERNAME"] == user
    password = REQUIRED_VARIABLE.fullmatch(str(env["KAFKA_SASL_PASSWORD"]))
    assert password, f"{name}: the Kafka password must come from the environment, not the file"
    assert scram_users()[user] == password.group(1), f"{name}: {user}'s password is another variable"


def test_the_broker_authenticates_every_listener_but_its_own_controller_and_refuses_what_no_acl_allows() -> None:
    env = SERVICES["kafka"]["environment"]
    protocols = dict(pair.split(":") for pair in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    listeners = dict(item.split("://") for item in env["KAFKA_LISTENERS"].split(","))

    assert {name for name, protocol in protocols.items() if not protocol.startswith("SASL_")} == {"CONTROLLER"}
    assert listeners["CONTROLLER"].startswith("localhost:"), "a plain-text listener must not be reachable"
    assert env["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    assert env["KAFKA_AUTHORIZER_CLASS_NAME"].endswith("StandardAuthorizer")
    assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert set(env["KAFKA_SUPER_USERS"].split(";")) == {"User:admin", "User:ANONYMOUS"}
    assert 'username="admin"' in env["KAFKA_LISTENER_NAME_INTERNAL_SCRAM___SHA___512_SASL_JAAS_CONFIG"]
    assert SERVICES["kafka"]["entrypoint"][-1].endswith("bootstrap-scram.sh")
    for variable in scram_users().values():
        assert REQUIRED_VARIABLE.fullmatch(str(env[variable])), f"{variable} must come from the environment"


def test_only_the_topics_one_shot_runs_as_admin_and_every_service_user_has_acls() -> None:
    users = {svc["environment"]["KAFKA_SASL_USERNAME"] for svc in APP_SERVICES.values()}
    admins = [name for name, svc in APP_SERVICES.items() if svc["environment"]["KAFKA_SASL_USERNAME"] == "admin"]

    assert admins == list(services_running("topics"))
    principals = {rule[0] for rule in acl_rules()}
    assert users - {"admin"} <= principals
    assert principals <= set(scram_users())


@pytest.mark.parametrize("agency", ["AG1", "AG2", "AG3"])
def test_an_adapter_may_read_only_its_own_work_orders_and_write_only_results_and_its_dead_letters(
    agency: str,
) -> None:
    mine = {(resource, pattern, name, ops) for principal, resource, pattern, name, ops in acl_rules()
            if principal == f"arrears-adapter-{agency.lower()}"}

    assert mine == {
        ("topic", "literal", f"agency.{agency}.work-orders", frozenset({"Read", "Describe"})),
        ("group", "literal", f"arrears-adapter-{agency}", frozenset({"Read"})),
        ("topic", "literal", "agency.results", frozenset({"Write", "Describe"})),
        ("topic", "literal", f"agency.{agency}.work-orders.dlq", frozenset({"Write", "Describe"})),
    }
    assert agency in {a.id for a in the_config().agencies}


def test_the_acls_service_applies_the_file_as_admin_before_any_app_service_starts() -> None:
    acls = SERVICES["acls"]
    assert acls["entrypoint"][-1].endswith("acls.sh") and str(acls.get("restart")) == "no"
    assert acls["depends_on"] == {"kafka": {"condition": "service_healthy"}}
    for name, svc in APP_SERVICES.items():
        if command_of(svc)[0] != "topics":
            assert svc["depends_on"].get("acls") == {"condition": "service_completed_successfully"}, name


def test_the_broker_scripts_are_valid_bash() -> None:
    for script in ("bootstrap-scram.sh", "acls.sh"):
        assert subprocess.run(["bash", "-n", str(KAFKA_DIR / script)], capture_output=True).returncode == 0, script


def test_make_env_writes_every_secret_the_compose_file_requires_each_one_different(tmp_path: Path) -> None:
    required = set(REQUIRED_VARIABLE.findall(COMPOSE_FILE.read_text(encoding="utf-8")))
    target = tmp_path / ".env"
    subprocess.run(["bash", str(ROOT / "deploy" / "make-env.sh"), str(target)], check=True, capture_output=True)
    written = dict(line.split("=", 1) for line in target.read_text().splitlines() if not line.startswith("#"))

    assert required <= set(written), required - set(written)
    assert len(set(written.values())) == len(written)
    assert all(re.fullmatch(r"[0-9a-f]{48}", value) for value in written.values())
    assert target.stat().st_mode & 0o077 == 0, "the secrets file must be private"
    again = subprocess.run(["bash", str(ROOT / "deploy" / "make-env.sh"), str(target)], capture_output=True)
    assert again.returncode != 0, "an existing .env must not be overwritten"


def test_the_workers_hold_the_query_api_tokens_and_nothing_else_does() -> None:
    tokens = {token.token_env for token in the_config().api.tokens}
    assert tokens, "the published worker ports need tokens: without them the API listens on 127.0.0.1 only"
    for name, svc in APP_SERVICES.items():
        held = tokens & set(svc["environment"])
        if command_of(svc)[0] == "worker":
            assert held == tokens, name
        else:
            assert not held, f"{name} must not hold the query API's tokens"
