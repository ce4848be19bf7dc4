"""Render a kubeconfig with embedded certificates or a bootstrap token."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from ansible_collections.kubesmith.cluster.plugins.module_utils.pki import (
    KEY_MODE,
    Outcome,
    PkiStore,
)
from cryptography import x509
from cryptography.hazmat.primitives import serialization


class KubeconfigError(ValueError):
    """Bad kubeconfig data; the message names the field, its value and the fix."""


def pem_field(spec: Mapping[str, Any], name: str) -> bytes | None:
    """PEM from spec[name] or from the file spec[name + '_file'] (never both)."""
    inline, file_name = spec.get(name), spec.get(f"{name}_file")
    if inline and file_name:
        raise KubeconfigError(f"{name}: give either {name} or {name}_file, not both")
    if file_name:
        try:
            return Path(str(file_name)).read_bytes()
        except OSError as exc:
            raise KubeconfigError(
                f"{name}_file: cannot read {file_name!r} ({exc.strerror})"
            ) from exc
    if inline:
        if not isinstance(inline, str):
            raise KubeconfigError(f"{name}: expected PEM text, got {type(inline).__name__}")
        return inline.encode()
    return None


def load_certificate(data: bytes, name: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise KubeconfigError(f"{name}: not a PEM certificate ({exc})") from exc


def check_server(server: Any) -> str:
    if not isinstance(server, str):
        raise KubeconfigError(f"server: expected a URL like https://10.0.0.1:6443, got {server!r}")
    parts = urlsplit(server)
    if parts.scheme != "https" or not parts.hostname:
        raise KubeconfigError(
            f"server: {server!r} is not valid; use an https URL with a host, "
            "e.g. https://10.0.0.1:6443"
        )
    return str(server)


def text(spec: Mapping[str, Any], name: str, default: str | None = None) -> str:
    value = spec.get(name) or default
    if not isinstance(value, str) or not value:
        raise KubeconfigError(f"{name}: expected a non-empty string, got {value!r}")
    # str() drops subclasses (Ansible's tagged strings), which yaml.safe_dump cannot represent.
    return str(value)


def user_entry(spec: Mapping[str, Any]) -> dict[str, str]:
    token = spec.get("token")
    cert = pem_field(spec, "client_cert")
    key = pem_field(spec, "client_key")
    if token and (cert or key):
        raise KubeconfigError("token: give either token or client_cert/client_key, not both")
    if token:
        if not isinstance(token, str):
            raise KubeconfigError("token: expected a string")
        return {"token": str(token)}
    if not cert or not key:
        raise KubeconfigError(
            "client_cert/client_key: a user needs both (PEM text or *_file), or a token"
        )
    certificate = load_certificate(cert, "client_cert")
    try:
        private_key = serialization.load_pem_private_key(key, password=None)
    except (ValueError, TypeError) as exc:
        raise KubeconfigError("client_key: not an unencrypted PEM private key") from exc
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if private_key.public_key().public_bytes(
        serialization.Encoding.DER, spki
    ) != certificate.public_key().public_bytes(serialization.Encoding.DER, spki):
        raise KubeconfigError("client_key: does not belong to client_cert")
    return {
        "client-certificate-data": base64.b64encode(cert).decode(),
        "client-key-data": base64.b64encode(key).decode(),
    }


def render_kubeconfig(spec: Any) -> str:
    """kubeconfig YAML for one cluster, one user and one context (the current one)."""
    if not isinstance(spec, Mapping):
        raise KubeconfigError(f"kubeconfig: expected a mapping, got {spec!r}")
    cluster = text(spec, "cluster_name")
    user = text(spec, "user")
    context = text(spec, "context", f"{user}@{cluster}")
    ca = pem_field(spec, "ca_cert")
    if ca is None:
        raise KubeconfigError(
            "ca_cert: missing; give PEM text in ca_cert or a path in ca_cert_file"
        )
    load_certificate(ca, "ca_cert")
    context_entry = {"cluster": cluster, "user": user}
    if spec.get("namespace"):
        context_entry["namespace"] = text(spec, "namespace")
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster,
                "cluster": {
                    "server": check_server(spec.get("server")),
                    "certificate-authority-data": base64.b64encode(ca).decode(),
                },
            }
        ],
        "users": [{"name": user, "user": user_entry(spec)}],
        "contexts": [{"name": context, "context": context_entry}],
        "current-context": context,
        "preferences": {},
    }
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False)


def ensure_kubeconfigs(
    store: PkiStore, items: Sequence[Mapping[str, Any]], check_mode: bool, reissued: set[str]
) -> list[Outcome]:
    """Write kubeconfigs embedding certificates of the PKI directory, 0600, only on change.

    Each item: path (relative to the PKI directory), cluster_name, server, user, cert (path of
    a leaf without extension) and ca (default 'ca'). reissued holds the paths of items the
    same run (re)wrote or would write: in check mode their new content does not exist yet.
    """
    outcomes = []
    for position, item in enumerate(items):
        path = text(item, "path")
        if path.startswith("/") or ".." in path.split("/"):
            raise KubeconfigError(
                f"kubeconfigs[{position}].path: {path!r} must stay inside the PKI directory"
            )
        outcome = Outcome(path, path, "kubeconfig")
        cert, ca = text(item, "cert"), text(item, "ca", "ca")
        target = store.root / path
        pending = {cert, ca} & reissued
        if check_mode and pending:
            outcome.changed = True
            outcome.reasons.append(f"embeds reissued {sorted(pending)}")
            outcomes.append(outcome)
            continue
        content = render_kubeconfig(
            {
                "cluster_name": text(item, "cluster_name"),
                "server": item.get("server"),
                "user": text(item, "user"),
                "ca_cert_file": str(store.file(ca, ".crt")),
                "client_cert_file": str(store.file(cert, ".crt")),
                "client_key_file": str(store.file(cert, ".key")),
            }
        ).encode()
        current = store.read(target)
        if current != content:
            outcome.changed = True
            outcome.reasons.append(
                "kubeconfig does not exist" if current is None else "content differs"
            )
            if not check_mode:
                store.write(target, content, KEY_MODE)
        elif store.wrong_mode(target, KEY_MODE):
            outcome.changed = True
            outcome.reasons.append(f"{target.name} mode is not {KEY_MODE:04o}")
            if not check_mode:
                target.chmod(KEY_MODE)
        outcomes.append(outcome)
    return outcomes
