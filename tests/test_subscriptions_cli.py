"""`xrelay subscriptions apply FILE`: validated, then stored as the desired state."""

from conftest import FIXTURES
from xrelay.storage.store import StateStore
from xrelay.subscriptions.desired import DesiredState
from xrelay.tools.cli.cli import main


def test_a_valid_file_is_stored_as_the_desired_state(stack, capsys):
    path = FIXTURES / "desired" / "valid.yaml"
    assert main(["subscriptions", "apply", str(path)]) == 0
    stored = StateStore(stack.stack.physical("StateTable")).desired()
    state = DesiredState.from_json(stored["state"])
    assert state.webhook.url == "https://abc123.execute-api.us-east-1.amazonaws.com/webhook"
    assert [u.user_id for u in state.account_activity] == ["4337869213", "2244994945"]
    assert "chat.conversation.join" in {s.event_type for s in state.activity}  # the alias, normalised
    assert stored["source"] == str(path)
    out, err = capsys.readouterr()
    assert "2 AAA users, 6 XAA subscriptions, prune off" in out
    assert "warning:" in err and "quote" in err


def test_an_invalid_file_is_refused_with_line_numbers_and_nothing_is_stored(stack, capsys):
    path = FIXTURES / "desired" / "invalid.yaml"
    assert main(["subscriptions", "apply", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:" in err and "unknown event_type" in err
    assert StateStore(stack.stack.physical("StateTable")).desired() is None


def test_a_second_apply_replaces_the_first(stack, tmp_path):
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("webhook: {url: 'https://a.example/webhook'}\nactivity:\n"
                     "  - {event_type: post.create, filter: {user_id: '1'}}\n")
    second.write_text("webhook: {url: 'https://b.example/webhook'}\nprune: true\n")
    assert main(["subscriptions", "apply", str(first)]) == 0
    assert main(["subscriptions", "apply", str(second)]) == 0
    state = DesiredState.from_json(StateStore(stack.stack.physical("StateTable")).desired()["state"])
    assert (state.webhook.url, state.activity, state.prune) == ("https://b.example/webhook", [], True)
