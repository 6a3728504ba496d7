"""The --json outputs' schemas: each committed file is its model's current export and is a valid schema.

The outputs themselves are validated against these files in each command's own tests.
"""

import json

import pytest
from jsonschema import Draft202012Validator

from conftest import ROOT
from xrelay.tools.cli import cli


def committed(name: str) -> dict:
    return json.loads((ROOT / "docs" / "schemas" / f"{name}.schema.json").read_text())


@pytest.mark.parametrize("name", sorted(cli.COMMAND_SCHEMAS))
def test_committed_schema_is_current(name, capsys):
    path = ROOT / "docs" / "schemas" / f"{name}.schema.json"
    assert path.is_file(), f"run `.venv/bin/xrelay schema {name} > docs/schemas/{name}.schema.json`"
    assert cli.main(["schema", name]) == 0
    assert capsys.readouterr().out == path.read_text(), (
        f"docs/schemas/{name}.schema.json is out of date: run `.venv/bin/xrelay schema {name} > {path.name}`")
    Draft202012Validator.check_schema(committed(name))


def validate(name: str, document: str) -> dict:
    """``document`` (a command's --json output) checked against the committed schema ``name``."""
    data = json.loads(document)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in Draft202012Validator(committed(name)).iter_errors(data)]
    assert not errors, errors
    return data
