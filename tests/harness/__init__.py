"""Test harness: a real kube-apiserver + etcd control plane (see controlplane.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .controlplane import ControlPlane, ControlPlaneError, KubectlError, api_client_for, build_binaries

__all__ = ["ControlPlane", "ControlPlaneError", "KubectlError", "api_client_for", "build_binaries"]


def __getattr__(name: str) -> Any:
    # Lazy, so `python -m tests.harness.controlplane` does not import the module twice (runpy warns).
    if name in __all__:
        from . import controlplane

        return getattr(controlplane, name)
    raise AttributeError(name)
