"""A real Kubernetes control plane (etcd + kube-apiserver) for tests, envtest-style.

No controller-manager, scheduler or kubelet runs: objects are stored and served with real validation, RBAC
and admission, but pods never run, garbage collection does not happen and deleted namespaces stay Terminating.

CLI (used by the local demo)::

    python -m tests.harness.controlplane build         # build/locate the binaries, print the bin dir
    python -m tests.harness.controlplane up --dir DIR  # print KUBECONFIG=DIR/kubeconfig; run until SIGTERM
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import kubernetes.client
import kubernetes.config
import yaml
from kubernetes.client.exceptions import ApiException

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "hack" / "build-control-plane.sh"
KUBECTL = Path("/usr/bin/kubectl")
STOP_GRACE_S = 10.0
SERVICE_CIDR = "10.0.0.0/24"
LOG_TAIL_LINES = 40


class ControlPlaneError(RuntimeError):
    """The control plane could not be started (the message carries the tail of the failing process' log)."""


class KubectlError(subprocess.CalledProcessError):
    """A failed kubectl call; unlike CalledProcessError its message includes kubectl's stderr."""

    def __str__(self) -> str:
        return f"{super().__str__()}\nstderr: {(self.stderr or '').strip()}"


def build_binaries() -> Path:
    """Run hack/build-control-plane.sh (a no-op when the binaries are cached) and return its bin directory."""
    # stderr is left attached so a cold build (several minutes) shows its progress.
    out = subprocess.run(["bash", str(BUILD_SCRIPT)], check=True, stdout=subprocess.PIPE, text=True).stdout
    return Path(out.strip().splitlines()[-1])


def api_client_for(kubeconfig: Path) -> kubernetes.client.ApiClient:
    """A new ApiClient from a kubeconfig file (e.g. one from ControlPlane.write_kubeconfig_for_token)."""
    client: kubernetes.client.ApiClient = kubernetes.config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(kubeconfig)
    )
    return client


PORT_ATTEMPTS = 3  # a free port can be taken between finding it and binding it


def _free_port() -> int:
    # Racy by nature (the port is released before the server binds it): start() then tries other ports.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "<no log>"
    return "\n".join(text.splitlines()[-lines:])


