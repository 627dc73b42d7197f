import pytest

from permissions.roles import Role


def test_role_order() -> None:
    assert Role.VIEWER < Role.OPERATOR < Role.ADMIN
    assert sorted([Role.ADMIN, Role.VIEWER, Role.OPERATOR]) == [
        Role.VIEWER,
        Role.OPERATOR,
        Role.ADMIN,
    ]


@pytest.mark.parametrize(
    ("text", "role"),
    [("viewer", Role.VIEWER), ("Operator", Role.OPERATOR), (" ADMIN ", Role.ADMIN)],
)
def test_parse_accepts_names(text: str, role: Role) -> None:
    assert Role.parse(text) is role


def test_parse_rejects_unknown_listing_valid_roles() -> None:
    with pytest.raises(ValueError) as info:
        Role.parse("owner")
    message = str(info.value)
    assert "owner" in message
    for name in ("viewer", "operator", "admin"):
        assert name in message
