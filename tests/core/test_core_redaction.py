"""The one redaction point (core/redaction.py): what it knows, what it removes, what it keeps.

Each `Redactor()` here is a fresh one: the process's `REDACTOR` is shared by every test.
"""

from __future__ import annotations

import json
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import SecretStr

from core.redaction import KEEP, REDACTED, Redactor, redact_shapes
from core.refs import UserRef
from core.reply import Action, Attachment, Reply, Table

SIGNATURE = "5f1a" * 16
CREDENTIAL = "AKIAIOSFODNN7EXAMPLE%2F20240101%2Feu-west-1%2Fs3%2Faws4_request"
SESSION = "IQoJb3JpZ2luX2VjEJr%2F%2F%2Fsession"
PRESIGNED = (
    "https://my-bucket.s3.eu-west-1.amazonaws.com/exports/graphdb.zip"
    "?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    f"&X-Amz-Credential={CREDENTIAL}"
    "&X-Amz-Date=20240101T000000Z&X-Amz-Expires=3600"
    f"&X-Amz-Security-Token={SESSION}"
    "&X-Amz-SignedHeaders=host"
    f"&X-Amz-Signature={SIGNATURE}"
)


# -- credentials inside URLs --------------------------------------------------------------


def test_a_presigned_s3_url_keeps_its_place_and_loses_its_credentials() -> None:
    shown = Redactor().redact(f"import {PRESIGNED} into orders-db")
    for secret in (SIGNATURE, CREDENTIAL, "AKIAIOSFODNN7EXAMPLE", SESSION):
        assert secret not in shown
    # what is not a credential stays: where, what, when, how long
    for kept in (
        "https://my-bucket.s3.eu-west-1.amazonaws.com/exports/graphdb.zip",
        "X-Amz-Algorithm=AWS4-HMAC-SHA256",
        "X-Amz-Date=20240101T000000Z",
        "X-Amz-Expires=3600",
        "X-Amz-SignedHeaders=host",
        "X-Amz-Signature=[REDACTED]",
        "into orders-db",
    ):
        assert kept in shown, (kept, shown)


def test_signature_and_token_parameters_of_any_url() -> None:
    redact = Redactor().redact
    cases = {
        "https://acct.blob.core.windows.net/c/f.zip?sv=2022-11-02&sig=AbCdEf123%3D": "AbCdEf123",
        "https://storage.googleapis.com/b/o?X-Goog-Signature=0badc0ffee": "0badc0ffee",
        "https://h/x?access_token=tk-12345&a=1": "tk-12345",
        "https://h/x?token=tk-67890": "tk-67890",
        "https://h/x?key=AIzaSyA-key-0001": "AIzaSyA-key-0001",
        "https://h/x?a=1&amp;signature=escaped-sig-1": "escaped-sig-1",
        "`https://h/x?sig=in-code-span`": "in-code-span",
    }
    for url, secret in cases.items():
        shown = redact(url)
        assert secret not in shown, shown
        assert "https://" in shown


def test_userinfo_in_a_url_is_a_credential() -> None:
    redact = Redactor().redact
    for url, secret in (
        ("bolt+s://neo4j:hunter2-pw@db.example:7687", "hunter2-pw"),
        ("https://ghp_tokenAsUser@github.com/org/repo.git", "ghp_tokenAsUser"),
    ):
        shown = redact(f"connect to {url} now")
        assert secret not in shown and "[REDACTED]@" in shown, shown
    # an address in a query or path is not userinfo
    plain = "https://example.com/users?email=alice@example.com"
    assert redact(plain) == plain


def test_the_private_part_keeps_its_one_time_link_and_nothing_else() -> None:
    redactor = Redactor(["sentinel-config-secret-01"])
    link = "https://s3.example/backups/graph.tar.gz?X-Amz-Expires=300&X-Amz-Signature=" + "ab" * 32
    redactor.remember(link, "link")
    text = f"Download (once): {link}\nsentinel-config-secret-01"
    private = redactor.redact(text, private=True)
    assert link in private and "sentinel-config-secret-01" not in private
    public = redactor.redact(text)
    assert link not in public and "ab" * 32 not in public


def test_a_link_sharing_its_text_with_a_credential_is_never_revealed() -> None:
    redactor = Redactor(["https://s3.example/shared-secret-value"])
    redactor.remember("https://s3.example/shared-secret-value", "link")
    shown = redactor.redact("https://s3.example/shared-secret-value", private=True)
    assert "shared-secret-value" not in shown


# -- only secrets are redacted ------------------------------------------------------------


