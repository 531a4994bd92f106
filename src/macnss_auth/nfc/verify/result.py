"""What document verification reports: checks, a verdict, and the policy behind it."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

from macnss_auth.errors import DocumentNotGenuine

__all__ = [
    "Check",
    "CheckName",
    "CheckStatus",
    "ChipAuthenticity",
    "DocumentRejected",
    "DocumentVerification",
    "VerificationPolicy",
]


class CheckStatus(str, enum.Enum):
    """The outcome of one check."""

    PASSED = "passed"
    FAILED = "failed"
    NOT_PERFORMED = "not-performed"


class CheckName(str, enum.Enum):
    """The names of the verifier's checks (their values are what JSON reports show).

    Data group hashes are ``dg<N>_hash`` (:meth:`data_group_hash`); a reader
    adds ``read_<file>`` steps for optional files it could not read.
    """

    SOD = "sod"
    SOD_SIGNATURE = "sod_signature"
    CHAIN = "chain"
    CRL = "crl"
    ACTIVE_AUTHENTICATION = "active_authentication"
    CHIP_AUTHENTICATION = "chip_authentication"
    EXTENDED_LENGTH = "extended_length"

    # Shown and formatted as the value (``"sod"``), as the plain strings were.
    __str__ = str.__str__
    __format__ = str.__format__  # type: ignore[assignment]

    @staticmethod
    def data_group_hash(number: int) -> str:
        """The name of data group ``number``'s hash check: ``dg<N>_hash``."""
        return f"dg{number}_hash"


@attrs.frozen
class Check:
    """One verification step: its name, status and a reason a person can read.

    Names (:class:`CheckName`): ``sod`` (EF.SOD parsed), ``sod_signature``,
    ``chain``, ``crl``, ``dg<N>_hash`` for each data group read or listed,
    ``active_authentication`` and ``chip_authentication``; from a reader also
    ``read_<file>`` and ``extended_length`` (optional steps that did not work out).

    Attributes:
        name: the check's name.
        status: passed, failed or not performed.
        reason: why, for a person.
        status_word: the chip's status word, when a chip answer decided it.
    """

    name: str
    status: CheckStatus
    reason: str
    status_word: int | None = None

    @property
    def passed(self) -> bool:
        """Whether the check passed."""
        return self.status is CheckStatus.PASSED


class ChipAuthenticity(str, enum.Enum):
    """What proof that the chip is not a clone the policy requires.

    Passive Authentication proves the data was signed by the issuer, not that
    the chip is the one it was written to: copying a chip's files onto another
    chip passes PA. Active Authentication and Chip Authentication prove that
    the chip holds a private key that cannot be read out.
    """

    NONE = "none"
    ACTIVE_AUTHENTICATION = "active_authentication"
    CHIP_AUTHENTICATION = "chip_authentication"
    EITHER = "either"


@attrs.frozen
class VerificationPolicy:
    """When a document counts as genuine.

    Attributes:
        chip_authenticity: the clone-resistance proof required (default: AA or CA).
        require_trusted_chain: the document signer must chain to a trusted CSCA.
        require_crl: a current CRL of the issuing CSCA must be available (and not list the DS).
        required_data_groups: data groups that must be read and hash-verified.
    """

    chip_authenticity: ChipAuthenticity = ChipAuthenticity.EITHER
    require_trusted_chain: bool = True
    require_crl: bool = False
    required_data_groups: frozenset[int] = frozenset({1})

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "chip_authenticity": self.chip_authenticity.value,
            "require_trusted_chain": self.require_trusted_chain,
            "require_crl": self.require_crl,
            "required_data_groups": sorted(self.required_data_groups),
        }


@attrs.frozen
class DocumentVerification:
    """The result of verifying a document: every check and one verdict.

    Attributes:
        checks: every check, in the order performed.
        genuine: the verdict under ``policy``.
        policy: the policy applied.
        verified_data_groups: data groups whose hash matched a SOD whose
            signature verified and whose signer chains to a trust anchor:
            only these may be relied on.
        verified_hashes: their hashes (so later users can re-check the bytes).
        document_signer: the DS certificate subject, when the SOD named one.
        verdict_reason: why the verdict is what it is.
    """

    checks: tuple[Check, ...]
    genuine: bool
    policy: VerificationPolicy
    verified_data_groups: frozenset[int]
    verified_hashes: Mapping[int, bytes] = attrs.field(
        repr=False, factory=lambda: MappingProxyType({})
    )
    document_signer: str | None = None
    verdict_reason: str = ""

    def check(self, name: str | CheckName) -> Check:
        """The check called ``name``.

        Raises:
            KeyError: no such check.
        """
        for item in self.checks:
            if item.name == name:
                return item
        raise KeyError(name)

    def status(self, name: str | CheckName) -> CheckStatus:
        """The status of check ``name`` (NOT_PERFORMED when absent)."""
        for item in self.checks:
            if item.name == name:
                return item.status
        return CheckStatus.NOT_PERFORMED

    def require_genuine(self) -> DocumentVerification:
        """Return ``self`` if genuine.

        Raises:
            DocumentRejected: the document is not genuine under the policy.
        """
        if not self.genuine:
            raise DocumentRejected(verification=self)
        return self

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form: ``genuine``, the reason, the policy and every check."""
        return {
            "genuine": self.genuine,
            "verdict_reason": self.verdict_reason,
            "document_signer": self.document_signer,
            "verified_data_groups": sorted(self.verified_data_groups),
            "policy": self.policy.to_dict(),
            "checks": [_check_dict(c) for c in self.checks],
        }


def _check_dict(check: Check) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": check.name,
        "status": check.status.value,
        "reason": check.reason,
    }
    if check.status_word is not None:
        out["status_word"] = f"{check.status_word:04X}"
    return out


class DocumentRejected(DocumentNotGenuine):
    """A document failed verification; ``verification`` holds every check."""

    def __init__(self, *, verification: DocumentVerification) -> None:
        super().__init__(f"document not genuine: {verification.verdict_reason}")
        self.verification = verification
