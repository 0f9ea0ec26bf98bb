"""Kubernetes names for converted objects (standard library only: the command line needs them for its help)."""

from __future__ import annotations

import re
import unicodedata

DEFAULT_NAMESPACE = "default"
SECRET_KEY = "token"
SECRET_SUFFIX = "-confluence-token"
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def slugify(text: str, max_length: int = 63) -> str:
    """A DNS-1123 label from a display name: 'My Confluence Wiki' -> 'my-confluence-wiki'."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")[:max_length].rstrip("-")


def is_label(name: str) -> bool:
    return bool(DNS1123_LABEL.match(name)) and len(name) <= 63


def is_subdomain(name: str) -> bool:
    return bool(DNS1123_SUBDOMAIN.match(name)) and len(name) <= 253
