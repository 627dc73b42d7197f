"""The one redaction point: every secret the process holds, and every text it shows or keeps.

`REDACTOR` (process-wide) knows the secrets held at run time. Each is registered with
`remember(value, kind)` where it enters the process:

- ``credential``: the config's secrets (Slack bot and app tokens, signing secret, client
  secrets, API keys, passwords; bot/wiring.py) and the credentials each API client is
  built with (clients/);
- ``token``: every token a token or sign-in endpoint answers, as soon as it is received
  (`remember_answer`: the Console ``access_token``, the TypeDB sign-in ``token``, a
  ``refresh_token`` or ``id_token`` should one come);
- ``password``: a secret typed in a modal or a no-echo prompt (`Invocation.secret`,
  registered by the command pipeline before anything else runs);
- ``link``: one-time links an API hands out (v1 export and backup package).

Identifiers (usernames, client ids) are not secrets and are not registered. A value
shorter than `MIN_LENGTH` characters, or a common one (`COMMON`: default passwords and
words graphops itself writes), never becomes a pattern of its own: it would eat ordinary
words ("bound to development as admin"). It is still removed where it stands as the
value of a field named like a secret (``password=...``, ``"password": "..."``).
Tokens, passwords and links are kept for the most recent `KEEP` of each kind (a
long-running process renews its tokens every hour); credentials for the whole run.

`redact(text)` replaces with ``[REDACTED]``: every known value (as written, JSON-escaped,
URL-encoded and form-encoded), then the shapes of secrets whatever their value:

- ``Bearer``/``Basic`` credentials, Slack tokens (``xoxb-``, ``xapp-``...), JWTs (``eyJ…``);
- fields named like a secret (``password``, ``api_key``, ``client_secret``,
  ``access_token``, ``X-Amz-Credential``, ``Authorization``...) written ``key=value``,
  ``key: value``, ``key => value``, ``key := value`` or as JSON / Python literals, the
  value bare, quoted, in backticks, brackets or parentheses;
- credentials inside URLs: the userinfo (``https://user:pw@host``) and query parameters
  that carry a signature, a key or a token (``X-Amz-Signature``, ``X-Amz-Credential``,
  ``X-Amz-Security-Token``, ``sig``, ``signature``, ``token``, ``access_token``,
  ``key``..., `URL_PARAMETER`), also in a URL that is itself URL-encoded (``%3F…%3D``).

``redact(text, private=True)`` is for text shown to its requester alone
(`Reply.private_text`): the one-time links and signed URLs they asked for stay whole;
every other secret is removed.

Every path by which text leaves the process or is kept passes here: the command
pipeline's Replies (commands/pipeline.py), the tracker's outbox (operations/store.py),
audit rows (permissions/audit.py) and `graphops audit` output, log records
(bot/logs.py, at record creation), exception text (`clients.errors.ApiError`), the
Slack renderer (bot/slack/blocks.py) and the shell renderer (bot/text.py).
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote, quote_plus

from pydantic import SecretStr

from core.reply import Reply

REDACTED = "[REDACTED]"
MIN_LENGTH = 8
#: How many of the most recent tokens, passwords and links are known (credentials: all).
KEEP = 512
#: Values never made a pattern of their own: well-known defaults and graphops' own words.
COMMON = frozenset(
    {
        "password",
        "passw0rd",
        "password1",
        "changeme",
        "changeit",
        "12345678",
        "123456789",
        "1234567890",
        "qwertyuiop",
        "iloveyou",
        "administrator",
        "development",
        "production",
        "localhost",
        "graphops",
        "approved",
        "approval",
        "operator",
    }
)
SecretKind = Literal["credential", "token", "password", "link"]
KINDS: tuple[SecretKind, ...] = ("credential", "token", "password", "link")

_MARKERS = "\ue000\ue001"  # core.refs markers: never part of a secret
_AUTH_SCHEME = re.compile(r"(?i)\b(bearer|basic)(\s+)(?!\[REDACTED\])[A-Za-z0-9\-._~+/=]+")
_SLACK_TOKEN = re.compile(r"\b(?:xox[abposre]|xapp)-[A-Za-z0-9\-]+")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_\-]{6,}\.[A-Za-z0-9_\-]{6,}\.[A-Za-z0-9_\-]*")
_SECRET_KEY_WORDS = (
    r"api[_\-]?key|apikey|password|passwd|pwd|client[_\-]?secret|secret|token|"
    r"private[_\-]?key|secret[_\-]?key|access[_\-]?key|credentials?|authorization"
)
# A key that ends with one of the secret words, e.g. password, db_password,
# access_token, x-api-key; "token_type" does not match (word boundary).
_SECRET_KEY = re.compile(rf"(?i)^[\w.\-]*?(?:{_SECRET_KEY_WORDS})$")
_SECRET_FIELD = re.compile(
    rf"""(?ix)
    (?P<key>\b[\w.\-]*?(?:{_SECRET_KEY_WORDS})\b)
    (?P<close>["']?)
    (?P<sep>\s*(?:=>|:=|:)\s*|\s+=\s*|=)
    (?!["'`\[(]?\[REDACTED\]|(?:bearer|basic)\s)
    (?P<value>"(?:[^"\\]|\\.)*"|'[^']*'|`[^`]*`|\[[^\]]*\]|\([^)]*\)
      |[^\s&,;:=>"'}}\]\[)(`{_MARKERS}][^\s&,;"'}}\]\[)(`{_MARKERS}]*)
    """
)
#: Names of URL query parameters whose value is a credential (matched as a name suffix).
URL_PARAMETER = r"signature|sig|token|credential|key|secret|password|passwd|pwd|auth|authorization"
_URL_QUERY = re.compile(
    rf"""(?ix)
    (?P<lead>[?&;]|&amp;)
    (?P<name>[\w.\-]*?(?:{URL_PARAMETER}))
    =
    (?!\[REDACTED\])
    (?P<value>[^&\s#"'<>`|){_MARKERS}]+)
    """
)
#: The same parameters inside a URL that is itself URL-encoded (a presigned link passed
#: as a parameter of another: ``%3FX-Amz-Signature%3D…%26…``).
_URL_QUERY_ENCODED = re.compile(
    rf"""(?ix)
    (?P<lead>%3F|%26)
    (?P<name>[\w.\-]*?(?:{URL_PARAMETER}))
    %3D
    (?!\[REDACTED\])
    (?P<value>(?:(?!%26)[^&\s#"'<>`|){_MARKERS}])+)
    """
)
_USERINFO = re.compile(
    rf"(?i)\b(?P<scheme>[a-z][a-z0-9+.\-]*://)(?!\[REDACTED\]@)[^\s/?#@<>`'\"{_MARKERS}]+@"
)


#: What a field's value may be wrapped in; kept around the [REDACTED] that replaces it.
_QUOTES = frozenset({'"', "'", "`", "[", "("})


def _replace_field(match: re.Match[str]) -> str:
    if match.string[match.start() - 1 : match.start()] in ("/", "\\"):
        return match.group(0)  # a path segment (`POST /oauth/token: invalid_client`)
    value = match.group("value")
    replaced = f"{value[0]}{REDACTED}{value[-1]}" if value[:1] in _QUOTES else REDACTED
    return f"{match.group('key')}{match.group('close')}{match.group('sep')}{replaced}"


#: How every secret key word of `_SECRET_FIELD` ends; the pattern can only match where
#: one of them is followed by `_FIELD_SEPARATOR` (an optional quote, then ``:`` or ``=``).
#: Only used on ASCII text, where lower-casing and the patterns' case-insensitive
#: matching agree letter for letter.
_SECRET_WORD_ENDS = (
    "key",
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "credential",
    "authorization",
)
_FIELD_SEPARATOR = re.compile(r"s?[\"']?\s*[:=]")


def _may_hold_secret_field(lower: str) -> bool:
    """Whether lower-cased ASCII `lower` has a secret key word followed by a separator:
    found with `str.find` (in C) where the pattern itself costs ~0.5 µs a character
    (every Reply's JSON holds ``"secret_prompt":``, which it must not scan for)."""
    for word in _SECRET_WORD_ENDS:
        at = lower.find(word)
        while at != -1:
            if _FIELD_SEPARATOR.match(lower, at + len(word)):
                return True
            at = lower.find(word, at + 1)
    return False


def _replace_scheme(match: re.Match[str]) -> str:
    return f"{match.group(1)}{match.group(2)}{REDACTED}"


def _replace_userinfo(match: re.Match[str]) -> str:
    return f"{match.group('scheme')}{REDACTED}@"


def _replace_parameter(match: re.Match[str]) -> str:
    return f"{match.group('lead')}{match.group('name')}={REDACTED}"


def _replace_encoded(match: re.Match[str]) -> str:
    return f"{match.group('lead')}{match.group('name')}%3D{REDACTED}"


@dataclass(frozen=True)
class _Shape:
    """A secret-shape pattern, its replacement, whether it is kept in private text
    (credentials inside URLs are), and what a text (and its lower-cased form) must
    hold for the pattern to match at all."""

    pattern: re.Pattern[str]
    replace: str | Callable[[re.Match[str]], str]
    public_only: bool
    needs: Callable[[str, str], bool]


#: In the order they run; `needs` is only asked of ASCII text.
_SHAPES = (
    _Shape(_AUTH_SCHEME, _replace_scheme, False, lambda t, low: "bearer" in low or "basic" in low),
    _Shape(_SLACK_TOKEN, REDACTED, False, lambda t, low: "xox" in t or "xapp" in t),
    _Shape(_JWT, REDACTED, False, lambda t, low: "eyJ" in t),
    _Shape(_USERINFO, _replace_userinfo, True, lambda t, low: "://" in t and "@" in t),
    _Shape(_URL_QUERY, _replace_parameter, True, lambda t, low: "=" in t),
    _Shape(_URL_QUERY_ENCODED, _replace_encoded, True, lambda t, low: "%3d" in low),
    _Shape(_SECRET_FIELD, _replace_field, False, lambda t, low: _may_hold_secret_field(low)),
)


def redact_shapes(text: str, *, private: bool = False) -> str:
    """Remove what looks like a secret whatever its value (see the module docstring);
    with `private`, credentials inside URLs are kept (the requester's own links).

    Each pattern runs only when the text holds what it cannot match without (``eyJ`` for
    a JWT, ``=`` for a URL parameter...): the patterns cost about 0.6 µs a character,
    and most texts (a listing, a status) hold none of them. Non-ASCII text runs them all.
    """
    return _settled(text, private, gated=text.isascii())


def _all_shapes(text: str, private: bool) -> str:
    """Every shape pattern, run whatever the text holds (`redact_shapes` skips those
    that cannot match)."""
    return _settled(text, private, gated=False)


def _settled(text: str, private: bool, *, gated: bool) -> str:
    """The patterns run again until nothing changes (at most 4 passes): a value taken
    out can bring two parts of a secret together (`https://[REDACTED]…@` is userinfo
    only once the `?` inside it went with a field's value), and redacting a redacted
    text must change nothing."""
    for _ in range(4):
        done = _run_shapes(text, private, gated=gated)
        if done == text:
            break
        text = done
    return text


def _run_shapes(text: str, private: bool, *, gated: bool) -> str:
    # What a pattern needs is asked of the text as it came: a replacement only ever
    # writes [REDACTED], which gives no later pattern anything to match.
    lower = text.lower() if gated else ""
    original = text
    for shape in _SHAPES:
        if private and shape.public_only:
            continue
        if gated and not shape.needs(original, lower):
            continue
        text = shape.pattern.sub(shape.replace, text)
    return text


def looks_like_a_password(word: str) -> bool:
    """Whether a word typed where none was expected may be a password: 8 or more
    characters mixing letters and digits, with upper and lower case or a symbol
    (`Xq7pLm2Zr9Kw`, `hunter2!x`), unlike a name (`orders-db2`, `sandbox-dr`) or a link."""
    if len(word) < MIN_LENGTH or not any(c.isdigit() for c in word) or "://" in word:
        return False  # a link keeps its place: the shapes take its credentials out
    if not any(c.isalpha() for c in word):
        return False
    mixed = any(c.isupper() for c in word) and any(c.islower() for c in word)
    return mixed or any(not (c.isalnum() or c in "-_.") for c in word)


def is_secret_key(key: str) -> bool:
    """True when a mapping key names a secret (``password``, ``api_key``...)."""
    return bool(_SECRET_KEY.match(key))


def is_pattern_worthy(value: str) -> bool:
    """Whether `value` may become a pattern of its own (long enough, not common)."""
    return len(value) >= MIN_LENGTH and value.strip().lower() not in COMMON


def _variants(value: str) -> set[str]:
    """The forms a value takes in text: as is, JSON-escaped, URL- and form-encoded."""
    forms = {value, json.dumps(value)[1:-1], quote(value, safe=""), quote_plus(value)}
    return {form for form in forms if len(form) >= MIN_LENGTH}


def _plain(value: str | SecretStr | None) -> str | None:
    if value is None:
        return None
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    return text if isinstance(text, str) else None


#: Texts up to this long are redacted once per table and remembered (a listing's cells,
#: statuses, names: the same few texts pass three times per reply); at most
#: `_REMEMBERED` of them, forgotten all at once when full.
_REMEMBER_UP_TO = 256
_REMEMBERED = 16384
#: Up to this many distinct beginnings, each is searched for (`str.__contains__`, in C);
#: beyond, one dictionary look-up per character of the text.
_FIND_EACH = 64


@dataclass(frozen=True)
class _Table:
    """The forms of every known value, longest first (with whether each is a link's
    alone), and where each begins: its first `MIN_LENGTH` characters -> positions."""

    forms: tuple[tuple[str, bool], ...]
    index: Mapping[str, list[int]]
    #: Short texts already redacted with this table: (text, private) -> result. A new
    #: table (a secret learnt) starts empty, so a result never misses a newer secret.
    done: dict[tuple[str, bool], str] = field(default_factory=dict, compare=False)

    def candidates(self, text: str) -> list[int]:
        """Positions (longest form first) of the forms whose beginning occurs in `text`:
        each distinct beginning searched for when there are few (`_FIND_EACH`), else one
        look-up per character of `text`; never one search per known form."""
        if not self.index or len(text) < MIN_LENGTH:
            return []
        found: set[int] = set()
        index = self.index
        if len(index) <= _FIND_EACH:
            for beginning, positions in index.items():
                if beginning in text:
                    found.update(positions)
            return sorted(found)
        for start in range(len(text) - MIN_LENGTH + 1):
            hit = index.get(text[start : start + MIN_LENGTH])
            if hit is not None:
                found.update(hit)
        return sorted(found)


class Redactor:
    """The secrets known at run time and the function that removes them from text.

    Thread-safe: registering takes a lock and publishes a new immutable table, which
    `redact` reads without one. `redact` is idempotent.
    """

    def __init__(self, values: Iterable[str | SecretStr] = (), kind: SecretKind = "credential"):
        """Know `values` (of `kind`) from the start (tests and tools; the process uses
        the shared `REDACTOR`)."""
        self._lock = threading.Lock()
        self._known: dict[SecretKind, OrderedDict[str, None]] = {k: OrderedDict() for k in KINDS}
        self._table: _Table = _Table((), {})
        for value in values:
            self.remember(value, kind)

    def remember(self, value: str | SecretStr | None, kind: SecretKind = "credential") -> bool:
        """Know `value` from now on; False when it is too short or too common to become a
        pattern of its own (it is then removed only as a secret-named field's value)."""
        text = _plain(value)
        if text is None or not is_pattern_worthy(text):
            return False
        with self._lock:
            known = self._known[kind]
            if text in known:
                known.move_to_end(text)
                return True
            known[text] = None
            if kind != "credential":
                while len(known) > KEEP:
                    known.popitem(last=False)
            self._rebuild()
        return True

    def remember_answer(self, body: Any, kind: SecretKind = "token") -> None:
        """Know every token a token or sign-in endpoint answered: the string values, at
        any depth, of the keys named like a secret (``access_token``, ``refresh_token``,
        ``id_token``, ``token``, ``client_secret``...), whatever else the answer holds
        (a status, a name) is not a secret and stays."""
        if isinstance(body, Mapping):
            for key, item in body.items():
                if isinstance(item, str) and is_secret_key(str(key)):
                    self.remember(item, kind)
                else:
                    self.remember_answer(item, kind)
        elif isinstance(body, list | tuple):
            for item in body:
                self.remember_answer(item, kind)

    def known(self, kind: SecretKind) -> int:
        """How many values of `kind` are known (for tests and metrics)."""
        return len(self._known[kind])

    def _rebuild(self) -> None:
        table: dict[str, bool] = {}
        for kind in KINDS:
            for value in self._known[kind]:
                for form in _variants(value):
                    # a form shared with a non-link secret is never revealed
                    table[form] = table.get(form, True) and kind == "link"
        forms = tuple(sorted(table.items(), key=lambda item: len(item[0]), reverse=True))
        index: dict[str, list[int]] = {}
        for position, (form, _link) in enumerate(forms):
            index.setdefault(form[:MIN_LENGTH], []).append(position)
        self._table = _Table(forms, index)

    def redact(self, text: str, *, private: bool = False) -> str:
        """`text` without any known secret or secret shape (see the module docstring);
        with `private`, one-time links and signed URLs stay (for their requester only)."""
        if not text:
            return text
        text = str(text)
        table = self._table  # one snapshot: its forms never change
        if len(text) > _REMEMBER_UP_TO:
            return self._redact(table, text, private)
        key = (text, private)
        shown = table.done.get(key)
        if shown is None:
            shown = self._redact(table, text, private)
            if len(table.done) >= _REMEMBERED:
                table.done.clear()
            table.done[key] = shown
        return shown

    @staticmethod
    def _redact(table: _Table, text: str, private: bool) -> str:
        for position in table.candidates(text):
            form, link = table.forms[position]
            if private and link:
                continue
            if form in text:
                text = text.replace(form, REDACTED)
        return redact_shapes(text, private=private)

    def redact_data(self, value: Any, *, private: bool = False) -> Any:
        """`value` (JSON-like: dicts, lists, scalars) with every string redacted and the
        value of every key named like a secret replaced whole."""
        if isinstance(value, str):
            return self.redact(value, private=private)
        if isinstance(value, Mapping):
            cleaned: dict[str, Any] = {}
            for key, item in value.items():
                name = self.redact(str(key))
                cleaned[name] = (
                    REDACTED
                    if is_secret_key(str(key)) and item is not None
                    else self.redact_data(item, private=private)
                )
            return cleaned
        if isinstance(value, list | tuple | set | frozenset):
            return [self.redact_data(item, private=private) for item in value]
        if value is None or isinstance(value, bool | int | float):
            return value
        return self.redact(str(value), private=private)

    def redact_reply(self, reply: Reply) -> Reply:
        """A copy of `reply` with every text redacted; `private_text` (the requester's
        alone) keeps the links they asked for."""
        data = reply.model_dump()
        private = data.pop("private_text", None)
        cleaned = self._strings(data)
        cleaned["private_text"] = None if private is None else self.redact(private, private=True)
        return Reply.model_validate(cleaned)

    def _strings(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {key: self._strings(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self._strings(item) for item in value]
        return value


#: The process's one redactor (see the module docstring).
REDACTOR = Redactor()


def remember(value: str | SecretStr | None, kind: SecretKind = "credential") -> bool:
    """`REDACTOR.remember`: know `value` from now on."""
    return REDACTOR.remember(value, kind)


def remember_answer(body: Any, kind: SecretKind = "token") -> None:
    """`REDACTOR.remember_answer`: know every string of a token endpoint's answer."""
    REDACTOR.remember_answer(body, kind)


def redact(text: str, *, private: bool = False) -> str:
    """`REDACTOR.redact`: `text` without any secret."""
    return REDACTOR.redact(text, private=private)


def redact_data(value: Any, *, private: bool = False) -> Any:
    """`REDACTOR.redact_data`: JSON-like data without any secret."""
    return REDACTOR.redact_data(value, private=private)


def redact_reply(reply: Reply) -> Reply:
    """`REDACTOR.redact_reply`: a Reply without any secret."""
    return REDACTOR.redact_reply(reply)


def redact_and_cut(text: str, limit: int) -> str:
    """`text` redacted, then cut to `limit` characters (an ellipsis marks the cut): a
    secret is never half-shown by a cut made before redaction."""
    shown = redact(text)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"
