"""Redaction of secrets from any text that is written to audit, logs or Slack.

``make_redactor(secret_values)`` returns a function that replaces every known
secret value (from config) with ``[REDACTED]`` and then applies the built-in
patterns (``redact_builtin``) that catch obvious secrets whatever their value:
``Bearer``/``Basic`` credentials, Slack tokens, and ``api_key``/``password``/
``client_secret``/``token``-like keys written as ``key=value``, ``key: value``
or JSON/Python-literal fields.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from urllib.parse import quote

REDACTED = "[REDACTED]"

_AUTH_SCHEME = re.compile(r"(?i)\b(bearer|basic)(\s+)(?!\[REDACTED\])[A-Za-z0-9\-._~+/=]+")
_SLACK_TOKEN = re.compile(r"\b(?:xox[abposre]|xapp)-[A-Za-z0-9\-]+")
_SECRET_KEY_WORDS = (
    r"api[_\-]?key|apikey|password|passwd|pwd|client[_\-]?secret|secret|token|"
    r"private[_\-]?key|credentials?"
)
# A key that ends with one of the secret words, e.g. password, db_password,
# access_token, x-api-key; "token_type" does not match (word boundary).
_SECRET_KEY = re.compile(rf"(?i)^[\w.\-]*?(?:{_SECRET_KEY_WORDS})$")
_SECRET_FIELD = re.compile(
    rf"""(?ix)
    (?P<key>\b[\w.\-]*?(?:{_SECRET_KEY_WORDS})\b)
    (?P<close>["']?)
    (?P<sep>\s*[:=]\s*)
    (?!["']?\[REDACTED\])
    (?P<value>"(?:[^"\\]|\\.)*"|'[^']*'|[^\s&,;"'}}\]\[)]+)
    """
)


def _replace_field(match: re.Match[str]) -> str:
    value = match.group("value")
    replaced = f"{value[0]}{REDACTED}{value[0]}" if value[:1] in {'"', "'"} else REDACTED
    return f"{match.group('key')}{match.group('close')}{match.group('sep')}{replaced}"


def redact_builtin(text: str) -> str:
    """Apply the built-in patterns for obvious secrets to ``text``."""
    text = _AUTH_SCHEME.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    text = _SLACK_TOKEN.sub(REDACTED, text)
    return _SECRET_FIELD.sub(_replace_field, text)


def is_secret_key(key: str) -> bool:
    """True when a mapping key names a secret (``password``, ``api_key``...)."""
    return bool(_SECRET_KEY.match(key))


def make_redactor(secret_values: Iterable[str]) -> Callable[[str], str]:
    """Build a redactor for the given known secret values.

    Each value of at least 4 characters is replaced by ``[REDACTED]`` wherever
    it appears (also in its JSON-escaped and URL-encoded forms); the built-in
    patterns are applied afterwards.
    """
    variants: set[str] = set()
    for value in secret_values:
        if not isinstance(value, str) or len(value) < 4:
            continue
        variants.add(value)
        variants.add(json.dumps(value)[1:-1])
        variants.add(quote(value, safe=""))
    ordered = sorted((v for v in variants if len(v) >= 4), key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(v) for v in ordered)) if ordered else None

    def redact(text: str) -> str:
        if pattern is not None:
            text = pattern.sub(REDACTED, text)
        return redact_builtin(text)

    return redact
