"""Keeping secrets out of everything vidcap writes: messages, logs, reports, saved configs.

``register_secret(value)`` (called when an API key is read from its environment variable) makes
``scrub`` replace that value, and installs a log filter on vidcap's, openai's and httpx's loggers
and on the root handlers so no log record carries it. ``scrub`` also replaces ``Bearer ...`` values,
``sk-...`` keys, ``user:password@`` in URLs, the signature and credential parameters of presigned
URLs (``X-Amz-Signature=``, ``X-Goog-Signature=``, Azure SAS ``sig=`` ...) and AWS access key ids;
``register_storage_secrets()`` registers the object-store secrets found in the environment. ``public_config`` is a copy of a config safe to publish.
"""
from __future__ import annotations

import copy
import logging
import os
import re

_SECRETS: set[str] = set()
_PATTERNS = [re.compile(r"(?i)(bearer\s+)[^\s\"',]+"), re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}")]
_SECRET_KEY = re.compile(r"(?i)(api_?key|token|secret|password|passwd|credential)s?$")
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]+@")
_URL_SIGNATURE = re.compile(r"(?i)([?&](?:x-amz-(?:signature|credential|security-token)|x-goog-(?:signature|credential)"
                            r"|signature|sig|awsaccesskeyid|access_token|token|key)=)[^&\s\"'#]+")
_AWS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")
STORAGE_SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AZURE_STORAGE_KEY",
                      "AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_SAS_TOKEN", "AZURE_STORAGE_CONNECTION_STRING",
                      "AZURE_CLIENT_SECRET", "GOOGLE_APPLICATION_CREDENTIALS_JSON")
_LOGGERS = ("vidcap", "openai", "httpx", "httpx2", "httpcore", "httpcore2", "s3fs", "fsspec", "botocore", "aiobotocore")


def register_secret(value: str) -> None:
    """Scrub ``value`` from every message and log record from now on (short values are ignored)."""
    if value and len(value) >= 6:
        if value in _SECRETS:   # known: only handlers added since need the filter
            _filter_handlers()
            return
        _SECRETS.add(value)
        _install_log_filter()


def scrub(text: str) -> str:
    """``text`` with registered secrets, ``Bearer ...`` values and ``sk-...`` keys replaced."""
    text = str(text)
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, "[REDACTED]")
    text = _PATTERNS[0].sub(r"\1[REDACTED]", text)
    text = _URL_USERINFO.sub(r"\1[REDACTED]@", _URL_SIGNATURE.sub(r"\1[REDACTED]", text))
    text = _AWS_KEY_ID.sub("[REDACTED]", text)
    return _PATTERNS[1].sub("sk-[REDACTED]", text)


def register_storage_secrets() -> None:
    """Register the object-store credentials set in the environment (``STORAGE_SECRET_ENV``)."""

    for name in STORAGE_SECRET_ENV:
        register_secret(os.environ.get(name, ""))


class _ScrubFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is not ours to fix
            return True
        clean = scrub(msg)
        if clean != msg:
            record.msg, record.args = clean, None
        return True


_FILTER = _ScrubFilter()


def _install_log_filter() -> None:
    for name in _LOGGERS:
        lg = logging.getLogger(name)
        if _FILTER not in lg.filters:
            lg.addFilter(_FILTER)
    _filter_handlers()


def _filter_handlers() -> None:
    for handler in logging.getLogger().handlers:  # records propagated from child loggers
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)


def public_config(config: dict) -> dict:
    """A copy of ``config`` safe to publish: secret-looking strings scrubbed.

    vidcap configs hold only the *name* of the API key's environment variable (``api_key_env``);
    this also protects against a key pasted by mistake: values of keys named like ``*api_key``,
    ``*token``, ``*secret``, ``*password`` (not ``*_env``), ``user:password@`` in URLs, ``Bearer ...``
    and ``sk-...`` strings become ``[REDACTED]``.
    """

    def walk(node, key=""):
        if isinstance(node, dict):
            return {k: walk(v, str(k)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, key) for v in node]
        if isinstance(node, str):
            if node and _SECRET_KEY.search(key) and not key.endswith("_env"):
                return "[REDACTED]"
            return scrub(_URL_USERINFO.sub(r"\1[REDACTED]@", node))
        return node

    return walk(copy.deepcopy(config or {}))
