#!/usr/bin/env python3
"""Checks the compose files of deploy/ and the files they use, without Docker.

The files: deploy/docker-compose.yml (one deploylens, Prometheus, Grafana) and
deploy/docker-compose.fleet.yml (collectors and a query node sharing one store on an
S3-compatible object store, Prometheus). For each:

1. The compose file, after variable interpolation, is valid against the Compose Specification
   JSON schema (deploy/compose-spec.json); no key is repeated.
2. Every host path it builds from or mounts exists (paths are relative to deploy/); named
   volumes, secrets and configs are declared. A secret file that is created on each host (and
   never committed) may be missing: it is reported as a note, and its folder must exist.
3. Every deploylens service (built from the Dockerfile) agrees with it: the same health check
   (command and timings), one port in --listen, the health check and the published port; the
   Dockerfile's COPY sources exist and .dockerignore does not exclude them.
4. The deploylens services of one store: every collector has its own explicit
   --collector-id (a container's host name changes when it is recreated); a query node
   (--read-only) has no roots; an s3:// store's AWS_ENDPOINT_URL names a compose service and
   its credentials reach the service (a variable, a _FILE variable or a mounted secret).
5. The Prometheus configuration mounted at /etc/prometheus/prometheus.yml scrapes the
   deploylens service that serves the store (the query node, if there is one) as job
   `deploylens`; every target names a compose service at its --listen port; its rule files and
   credentials file are mounted in the prometheus service, and `promtool check config` accepts
   it (skipped when promtool is not installed).
6. Where the file has a grafana service (docker-compose.yml must): deploy/grafana/datasources.yml
   points at compose services, sends the token only to the hosts of allowedHosts, reads it from
   a secret mounted in the grafana service, and its plugins are installed; the provisioned
   dashboard folder holds the dashboard, whose default datasources are provisioned.

Usage:
    python3 deploy/check-compose.py          # checks both files; prints OK and exits 0 when
                                             # everything holds
    python3 deploy/check-compose.py --file deploy/docker-compose.fleet.yml   # one file
    python3 deploy/check-compose.py --env    # interpolate from the environment and deploy/.env,
                                             # as docker compose does (default: ${VAR:-default}
                                             # takes its default, the same on every machine)

Needs Python 3.9+, PyYAML and jsonschema (scripts/install-test-deps.sh installs both).
"""

# The schema: deploy/compose-spec.json is schema/compose-spec.json of the Compose Specification
# repository (compose-spec/compose-spec, Apache-2.0) at commit
# 58a2548c4a5c81454433d91d4da18210d6dc0e46 (2025-07-21), byte for byte as shipped in the npm
# package dclint 3.1.0 (schemas/compose.schema.json; `npm pack dclint@3.1.0`).
# sha256 46b7d35f19dd93a05f8fea530291bf84d881c1791ec167ecf0e6fb94e639d496. To update it, take
# schemas/compose.schema.json from a newer dclint (or compose-spec.json from a release of the
# specification) and run this script again.

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jsonschema
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SCHEMA = HERE / "compose-spec.json"
# The compose files checked by default, and whether each must have a grafana service.
FILES = {HERE / "docker-compose.yml": True, HERE / "docker-compose.fleet.yml": False}
# The compose file being checked and its folder, against which its relative paths resolve.
COMPOSE = HERE / "docker-compose.yml"
DEPLOY = HERE
SCHEMA_SHA256 = "46b7d35f19dd93a05f8fea530291bf84d881c1791ec167ecf0e6fb94e639d496"

problems: list[str] = []
notes: list[str] = []


def problem(text: str) -> None:
    problems.append(text)


def rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


# ---- YAML without duplicate keys ------------------------------------------------------------


class UniqueKeyLoader(yaml.SafeLoader):
    pass


