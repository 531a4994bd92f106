"""``macnss-auth code``: a malformed SUBJECT is a usage error (status 2) for every command."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from macnss_auth.cli import main


@pytest.mark.parametrize("subject", ["", "x" * 513])
@pytest.mark.parametrize(
    "command",
    [("enroll", "--email", "a@example.org"), ("send", "--channel", "sms")],
    ids=["enroll", "send"],
)
def test_a_malformed_subject_is_a_usage_error(
    tmp_path: Path, command: tuple[str, ...], subject: str
) -> None:
    verb, *options = command
    result = CliRunner().invoke(main, ["code", verb, subject, *options, "--home", str(tmp_path)])
    assert result.exit_code == 2, result.stderr
    assert "the subject must be 1 to 512 characters" in result.stderr
    assert "Usage:" in result.stderr
