"""The committed state machine is the builder's output, and every key the builder names is written by it."""

import json
import re

import pytest
from support.template import ROOT

from tidings.saga import definition, result_paths

pytestmark = pytest.mark.unit

DEFINITION_PATH = ROOT / "statemachine" / "notification_saga.asl.json"
#: The numbers the template substitutes, unquoted in the file.
NUMBER = re.compile(r'(?<!")\$\{(\w+)\}')


def _parsed(text: str) -> dict:
    return json.loads(NUMBER.sub(lambda match: json.dumps(match.group(1)), text))


def test_the_committed_definition_is_the_builders_output():
    # A state renamed, a Retry changed or a ResultPath moved only in the JSON fails here: run `make asl`.
    assert DEFINITION_PATH.read_text() == definition.render()


def test_a_definition_edited_by_hand_is_reported_stale(tmp_path, capsys):
    # Given the committed definition with one state renamed only in the JSON
    edited = tmp_path / "saga.asl.json"
    edited.write_text(DEFINITION_PATH.read_text().replace('"SendSmsViaSns"', '"SendSmsThroughSns"'))

    # When `make asl`'s check runs over it, then over the builder's own output
    stale = definition.main([str(edited), "--check"])
    definition.main([str(edited)])
    fresh = definition.main([str(edited), "--check"])

    # Then the edit is refused, and regenerating restores the builder's names
    assert stale == 1
    assert "make asl" in capsys.readouterr().err
    assert fresh == 0
    assert '"SendSmsViaSns"' in edited.read_text()


def test_every_key_of_the_result_path_table_is_written_by_its_state():
    states = _parsed(definition.render())["States"]
    steps = [
        step
        for name, step in vars(result_paths).items()
        if name.isupper() and isinstance(step, result_paths.Step)
    ]
    steps += [
        step
        for channel in result_paths.CHANNELS
        for step in (channel.primary, channel.fallback, channel.park, channel.park_and_wait)
        if step is not None
    ]
    assert len(steps) == 16
    for step in steps:
        state = states[step.state]
        assert state["ResultPath"] == step.result_path, step.state
        caught = {block["ResultPath"] for block in state.get("Catch", [])}
        assert caught == ({step.error_path} if step.error else set()), step.state