def _mapping(loader: UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_yaml(path: Path):
    with path.open(encoding="utf-8") as f:
        return yaml.load(f, Loader=UniqueKeyLoader)


# ---- interpolation, as docker compose does it -----------------------------------------------

NAME = r"[A-Za-z_][A-Za-z0-9_]*"
TOKEN = re.compile(
    r"\$(?:(?P<escaped>\$)"
    rf"|\{{(?P<braced>{NAME})(?:(?P<op>:?[-?+])(?P<arg>[^}}]*))?\}}"
    rf"|(?P<named>{NAME})"
    r"|(?P<invalid>))"
)


def interpolate(text: str, env: dict[str, str], where: str) -> str:
    def sub(m: re.Match) -> str:
        if m.group("escaped"):
            return "$"
        if m.group("invalid") is not None:
            problem(f"{where}: invalid interpolation at {text[m.start():m.start() + 12]!r} (write $$ for a literal $)")
            return "$"
        name = m.group("braced") or m.group("named")
        op, arg = m.group("op"), m.group("arg") or ""
        value = env.get(name)
        if op is None:
            if value is None:
                problem(f"{where}: ${{{name}}} has no default and is not set")
                return ""
            return value
        if op == ":-":
            return value if value else interpolate(arg, env, where)
        if op == "-":
            return value if value is not None else interpolate(arg, env, where)
        if op in (":?", "?"):
            if (op == ":?" and not value) or value is None:
                problem(f"{where}: {name} is required: {arg}")
                return ""
            return value
        if op == ":+":
            return interpolate(arg, env, where) if value else ""
        return interpolate(arg, env, where) if value is not None else ""  # "+"

    return TOKEN.sub(sub, text)


def interpolate_tree(node, env: dict[str, str], where: str = ""):
    if isinstance(node, dict):
        return {k: interpolate_tree(v, env, f"{where}.{k}" if where else str(k)) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate_tree(v, env, f"{where}[{i}]") for i, v in enumerate(node)]
    if isinstance(node, str):
        return interpolate(node, env, where)
    return node


def read_env_file(path: Path) -> dict[str, str]:
    env = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                env[key.strip()] = value.strip().strip("'\"")
    return env


# ---- mounts ---------------------------------------------------------------------------------


def is_host_path(source: str) -> bool:
    return source.startswith((".", "/", "~"))


def host(source: str) -> Path:
    return (DEPLOY / os.path.expanduser(source)).resolve()


def service_mounts(doc: dict, name: str) -> list[tuple[str, Path | None, str]]:
    """(container path, host path or None for a named volume, what) of one service."""
    service = doc["services"][name]
    mounts = []
    for i, volume in enumerate(service.get("volumes", [])):
        where = f"services.{name}.volumes[{i}]"
        if isinstance(volume, str):
            parts = volume.split(":")
            if len(parts) == 1:
                continue  # an anonymous volume
            source, target = parts[0], parts[1]
            kind = "bind" if is_host_path(source) else "volume"
        else:
            source, target = volume.get("source", ""), volume["target"]
            kind = volume.get("type", "volume")
        if kind == "bind":
            mounts.append((target, host(source), where))
        elif kind == "volume":
            if source and source not in (doc.get("volumes") or {}):
                problem(f"{where}: named volume {source!r} is not declared under volumes:")
            mounts.append((target, None, where))
    for kind, default_dir in (("secrets", "/run/secrets"), ("configs", None)):
        for i, ref in enumerate(service.get(kind, [])):
            where = f"services.{name}.{kind}[{i}]"
            source = ref if isinstance(ref, str) else ref["source"]
            declared = (doc.get(kind) or {}).get(source)
            if declared is None:
                problem(f"{where}: {kind[:-1]} {source!r} is not declared under {kind}:")
                continue
            target = None if isinstance(ref, str) else ref.get("target")
            if target is None:
                target = f"{default_dir}/{source}" if default_dir else f"/{source}"
            elif not target.startswith("/") and default_dir:
                target = f"{default_dir}/{target}"
            file = declared.get("file")
            mounts.append((target, host(file) if file else None, where))
    return mounts


def to_host(mounts, container_path: str) -> tuple[Path | None, str | None]:
    """The host path behind a container path, through the longest matching mount."""
    best = None
    for target, source, where in mounts:
        t = target.rstrip("/") or "/"
        if container_path == t or container_path.startswith(t + "/"):
            if best is None or len(t) > len(best[0]):
                best = (t, source, where)
    if best is None or best[1] is None:
        return None, None
    return best[1] / posixpath.relpath(container_path, best[0]), best[2]


def check_host_paths(doc: dict) -> None:
    for name, service in doc["services"].items():
        build = service.get("build")
        if build is not None:
            context = build if isinstance(build, str) else build.get("context", ".")
            ctx = host(context)
            if not ctx.is_dir():
                problem(f"services.{name}.build.context: {rel(ctx)} is not a folder")
            elif isinstance(build, dict) and "dockerfile_inline" not in build:
                dockerfile = ctx / build.get("dockerfile", "Dockerfile")
                if not dockerfile.is_file():
                    problem(f"services.{name}.build.dockerfile: {rel(dockerfile)} does not exist")
        env_files = service.get("env_file", [])
        for i, env_file in enumerate(env_files if isinstance(env_files, list) else [env_files]):
            if isinstance(env_file, dict) and env_file.get("required") is False:
                continue
            path = env_file if isinstance(env_file, str) else env_file["path"]
            if not host(path).is_file():
                problem(f"services.{name}.env_file[{i}]: {rel(host(path))} does not exist")
        for target, source, where in service_mounts(doc, name):
            if source is not None and not source.exists() and "secrets" not in where and "configs" not in where:
                problem(f"{where}: {rel(source)} (mounted at {target}) does not exist")
    for kind in ("secrets", "configs"):
        for name, item in (doc.get(kind) or {}).items():
            file = item.get("file")
            if not file:
                continue
            path = host(file)
            if path.is_file():
                continue
            if path.parent.is_dir():
                notes.append(f"{kind}.{name}: {rel(path)} is created on each host and does not exist here yet "
                             f"(see {rel(path.parent / 'README.md')})")
            else:
                problem(f"{kind}.{name}: neither {rel(path)} nor its folder exists")


# ---- the Dockerfile -------------------------------------------------------------------------


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    instructions, current = [], ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if current and line.lstrip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        keyword, _, rest = current.strip().partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        current = ""
    return instructions


def duration(text) -> float | None:
    if text is None:
        return None
    total, units = 0.0, {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6, "ns": 1e-9}
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|us|ns|h|m|s)", str(text)):
        total += float(number) * units[unit]
    return total