def _terminate(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    # Children run in their own session (process group id == pid), so signal the whole group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@dataclass
class ControlPlane:
    workdir: Path
    bin_dir: Path | None = None
    token: str = field(default_factory=lambda: secrets.token_hex(24), repr=False)
    kubectl_path: Path = KUBECTL
    # Where pods reach the API server (the test node's bridge address, tests/harness/node.py). None: loopback only,
    # and no pods run, so the ServiceAccount admission plugin is off (nothing creates default ServiceAccounts).
    pod_address: str | None = None

    _etcd_port: int = field(default=0, init=False, repr=False)
    _etcd_peer_port: int = field(default=0, init=False, repr=False)
    _port: int = field(default=0, init=False, repr=False)
    _etcd: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _apiserver: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    # ----------------------------------------------------------------------------------------------- paths

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def server(self) -> str:
        if not self._port:
            raise ControlPlaneError("control plane not started")
        return f"https://{self.address}:{self._port}"

    @property
    def address(self) -> str:
        return self.pod_address or "127.0.0.1"

    @property
    def service_account_key(self) -> Path:
        """The RSA key that signs ServiceAccount tokens (kube-controller-manager signs with it too)."""
        return self.workdir / "sa.key"

    @property
    def etcd_url(self) -> str:
        return f"http://127.0.0.1:{self._etcd_port}"

    @property
    def cert_dir(self) -> Path:
        return self.workdir / "certs"

    @property
    def ca_file(self) -> Path:
        # The self-signed serving cert file also carries its CA, so it works as certificate-authority.
        return self.cert_dir / "apiserver.crt"

    @property
    def etcd_log(self) -> Path:
        return self.workdir / "etcd.log"

    @property
    def apiserver_log(self) -> Path:
        return self.workdir / "kube-apiserver.log"

    @property
    def running(self) -> bool:
        return all(p is not None and p.poll() is None for p in (self._etcd, self._apiserver))

    # ------------------------------------------------------------------------------------------- lifecycle

    def start(self, timeout_s: float = 120) -> None:
        """Start etcd, then kube-apiserver; write the admin kubeconfig; wait for the `default` namespace.

        An existing workdir's etcd data and serving cert are reused (so `up --dir` twice keeps objects).
        """
        if self._etcd is not None or self._apiserver is not None:
            raise ControlPlaneError("already started")
        deadline = time.monotonic() + timeout_s
        self.workdir = self.workdir.resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.bin_dir is None:
            self.bin_dir = build_binaries()
        for name in ("etcd", "kube-apiserver"):
            if not (self.bin_dir / name).is_file():
                raise ControlPlaneError(f"{self.bin_dir / name} missing; run hack/build-control-plane.sh")
        # Keep the ports of an earlier start() of this object, so stop(); start() looks like a restart.
        fresh = not self._port
        self._write_auth_files()
        for attempt in range(PORT_ATTEMPTS):
            if fresh:
                self._etcd_port, self._etcd_peer_port, self._port = _free_port(), _free_port(), _free_port()
            atexit.register(self.stop)
            try:
                self._start_etcd(deadline)
                self._start_apiserver(deadline)
                self._write_kubeconfig(self.token, self.kubeconfig)
                self._wait_default_namespace(deadline)
                return
            except ControlPlaneError as exc:
                self.stop()
                # A port found free was taken by another process before the server bound it: other ports.
                if not (fresh and attempt + 1 < PORT_ATTEMPTS and "address already in use" in str(exc)):
                    raise
            except BaseException:
                self.stop()
                raise

    def stop(self) -> None:
        # API server first, so it does not spend the grace period retrying a vanished etcd.
        _terminate(self._apiserver)
        _terminate(self._etcd)
        self._apiserver = None
        self._etcd = None
        atexit.unregister(self.stop)

    def restart_apiserver(self, timeout_s: float = 60) -> None:
        """Stop and start kube-apiserver only (same port, certs and token); etcd and its data stay."""
        if self._etcd is None:
            raise ControlPlaneError("control plane not started")
        _terminate(self._apiserver)
        self._apiserver = None
        self._start_apiserver(time.monotonic() + timeout_s)

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -------------------------------------------------------------------------------------------- clients

    def api_client(self) -> kubernetes.client.ApiClient:
        """A new ApiClient for the admin kubeconfig; the caller closes it (it is a context manager)."""
        return api_client_for(self.kubeconfig)

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, kubeconfig: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl as admin, or with another kubeconfig (e.g. from write_kubeconfig_for_token)."""
        cmd = [str(self.kubectl_path), "--kubeconfig", str(kubeconfig or self.kubeconfig), *args]
        res = subprocess.run(cmd, input=input, capture_output=True, text=True, check=False)
        if check and res.returncode != 0:
            raise KubectlError(res.returncode, cmd, res.stdout, res.stderr)
        return res

    def ensure_namespace(self, name: str) -> None:
        """Create a namespace unless it exists (nothing else creates namespaces here)."""
        with self.api_client() as api:
            try:
                kubernetes.client.CoreV1Api(api).create_namespace(
                    kubernetes.client.V1Namespace(metadata=kubernetes.client.V1ObjectMeta(name=name))
                )
            except ApiException as e:
                if e.status != 409:
                    raise

    def create_service_account_token(self, namespace: str, name: str, duration_s: int = 3600) -> str:
        """A token for an existing ServiceAccount via the TokenRequest API (the API enforces >= 600s)."""
        # Empty audiences: the apiserver fills in its own (the issuer), which is what in-cluster clients use.
        body = kubernetes.client.AuthenticationV1TokenRequest(
            spec=kubernetes.client.V1TokenRequestSpec(audiences=[], expiration_seconds=duration_s)
        )
        with self.api_client() as api:
            core = kubernetes.client.CoreV1Api(api)
            res = core.create_namespaced_service_account_token(name, namespace, body)
        if res.status is None or not res.status.token:
            raise ControlPlaneError(f"TokenRequest for {namespace}/{name} returned no token")
        return str(res.status.token)

    def write_kubeconfig_for_token(self, token: str, path: Path) -> Path:
        """A kubeconfig for this server authenticating with `token` (e.g. a ServiceAccount's)."""
        return self._write_kubeconfig(token, path)

    # ------------------------------------------------------------------------------------------ internals

    def _write_auth_files(self) -> None:
        self.cert_dir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "tokens.csv").write_text(f'{self.token},admin,admin-uid,"system:masters"\n')
        sa_key = self.service_account_key
        if not sa_key.exists():
            # Kept across restarts so ServiceAccount tokens issued earlier stay valid.
            subprocess.run(
                ["openssl", "genrsa", "-out", str(sa_key), "2048"], check=True, capture_output=True, text=True
            )

    def _spawn(self, args: list[str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as f:
            f.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(args)}\n".encode())
            f.flush()
            # start_new_session: own process group, and Ctrl-C in the demo's terminal reaches only us.
            return subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT, start_new_session=True
            )

    def _start_etcd(self, deadline: float) -> None:
        assert self.bin_dir is not None
        peer = f"http://127.0.0.1:{self._etcd_peer_port}"
        self._etcd = self._spawn(
            [
                str(self.bin_dir / "etcd"),
                "--name=default",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=default={peer}",
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
            self.etcd_log,
        )
        self._wait(self._etcd, self.etcd_log, deadline, "etcd", self._etcd_healthy)

    def _start_apiserver(self, deadline: float) -> None:
        assert self.bin_dir is not None
        sa_key = str(self.service_account_key)
        if self.pod_address is None:
            pods = [
                # A loopback advertise address breaks the `kubernetes` Endpoints reconciler.
                "--endpoint-reconciler-type=none",
                # No controller creates default ServiceAccounts, so the plugin would reject every pod.
                "--disable-admission-plugins=ServiceAccount",
            ]
        else:
            # A real node: the `kubernetes` Service points at pod_address, pods get ServiceAccounts, and the node is
            # reached (logs, exec) by its address, its name not being in any DNS.
            pods = ["--kubelet-preferred-address-types=InternalIP"]
        self._apiserver = self._spawn(
            [
                str(self.bin_dir / "kube-apiserver"),
                f"--etcd-servers={self.etcd_url}",
                f"--cert-dir={self.cert_dir}",
                f"--secure-port={self._port}",
                f"--bind-address={self.address}",
                f"--advertise-address={self.address}",
                *pods,
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--allow-privileged=true",
                "--authorization-mode=RBAC",
                f"--service-account-issuer={self.server}/",
                f"--service-account-key-file={sa_key}",
                f"--service-account-signing-key-file={sa_key}",
                f"--token-auth-file={self.workdir / 'tokens.csv'}",
            ],
            self.apiserver_log,
        )
        self._wait(self._apiserver, self.apiserver_log, deadline, "kube-apiserver", self._apiserver_ready)

    def _wait(
        self,
        proc: subprocess.Popen[bytes],
        log: Path,
        deadline: float,
        what: str,
        ready: Callable[[], bool],
    ) -> None:
        while True:
            rc = proc.poll()
            if rc is not None:
                raise ControlPlaneError(f"{what} exited with {rc} during start; {log}:\n{_log_tail(log)}")
            if ready():
                return
            if time.monotonic() > deadline:
                raise ControlPlaneError(f"{what} not ready in time; {log}:\n{_log_tail(log)}")
            time.sleep(0.1)

    def _etcd_healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.etcd_url}/health", timeout=2) as r:
                return bool(json.load(r).get("health") == "true")
        except (OSError, ValueError):
            return False

    def _apiserver_ready(self) -> bool:
        # Unverified TLS: the self-signed cert may still be being written; the kubeconfig verifies it later.
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        headers = {"Authorization": f"Bearer {self.token}"}
        req = urllib.request.Request(f"{self.server}/readyz", headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=2, context=ctx) as r:
                return bool(r.status == 200)
        except OSError:  # includes HTTPError (e.g. 500 while post-start hooks run) and TLS errors
            return False

    def _write_kubeconfig(self, token: str, path: Path) -> Path:
        cfg = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "coco-test",
                    "cluster": {"server": self.server, "certificate-authority": str(self.ca_file)},
                }
            ],
            "users": [{"name": "coco-test", "user": {"token": token}}],
            "contexts": [{"name": "coco-test", "context": {"cluster": "coco-test", "user": "coco-test"}}],
            "current-context": "coco-test",
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written then renamed, so a reader never sees half a file; 0600 because it holds a token.
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(yaml.safe_dump(cfg, sort_keys=False))
        tmp.chmod(0o600)
        tmp.replace(path)
        return path

    def _wait_default_namespace(self, deadline: float) -> None:
        # The apiserver's own bootstrap controller creates `default` shortly after readyz; create it if slow.
        deadline = min(deadline, time.monotonic() + 10)
        with self.api_client() as api:
            core = kubernetes.client.CoreV1Api(api)
            while True:
                try:
                    core.read_namespace("default")
                    return
                except ApiException as e:
                    if e.status != 404:
                        raise
                if time.monotonic() > deadline:
                    self.ensure_namespace("default")
                    return
                time.sleep(0.1)