def test_short_and_common_values_never_become_patterns() -> None:
    redactor = Redactor()
    for value in ("admin", "graph", "password", "changeme", "dry-run", "hunter2"):
        assert redactor.remember(value) is False
    text = "bound to development as admin; role admin; `user add carol`; password prompt"
    assert redactor.redact(text) == text
    # ... but such a value is still removed where it stands as a secret field's value
    assert redactor.redact("password=changeme") == "password=[REDACTED]"
    assert redactor.redact('{"password": "admin"}') == '{"password": "[REDACTED]"}'


def test_identifiers_and_harmless_words_are_kept() -> None:
    text = (
        "token_type=bearer; tokens left: 3; terminate orders-db; client_id=demo-client; "
        "username=admin; https://h/path?page=2&sort=name; "
        "Not authenticated (401) on POST /organizations/oauth/token: invalid_client"
    )
    assert redact_shapes(text) == text


# -- what it knows ------------------------------------------------------------------------


def test_a_known_value_in_every_form_it_takes_in_text() -> None:
    secret = 'sent "inel"/+ sec&ret=1'
    redactor = Redactor([secret])
    for form in (secret, json.dumps(secret)[1:-1], quote(secret, safe=""), quote_plus(secret)):
        assert form not in redactor.redact(f"before {form} after"), form


def test_a_token_answer_is_known_but_its_description_is_not() -> None:
    redactor = Redactor()
    redactor.remember_answer(
        {
            "access_token": "opaque-access-token-0001",
            "refresh_token": "opaque-refresh-token-0002",
            "token_type": "Bearer",
            "expires_in": 3600,
            "scope": "databases:write",
            "status": "finished",
            "nested": {"id_token": "opaque-id-token-0003"},
        }
    )
    text = (
        "opaque-access-token-0001 opaque-refresh-token-0002 opaque-id-token-0003 "
        "type Bearer; finished; databases:write"
    )
    shown = redactor.redact(text)
    assert "opaque" not in shown
    assert "finished" in shown and "databases:write" in shown


def test_tokens_are_bounded_credentials_are_not() -> None:
    redactor = Redactor([SecretStr("sentinel-config-credential")])
    for n in range(KEEP + 5):
        redactor.remember(f"issued-token-{n:06d}", "token")
    assert redactor.known("token") == KEEP
    assert "issued-token-000000" in redactor.redact("issued-token-000000")  # forgotten
    assert redactor.redact(f"issued-token-{KEEP + 4:06d}") == REDACTED
    assert redactor.redact("sentinel-config-credential") == REDACTED


@given(
    st.lists(st.text(alphabet="abcdefgh-_%/", min_size=8, max_size=20), min_size=1, max_size=40),
    st.lists(st.tuples(st.integers(0, 39), st.text(alphabet="abcdxyz -=&", max_size=12))),
)
def test_many_known_values_are_found_wherever_they_stand(
    values: list[str], layout: list[tuple[int, str]]
) -> None:
    """With many values known (a long-running process holds hundreds), each is removed
    wherever it stands, first or last in the text, next to another or inside a longer
    one; text holding none of them is left to the shape patterns."""
    redactor = Redactor(values, "token")
    text = "".join(values[i % len(values)] + filler for i, filler in layout) + values[-1]
    shown = redactor.redact(text)
    for value in values:
        assert value not in shown
    assert shown.count(REDACTED) >= 1
    fillers = " ".join(filler for _, filler in layout)
    assert redactor.redact(f"[{fillers}]") == redact_shapes(f"[{fillers}]")  # nothing known


def test_shapes_whatever_the_value() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJlLXBhcnQ"
    shown = Redactor().redact(f"token was {jwt}; Authorization: Bearer abc.def")
    assert jwt not in shown and "abc.def" not in shown


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("password=`hunter2-secret`", "password=`[REDACTED]`"),
        ("{password: [hunter2-secret]}", "{password: [[REDACTED]]}"),
        ("secret=(hunter2-secret) ok", "secret=([REDACTED]) ok"),
        (':password => "hunter2-secret"', ':password => "[REDACTED]"'),
        ("api_key => hunter2-secret", "api_key => [REDACTED]"),
        ("password := hunter2-secret", "password := [REDACTED]"),
        ("Authorization: hunter2-secret", "Authorization: [REDACTED]"),
        ("Authorization: Bearer hunter2-secret", "Authorization: Bearer [REDACTED]"),
        ('{"authorization": "Basic aHVudGVyMg=="}', '{"authorization": "[REDACTED]"}'),
        (
            "next=https%3A%2F%2Fb.s3.example%2Fe.zip%3FX-Amz-Signature%3Dhunter2-secret"
            "%26X-Amz-Credential%3DAKIA%252Fhunter2-secret%26v%3D1",
            "next=https%3A%2F%2Fb.s3.example%2Fe.zip%3FX-Amz-Signature%3D[REDACTED]"
            "%26X-Amz-Credential%3D[REDACTED]%26v%3D1",
        ),
    ],
)
def test_secret_fields_in_every_notation(text: str, shown: str) -> None:
    """Backticks, brackets and parentheses around a value, Ruby's `=>` and Go's `:=`,
    a bare Authorization header, and a presigned URL passed URL-encoded inside another
    URL: the value goes, its place and wrapping stay."""
    assert redact_shapes(text) == shown
    assert "hunter2" not in redact_shapes(text)