def built_services(doc: dict) -> list[tuple[str, dict]]:
    """The deploylens services: those built from the Dockerfile."""
    return [(n, s) for n, s in doc["services"].items() if isinstance(s.get("build"), (dict, str))]


def check_dockerfile(doc: dict) -> dict[str, int]:
    """Compares every service built from the Dockerfile with it; returns their --listen ports."""
    built = built_services(doc)
    if not built:
        problem("no service is built from the Dockerfile")
        return {}
    ports = {}
    for name, service in built:
        port = check_built_service(name, service)
        if port is not None:
            ports[name] = port
    return ports


def check_built_service(name: str, service: dict) -> int | None:
    """Compares one service built from the Dockerfile with it; returns the service's port."""
    build = service["build"] if isinstance(service["build"], dict) else {"context": service["build"]}
    context = host(build.get("context", "."))
    dockerfile = context / build.get("dockerfile", "Dockerfile")
    if not dockerfile.is_file():
        return None
    instructions = dockerfile_instructions(dockerfile)

    # COPY sources exist in the context and are not excluded by .dockerignore.
    ignore_file = context / ".dockerignore"
    ignored = []
    if ignore_file.is_file():
        for line in ignore_file.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                ignored.append(line.strip("/"))
    for keyword, rest in instructions:
        if keyword not in ("COPY", "ADD") or "--from=" in rest:
            continue
        args = [a for a in rest.split() if not a.startswith("--")]
        for source in args[:-1]:
            path = context / source
            if not path.exists():
                problem(f"{rel(dockerfile)}: {keyword} {source}: {rel(path)} does not exist")
            clean = source.strip("/")
            parts = clean.split("/")
            for pattern in ignored:
                if pattern.startswith("!"):
                    continue
                if any(fnmatch.fnmatch("/".join(parts[: i + 1]), pattern.replace("**/", "*")) for i in range(len(parts))):
                    problem(f"{rel(dockerfile)}: {keyword} {source} is excluded by .dockerignore ({pattern})")

    # The health check.
    healthchecks = [rest for keyword, rest in instructions if keyword == "HEALTHCHECK"]
    if len(healthchecks) != 1:
        problem(f"{rel(dockerfile)}: expected one HEALTHCHECK, found {len(healthchecks)}")
        return None
    m = re.match(r"((?:--[a-z-]+=\S+\s+)*)CMD\s+(\[.*\])\s*$", healthchecks[0])
    if not m:
        problem(f"{rel(dockerfile)}: HEALTHCHECK is not `[--option=value ...] CMD [\"exec\", \"form\"]`")
        return None
    options = dict(re.findall(r"--([a-z-]+)=(\S+)", m.group(1)))
    image_test = json.loads(m.group(2))
    compose_check = service.get("healthcheck")
    if not compose_check:
        problem(f"services.{name}: no healthcheck (the Dockerfile has one; keep them the same)")
        return None
    test = compose_check.get("test")
    if not (isinstance(test, list) and test[:1] == ["CMD"] and test[1:] == image_test):
        problem(f"services.{name}.healthcheck.test differs from the Dockerfile's HEALTHCHECK CMD")
    for option, key, default in (("interval", "interval", "30s"), ("timeout", "timeout", "30s"),
                                 ("start-period", "start_period", "0s"), ("retries", "retries", "3")):
        image_value = options.get(option, default)
        compose_value = compose_check.get(key, default)
        same = (int(image_value) == int(compose_value)) if option == "retries" else \
            duration(image_value) == duration(compose_value)
        if not same:
            problem(f"services.{name}.healthcheck.{key}: {compose_value} here, {image_value} in the Dockerfile")

    # One port per face: --listen (the health check, EXPOSE) and --pg-listen; each published
    # container port is one of them.
    command = service_command(service, instructions)
    listen = command[command.index("--listen") + 1] if "--listen" in command else "127.0.0.1:9464"
    port = int(listen.rsplit(":", 1)[1])
    ports = {port}
    if "--pg-listen" in command:
        ports.add(int(command[command.index("--pg-listen") + 1].rsplit(":", 1)[1]))
    checked = re.search(r"/dev/tcp/[^/]+/(\d+)", " ".join(image_test))
    if not checked or int(checked.group(1)) != port:
        problem(f"the health check does not connect to the port of --listen {listen}")
    exposed = [int(p.split("/")[0]) for keyword, rest in instructions if keyword == "EXPOSE" for p in rest.split()]
    if port not in exposed:
        problem(f"{rel(dockerfile)}: EXPOSE {exposed} does not include the --listen port {port}")
    for i, mapping in enumerate(service.get("ports", [])):
        container = mapping.get("target") if isinstance(mapping, dict) else str(mapping).rsplit(":", 1)[-1].split("/")[0]
        if int(container) not in ports:
            problem(f"services.{name}.ports[{i}]: container port {container} is neither --listen nor --pg-listen ({sorted(ports)})")
    if listen.startswith(("127.", "localhost", "[::1]")):
        problem(f"services.{name}: --listen {listen} is a loopback address: other containers cannot reach it")
    return port


