"""The deployment files as written: docker-compose.yml against the Compose Specification's JSON schema and the
worker's settings, every Dockerfile copy against cargo-contract 5's artifact layout, the systemd unit, and the
Grafana dashboard and Prometheus alert rules against the metrics the code really exports."""

from __future__ import annotations

import configparser
import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from offchain.audit.service import ValidatorMetrics
from offchain.config import WorkerSettings
from offchain.metrics import WorkerMetrics

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
SCHEMA = Path(__file__).parent / "compose_spec" / "compose-spec.json"
CONTRACTS = ROOT / "pallets_spec" / "contracts"


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((DOCKER / "docker-compose.yml").read_text()))


def schema_errors(doc: dict[str, Any]) -> list[str]:
    schema = json.loads(SCHEMA.read_text())
    return [
        f"{'/'.join(map(str, e.path))}: {e.message}"
        for e in jsonschema.Draft7Validator(schema).iter_errors(doc)
    ]


def test_compose_file_follows_the_compose_specification() -> None:
    jsonschema.Draft7Validator.check_schema(json.loads(SCHEMA.read_text()))
    doc = compose()
    assert schema_errors(doc) == []
    # the validator really validates: what Debian's compose 1.29 missed and typos are refused
    doc["services"]["worker"]["helthcheck"] = {}
    assert any("helthcheck" in e for e in schema_errors(doc))
    doc = compose()
    doc["services"]["worker"]["depends_on"] = {"node": {"condition": "service_happy"}}
    assert any("service_happy" in e for e in schema_errors(doc))


