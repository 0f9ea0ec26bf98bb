"""Where a Datasource's status goes: the API server (the operator, a Job pod) or a JSON file (`sync --state`).

Each writer knows the status it last wrote, and writes only what changed: a merge patch computed from the wire
form of both (`status.patch`).
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

from coco_operator import status as st
from coco_operator.api.datasource import DatasourceStatus


class StatusWriter(Protocol):
    @property
    def current(self) -> DatasourceStatus:
        """The status as last written (or read)."""
        ...

    async def write(self, new: DatasourceStatus) -> None: ...


def _as_written(status: DatasourceStatus) -> DatasourceStatus:
    """The status as a reader will get it back (UTC, whole seconds), so later decisions use what others see."""
    return DatasourceStatus.model_validate(st.dump(status))


class StatusPatcher(Protocol):
    async def patch_datasource_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None: ...


class ApiStatusWriter:
    """Merge patches on the Datasource's status subresource."""

    def __init__(self, kube: StatusPatcher, namespace: str, name: str, current: DatasourceStatus) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self._current = _as_written(current)

    @property
    def current(self) -> DatasourceStatus:
        return self._current

    def adopt(self, status: DatasourceStatus) -> None:
        """Take a status read back from the API (e.g. one a sync Job wrote) as what is there now."""
        self._current = _as_written(status)

    async def write(self, new: DatasourceStatus) -> None:
        written = _as_written(new)
        patch = st.patch(self._current, written)
        if patch is not None:
            await self.kube.patch_datasource_status(self.namespace, self.name, patch)
        self._current = written


class MemoryStatusWriter:
    """Keeps the status in memory only (`coco-operator sync FILE` without --state)."""

    def __init__(self, current: DatasourceStatus | None = None) -> None:
        self._current = _as_written(current or DatasourceStatus())

    @property
    def current(self) -> DatasourceStatus:
        return self._current

    async def write(self, new: DatasourceStatus) -> None:
        self._current = _as_written(new)


class FileStatusWriter:
    """The status as a JSON file, replaced atomically, so a run outside a cluster can build on the last one."""

    def __init__(self, path: Path, current: DatasourceStatus) -> None:
        self.path = path
        self._current = _as_written(current)

    @classmethod
    def load(cls, path: Path) -> FileStatusWriter:
        """The state file's status; an empty one when the file does not exist yet (a first, full run)."""
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raw = {}
        if not isinstance(raw, dict):
            raise ValueError(f"state file {path} does not hold a JSON object; remove it to start over")
        return cls(path, st.parse(DatasourceStatus, raw, what=f"state file {path}"))

    @property
    def current(self) -> DatasourceStatus:
        return self._current

    async def write(self, new: DatasourceStatus) -> None:
        written = _as_written(new)
        if st.patch(self._current, written) is not None or not self.path.exists():
            await asyncio.to_thread(_replace, self.path, json.dumps(st.dump(written), indent=2) + "\n")
        self._current = written


def _replace(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
