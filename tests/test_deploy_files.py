"""The deployment files agree with the code, and production refuses insecure settings.

docker-compose.yml, Dockerfile and .env.example cannot be run here (no Docker engine), so these
tests check what can be checked without one: services and references, entry points, queues,
environment variables, pins. No database is used; Django runs only in subprocesses.
"""

from __future__ import annotations

import ast
import json
import os
import re
import secrets
import string
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SETTINGS_FILE = ROOT / "platform" / "config" / "settings.py"
CELERY_FILE = ROOT / "platform" / "config" / "celery.py"
CONTAINER_ROOT = "/app"  # where the Dockerfile puts the repository

INFRA_SERVICES = {"postgres", "redis", "minio", "minio-init"}
APP_SERVICES = {"migrate", "web", "worker-gpu", "worker-cpu", "beat"}
OBSERVABILITY = {"prometheus", "grafana"}
LONG_RUNNING = {"postgres", "redis", "minio", "web", "worker-gpu", "worker-cpu", "beat"}
LONG_RUNNING |= OBSERVABILITY
ONE_SHOTS = {"migrate", "minio-init"}
OPERATOR_COMMANDS = {"createtenant", "createuser", "createapikey", "audit_verify"}
ENV_READERS = {"env", "env_bool", "env_int", "env_list"}
# ${VAR}, ${VAR:-default}, ${VAR:?error} or $VAR; "$$" is compose's escape for a literal "$".
COMPOSE_VARIABLE = re.compile(r"(?<!\$)\$(?:\{([A-Za-z_][A-Za-z0-9_]*)|([A-Za-z_][A-Za-z0-9_]*))")
ENV_LINE = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$")


# --- helpers ------------------------------------------------------------------------------
@cache
def settings_variables() -> frozenset[str]:
    """Every environment variable settings.py reads: env*("NAME") and os.environ.get("NAME")."""
    names = set()
    for node in ast.walk(ast.parse(SETTINGS_FILE.read_text())):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        first = node.args[0]
        if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in ENV_READERS:
            names.add(first.value)
        elif isinstance(func, ast.Attribute) and ast.unparse(func) in {
            "os.environ.get",
            "os.getenv",
        }:
            names.add(first.value)
    return frozenset(names)


@cache
def runtime_variables() -> frozenset[str]:
    """Variables app modules read directly with os.environ.get (worker tuning knobs).

    The embedded-mode launcher (run_embedded) is left out: it never runs in production."""
    names = set()
    for folder in ("platform", "synthesis", "voices", "consent", "frontend"):
        for path in (ROOT / folder).rglob("*.py"):
            if "tests" in path.parts or path.name == "run_embedded.py" or path == SETTINGS_FILE:
                continue
            names.update(
                re.findall(
                    r"""os\.(?:environ\.get|getenv)\(\s*["']([A-Z][A-Z0-9_]*)["']""",
                    path.read_text(),
                )
            )
    return frozenset(names)


@cache
def env_example() -> tuple[dict[str, str], dict[str, str]]:
    """(app variables, compose-only variables) from .env.example, split at its marker line."""
    app: dict[str, str] = {}
    compose_only: dict[str, str] = {}
    current = app
    for line in (ROOT / ".env.example").read_text().splitlines():
        line = line.strip()
        if line.startswith("#") and "compose-only" in line.lower():
            current = compose_only
        match = ENV_LINE.match(line)
        if match:
            assert match[1] not in app and match[1] not in compose_only, f"{match[1]} twice"
            current[match[1]] = match[2]
    return app, compose_only


def compose_text() -> str:
    """docker-compose.yml without its comment lines (compose interpolates no comments)."""
    lines = (ROOT / "docker-compose.yml").read_text().splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("#"))