@pytest.mark.parametrize(
    "ours",
    [
        "unknown option password= (options: env=, reset=). Usage: show <db> [env=]",
        "unknown option token=: restart takes no options",
    ],
)
def test_our_own_usage_messages_are_not_taken_for_secret_fields(ours: str) -> None:
    """`key= ` (an equals sign, then a space) is how graphops names an option; a secret
    field is `key=value`, `key = value`, `key: value`."""
    assert redact_shapes(ours) == ours


@pytest.mark.parametrize(
    ("word", "secret"),
    [
        ("Xq7pLm2Zr9Kw", True),
        ("hunter2!x", True),
        ("orders-db2", False),
        ("sandbox-dr", False),
        ("now", False),
        ("Production", False),
        ("2026-11-30", False),
        ("https://b.s3.example/e.zip?X-Amz-Signature=ab12", False),  # the shapes take it
    ],
)
def test_a_word_that_looks_like_a_password(word: str, secret: bool) -> None:
    from core.redaction import looks_like_a_password

    assert looks_like_a_password(word) is secret


def test_an_encoded_presigned_url_stays_whole_for_its_requester() -> None:
    text = "https%3A%2F%2Fb.example%2Fe.zip%3FX-Amz-Signature%3Dabc123def456"
    assert redact_shapes(text, private=True) == text


def test_a_reply_is_redacted_everywhere_and_keeps_its_references() -> None:
    redactor = Redactor(["sentinel-reply-secret"])
    link = "https://s3.example/e.zip?X-Amz-Signature=" + "cd" * 32
    redactor.remember(link, "link")
    secret = "sentinel-reply-secret"
    reply = Reply(
        title=f"t {secret}",
        context=f"{UserRef('U0ALICE')} ran `/gdb import x {link}`",
        text=f"text {secret}",
        fields=[("Field", f"v {secret}")],
        tables=[Table(columns=["c"], rows=[[f"cell {secret}"]], note=f"n {secret}")],
        actions=[Action(label=f"l {secret}", command=f"/gdb x {secret}")],
        private_text=f"{link} {secret}",
        attachment=Attachment(filename="f.txt", content=f"c {secret}"),
    )
    shown = redactor.redact_reply(reply)
    public = shown.model_dump_json(exclude={"private_text"})
    assert secret not in public and link not in public and "cd" * 32 not in public
    assert str(UserRef("U0ALICE")) in (shown.context or "")
    assert shown.private_text == f"{link} {REDACTED}"


@given(
    st.lists(
        st.sampled_from(
            [
                "sentinel-known-value-1",
                PRESIGNED,
                "password=abc",
                "Bearer tok",
                " ",
                "admin",
                "&",
                "?",
                "=",
                "https://",
                "@",
                "[REDACTED]",
                "x",
                " => ",
                " := ",
                "[",
                "]",
                "`",
                "(",
            ]
        ),
        max_size=12,
    )
)
@example(["https://", "sentinel-known-value-1", "password=abc", "?", "sentinel-known-value-1", "@"])
@example(["password", " => ", "x"])
@example(["password", ": ", "[", "x", "]"])
def test_redaction_is_idempotent(parts: list[str]) -> None:
    redactor = Redactor(["sentinel-known-value-1"])
    once = redactor.redact("".join(parts))
    assert redactor.redact(once) == once
    assert "sentinel-known-value-1" not in once


