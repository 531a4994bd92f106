"""``macnss-auth document verify`` and ``macnss-auth masterlist show``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from macnss_auth.cli.document import command as document_command
from macnss_auth.cli.masterlist import command as masterlist_command
from macnss_auth.testing.pki import TestDocument, TestPki

from .conftest import VECTORS

NL = VECTORS / "masterlists" / "NL_ML_2026-07-22.ml"
DE = VECTORS / "masterlists" / "DE_ML_2026-05-28-08-28-45.ml"


def test_bsi_specimen_json() -> None:
    result = CliRunner().invoke(
        document_command,
        ["verify", str(VECTORS / "bsi2008"), "--masterlist", str(NL), "--trust-as-is", "--json"],
    )
    assert result.exit_code == 1, result.output
    assert f"master list {NL.name}: trusted as is (--trust-as-is)" in result.stderr
    data = json.loads(result.stdout)
    assert data["genuine"] is False
    checks = {c["name"]: c for c in data["checks"]}
    assert checks["sod_signature"]["status"] == "passed"
    assert checks["chain"]["status"] == "failed"
    assert "CSCA BDR TEST" in checks["chain"]["reason"]
    assert checks["dg1_hash"]["status"] == "passed"
    assert checks["dg15_hash"]["status"] == "not-performed"


def test_test_document_is_genuine(tmp_path: Path) -> None:
    import datetime as dt  # noqa: PLC0415 (local)

    test_pki = TestPki.create(now=dt.datetime.now(dt.timezone.utc), key_type="ec")
    document: TestDocument = test_pki.issue_document(aa_key_type="ec")
    dump = tmp_path / "dump"
    dump.mkdir()
    for number, data in document.data_groups.items():
        (dump / f"EF_DG{number}.bin").write_bytes(data)
    (dump / "EF_SOD.bin").write_bytes(document.sod)
    (dump / "EF_COM.bin").write_bytes(document.com)
    (tmp_path / "ml.ml").write_bytes(test_pki.master_list())
    challenge = bytes.fromhex("0011223344556677")
    (tmp_path / "aa.bin").write_bytes(document.sign_active_authentication(challenge))
    self_signed = ["verify", str(dump), "--masterlist", str(tmp_path / "ml.ml")]
    aa = ["--aa-challenge", challenge.hex(), "--aa-signature", str(tmp_path / "aa.bin")]
    # A list that only its own CSCA vouches for is refused unless the caller says so.
    result = CliRunner().invoke(document_command, self_signed + aa)
    assert result.exit_code == 1
    assert "trust material refused" in result.stderr
    assert "trust_as_is" in result.stderr
    args = [*self_signed, "--trust-as-is"]
    result = CliRunner().invoke(document_command, args + aa)
    assert "ml.ml: trusted as is" in result.stderr
    csca_dir = tmp_path / "csca"
    csca_dir.mkdir()
    (csca_dir / "csca.der").write_bytes(test_pki.csca.der)
    chained = CliRunner().invoke(document_command, [*self_signed, "--csca", str(csca_dir), *aa])
    assert chained.exit_code == 0, chained.output
    assert "ml.ml: signer chains to a --csca" in chained.stderr
    assert result.exit_code == 0, result.output
    assert "GENUINE: every required check passed" in result.output
    # Without the AA exchange, the default policy (AA or CA) is not met.
    result = CliRunner().invoke(document_command, args)
    assert result.exit_code == 1
    result = CliRunner().invoke(document_command, [*args, "--require", "none"])
    assert result.exit_code == 0


def test_usage_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(document_command, ["verify", str(tmp_path)])
    assert result.exit_code == 2
    assert "SOD" in result.output
    shutil.copy(VECTORS / "bsi2008" / "EF_SOD.bin", tmp_path / "SOD.bin")
    result = runner.invoke(document_command, ["verify", str(tmp_path), "--aa-challenge", "00"])
    assert result.exit_code == 2


@pytest.mark.parametrize("as_json", [False, True])
def test_masterlist_show_morocco(as_json: bool) -> None:
    args = ["show", str(DE), "--country", "MA"] + (["--json"] if as_json else [])
    result = CliRunner().invoke(masterlist_command, args)
    assert result.exit_code == 0, result.output
    if as_json:
        data = json.loads(result.output)
        assert data["signature_verified"] is True
        assert data["certificates"]
        assert all(c["country"] == "MA" for c in data["certificates"])
        assert all("CSCA-MAROC" in c["subject"] for c in data["certificates"])
    else:
        assert "signature: VERIFIED" in result.output
        assert "CSCA-MAROC" in result.output


def test_masterlist_show_tampered(tmp_path: Path) -> None:
    data = bytearray(NL.read_bytes())
    data[5000] ^= 1
    (tmp_path / "bad.ml").write_bytes(bytes(data))
    result = CliRunner().invoke(masterlist_command, ["show", str(tmp_path / "bad.ml")])
    assert result.exit_code == 1
    assert "NOT VERIFIED" in result.output
    (tmp_path / "junk.ml").write_bytes(b"junk")
    result = CliRunner().invoke(masterlist_command, ["show", str(tmp_path / "junk.ml")])
    assert result.exit_code == 1