@pytest.fixture(scope="module")
def compose() -> dict:
    yaml = pytest.importorskip(
        "yaml", reason="PyYAML is needed to parse docker-compose.yml (add PyYAML==6.0.3)"
    )
    return yaml.safe_load(compose_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def command(service: dict) -> list[str]:
    cmd = service.get("command")
    assert isinstance(cmd, list), "use the exec (list) form for app commands"
    return [str(part) for part in cmd]


def option(cmd: list[str], *names: str) -> str | None:
    """The value of `--name value` or `--name=value` in a command line."""
    for i, part in enumerate(cmd):
        for name in names:
            if part == name and i + 1 < len(cmd):
                return cmd[i + 1]
            if part.startswith(name + "="):
                return part.split("=", 1)[1]
    return None


def depends_on(service: dict) -> dict[str, dict]:
    deps = service.get("depends_on") or {}
    return {name: {} for name in deps} if isinstance(deps, list) else deps


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def container_python_path(service: dict) -> list[Path]:
    """PYTHONPATH entries of a service, mapped from the container back into the repository."""
    paths = []
    for entry in environment(service)["PYTHONPATH"].split(":"):
        assert entry.startswith(CONTAINER_ROOT), entry
        paths.append(ROOT / entry[len(CONTAINER_ROOT) :].lstrip("/"))
    return paths


def locked_packages() -> set[str]:
    lines = (ROOT / "requirements.lock").read_text().splitlines()
    return {line.split("==")[0].lower() for line in lines if "==" in line}


def declared_queues() -> set[str]:
    return set(re.findall(r"""Queue\(\s*["']([\w.-]+)["']""", CELERY_FILE.read_text()))


def app_env(var_dir: Path, **overrides: str) -> dict[str, str]:
    """This process's environment without any Timbre setting, plus the given ones."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in settings_variables() and k != "DJANGO_SETTINGS_MODULE"
    }
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "platform")])
    env["TIMBRE_VAR_DIR"] = str(var_dir)
    env.update(overrides)
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def management_commands(tmp_path_factory) -> set[str]:
    result = manage(app_env(tmp_path_factory.mktemp("var")), "help", "--commands")
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


# --- docker-compose.yml -------------------------------------------------------------------
def test_every_expected_service_exists(services):
    missing = (INFRA_SERVICES | APP_SERVICES | OBSERVABILITY) - set(services)
    assert not missing, f"services missing from docker-compose.yml: {sorted(missing)}"


def test_depends_on_names_defined_services_with_valid_conditions(services):
    conditions = {"service_started", "service_healthy", "service_completed_successfully"}
    for name, service in services.items():
        for dep, spec in depends_on(service).items():
            assert dep in services, f"{name} depends on undefined service {dep!r}"
            condition = spec.get("condition", "service_started")
            assert condition in conditions, f"{name} -> {dep}: {condition}"
            if condition == "service_healthy":
                assert "healthcheck" in services[dep], f"{dep} has no healthcheck"
            if condition == "service_completed_successfully":
                assert dep in ONE_SHOTS, f"{name} waits for {dep} to exit, but it runs forever"


def test_app_services_start_after_healthy_infrastructure_and_migrations(services):
    for name in APP_SERVICES - {"migrate", "beat"}:
        deps = depends_on(services[name])
        for infra in ("postgres", "redis", "minio"):
            assert deps.get(infra, {}).get("condition") == "service_healthy", (name, infra)
        assert deps["migrate"]["condition"] == "service_completed_successfully", name
    assert depends_on(services["migrate"])["postgres"]["condition"] == "service_healthy"
    assert depends_on(services["beat"])["migrate"]["condition"] == "service_completed_successfully"


def test_app_services_share_one_image_and_the_production_environment(services):
    images = {services[name].get("image") for name in APP_SERVICES}
    assert len(images) == 1 and None not in images, f"app services must share one image: {images}"
    for name in APP_SERVICES:
        service = services[name]
        build = service["build"]
        assert (ROOT / build["context"] / build.get("dockerfile", "Dockerfile")).is_file()
        env_files = service.get("env_file")
        assert ".env" in ([env_files] if isinstance(env_files, str) else env_files), name
        env = environment(service)
        assert env["TIMBRE_ENV"] == "production", name
        assert env["PYTHONPATH"] == "/app:/app/platform", name


def test_web_command_is_gunicorn_on_the_real_wsgi_application(services):
    cmd = command(services["web"])
    assert cmd[0] == "gunicorn" and "gunicorn" in locked_packages()
    target = next(part for part in cmd[1:] if re.fullmatch(r"[\w.]+:\w+", part))
    assert target == "config.wsgi:application"
    module, attribute = target.split(":")
    module_file = ROOT / option(cmd, "--pythonpath") / (module.replace(".", "/") + ".py")
    assert module_file == ROOT / "platform" / "config" / "wsgi.py" and module_file.is_file()
    assigned = {
        t.id
        for node in ast.parse(module_file.read_text()).body
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    assert attribute in assigned
    for flag in ("--workers", "--threads"):
        assert re.fullmatch(r"\$\{[A-Z_]+(:-\d+)?\}", option(cmd, flag) or ""), (
            f"web {flag} should come from the environment"
        )
    assert option(cmd, "--bind").endswith(":8000")


def test_web_healthcheck_probes_healthz(services):
    check = " ".join(map(str, services["web"]["healthcheck"]["test"]))
    assert "/healthz" in check and "ALLOWED_HOSTS" in check
    assert "healthz" in (ROOT / "platform" / "core" / "urls.py").read_text()


@pytest.mark.parametrize("name", ["worker-gpu", "worker-cpu", "beat"])
def test_celery_commands_use_the_real_app_and_queues(services, name):
    cmd = command(services[name])
    assert cmd[0] == "celery" and "celery" in locked_packages()
    app = option(cmd, "-A", "--app")
    assert app == "config"
    packages = [p / app for p in container_python_path(services[name]) if (p / app).is_dir()]
    assert packages == [ROOT / "platform" / "config"], packages
    assert CELERY_FILE.is_file()
    assert "celery_app" in (ROOT / "platform" / "config" / "__init__.py").read_text()
    if name == "beat":
        assert cmd[3] == "beat"
        return
    assert cmd[3] == "worker"
    queues = set(option(cmd, "-Q", "--queues").split(","))
    assert queues <= declared_queues(), f"{name} consumes undeclared queues"
    assert queues == {name.removeprefix("worker-")}
    assert option(cmd, "--max-tasks-per-child") is not None


def test_worker_gpu_reserves_an_nvidia_gpu_and_prefetches_one_task(services):
    service = services["worker-gpu"]
    devices = service["deploy"]["resources"]["reservations"]["devices"]
    assert any(
        d.get("driver") == "nvidia" and d.get("count") == 1 and "gpu" in d.get("capabilities", [])
        for d in devices
    ), devices
    cmd = command(service)
    assert option(cmd, "--prefetch-multiplier") == "1"
    assert option(cmd, "-c", "--concurrency") == "1"
    assert "deploy" not in services["worker-cpu"]


def test_migrate_runs_real_management_commands(services, management_commands):
    cmd = command(services["migrate"])
    assert cmd[:2] == ["python", "manage.py"] and (ROOT / "manage.py").is_file()
    assert cmd[2] == "migrate" and cmd[2] in management_commands


def test_operator_commands_in_the_docs_exist(management_commands):
    assert OPERATOR_COMMANDS <= management_commands
    docs = (ROOT / "docs" / "operations.md").read_text()
    documented = set(re.findall(r"manage\.py\s+([a-z_]+)", docs))
    assert OPERATOR_COMMANDS <= documented
    assert documented <= management_commands, documented - management_commands


def test_minio_init_creates_a_versioned_bucket(services):
    service = services["minio-init"]
    script = " ".join(map(str, [*service.get("entrypoint", []), *service.get("command", [])]))
    assert "mc mb" in script and "version enable" in script and "S3_BUCKET" in script
    assert environment(service)["S3_BUCKET"].startswith("${S3_BUCKET")


def test_restart_policies(services):
    for name in ONE_SHOTS:
        assert services[name]["restart"] == "no", name
    for name in LONG_RUNNING:
        assert services[name]["restart"] in {"always", "unless-stopped", "on-failure"}, name


def test_only_web_and_the_minio_and_grafana_consoles_are_published(services):
    published = {name for name, service in services.items() if service.get("ports")}
    assert published <= {"web", "minio", "grafana"}, published
    assert all(str(p).endswith(":3000") for p in services["grafana"].get("ports", []))
    assert all("127.0.0.1:3000" in str(p) for p in services["grafana"].get("ports", []))
    assert all(str(p).endswith(":8000") for p in services["web"]["ports"])
    assert all(str(p).endswith(":9001") for p in services["minio"].get("ports", []))


def test_named_volumes_and_private_network_are_declared(compose, services):
    declared = set(compose.get("volumes") or {})
    networks = set(compose.get("networks") or {})
    assert networks, "declare a private network"
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name}: undeclared volume {source}"
        assert set(service.get("networks") or []) and set(service["networks"]) <= networks, name
    for data in ("postgres", "minio"):
        assert any(str(v).split(":")[0] in declared for v in services[data]["volumes"]), data


# --- Prometheus and Grafana -----------------------------------------------------------------
DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "timbre-rollouts.json"
# Suffixes Prometheus adds to a counter's or a histogram's series.
SERIES_SUFFIXES = ("_total", "_bucket", "_sum", "_count", "_created")


def yaml_file(path: Path):
    yaml = pytest.importorskip("yaml", reason="PyYAML is needed to parse deployment files")
    return yaml.safe_load(path.read_text())


def mounts(service: dict) -> dict[str, str]:
    """{container path: repository path} of the service's bind mounts."""
    found = {}
    for volume in service.get("volumes", []):
        source, target = str(volume).split(":")[:2]
        if source.startswith("./"):
            found[target] = source
    return found


def defined_metrics() -> set[str]:
    """Every metric family core/metrics.py defines (read from the live registry)."""
    from core import metrics

    names = {family.name for family in metrics.REGISTRY.collect()}
    return names | set(metrics.STATE_METRICS)


def test_prometheus_scrapes_web_metrics_and_every_worker_port(services):
    prometheus = services["prometheus"]
    config_path = mounts(prometheus)["/etc/prometheus/prometheus.yml"]
    config = yaml_file(ROOT / config_path)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    web = jobs["timbre-web"]
    assert web["metrics_path"] == "/metrics"
    assert web["static_configs"][0]["targets"] == ["web:8000"]
    assert "credentials_file" in web["authorization"]  # METRICS_TOKEN, written at start
    assert "METRICS_TOKEN" in environment(prometheus)
    port = environment(services["worker-gpu"])["WORKER_METRICS_PORT"]
    assert environment(services["worker-cpu"])["WORKER_METRICS_PORT"] == port
    (discovery,) = jobs["timbre-workers"]["dns_sd_configs"]
    assert set(discovery["names"]) == {"worker-gpu", "worker-cpu"}
    assert str(discovery["port"]) == port
    # Every app service keeps multiprocess metric files on a fresh tmpfs.
    for name in APP_SERVICES:
        env = environment(services[name])
        assert env["PROMETHEUS_MULTIPROC_DIR"] in services[name]["tmpfs"], name


def test_grafana_provisions_the_prometheus_datasource_and_the_dashboard(services):
    grafana = services["grafana"]
    volumes = mounts(grafana)
    provisioning = ROOT / volumes["/etc/grafana/provisioning"]
    (datasource,) = yaml_file(provisioning / "datasources" / "prometheus.yml")["datasources"]
    assert datasource["type"] == "prometheus" and datasource["url"] == "http://prometheus:9090"
    (provider,) = yaml_file(provisioning / "dashboards" / "timbre.yml")["providers"]
    dashboards = ROOT / volumes[provider["options"]["path"]]
    assert DASHBOARD in dashboards.glob("*.json")
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
        assert panel["targets"], panel["title"]


def test_the_dashboard_queries_only_metrics_the_code_defines():
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    queries += [v["query"] for v in dashboard["templating"]["list"]]
    used = set()
    for query in queries:
        for name in re.findall(r"\btimbre_[a-z0-9_]+", query):
            for suffix in SERIES_SUFFIXES:
                if name.endswith(suffix) and name.removesuffix(suffix) in defined_metrics():
                    name = name.removesuffix(suffix)
                    break
            used.add(name)
    unknown = used - defined_metrics()
    assert not unknown, f"the dashboard queries metrics core/metrics.py does not define: {unknown}"
    # Candidate against stable: per version, every guardrail signal is on the dashboard.
    for name in (
        "timbre_synthesis_requests",
        "timbre_synthesis_errors",
        "timbre_synthesis_latency_per_char_seconds",
        "timbre_synthesis_rtf",
        "timbre_quality_mos",
        "timbre_quality_wer",
        "timbre_quality_similarity",
        "timbre_rollout_percent",
        "timbre_rollout_state",
        "timbre_queue_depth",
    ):
        assert name in used, name
    targets = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert all("model_version" in q for q in targets if "timbre_synthesis" in q)


# --- environment variables ----------------------------------------------------------------
def test_every_compose_variable_is_listed_in_env_example():
    referenced = {a or b for a, b in COMPOSE_VARIABLE.findall(compose_text())}
    app, compose_only = env_example()
    missing = referenced - set(app) - set(compose_only)
    assert not missing, f"add to .env.example: {sorted(missing)}"


def test_env_example_lists_exactly_the_settings_the_app_reads():
    app, compose_only = env_example()
    read = settings_variables() | runtime_variables()
    assert not set(app) - read, f"listed as app settings but not read: {sorted(set(app) - read)}"
    assert not read - set(app), f"read by the app but not listed: {sorted(read - set(app))}"
    # os.environ.get does not treat "" as unset the way settings' env() does.
    empty = {name for name in runtime_variables() - settings_variables() if not app[name]}
    assert not empty, f"give these a value in .env.example: {sorted(empty)}"
    assert not set(compose_only) & read, "a compose-only variable is read by the app"
    referenced = {a or b for a, b in COMPOSE_VARIABLE.findall(compose_text())}
    unused = set(compose_only) - referenced
    assert not unused, f"compose-only variables unused by docker-compose.yml: {sorted(unused)}"


def test_env_example_placeholders_cannot_start_production():
    app, _ = env_example()
    assert len(app["SECRET_KEY"]) < 32, "the SECRET_KEY placeholder must be refused"
    assert not app["WATERMARK_KEYS"], "WATERMARK_KEYS must be left for the operator to set"
    assert not app["API_KEY_PEPPER"], "API_KEY_PEPPER must be left for the operator to set"
    assert app["DEBUG"] in {"0", "false", "off", "no"}
    assert app["TIMBRE_ENV"] == "production"
    assert re.fullmatch(r"postgres://[^@]+@postgres:5432/\w+", app["DATABASE_URL"])
    assert app["S3_ENDPOINT"] == "minio:9000"


# --- Dockerfile ---------------------------------------------------------------------------
def test_dockerfile_pins_torch_and_builds_audiowmark():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "torch==2.13.0" in dockerfile
    assert not re.search(r"torch\s*(>=|<=|~=|>|<|!=)", dockerfile)
    assert "torch==2.13.0" in (ROOT / "requirements.lock").read_text().splitlines()
    assert "AUDIOWMARK_VERSION=0.6.5" in dockerfile
    assert "./configure" in dockerfile and "make install" in dockerfile
    assert re.search(
        r"COPY --from=\S+ /usr/local/bin/audiowmark /usr/local/bin/audiowmark", dockerfile
    )
    assert "FROM python:3.11-slim-bookworm" in dockerfile
    assert "pip install -r requirements.lock" in dockerfile
    assert "collectstatic" in dockerfile
    assert re.search(r"^USER (?!root\b)\S+", dockerfile, re.M)
    assert re.search(r"^EXPOSE 8000$", dockerfile, re.M)


def test_dockerfile_installs_the_makefile_system_packages():
    makefile = (ROOT / "Makefile").read_text()
    packages = set(re.search(r"^SYSTEM_PACKAGES := (.+)$", makefile, re.M)[1].split())
    runtime = (ROOT / "Dockerfile").read_text().split("AS runtime", 1)[1]
    # chromium and nodejs (axe-core) are for browser tests, curl and jq for the README's
    # walkthrough; the console's runtime assets are vendored, so the image needs no Node.js.
    host_only = {"chromium", "nodejs", "curl", "jq"}
    missing = {p for p in packages - host_only if not re.search(rf"\s{re.escape(p)}\s", runtime)}
    assert not missing, f"runtime image lacks {sorted(missing)}"


def test_dockerignore_keeps_secrets_and_state_out():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".env", ".git", ".venv", "var"} <= ignored


