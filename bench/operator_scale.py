"""Operator scale: one operator process with many Datasources against a real kube-apiserver + etcd.

Phases (all against the emulated Confluence with a small space and the Meilisearch emulator, each a process):

1. start: the operator with no Datasource (baseline RSS);
2. burst: most Datasources applied at once (chunks of 25 per ``kubectl apply``), until every one is Ready; their
   apply-to-Ready includes waiting behind the others' first syncs (``COCO_MAX_CONCURRENT_RUNS`` at a time);
3. steady: the remaining Datasources applied one at a time while the operator already manages the others:
   apply-to-Ready per Datasource, measured from the start of ``kubectl apply`` to Ready=True (polled every 50 ms),
   and the same minus the sync's own time (``status.lastSyncDuration``);
4. idle: nothing changes for ``idle_s`` seconds (interval 1h): RSS and CPU seconds of the operator process.
"""

from __future__ import annotations

import json
import math
import os
import re
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import kubernetes
import yaml
from kubernetes.client.exceptions import ApiException
from tests.harness.controlplane import ControlPlane

from bench.proc import PYTHON, REPO, Service, http_json
from bench.space import TOKEN, datasource_body

GROUP, VERSION = "coco.rs", "v1alpha1"
MEILI_KEY = "bench-master-key"
CHUNK = 25
NAMESPACES = 5


@dataclass
class ScaleResult:
    datasources: int
    steady_count: int
    ok: bool = False
    error: str | None = None
    baseline_rss_mb: float | None = None
    burst_apply_s: float | None = None
    burst_all_ready_s: float | None = None
    burst_ready_median_s: float | None = None
    burst_ready_p95_s: float | None = None
    steady_ready_median_s: float | None = None
    steady_ready_p95_s: float | None = None
    steady_excl_sync_median_s: float | None = None
    steady_excl_sync_p95_s: float | None = None
    steady_samples: list[dict[str, float]] = field(default_factory=list)
    peak_rss_mb: float | None = None  # highest RSS sampled while the Datasources were applied and synced
    idle_s: float | None = None
    idle_rss_mb: float | None = None
    idle_rss_max_mb: float | None = None
    idle_cpu_s_per_min: float | None = None
    not_ready: int = 0
    operator_cpu_total_s: float | None = None
    documents_per_datasource: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_go_duration(text: str | None) -> float:
    """'850ms', '12.3s', '4m5s', '1h2m3s' -> seconds (0 for None)."""
    if not text:
        return 0.0
    total = 0.0
    for value, unit in re.findall(r"([\d.]+)(ms|h|m|s)", text):
        total += float(value) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return total


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def _datasource(ns: str, name: str, endpoint: str) -> dict[str, Any]:
    return datasource_body(ns, name, endpoint)


def _ready(obj: dict[str, Any] | None) -> bool:
    if not obj:
        return False
    status = obj.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    ready = conditions.get("Ready") or {}
    return (
        ready.get("status") == "True"
        and "Reconciling" not in conditions
        and status.get("observedGeneration") == obj["metadata"].get("generation")
    )


