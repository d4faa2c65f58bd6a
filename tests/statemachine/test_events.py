"""Parsing N-central's body: what is accepted and how refusals name the field."""

import pytest

from statemachine.events import InvalidRequest, parse_request


def test_action_is_case_insensitive_and_close_means_resolve() -> None:
    assert parse_request(b'{"action":"close","ncentralTicketId":"1"}').action == "RESOLVE"
    assert parse_request(b'{"action":"Update","ncentralTicketId":"1"}').action == "UPDATE"


def test_unknown_keys_are_tolerated() -> None:
    parsed = parse_request(b'{"action":"UPDATE","ncentralTicketId":"1","whatever":[1]}')
    assert parsed.ncentral_ticket_id == "1"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"ncentralTicketId":"1"}', "action"),
        (b'{"action":"UPDATE"}', "ncentralTicketId"),
        (b'{"action":"UPDATE","ncentralTicketId":7}', "ncentralTicketId"),
        (b'{"action":"UPDATE","ncentralTicketId":""}', "ncentralTicketId"),
        (b'{"action":"NOPE","ncentralTicketId":"1"}', "action"),
        (b'{"action":"CREATE","ncentralTicketId":"1","details":"d"}', "title"),
        (b'{"action":"CREATE","ncentralTicketId":"1","title":"t"}', "details"),
        (b'{"action":"UPDATE","ncentralTicketId":"1","customTags":{"a":1}}', "customTags"),
    ],
)
def test_invalid_requests_name_the_field(body: bytes, field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_request(body)
    assert caught.value.field == field
    assert not caught.value.malformed


@pytest.mark.parametrize("body", [b"", b"{", b"\xff\xfe", b"nope"])
def test_non_json_is_malformed(body: bytes) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_request(body)
    assert caught.value.malformed