def service_command(service: dict, instructions: list[tuple[str, str]] | None = None) -> list[str]:
    """The arguments of deploylens in a service: its command, else the Dockerfile's CMD."""
    command = service.get("command")
    if isinstance(command, str):
        command = command.split()
    if command:
        return [str(c) for c in command]
    if instructions is None:
        build = service.get("build")
        context = host(build if isinstance(build, str) else (build or {}).get("context", "."))
        dockerfile = context / ((build or {}).get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile")
        instructions = dockerfile_instructions(dockerfile) if dockerfile.is_file() else []
    return next((json.loads(rest) for keyword, rest in instructions if keyword == "CMD"), [])


def service_environment(service: dict) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) if "=" in item else (item, "") for item in environment)
    return {str(k): "" if v is None else str(v) for k, v in environment.items()}


def option(command: list[str], flag: str) -> str | None:
    """The value of `--flag VALUE` or `--flag=VALUE`."""
    for i, arg in enumerate(command):
        if arg == flag and i + 1 < len(command):
            return command[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


# Flags of `serve` that take a value, to tell its ROOT arguments apart.
VALUE_FLAGS = {"--data-dir", "--config", "--listen", "--pattern", "--max-line-bytes", "--collector-id",
               "--follow-interval", "--poll-interval", "--rescan-interval", "--compact-small-rows",
               "--compact-max-small", "--metrics-refresh", "--metrics-windows", "--sql-timeout",
               "--sql-max-rows", "--sql-max-concurrent", "--sql-memory-mib", "--max-body-bytes",
               "--allowed-hosts", "--allowed-origins", "--max-connections", "--header-timeout",
               "--request-timeout", "--metrics-max-label-sets"}


def serve_roots(command: list[str]) -> list[str]:
    roots, args = [], command[1:] if command[:1] == ["serve"] else []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in VALUE_FLAGS:
            i += 2
            continue
        if not arg.startswith("-"):
            roots.append(arg)
        i += 1
    return roots


def is_read_only(service: dict) -> bool:
    command = service_command(service)
    env = service_environment(service)
    return "--read-only" in command or env.get("DEPLOYLENS_READ_ONLY") == "true"


def check_store(doc: dict) -> None:
    """The deploylens services that share a store: distinct collector ids, reachable storage."""
    collectors: dict[tuple[str, str], str] = {}
    for name, service in built_services(doc):
        command = service_command(service)
        if command[:1] != ["serve"]:
            continue
        env = service_environment(service)
        where = f"services.{name}"
        data_dir = option(command, "--data-dir") or env.get("DEPLOYLENS_DATA_DIR") or "/data"
        if is_read_only(service):
            if serve_roots(command) or env.get("DEPLOYLENS_ROOTS"):
                problem(f"{where}: a query node (--read-only) takes no roots")
        else:
            collector = option(command, "--collector-id") or env.get("DEPLOYLENS_COLLECTOR_ID")
            if not collector:
                problem(f"{where}: no --collector-id (or DEPLOYLENS_COLLECTOR_ID): the default, the "
                        "container's host name, changes when the container is recreated, and a new id "
                        "reads every file again")
            elif (data_dir, collector) in collectors:
                problem(f"{where}: collector id {collector!r} is also the id of "
                        f"services.{collectors[(data_dir, collector)]} on the store {data_dir}")
            else:
                collectors[(data_dir, collector)] = name
        if data_dir.startswith("s3://"):
            endpoint = env.get("AWS_ENDPOINT_URL", "")
            m = re.match(r"https?://([^/:]+)", endpoint)
            if m and m.group(1) not in doc["services"]:
                problem(f"{where}: AWS_ENDPOINT_URL {endpoint} does not name a compose service")
            if endpoint.startswith("http://") and env.get("AWS_ALLOW_HTTP") != "true":
                problem(f"{where}: AWS_ENDPOINT_URL {endpoint} is plain HTTP without AWS_ALLOW_HTTP=true")
            mounts = service_mounts(doc, name)
            for setting in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
                secret, _ = to_host(mounts, f"/run/secrets/{setting.lower()}")
                file = env.get(f"{setting}_FILE")
                if not (setting in env or secret is not None or (file and to_host(mounts, file)[0] is not None)):
                    problem(f"{where}: {setting} is neither set, nor in a mounted file "
                            f"({setting}_FILE or /run/secrets/{setting.lower()})")


# ---- Prometheus -----------------------------------------------------------------------------


def service_by_image(doc: dict, prefix: str) -> str | None:
    for name, service in doc["services"].items():
        if str(service.get("image", "")).startswith(prefix):
            return name
    return None


def check_prometheus(doc: dict, deploylens: str | None, ports: dict[str, int]) -> None:
    name = service_by_image(doc, "prom/prometheus")
    if name is None:
        problem("no prometheus service (image prom/prometheus)")
        return
    mounts = service_mounts(doc, name)
    before = len(problems)
    config_path, _ = to_host(mounts, "/etc/prometheus/prometheus.yml")
    if config_path is None or not config_path.is_file():
        problem(f"services.{name}: /etc/prometheus/prometheus.yml is not mounted from a file")
        return
    config = load_yaml(config_path)
    jobs = {job.get("job_name"): job for job in config.get("scrape_configs", [])}
    job = jobs.get("deploylens")
    if job is None:
        problem(f"{rel(config_path)}: no scrape job named deploylens (the rules and the dashboard look for it)")
    else:
        targets = [t for sc in job.get("static_configs", []) for t in sc.get("targets", [])]
        port = ports.get(deploylens) if deploylens else None
        if deploylens and port and f"{deploylens}:{port}" not in targets:
            problem(f"{rel(config_path)}: job deploylens scrapes {targets}, not {deploylens}:{port}")
    for sc_job in config.get("scrape_configs", []):
        for target in (t for sc in sc_job.get("static_configs", []) for t in sc.get("targets", [])):
            target_host, _, target_port = str(target).rpartition(":")
            if target_host not in doc["services"]:
                problem(f"{rel(config_path)}: job {sc_job.get('job_name')} scrapes {target}, not a compose service")
            elif target_host in ports and target_port != str(ports[target_host]):
                problem(f"{rel(config_path)}: job {sc_job.get('job_name')} scrapes {target}, "
                        f"but {target_host} listens on port {ports[target_host]}")
    # Every file Prometheus reads must be mounted; map them to the host for promtool.
    mapping = {}
    for rule_file in config.get("rule_files", []):
        path = rule_file if rule_file.startswith("/") else posixpath.join("/etc/prometheus", rule_file)
        source, _ = to_host(mounts, path)
        if source is None or not source.is_file():
            problem(f"{rel(config_path)}: rule file {rule_file} is not mounted in services.{name}")
        else:
            mapping[rule_file] = source
    for sc in config.get("scrape_configs", []):
        credentials = (sc.get("authorization") or {}).get("credentials_file")
        if credentials:
            source, where = to_host(mounts, credentials)
            if source is None:
                problem(f"{rel(config_path)}: credentials_file {credentials} is not mounted in services.{name}")
            else:
                mapping[credentials] = source
    if len(problems) > before:
        return  # promtool would only repeat them
    promtool = shutil.which("promtool")
    if promtool is None:
        notes.append("promtool not installed: Prometheus configuration not checked by promtool")
        return
    with tempfile.TemporaryDirectory() as tmp:
        text = config_path.read_text(encoding="utf-8")
        for container_path, source in mapping.items():
            if not source.is_file():  # a secret created on each host: use a stand-in
                source = Path(tmp) / "stand-in-secret"
                source.write_text("stand-in\n")
            text = text.replace(container_path, str(source))
        checked = Path(tmp) / "prometheus.yml"
        checked.write_text(text, encoding="utf-8")
        run = subprocess.run([promtool, "check", "config", str(checked)], capture_output=True, text=True)
        if run.returncode != 0:
            problem(f"promtool check config {rel(config_path)}:\n{run.stdout}{run.stderr}")


# ---- Grafana --------------------------------------------------------------------------------

BUILTIN_DATASOURCES = {"prometheus", "loki", "tempo", "grafana", "elasticsearch", "influxdb",
                       "mysql", "postgres", "grafana-postgresql-datasource", "mssql", "jaeger",
                       "zipkin", "graphite", "cloudwatch", "stackdriver", "testdata",
                       "grafana-testdata-datasource", "alertmanager"}


def provisioning_files(mounts, folder: str) -> list[Path]:
    files = []
    for target, source, _ in mounts:
        if source is None or not source.exists():
            continue
        if source.is_file() and posixpath.dirname(target.rstrip("/")) == folder:
            files.append(source)
        elif source.is_dir() and target.rstrip("/") == folder:
            files.extend(sorted(p for p in source.iterdir() if p.suffix in (".yml", ".yaml")))
    return files


def check_grafana(doc: dict) -> None:
    name = service_by_image(doc, "grafana/grafana")
    if name is None:
        problem("no grafana service (image grafana/grafana)")
        return
    service = doc["services"][name]
    mounts = service_mounts(doc, name)
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    plugins = {p.strip().split()[0] for p in str(environment.get("GF_INSTALL_PLUGINS", "")).split(",") if p.strip()}

    datasource_files = provisioning_files(mounts, "/etc/grafana/provisioning/datasources")
    if not datasource_files:
        problem(f"services.{name}: nothing is mounted in /etc/grafana/provisioning/datasources")
    provisioned = {}
    for path in datasource_files:
        for ds in load_yaml(path).get("datasources", []):
            where = f"{rel(path)}: datasource {ds.get('name')!r}"
            provisioned[ds.get("uid")] = ds.get("type")
            if ds.get("type") not in BUILTIN_DATASOURCES and ds.get("type") not in plugins:
                problem(f"{where}: plugin {ds.get('type')} is not in GF_INSTALL_PLUGINS of services.{name}")
            url = ds.get("url", "")
            m = re.match(r"https?://([^/:]+)(?::(\d+))?", url)
            if m and m.group(1) not in doc["services"]:
                problem(f"{where}: url {url} does not name a compose service")
            json_data = ds.get("jsonData") or {}
            secure = ds.get("secureJsonData") or {}
            if json_data.get("auth_method") == "bearerToken":
                if not secure.get("bearerToken"):
                    problem(f"{where}: auth_method bearerToken without secureJsonData.bearerToken")
                if url.rstrip("/") not in [h.rstrip("/") for h in json_data.get("allowedHosts", [])]:
                    problem(f"{where}: allowedHosts does not hold {url}: the token would not be sent to it")
            for key, value in secure.items():
                for file in re.findall(r"\$__file\{([^}]+)\}", str(value)):
                    source, where_mounted = to_host(mounts, file)
                    if source is None:
                        problem(f"{where}: {key} reads {file}, which is not mounted in services.{name}")

    dashboard_files = provisioning_files(mounts, "/etc/grafana/provisioning/dashboards")
    if not dashboard_files:
        problem(f"services.{name}: nothing is mounted in /etc/grafana/provisioning/dashboards")
    for path in dashboard_files:
        for provider in load_yaml(path).get("providers", []):
            folder = (provider.get("options") or {}).get("path")
            source, _ = to_host(mounts, folder) if folder else (None, None)
            dashboards = sorted(source.rglob("*.json")) if source is not None and source.is_dir() else []
            if not dashboards:
                problem(f"{rel(path)}: provider {provider.get('name')!r} reads {folder}, where no dashboard is mounted")
            for dashboard in dashboards:
                board = json.loads(dashboard.read_text(encoding="utf-8"))
                for variable in (board.get("templating") or {}).get("list", []):
                    if variable.get("type") != "datasource":
                        continue
                    uid = (variable.get("current") or {}).get("value")
                    if provisioned.get(uid) != variable.get("query"):
                        problem(f"{rel(dashboard)}: variable ${variable.get('name')} defaults to datasource "
                                f"uid {uid!r} of type {variable.get('query')}, which is not provisioned")


# ---- main -----------------------------------------------------------------------------------


def check_file(compose: Path, need_grafana: bool, env: dict[str, str], schema: dict) -> str | None:
    """Checks one compose file; returns its summary line, or None when it does not parse."""
    global COMPOSE, DEPLOY
    COMPOSE = compose
    DEPLOY = compose.parent
    try:
        raw = load_yaml(COMPOSE)
    except (OSError, yaml.YAMLError) as e:
        problem(f"{rel(COMPOSE)}: {e}")
        return None
    doc = interpolate_tree(raw, env)

    # The schema says draft-07 (with a $schema URL that jsonschema does not recognise).
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path])
    for error in errors:
        path = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        problem(f"{rel(COMPOSE)}: {path}: {error.message}")
    if errors:
        return None
    check_host_paths(doc)
    ports = check_dockerfile(doc)
    check_store(doc)
    built = [n for n, _ in built_services(doc)]
    # The service whose /metrics job `deploylens` scrapes: the query node, else the first one.
    served = next((n for n in built if is_read_only(doc["services"][n])), built[0] if built else None)
    check_prometheus(doc, served, ports)
    checked = "mounts, Dockerfile, collectors and Prometheus files agree"
    if need_grafana or service_by_image(doc, "grafana/grafana"):
        check_grafana(doc)
        checked = "mounts, Dockerfile, collectors, Prometheus and Grafana files agree"
    services = ", ".join(doc["services"])
    return f"{rel(COMPOSE)}: valid against the Compose Specification schema; services {services}; {checked}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", action="store_true",
                        help="interpolate from the environment and deploy/.env instead of the defaults")
    parser.add_argument("--file", type=Path, action="append",
                        help="a compose file to check (repeatable; default: " +
                             ", ".join(rel(f) for f in FILES) + ")")
    args = parser.parse_args()
    files = [(f.resolve(), FILES.get(f.resolve(), False)) for f in args.file] if args.file else list(FILES.items())

    schema_bytes = SCHEMA.read_bytes()
    if hashlib.sha256(schema_bytes).hexdigest() != SCHEMA_SHA256:
        notes.append(f"{rel(SCHEMA)} is not the vendored version (sha256 differs): update SCHEMA_SHA256 and the note on its source")
    schema = json.loads(schema_bytes)
    jsonschema.Draft7Validator.check_schema(schema)

    summaries = []
    for compose, need_grafana in files:
        env = {**read_env_file(compose.parent / ".env"), **os.environ} if args.env else {}
        summary = check_file(compose, need_grafana, env, schema)
        if summary:
            summaries.append(summary)

    for note in dict.fromkeys(notes):
        print(f"note: {note}")
    if problems:
        for p in problems:
            print(f"error: {p}", file=sys.stderr)
        print(f"FAILED: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    for summary in summaries:
        print(summary)
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