class _Cluster:
    def __init__(self, cp: ControlPlane) -> None:
        self.cp = cp
        self.api = cp.api_client()
        self.custom = kubernetes.client.CustomObjectsApi(self.api)

    def apply(self, objects: list[dict[str, Any]]) -> None:
        self.cp.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objects))

    def get(self, ns: str, name: str) -> dict[str, Any] | None:
        try:
            return cast(
                dict[str, Any], self.custom.get_namespaced_custom_object(GROUP, VERSION, ns, "datasources", name)
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def all_datasources(self) -> list[dict[str, Any]]:
        res = cast(dict[str, Any], self.custom.list_cluster_custom_object(GROUP, VERSION, "datasources"))
        return list(res.get("items") or [])

    def connector_seen(self) -> bool:
        obj = cast(dict[str, Any], self.custom.get_cluster_custom_object(GROUP, VERSION, "connectors", "confluence"))
        return bool(obj.get("status"))


def run_scale(
    workdir: Path,
    *,
    datasources: int = 500,
    steady: int = 25,
    idle_s: float = 60,
    latency_ms: float = 50,
    space_pages: int = 20,
    log: Any = print,
) -> ScaleResult:
    steady = min(steady, datasources)
    result = ScaleResult(datasources=datasources, steady_count=steady)
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(
        os.environ,
        NO_PROXY="127.0.0.1,localhost",
        PYTHONPATH=str(REPO),
        COCO_ALLOW_HTTP="true",
        COCO_ALLOW_PRIVATE_NETWORKS="true",
        MALLOC_ARENA_MAX="2",
    )
    services: list[Service] = []
    cp = ControlPlane(workdir=workdir / "controlplane")
    try:
        log("operator scale: starting kube-apiserver + etcd")
        cp.start()
        confluence = Service(
            "confluence",
            [PYTHON, "-m", "bench.serve_space", "--pages", str(space_pages), "--latency-ms", str(latency_ms)],
            workdir / "confluence.log",
            env=env,
        )
        services.append(confluence)
        meili = Service(
            "meilisearch",
            [PYTHON, "-m", "tests.emulators.meilisearch", "--port", "0", "--master-key", MEILI_KEY],
            workdir / "meili.log",
            env=env,
        )
        services.append(meili)
        info = json.loads(confluence.wait_line('"endpoint"'))
        endpoint = str(info["endpoint"])
        meili_url = meili.wait_line("listening").rsplit(" ", 1)[-1]
        result.documents_per_datasource = int(info["space"]["pages"])

        cp.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
        cp.kubectl("wait", "--for=condition=Established", "crd/connectors.coco.rs", "crd/datasources.coco.rs")
        cp.kubectl("apply", "-f", str(REPO / "manifests/examples/connector-confluence.yaml"))
        namespaces = [f"bench-scale-{i}" for i in range(NAMESPACES)]
        for ns in namespaces:
            cp.ensure_namespace(ns)
        cluster = _Cluster(cp)
        secrets = [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": "confluence-token",
                    "namespace": ns,
                    "labels": {"coco.rs/usable-by-datasources": "true"},
                },
                "stringData": {"token": TOKEN},
            }
            for ns in namespaces
        ]
        cluster.apply(secrets)

        op_env = dict(
            env,
            KUBECONFIG=str(cp.kubeconfig),
            COCO_MEILI_URL=meili_url,
            COCO_MEILI_API_KEY=MEILI_KEY,
            COCO_MEILI_INDEX="bench_scale",
            COCO_HEALTH_PORT="0",
            COCO_METRICS_PORT="0",
        )
        op_env.pop("COCO_NAMESPACES", None)
        log("operator scale: starting the operator")
        operator = Service("operator", [PYTHON, "-m", "coco_operator.cli", "run"], workdir / "operator.log", env=op_env)
        services.append(operator)
        deadline = time.monotonic() + 60
        while not cluster.connector_seen():
            if time.monotonic() > deadline or operator.proc.poll() is not None:
                raise RuntimeError(f"the operator did not start:\n{operator.tail()}")
            time.sleep(0.2)
        time.sleep(1)
        result.baseline_rss_mb = round(operator.rss_mb(), 1)

        names = [(namespaces[i % NAMESPACES], f"wiki-{i:04d}") for i in range(datasources)]
        burst, sequential = names[: datasources - steady], names[datasources - steady :]

        # -- burst
        log(f"operator scale: applying {len(burst)} Datasources at once")
        applied_at: dict[tuple[str, str], float] = {}
        t_burst = time.monotonic()
        for start in range(0, len(burst), CHUNK):
            chunk = burst[start : start + CHUNK]
            t = time.monotonic()
            cluster.apply([_datasource(ns, name, endpoint) for ns, name in chunk])
            for key in chunk:
                applied_at[key] = t
        result.burst_apply_s = round(time.monotonic() - t_burst, 2)
        ready_at: dict[tuple[str, str], float] = {}
        peak = operator.rss_mb()
        progress_at = time.monotonic()
        # Give up when nothing became Ready for a minute (a broken setup should not take hours to show).
        while len(ready_at) < len(burst) and time.monotonic() - progress_at < 60:
            now = time.monotonic()
            for item in cluster.all_datasources():
                key = (item["metadata"]["namespace"], item["metadata"]["name"])
                if key in applied_at and key not in ready_at and _ready(item):
                    ready_at[key] = now
                    progress_at = now
            peak = max(peak, operator.rss_mb())
            time.sleep(0.5)
        result.not_ready = len(burst) - len(ready_at)
        if not ready_at:
            stuck = cluster.get(*burst[0])
            raise RuntimeError(
                f"no Datasource became Ready; {burst[0][0]}/{burst[0][1]} status: "
                f"{json.dumps((stuck or {}).get('status'))}\noperator log:\n{operator.tail(15)}"
            )
        if ready_at:
            waits = [ready_at[k] - applied_at[k] for k in ready_at]
            result.burst_all_ready_s = round(max(ready_at.values()) - t_burst, 2)
            result.burst_ready_median_s = round(statistics.median(waits), 2)
            result.burst_ready_p95_s = round(percentile(waits, 95), 2)
        log(
            f"operator scale: {len(ready_at)}/{len(burst)} Ready after {result.burst_all_ready_s}s, "
            f"operator RSS {operator.rss_mb():.0f} MB"
        )

        # -- steady: one at a time
        for ns, name in sequential:
            t0 = time.monotonic()
            cluster.apply([_datasource(ns, name, endpoint)])
            obj: dict[str, Any] | None = None
            deadline = t0 + 60
            while time.monotonic() < deadline:
                peak = max(peak, operator.rss_mb())
                obj = cluster.get(ns, name)
                if _ready(obj):
                    break
                time.sleep(0.05)
            t1 = time.monotonic()
            if not _ready(obj):
                result.not_ready += 1
                continue
            sync_s = parse_go_duration(((obj or {}).get("status") or {}).get("lastSyncDuration"))
            result.steady_samples.append(
                {"apply_to_ready_s": round(t1 - t0, 3), "sync_s": sync_s, "excl_sync_s": round(t1 - t0 - sync_s, 3)}
            )
        if result.steady_samples:
            total = [s["apply_to_ready_s"] for s in result.steady_samples]
            excl = [s["excl_sync_s"] for s in result.steady_samples]
            result.steady_ready_median_s = round(statistics.median(total), 2)
            result.steady_ready_p95_s = round(percentile(total, 95), 2)
            result.steady_excl_sync_median_s = round(statistics.median(excl), 2)
            result.steady_excl_sync_p95_s = round(percentile(excl, 95), 2)
        log(
            f"operator scale: apply-to-Ready one at a time: median {result.steady_ready_median_s}s, "
            f"p95 {result.steady_ready_p95_s}s (excluding the sync: p95 {result.steady_excl_sync_p95_s}s)"
        )

        result.peak_rss_mb = round(peak, 1)

        # -- idle
        time.sleep(5)
        log(f"operator scale: idle for {idle_s:.0f}s with {datasources} Datasources")
        cpu0, t0 = operator.cpu_s(), time.monotonic()
        samples: list[float] = []
        while time.monotonic() - t0 < idle_s:
            samples.append(operator.rss_mb())
            time.sleep(1)
        elapsed = time.monotonic() - t0
        cpu = operator.cpu_s() - cpu0
        result.idle_s = round(elapsed, 1)
        result.idle_rss_mb = round(operator.rss_mb(), 1)
        result.idle_rss_max_mb = round(max(samples), 1)
        result.idle_cpu_s_per_min = round(cpu / (elapsed / 60), 3)
        result.operator_cpu_total_s = round(operator.cpu_s(), 1)
        # Sanity check: the documents are really there.
        http_json(f"{meili_url}/health")
        result.ok = result.not_ready == 0
        if result.not_ready:
            result.error = f"{result.not_ready} Datasources did not become Ready:\n{operator.tail(15)}"
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        for service in reversed(services):
            service.stop()
        cp.stop()
    return result


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Operator scale benchmark alone")
    parser.add_argument("--datasources", type=int, default=500)
    parser.add_argument("--steady", type=int, default=25)
    parser.add_argument("--idle-s", type=float, default=60)
    parser.add_argument("--latency-ms", type=float, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="coco-bench-scale-") as tmp:
        res = run_scale(
            Path(tmp), datasources=args.datasources, steady=args.steady, idle_s=args.idle_s, latency_ms=args.latency_ms
        )
    print(json.dumps(res.as_dict(), indent=2))
    return 0 if res.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