# ------------------------------------------------------------------------------------------------- CLI


@contextlib.contextmanager
def _signals_set(event: threading.Event) -> Iterator[None]:
    previous = {sig: signal.signal(sig, lambda *_: event.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.harness.controlplane", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start etcd + kube-apiserver and stay in the foreground")
    up.add_argument("--dir", type=Path, required=True, help="work directory (data, certs, kubeconfig, logs)")
    up.add_argument("--bin-dir", type=Path, default=None, help="binaries (default: build script's bin dir)")
    up.add_argument("--timeout", type=float, default=120)
    sub.add_parser("build", help="build (or locate) kube-apiserver, etcd and helm; print the bin dir")
    args = parser.parse_args(argv)

    if args.command == "build":
        print(build_binaries())
        return 0

    stop = threading.Event()
    with _signals_set(stop):
        cp = ControlPlane(workdir=args.dir, bin_dir=args.bin_dir)
        t0 = time.monotonic()
        try:
            cp.start(timeout_s=args.timeout)
        except ControlPlaneError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        print(f"control plane up at {cp.server} in {time.monotonic() - t0:.1f}s", file=sys.stderr)
        print(f"KUBECONFIG={cp.kubeconfig}", flush=True)
        try:
            # Also notice a process dying underneath us, rather than pretending to be up.
            while not stop.wait(1.0):
                if not cp.running:
                    print(
                        "error: etcd or kube-apiserver exited; see logs in " + str(cp.workdir),
                        file=sys.stderr,
                    )
                    return 1
        finally:
            print("stopping control plane", file=sys.stderr)
            cp.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
