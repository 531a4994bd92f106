"""SubjectPublicKeyInfo with explicit EC domain parameters (RFC 3279 §2.3.5, SEC 1 §3.3).

Real documents carry them (the German master list's signer keys, many DG14
keys): the parameters are spelled out rather than named by an OID.
"""

from __future__ import annotations

from asn1crypto import keys

from macnss_auth.nfc.ec import Curve


def explicit_spki(
    *, p: int, a: bytes, b: bytes, base: bytes, order: int, cofactor: int, point: bytes
) -> bytes:
    """The DER of a SubjectPublicKeyInfo for ``point`` on the curve these values give."""
    parameters = keys.ECDomainParameters(
        name="specified",
        value={
            "version": "ecdpVer1",
            "field_id": {"field_type": "prime_field", "parameters": p},
            "curve": {"a": a, "b": b},
            "base": base,
            "order": order,
            "cofactor": cofactor,
        },
    )
    spki = keys.PublicKeyInfo(
        {"algorithm": {"algorithm": "ec", "parameters": parameters}, "public_key": point}
    )
    return bytes(spki.dump())


def curve_spki(curve: Curve, point: bytes) -> bytes:
    """:func:`explicit_spki` with a standardized curve's own parameters."""
    size = curve.field_length
    return explicit_spki(
        p=curve.p,
        a=curve.a.to_bytes(size, "big"),
        b=curve.b.to_bytes(size, "big"),
        base=b"\x04" + curve.gx.to_bytes(size, "big") + curve.gy.to_bytes(size, "big"),
        order=curve.n,
        cofactor=1,
        point=point,
    )
