"""examples/kubernetes/beat.yaml stays true to the health endpoint it probes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from celery_pyncette._config import settings_from
from celery_pyncette._health_server import PATH

yaml = pytest.importorskip("yaml", reason="PyYAML comes with the test extra")

MANIFEST = Path(__file__).resolve().parents[2] / "examples" / "kubernetes" / "beat.yaml"


@pytest.fixture
def container() -> dict[str, Any]:
    deployment = yaml.safe_load(MANIFEST.read_text())
    assert deployment["kind"] == "Deployment"
    assert deployment["spec"]["replicas"] == 2, "several beats share one store"
    (beat,) = deployment["spec"]["template"]["spec"]["containers"]
    return beat  # type: ignore[no-any-return]


def test_the_manifest_runs_beat_with_the_pyncette_scheduler(container: dict[str, Any]) -> None:
    assert container["command"][:6] == ["celery", "-A", "proj", "beat", "-S", "pyncette"]


def test_both_probes_get_healthz_on_the_port_the_setting_opens(container: dict[str, Any]) -> None:
    env = {item["name"]: item.get("value") for item in container["env"]}
    settings = settings_from({"PYNCETTE_HEALTH_PORT": env["PYNCETTE_HEALTH_PORT"]}, {})
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}

    assert ports["health"] == settings.health_port
    assert settings.health_host == "0.0.0.0", "the kubelet probes the pod's address"
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": PATH, "port": "health"}, probe