def _interpolated(value: Any) -> str:
    """A compose value with ${VAR:-default} replaced by its default (what an unset variable gives)."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value))


def _env_names() -> dict[str, str]:
    """AMI_* variable -> WorkerSettings field, from the model itself (fields and their aliases)."""
    names = {}
    for field, info in WorkerSettings.model_fields.items():
        names[f"AMI_{field.upper()}"] = field
        choices = getattr(info.validation_alias, "choices", [])
        for alias in choices:
            if str(alias).startswith("AMI_"):
                names[str(alias)] = field
    return names


@pytest.mark.parametrize("service", ["worker", "validator", "deploy"])
def test_compose_environment_is_the_worker_settings(service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    services = compose()["services"]
    env = services[service]["environment"]
    known = _env_names()
    for name in env:
        if name == "VALIDATOR_ADDRESS":
            continue  # read by the deploy command line, not by the settings
        assert name in known, f"{service}: {name} is not a WorkerSettings variable"
    for name in list(known):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, _interpolated(value))
    from offchain.config import load_settings

    s = load_settings()  # every value is valid for the settings, and a key is configured
    assert s.signing_key.get_secret_value().startswith("/run/secrets/")
    secret = s.signing_key.get_secret_value().removeprefix("/run/secrets/")
    assert secret in services[service]["secrets"] and secret in compose()["secrets"]
    if service == "deploy":
        return
    assert s.node_url == "ws://node:9944" and s.ipfs_api_url == "http://ipfs:5001"
    assert str(s.deployment).startswith("/var/lib/ami/deployment/")
    assert s.http_host == "0.0.0.0"  # reachable on the compose network (healthchecks, Prometheus)


def test_compose_ports_volumes_healthchecks_agree() -> None:
    doc = compose()
    services = doc["services"]
    assert set(services) == {"node", "ipfs", "deploy", "worker", "validator"}
    node_cmd = services["node"]["command"]
    assert "--rpc-port=9944" in node_cmd and "--rpc-external" in node_cmd
    assert "127.0.0.1:9944:9944" in services["node"]["ports"]
    assert "127.0.0.1:5001:5001" in services["ipfs"]["ports"]
    worker_port = services["worker"]["environment"]["AMI_HTTP_PORT"]
    assert f"127.0.0.1:{worker_port}:{worker_port}" in services["worker"]["ports"]
    validator_cmd = services["validator"]["command"]
    validator_port = validator_cmd[validator_cmd.index("--http-port") + 1]
    assert f"127.0.0.1:{validator_port}:{validator_port}" in services["validator"]["ports"]
    for name, port in (("worker", worker_port), ("validator", validator_port)):
        test = " ".join(services[name]["healthcheck"]["test"])
        assert f"127.0.0.1:{port}/" in test
        assert services[name]["stop_signal"] == "SIGTERM"
        assert {"node", "ipfs"} <= set(services[name]["depends_on"])
    for name in ("node", "ipfs"):
        assert services[name]["healthcheck"]["test"][0] == "CMD"
    for svc in services.values():
        for vol in svc.get("volumes", []):
            assert vol.split(":")[0] in doc["volumes"]
    assert services["deploy"]["profiles"] == ["setup"]  # one-shot, never started by `up`
    deploy_cmd = " ".join(services["deploy"]["command"])
    assert "ami deploy" in deploy_cmd and "--validator" in deploy_cmd
    assert "/var/lib/ami/deployment/deployment.json" in deploy_cmd
    for secret in doc["secrets"].values():
        path = (DOCKER / secret["file"]).resolve()
        assert path.parent == DOCKER / "secrets"  # ignored by git: docker/secrets/.gitignore
    assert (DOCKER / "secrets" / ".gitignore").read_text().splitlines()[1] == "*"


# ---------------------------------------------------------------- Dockerfile


def cargo_contract5_artifacts(workspace: Path, package: str) -> dict[str, Path]:
    """Where `cargo contract build` (cargo-contract 5.0.x) writes a workspace member's files.

    From cargo-contract v5.0.1, crates/build/src/crate_metadata.rs: the target directory is the cargo
    workspace's `target/ink`; a package that is not the workspace root gets a sub-folder named after the
    package; there it writes `<package>.contract`, `<package>.wasm` (optimised) and `<package>.json`, while
    rustc's unoptimised output stays at `wasm32-unknown-unknown/release/<package>.wasm` below it.
    """
    base = workspace / "target" / "ink" / package
    return {
        "contract": base / f"{package}.contract",
        "wasm": base / f"{package}.wasm",
        "json": base / f"{package}.json",
        "intermediate": base / "wasm32-unknown-unknown" / "release" / f"{package}.wasm",
    }


def dockerfile() -> str:
    return (DOCKER / "Dockerfile").read_text()


def stages() -> dict[str, str]:
    """Stage name -> its text."""
    parts = re.split(r"^FROM\s+", dockerfile(), flags=re.M)[1:]
    out = {}
    for part in parts:
        m = re.match(r"\S+\s+AS\s+(\S+)", part)
        assert m, f"unnamed stage: {part[:60]}"
        out[m.group(1)] = part
    return out


def _logical_lines(text: str) -> list[str]:
    return [re.sub(r"\\\n\s*", " ", chunk) for chunk in re.split(r"(?<!\\)\n", text)]


def test_compose_targets_are_dockerfile_stages() -> None:
    names = set(stages())
    for svc in compose()["services"].values():
        if "build" in svc:
            assert svc["build"]["target"] in names
            assert svc["build"]["dockerfile"] == "docker/Dockerfile" and svc["build"]["context"] == ".."


def test_every_copy_from_the_context_exists() -> None:
    for line in _logical_lines(dockerfile()):
        if not line.startswith("COPY ") or "--from=" in line:
            continue
        sources = shlex.split(line)[1:-1]
        for src in sources:
            assert (ROOT / src).exists(), f"COPY source {src} is not in the build context"


def test_contract_copies_match_cargo_contract5_layout(tmp_path: Path) -> None:
    members = tomllib.loads((CONTRACTS / "Cargo.toml").read_text())["workspace"]["members"]
    contracts_stage = stages()["contracts"]
    assert "cargo-contract --version 5." in contracts_stage and "wasm32-unknown-unknown" in contracts_stage
    assert "rust-src" in contracts_stage
    build = next(line for line in _logical_lines(contracts_stage) if "cargo contract build" in line)
    loop = re.search(r"for c in ([\w ]+);", build)
    assert loop and sorted(loop.group(1).split()) == sorted(members)
    # Lay out what cargo-contract 5 writes (with the intermediate .wasm of the same name), then run the
    # Dockerfile's own copy loop on it: it must pick exactly the artifacts and not collide.
    workspace = tmp_path / "src" / "contracts"
    for pkg in members:
        for kind, path in cargo_contract5_artifacts(workspace, pkg).items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{pkg} {kind}")
    copy = build[build.index("mkdir -p /bundles") :].replace("/bundles", str(tmp_path / "bundles"))
    import subprocess

    done = subprocess.run(["sh", "-ec", copy], cwd=tmp_path / "src", capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    got = {p.name: p.read_text() for p in (tmp_path / "bundles").iterdir()}
    want = {
        f"{pkg}.{ext}": f"{pkg} {kind}"
        for pkg in members
        for kind, ext in (("contract", "contract"), ("wasm", "wasm"), ("json", "json"))
    }
    assert got == want  # the optimised .wasm, never the intermediate
    # the worker takes the bundles by name from that folder
    worker = stages()["worker"]
    from_contracts = next(line for line in _logical_lines(worker) if "--from=contracts" in line)
    wanted = shlex.split(from_contracts)[2:-1]
    assert sorted(wanted) == sorted(f"/bundles/{pkg}.contract" for pkg in members)
    assert shlex.split(from_contracts)[-1] == "./pallets_spec/bundles/"


def test_node_is_the_v042_release_binary_and_worker_runs_ami() -> None:
    s = stages()
    node = s["contracts-node"]
    assert "ARG NODE_VERSION=v0.42.0" in node
    assert "releases/download/${NODE_VERSION}/substrate-contracts-node-linux.tar.gz" in node
    assert "artifacts/substrate-contracts-node-linux/substrate-contracts-node" in node
    assert "cargo build" not in node  # no toolchain-less source build
    worker = s["worker"]
    assert 'CMD ["ami", "run"]' in worker and "HEALTHCHECK" in worker and "AMI_HTTP_HOST=0.0.0.0" in worker
    assert '"torch==2.13.0"' in worker  # never an unpinned torch


# ---------------------------------------------------------------- systemd


def test_systemd_unit_runs_the_worker_with_its_key_as_a_credential() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string((ROOT / "deploy" / "systemd" / "ami-worker.service").read_text())
    service = unit["Service"]
    assert shlex.split(service["ExecStart"])[1:3] == ["run", "--config"]
    credential, source = service["LoadCredential"].split(":", 1)
    assert service["Environment"] != ""
    text = (ROOT / "deploy" / "systemd" / "ami-worker.service").read_text()
    assert f"Environment=AMI_KEY=%d/{credential}" in text  # the one key convention: a file, never the secret
    assert source.startswith("/etc/ami/")
    assert service["KillSignal"] == "SIGTERM" and service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"] == "2"  # a configuration error does not loop
    assert unit["Install"]["WantedBy"] == "multi-user.target"


# ---------------------------------------------------------------- Grafana and Prometheus


def exported_metric_names() -> set[str]:
    """Every sample name the worker's and the validator's /metrics serve (with counter/histogram suffixes)."""
    names: set[str] = set()
    for registry in (WorkerMetrics().registry, ValidatorMetrics().registry):
        for family in registry.collect():
            names.add(family.name)
            # a labelled family has no samples until a label is used: add the names its samples will have
            suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}
            names.update(family.name + suffix for suffix in suffixes.get(family.type, []))
            for sample in family.samples:
                names.add(sample.name)
    return names


def metric_names_in(expr: str) -> set[str]:
    """Metric names a PromQL expression reads (functions, keywords, labels and label values left out)."""
    no_strings = re.sub(r'"[^"]*"', '""', expr)
    no_labels = re.sub(r"\{[^}]*\}", "", no_strings)
    no_ranges = re.sub(r"\[[^\]]*\]", "", no_labels)
    no_ranges = re.sub(r"\b(by|without)\s*\([^)]*\)", "", no_ranges)
    tokens = set(re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", no_ranges))
    promql = {
        "rate",
        "increase",
        "changes",
        "sum",
        "by",
        "and",
        "or",
        "unless",
        "up",
        "without",
        "avg",
        "max",
        "histogram_quantile",
    }
    return {t for t in tokens if t not in promql and not t.isdigit()}


def test_exported_metrics_follow_prometheus_conventions() -> None:
    names = exported_metric_names()
    assert "ami_build_info" in names and "process_cpu_seconds_total" in names
    assert "process_resident_memory_bytes" in names and "python_info" in names
    for family in WorkerMetrics().registry.collect():
        if family.type == "counter":
            assert any(s.name == family.name + "_total" for s in family.samples) or not family.samples
        if family.type == "histogram":
            assert family.name.endswith("_seconds") or family.name.endswith("_bytes")


def test_alert_rules_use_exported_metrics() -> None:
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "ami-alerts.yml").read_text())
    exported = exported_metric_names()
    alerts = {}
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}
            assert rule["labels"]["severity"] in ("critical", "warning")
            assert rule["annotations"]["summary"] and re.fullmatch(r"\d+[smh]", rule["for"])
            assert rule["expr"].count("(") == rule["expr"].count(")")
            unknown = metric_names_in(rule["expr"]) - exported
            assert not unknown, f"{rule['alert']} reads metrics nobody exports: {unknown}"
            alerts[rule["alert"]] = rule["expr"]
    # the four: stuck finality, failed payouts, scorer down, lag
    assert {"AmiFinalityStuck", "AmiPayoutsFailing", "AmiScorerDown", "AmiWorkerLagging"} <= set(alerts)
    jobs = {
        j["job_name"]
        for j in yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())[
            "scrape_configs"
        ]
    }
    assert {"ami-worker", "ami-validator"} == jobs
    for expr in alerts.values():
        for job in re.findall(r'job="([^"]+)"', expr):
            assert job in jobs


def test_grafana_dashboard_uses_exported_metrics() -> None:
    dash = json.loads((ROOT / "deploy" / "grafana" / "ami-dashboard.json").read_text())
    exported = exported_metric_names()
    assert dash["uid"] and dash["panels"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dash["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            unknown = metric_names_in(target["expr"]) - exported
            assert not unknown, f"panel {panel['title']!r} reads metrics nobody exports: {unknown}"
    assert metric_names_in('sum by (result) (rate(ami_worker_tracks_scored_total{x="y"}[5m]))') == {
        "ami_worker_tracks_scored_total"
    }
