"""Real documents: the BSI 2008 specimen and the ISO/IEC 39794-5 DG2 samples."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from macnss_auth.nfc import lds
from macnss_auth.nfc.lds import ImageType, LdsFile
from macnss_auth.nfc.mrz import MrzFormat
from macnss_auth.nfc.pki import HashAlgorithm

VECTORS = Path(__file__).resolve().parents[2] / "vectors"
BSI = VECTORS / "bsi2008"
ISO = VECTORS / "iso39794"


def bsi(name: str) -> bytes:
    return (BSI / name).read_bytes()


def test_ef_com() -> None:
    com = lds.parse_com(bsi("EF_COM.bin"))
    assert com.lds_version == "0107"
    assert com.unicode_version == "040000"
    assert com.data_groups == (1, 2, 3, 14)


def test_dg1_mrz() -> None:
    mrz = lds.parse_dg1(bsi("Datagroup1.bin"))
    assert mrz.format is MrzFormat.TD3
    assert mrz.primary_identifier == "MUSTERMANN"
    assert mrz.secondary_identifier == "ERIKA"
    assert mrz.issuing_state == "D<<"
    assert mrz.document_number == "C11T002JM"
    assert mrz.date_of_birth == "960812"
    assert mrz.date_of_expiry == "131031"
    assert mrz.sex == "F"


def jp2_boxes(image: bytes) -> list[bytes]:
    """The top-level box types of a JP2 file (ISO/IEC 15444-1 Annex I); the boxes must tile it."""
    boxes = []
    pos = 0
    while pos < len(image):
        length = int.from_bytes(image[pos : pos + 4], "big")
        kind = image[pos + 4 : pos + 8]
        if length == 1:
            length = int.from_bytes(image[pos + 8 : pos + 16], "big")
        elif length == 0:
            length = len(image) - pos
        assert length >= 8
        boxes.append(kind)
        pos += length
    assert pos == len(image)
    return boxes


def test_dg2_is_a_jpeg2000_face_with_its_dimensions() -> None:
    dg2 = lds.parse_dg2(bsi("Datagroup2.bin"))
    assert len(dg2.faces) == 1
    face = dg2.faces[0]
    assert face.encoding == "ISO/IEC 19794-5"
    assert face.image_type is ImageType.JPEG2000
    # A complete JP2 file: signature box first, JPEG 2000 end-of-codestream marker last.
    assert face.image.startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n")
    assert face.image.endswith(b"\xff\xd9")
    assert jp2_boxes(face.image) == [b"jP  ", b"ftyp", b"jp2h", b"jp2c"]
    assert (face.width, face.height) == (413, 531)
    # The specimen's 19794-5 header claims other dimensions than the image has.
    assert (face.declared_width, face.declared_height) == (337, 449)
    assert lds.image_dimensions(face.image) == (413, 531)


def test_dg3_fingerprint_headers() -> None:
    dg3 = lds.parse_dg3(bsi("Datagroup3.bin"))
    assert [f.position for f in dg3.fingers] == [2, 7]
    first = dg3.fingers[0]
    assert (first.width, first.height, first.quality) == (620, 620, 100)
    assert first.compression == 2  # WSQ
    assert first.horizontal_resolution == 500


def test_dg4_envelope_only() -> None:
    assert isinstance(lds.parse_data_group(4, bsi("Datagroup4.bin")), bytes)


def test_dg14_with_explicit_parameter_key() -> None:
    dg14 = lds.parse_dg14(bsi("Datagroup14.bin"))
    key = dg14.chip_authentication_key()
    assert key is not None
    assert key.group is not None
    assert key.group.name == "brainpoolP224r1"
    assert key.public_key.startswith(b"\x04")
    assert len(key.public_key) == 57
    assert [info.version for info in dg14.chip_authentication] == [1]
    assert dg14.der == bsi("Datagroup14.bin")[4:]


def test_dg15_rsa_key() -> None:
    key = lds.parse_dg15(bsi("Datagroup15.bin")).public_key
    assert key.algorithm == "rsa"
    assert key.key_size == 1024
    assert key.rsa_exponent == 65537


def test_sod_hashes() -> None:
    sod = lds.parse_sod(bsi("EF_SOD.bin"))
    assert sod.hash_algorithm is HashAlgorithm.SHA1
    assert sorted(sod.hashes) == [1, 2, 3, 14]
    for number in (1, 2, 3, 14):
        data = bsi(f"Datagroup{number}.bin")
        assert hashlib.sha1(data).digest() == sod.hashes[number]  # noqa: S324 (the SOD's algorithm)
    signer = sod.signed.signer_certificate()
    assert signer is not None
    assert signer.issuer == "Common Name: CSCA BDR TEST 19.09.07"
    assert signer.public_key.curve == "brainpoolP224r1"


@pytest.mark.parametrize(
    "name", ["ICAO_39794_5_AP_DG2_AllFields.dat", "ICAO_39794_5_AP_DG2_MandFields.dat"]
)
def test_iso39794_samples_yield_the_sample_image(name: str) -> None:
    dg2 = lds.parse_dg2((ISO / name).read_bytes())
    assert len(dg2.faces) == 1
    face = dg2.faces[0]
    assert face.encoding == "ISO/IEC 39794-5"
    assert face.image == (ISO / "ICAO_39794_5_AP_DG2_Face.jpg").read_bytes()
    assert face.image_type is ImageType.JPEG2000
    assert (face.width, face.height) == (413, 531)


def test_iso39794_declared_size() -> None:
    face = lds.parse_dg2((ISO / "ICAO_39794_5_AP_DG2_AllFields.dat").read_bytes()).faces[0]
    assert (face.declared_width, face.declared_height) == (572, 731)


def test_file_identities() -> None:
    assert LdsFile.DG2.tag == 0x75
    assert LdsFile.DG14.file_id == 0x010E
    assert LdsFile.SOD.short_file_id == 0x1D
    assert LdsFile.COM.short_file_id == 0x1E
    assert LdsFile.from_tag(0x6F) is LdsFile.DG15
    with pytest.raises(lds.LdsFormatError):
        LdsFile.data_group(17)