SHAPE_PARTS = [
    "Bearer ",
    "basic ",
    "BASIC\t",
    "xoxb-",
    "xapp-1-",
    "eyJhbGciOi",
    ".eyJzdWIi",
    ".sig",
    "https://",
    "user:pw@",
    "@",
    "?",
    "&",
    "&amp;",
    "=",
    ": ",
    '"',
    "'",
    "{",
    "}",
    "api_key",
    "ApiKey",
    "PASSWORD",
    "db_passwd",
    "pwd",
    "client-secret",
    "access_token",
    "X-Amz-Credential",
    "private_key",
    "secret_key",
    "aws_secret_access_key",
    "credentials",
    "sig",
    "token_type",
    "abc123DEF",
    " ",
    "/",
    "`",
    "[",
    "]",
    "(",
    ")",
    " => ",
    " := ",
    "Authorization",
    "%3F",
    "%26",
    "%3D",
    "X-Amz-Signature",
]
#: Non-ASCII text runs every pattern: "K" (Kelvin sign) matches "k" and "ſ" (long s)
#: matches "s" case-insensitively, which lower-casing does not show.
NON_ASCII = ["", "", "", "é", "\u212a", "\u017f", "API_\u212aEY=abc", "\u017fecret: abc"]


FIELD_KEYS = [p for p in SHAPE_PARTS if p.strip().isidentifier() or "-" in p or "_" in p]
#: `key=value`, `key: value`, `"key": "value"`, `?key=value`: what the field patterns need.
FIELDS = st.builds(
    lambda lead, key, sep, value: f"{lead}{key}{sep}{value}",
    st.sampled_from(["", " ", "?", "&", '"', "{"]),
    st.sampled_from(FIELD_KEYS),
    st.sampled_from(["=", ": ", '": "', ":", " = ", " => ", " := ", "=`", ": [", "=("]),
    st.text(alphabet="abcXYZ019-_.%", min_size=1, max_size=8),
)


@given(
    st.lists(
        st.one_of(
            st.sampled_from(SHAPE_PARTS),
            FIELDS,
            st.text(alphabet=st.characters(max_codepoint=127), max_size=6),
        ),
        max_size=16,
    ),
    st.sampled_from(NON_ASCII),
    st.booleans(),
)
def test_the_shape_patterns_skipped_on_a_text_are_those_that_could_not_match(
    parts: list[str], non_ascii: str, private: bool
) -> None:
    """`redact_shapes` runs a pattern only when the text holds what the pattern needs
    (issue 17: the patterns cost ~0.6 µs a character on every listing); what it returns
    is exactly what running every pattern returns."""
    from core.redaction import _all_shapes

    text = "".join(parts) + non_ascii
    assert redact_shapes(text, private=private) == _all_shapes(text, private)


@given(
    st.lists(st.text(alphabet="abcdefgh-_%/", min_size=8, max_size=14), min_size=1, max_size=30),
    st.lists(st.text(alphabet="abcdefgh-_%/ x", max_size=30), max_size=8),
)
def test_known_values_are_found_alike_by_search_and_by_index(
    values: list[str], texts: list[str]
) -> None:
    """Few known beginnings are searched for one by one, many are looked up per
    character (`_FIND_EACH`): both ways find the same values."""
    import core.redaction as redaction

    redactor = Redactor(values, "token")
    text = " ".join(texts + values[::2])
    by_search = redactor.redact(text)
    saved = redaction._FIND_EACH
    try:
        redaction._FIND_EACH = 0
        by_index = redactor.redact(text)
    finally:
        redaction._FIND_EACH = saved
    assert by_search == by_index
    for value in values[::2]:
        assert value not in by_search


def test_each_secret_field_alone_meets_its_pattern() -> None:
    """Every key word, alone with every separator, opens `_SECRET_FIELD`'s gate."""
    from core.redaction import _all_shapes

    for key in FIELD_KEYS:
        for sep in ("=", ": ", '": "', ":", " = ", " => ", " := ", "=`", ": [", "=("):
            for private in (False, True):
                text = f"{key}{sep}v4lue"
                assert redact_shapes(text, private=private) == _all_shapes(text, private), text


def test_a_text_redacted_before_its_secret_was_known_is_redacted_after() -> None:
    """Short texts are remembered once redacted (issue 17), per table of known values:
    learning a secret starts a new table, so the remembered answer never hides it."""
    redactor = Redactor()
    text = "status of sentinel-later-token-1 is RUNNING"
    assert redactor.redact(text) == text
    redactor.remember("sentinel-later-token-1", "token")
    assert redactor.redact(text) == f"status of {REDACTED} is RUNNING"
    assert redactor.redact(text, private=True) == f"status of {REDACTED} is RUNNING"


def test_secret_and_access_keys_are_secret_names() -> None:
    """`secret_key=`, `aws_secret_access_key:` are secret-named fields (a new user's
    attack: they were shown in menus and kept in audit rows)."""
    for text in ("show secret_key=abcdefgh12345", "aws_secret_access_key: abcdefgh12345"):
        assert "abcdefgh12345" not in Redactor().redact(text), text
    assert Redactor().redact_data({"secret_key": "abcdefgh12345"}) == {"secret_key": REDACTED}
