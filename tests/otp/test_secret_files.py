"""Files that hold secrets: QR codes with the seed, the CLI's key file."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from macnss_auth.cli import home as cli_home
from macnss_auth.cli import main
from macnss_auth.cli.home import HOME_ENV, KEY_ENV, load_key
from macnss_auth.clock import SystemRandom
from macnss_auth.errors import ConfigurationError


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The usual umask: files come out world-readable unless created 0600."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(HOME_ENV, raising=False)
    monkeypatch.delenv(KEY_ENV, raising=False)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("open_umask", "no_env")
def test_qr_files_with_the_seed_are_private(tmp_path: Path) -> None:
    svg, png = tmp_path / "qr.svg", tmp_path / "qr.png"
    result = CliRunner().invoke(
        main,
        [
            *("totp", "enroll", "alice", "--home", str(tmp_path / "h"), "--no-qr"),
            *("--svg", str(svg), "--png", str(png)),
        ],
    )
    assert result.exit_code == 0, result.output
    assert svg.read_text().lstrip().startswith("<svg")
    assert png.read_bytes().startswith(b"\x89PNG")
    assert _mode(svg) == 0o600
    assert _mode(png) == 0o600


@pytest.mark.usefixtures("open_umask", "no_env")
def test_qr_files_already_there_become_private(tmp_path: Path) -> None:
    svg = tmp_path / "qr.svg"
    svg.write_text("old")
    svg.chmod(0o644)
    result = CliRunner().invoke(
        main,
        ["totp", "enroll", "alice", "--home", str(tmp_path / "h"), "--no-qr", "--svg", str(svg)],
    )
    assert result.exit_code == 0, result.output
    assert _mode(svg) == 0o600
    assert svg.read_text().lstrip().startswith("<svg")


@pytest.mark.usefixtures("no_env")
def test_a_second_process_never_reads_a_half_written_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # While the first process draws its key, a second one starts: it must
    # find either no key file (and make one) or a complete one.
    draw = SystemRandom.token_bytes
    seen: list[bytes] = []

    def racing(self: SystemRandom, n: int) -> bytes:
        if not seen:
            seen.append(b"")
            seen.append(load_key(tmp_path, "k.key", "NO_SUCH_ENV").reveal())
        return draw(self, n)

    monkeypatch.setattr(SystemRandom, "token_bytes", racing)
    first = load_key(tmp_path, "k.key", "NO_SUCH_ENV").reveal()
    assert first == seen[1]
    assert load_key(tmp_path, "k.key", "NO_SUCH_ENV").reveal() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.key"]
    assert _mode(tmp_path / "k.key") == 0o600


@pytest.mark.usefixtures("no_env")
def test_a_crash_while_creating_the_key_leaves_no_empty_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(self: SystemRandom, n: int) -> bytes:
        raise OSError("no entropy today")

    with monkeypatch.context() as patch:
        patch.setattr(SystemRandom, "token_bytes", crash)
        with pytest.raises(OSError, match="entropy"):
            load_key(tmp_path, "k.key", "NO_SUCH_ENV")
    assert list(tmp_path.iterdir()) == []
    key = load_key(tmp_path, "k.key", "NO_SUCH_ENV")
    assert len(key.reveal()) == 32


@pytest.mark.usefixtures("no_env")
def test_a_bad_key_file_is_still_refused(tmp_path: Path) -> None:
    (tmp_path / "k.key").write_text("not hex\n")
    with pytest.raises(ConfigurationError):
        cli_home.load_key(tmp_path, "k.key", "NO_SUCH_ENV")
