"""Revocations received by intake mark the user revoked, for the reconcile to respect."""

from datetime import UTC, datetime

from conftest import fixture_bytes
from helpers import client_error, post, stored_keys
from xrelay.storage.store import StateStore

XAA_USER, AAA_USER = "1111111111111111111", "63046977"


def users(stack) -> dict:
    return StateStore(stack.stack.physical("StateTable")).users()


def test_xaa_and_aaa_revokes_mark_their_users_revoked_at_the_time_x_gives(stack):
    assert post(stack, fixture_bytes("xaa/26_oauth.revoke.json"))[0] == 200
    assert post(stack, fixture_bytes("aaa/user_event_revoke.json"))[0] == 200
    found = users(stack)
    assert found[XAA_USER]["status"] == "revoked" and found[XAA_USER]["revoked_at"] == "2026-07-23T21:44:05.000Z"
    assert found[AAA_USER]["status"] == "revoked" and found[AAA_USER]["revoked_at"] == "2018-05-24T09:48:12.000Z"
    assert found[AAA_USER]["revoke_event"] in stored_keys(stack)


def test_a_replayed_old_revoke_does_not_undo_a_later_authorisation(stack):
    state = StateStore(stack.stack.physical("StateTable"))
    post(stack, fixture_bytes("xaa/26_oauth.revoke.json"))
    state.mark_authorized(XAA_USER, datetime(2026, 8, 1, tzinfo=UTC))  # the user came back
    assert post(stack, fixture_bytes("xaa/26_oauth.revoke.json"))[1]["duplicates"] == 1
    assert users(stack)[XAA_USER]["status"] == "authorized"


def test_a_revocation_that_failed_to_record_is_recorded_by_the_retry(stack, faults):
    rule = faults.inject("dynamodb", "UpdateItem", client_error("InternalServerError", 500))
    body = fixture_bytes("xaa/26_oauth.revoke.json")
    assert post(stack, body)[0] == 503 and rule.fired == 1
    assert XAA_USER not in users(stack)
    code, answer = post(stack, body)
    assert (code, answer["duplicates"]) == (200, 1)  # the event was stored the first time...
    assert users(stack)[XAA_USER]["status"] == "revoked"  # ...and the revocation is not lost