# --- production settings ------------------------------------------------------------------
def _random_secret(length: int = 50) -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(length))


def production_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    values = {
        "TIMBRE_ENV": "production",
        "SECRET_KEY": _random_secret(),
        "API_KEY_PEPPER": _random_secret(),
        "ALLOWED_HOSTS": "example.com",
        "WATERMARK_KEYS": "k1:c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}",
    }
    values.update(overrides)
    return app_env(tmp_path / "var", **{k: v for k, v in values.items() if v is not None})


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"SECRET_KEY": None}, "SECRET_KEY"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"DEBUG": "1"}, "DEBUG must be off"),
        ({"ALLOWED_HOSTS": "*"}, "ALLOWED_HOSTS"),
        ({"WATERMARK_KEYS": None}, "WATERMARK_KEYS"),
        ({"API_KEY_PEPPER": None}, "API_KEY_PEPPER"),
        ({"API_KEY_PEPPER": "short"}, "API_KEY_PEPPER"),
    ],
    ids=[
        "no-secret-key",
        "short-secret-key",
        "debug",
        "wildcard-hosts",
        "no-watermark-keys",
        "no-pepper",
        "short-pepper",
    ],
)
def test_production_refuses_insecure_settings(tmp_path, overrides, problem):
    result = manage(production_env(tmp_path, **overrides), "check")
    assert result.returncode != 0
    assert "Refusing to start" in result.stderr and problem in result.stderr, result.stderr


def test_production_starts_with_proper_settings(tmp_path):
    result = manage(production_env(tmp_path), "check")
    assert result.returncode == 0, result.stderr


def test_platform_directory_does_not_shadow_the_stdlib(tmp_path):
    code = (
        "import platform, torch; "
        "print(platform.__file__); print(platform.system()); print(torch.__version__)"
    )
    result = manage(app_env(tmp_path / "var"), "shell", "-c", code)
    assert result.returncode == 0, result.stderr
    module_file, system, torch_version = result.stdout.split()[-3:]
    assert not Path(module_file).resolve().is_relative_to(ROOT), module_file
    assert system
    assert torch_version.startswith("2.13.0")
