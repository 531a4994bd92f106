"""Read a whole document in one call: access control, files, chip and active authentication.

Theory of operation. :class:`DocumentReader` sequences the sans-I/O protocol
objects (access control, :mod:`~macnss_auth.nfc.files` for SELECT and READ
BINARY, Chip and Active Authentication); every APDU goes through
:func:`~macnss_auth.nfc.protocol.run` over a :class:`Transport`:

1. **Access.** Read EF.CardAccess in plain; if it offers PACE, run the
   strongest offered mapping (CAM, then GM, then IM) with the CAN or MRZ and
   SELECT the eMRTD application under secure messaging. Otherwise SELECT the
   application and run BAC (MRZ only).
2. **Files.** EF.COM, EF.SOD, DG14 first (they decide what follows), then the
   requested data groups that EF.COM lists. Each file is one
   :class:`~macnss_auth.nfc.files.ReadFile` run through
   :func:`~macnss_auth.nfc.protocol.run`: the first READ BINARY by short file
   identifier (no SELECT round trip) reads a full chunk, whose TLV header
   tells the file length; the rest comes in the largest chunks a protected
   short response can carry (223 bytes with AES, 231 with 3DES), or bigger
   with extended length. A card that rejects a chunk size (6700, 6Cxx) is
   asked again with a smaller one; the machine knows those rules, the reader
   only carries the chunk size from one file to the next.
3. **Chip Authentication** (when DG14 offers it and it was not implicit in
   PACE-CAM) re-keys secure messaging; remaining files are read on the new keys.
4. **Active Authentication** signs the caller's 8-byte challenge (a server
   nonce) with the key of DG15.

Field robustness: only access (PACE or BAC), EF.SOD and DG1 are mandatory.
Everything else is optional and never ends a read: a file EF.COM lists that
the chip lacks (``6A82``) or guards (``6982`` for DG3/DG4 without Terminal
Authentication), Chip or Active Authentication that cannot run (an algorithm
this library lacks, the chip refusing ``6A80``/``6982``/``6A88``/``6D00``, an
unknown key id) each become a :class:`~macnss_auth.nfc.verify.Check` in
:attr:`DocumentRead.steps` (status, reason, status word) and the read goes on.
A chip that drops secure messaging after such a refusal is opened again. The
files to read are those EF.SOD hashes plus those EF.COM lists (EF.COM is only
a hint). Chips that refuse extended length after announcing it, answer
``6Cxx`` (the right Le), or chain answers with ``61xx`` are read all the same.

Resilience: a retryable :class:`~macnss_auth.errors.TransportError` in the
middle (the card slipped away) makes the reader wait for the card again
through ``reconnect``, re-establish access (and CA) and resume at the last
offset, within ``session_budget`` seconds. A refused password stops at once:
automatic retries would burn the card's retry counter. (PACE runs through
:func:`~macnss_auth.nfc.pace.run_pace`, which repeats only a DH run refused
with a plain ``6300`` because of how K was encoded; see ``docs/pace.md``.)

Nothing here verifies anything: :mod:`macnss_auth.nfc.verify` decides whether
the files are genuine.
"""

from __future__ import annotations

import contextlib
import enum
import time
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType

import attrs

from macnss_auth.clock import Clock, RandomSource
from macnss_auth.errors import (
    ConfigurationError,
    MacnssAuthError,
    MalformedInput,
    RemoteProtocolError,
    SecureMessagingError,
    TransportError,
    UnsupportedAlgorithm,
)
from macnss_auth.nfc.access import open_chip
from macnss_auth.nfc.active_auth import ActiveAuthentication
from macnss_auth.nfc.apdu import CommandAPDU
from macnss_auth.nfc.chip_auth import (
    CA_VERSIONS,
    CaAlgorithm,
    ChipAuthentication,
    ChipPublicKey,
    DhPublicKey,
)
from macnss_auth.nfc.chip_auth import chip_public_key as parse_chip_public_key
from macnss_auth.nfc.files import (
    EMRTD_AID,
    MAX_FILE_BYTES,
    ReadFile,
    ReadProgress,
    ReadSessionEnded,
    SelectApplication,
    SelectMasterFile,
    announced_response_size,
    read_chunk_size,
)
from macnss_auth.nfc.lds.files import LdsFile, parse_com
from macnss_auth.nfc.lds.security import parse_dg14
from macnss_auth.nfc.lds.sod import parse_sod
from macnss_auth.nfc.mrz import CAN, PIN, PUK, MrzKey
from macnss_auth.nfc.pace import PaceResult
from macnss_auth.nfc.pki import Certificate, TrustStore
from macnss_auth.nfc.protocol import Transport, run
from macnss_auth.nfc.securityinfos import (
    ChipAuthenticationInfo,
    ChipAuthenticationOid,
    ChipAuthenticationPublicKeyInfo,
    PublicKeyOid,
)
from macnss_auth.nfc.sm import SecureChannel
from macnss_auth.nfc.verify import (
    Check,
    CheckStatus,
    ChipAuthenticationOutcome,
    DocumentVerification,
    VerificationPolicy,
    inspect_document,
)

__all__ = [
    "EMRTD_AID",
    "MAX_FILE_BYTES",
    "AccessProtocol",
    "DocumentRead",
    "DocumentReader",
    "ProgressCallback",
    "chip_public_key",
]

#: A first READ BINARY of EF.CardAccess answered with one of these: the chip has none.
_NO_CARD_ACCESS = frozenset({0x6A82, 0x6A86, 0x6982, 0x6D00, 0x6A88})

#: (file name, bytes read so far, total bytes)
ProgressCallback = Callable[[str, int, int], None]

_NOT_PERFORMED, _FAILED = CheckStatus.NOT_PERFORMED, CheckStatus.FAILED
#: Sessions a read may open again after the chip ended one (refusals, extended length).
_MAX_REOPEN = 24
#: What a status word means when a chip refuses an optional step.
_REFUSALS = {
    0x6A82: "the chip does not have it",
    0x6982: "the chip refuses it (security status not satisfied: Terminal Authentication)",
    0x6985: "the chip refuses it (conditions of use not satisfied)",
    0x6A80: "the chip refuses the command data",
    0x6A88: "the chip does not know the referenced key or data",
    0x6A86: "the chip refuses the parameters",
    0x6D00: "the chip does not support the instruction",
    0x6E00: "the chip does not support the class",
}
#: Without a ChipAuthenticationInfo, DG14's key implies CA version 1 with 3DES
#: (BSI TR-03110 v1; gmrtd issue #9 reads French passports this way).
_IMPLIED_CA = {
    PublicKeyOid.ECDH: ChipAuthenticationOid.ECDH_3DES_CBC_CBC,
    PublicKeyOid.DH: ChipAuthenticationOid.DH_3DES_CBC_CBC,
}


def _refusal(exc: MacnssAuthError) -> str:
    """A short reason for an optional step that did not work out."""
    word = getattr(exc, "status_word", None)
    plain = " in plain, ending secure messaging" if isinstance(exc, SecureMessagingError) else ""
    if isinstance(word, int) and word in _REFUSALS:
        return f"{_REFUSALS[word]} ({word:04X}{plain})"
    if isinstance(word, int):
        return f"{exc} ({word:04X})"
    return str(exc)


def _tampering(exc: MacnssAuthError) -> bool:
    """A protected answer that fails its MAC or structure: never skipped as a refusal.

    A status word in plain (the chip ended secure messaging to refuse) is a refusal
    like a protected one; the session is opened again.
    """
    return isinstance(exc, SecureMessagingError) and exc.status_word is None


class AccessProtocol(str, enum.Enum):
    """How access to the chip was established."""

    BAC = "BAC"
    PACE = "PACE"


def _frozen_files(value: Mapping[str, bytes]) -> Mapping[str, bytes]:
    return MappingProxyType(dict(value))


@attrs.frozen
class DocumentRead:
    """What a reading session collected, ready for the verifier.

    Attributes:
        files: raw file contents by name (``"COM"``, ``"SOD"``, ``"DG1"``...).
        card_access: EF.CardAccess, if the chip has one.
        access: BAC or PACE.
        pace_protocol: the PACE OID that was run, if any.
        chip_authentication: ``"CA"`` when Chip Authentication re-keyed the
            channel, ``"PACE-CAM"`` when it was implied by PACE-CAM, else None.
        chip_authentication_key_id: the DG14 key id used, if any.
        chip_authentication_public_key: the DG14 key (SubjectPublicKeyInfo DER) the
            chip was authenticated against, if any.
        chip_authentication_proved: whether the chip proved that key (CA: the
            re-keyed channel worked; PACE-CAM: the mapping data verified).
        active_auth_challenge / active_auth_signature: the AA evidence, if run.
        challenge: the server nonce this read was made for (given to :meth:`DocumentReader.read`
            whether or not the chip does Active Authentication), so a verifier can
            refuse a read made for another attempt.
        round_trips: APDUs exchanged (including retries after link failures).
        reconnects: how many times the session was re-established.
        steps: optional steps that did not work out, as checks with a reason and
            the chip's status word (``read_dg3``, ``read_com``,
            ``chip_authentication``, ``active_authentication``, ``extended_length``);
            :meth:`verify` folds them into the verification.
    """

    files: Mapping[str, bytes] = attrs.field(converter=_frozen_files, repr=False)
    card_access: bytes | None = attrs.field(default=None, repr=False)
    access: AccessProtocol = AccessProtocol.BAC
    pace_protocol: str | None = None
    chip_authentication: str | None = None
    chip_authentication_key_id: int | None = None
    chip_authentication_public_key: bytes | None = attrs.field(default=None, repr=False)
    chip_authentication_proved: bool = False
    active_auth_challenge: bytes | None = None
    challenge: bytes | None = None
    active_auth_signature: bytes | None = attrs.field(default=None, repr=False)
    round_trips: int = 0
    reconnects: int = 0
    steps: tuple[Check, ...] = ()

    def chip_authentication_outcome(self) -> ChipAuthenticationOutcome | None:
        """The CA / PACE-CAM evidence in the form the verifier takes."""
        if self.chip_authentication_public_key is None:
            return None
        return ChipAuthenticationOutcome(
            public_key=self.chip_authentication_public_key,
            completed=self.chip_authentication_proved,
            key_id=self.chip_authentication_key_id,
        )

    def verify(
        self,
        trust_store: TrustStore,
        *,
        clock: Clock | None = None,
        policy: VerificationPolicy | None = None,
        document_signers: Iterable[Certificate | bytes] = (),
    ) -> DocumentVerification:
        """Run passive, active and chip authentication checks on what was read.

        A report, like :func:`~macnss_auth.nfc.verify.inspect_document`: it
        returns the verification whatever the verdict (call ``require_genuine()``
        on it, or use :func:`~macnss_auth.nfc.verify.verify_document`, to raise).

        ``document_signers`` are DS certificates to look the SOD's signer up in
        when EF.SOD does not carry it (they are still validated against the trust store).
        """
        return inspect_document(
            data_groups=self.data_groups,
            sod=self.files.get("SOD", b""),
            trust_store=trust_store,
            clock=clock,
            policy=policy,
            aa_challenge=self.active_auth_challenge,
            aa_signature=self.active_auth_signature,
            chip_authentication=self.chip_authentication_outcome(),
            read_steps=self.steps,
            document_signers=document_signers,
        )

    @property
    def data_groups(self) -> dict[int, bytes]:
        """The data groups read, by number."""
        return {int(name[2:]): data for name, data in self.files.items() if name.startswith("DG")}


#: The longest answer GET RESPONSE may gather (an extended-length answer and its SM wrapping).
_MAX_CHAINED_ANSWER = 65536 + 512


class _Counting:
    """Counts round trips through a transport and completes ``61xx`` answers.

    A chip that answers ``61xx`` ("xx more bytes") gets GET RESPONSE in plain
    until the whole answer is in; the pieces joined are the (protected) answer,
    as ISO/IEC 7816-4 §5.3.4 has it for a transmission-level mechanism.
    """

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.count = 0

    def transceive(self, command: bytes) -> bytes:
        self.count += 1
        answer = self.inner.transceive(command)
        body = b""
        while len(answer) >= 2 and answer[-2] == 0x61:
            body += answer[:-2]
            if len(body) > _MAX_CHAINED_ANSWER:
                raise RemoteProtocolError("the chip chains its answer without end (61xx)")
            more = CommandAPDU(0x00, 0xC0, 0x00, 0x00, ne=answer[-1] or 256)
            self.count += 1
            answer = self.inner.transceive(more.to_bytes())
        return body + answer


class DocumentReader:
    """Reads an eMRTD / eID card over a transport.

    Args:
        transport: where APDUs go.
        random: ephemeral keys and nonces for BAC/PACE/CA.
        data_groups: the data groups wanted (those the chip lists in EF.COM are read).
        chip_authentication: run Chip Authentication when DG14 offers it.
        extended_length: read in large chunks with extended-length APDUs: None
            (default) when the chip announces support in EF.ATR/INFO, True or
            False to force it.
        reconnect: waits for the card again after a link failure (e.g.
            ``NfcpyTransport.connect``); without it, link failures propagate.
        session_budget: seconds a read may take, reconnects included.
        progress: called as ``progress(file, bytes_read, total)``.
        monotonic: the clock for the budget.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        random: RandomSource,
        data_groups: Iterable[int] = (1, 2, 7, 11, 12, 14, 15),
        chip_authentication: bool = True,
        extended_length: bool | None = None,
        reconnect: Callable[[], None] | None = None,
        session_budget: float = 30.0,
        progress: ProgressCallback | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        wanted = sorted(set(data_groups))
        if any(not 1 <= number <= 16 for number in wanted):
            raise ConfigurationError("data groups are numbered 1 to 16")
        self._transport = _Counting(transport)
        self._random = random
        self._wanted = wanted
        self._chip_authentication = chip_authentication
        self._extended = extended_length
        self._reconnect = reconnect
        self._budget = session_budget
        self._progress = progress
        self._monotonic = monotonic
        # Per-session state, reset by read().
        self._channel: SecureChannel | None = None
        self._chunk = 0
        self._password: MrzKey | CAN | PIN | PUK | None = None
        self._card_access: bytes | None = None
        self._pace: PaceResult | None = None
        self._ca_info: tuple[ChipAuthenticationPublicKeyInfo, ChipAuthenticationInfo | None] | None
        self._ca_info = None
        #: (key, protocol, CA version) in the order to try them.
        self._ca_candidates: list[tuple[ChipAuthenticationPublicKeyInfo, CaAlgorithm, int]] = []
        #: (key, protocol, key id sent, CA version) of the CA that runs or ran.
        self._ca_run: tuple[ChipPublicKey, CaAlgorithm, int | None, int] | None = None
        self._steps: list[Check] = []
        #: The Le a chip asked for (6Cxx) in an answer that also ended the session.
        self._next_size: int | None = None
        self._reopened = 0
        self._ca_done: str | None = None
        self._cam_proved = False
        self._ca_refused = False
        self._card_access_read = False
        self._announced: int | None = None
        self._sessions = 0
        self._reconnects = 0
        self._deadline = 0.0

    def __repr__(self) -> str:
        return f"DocumentReader(data_groups={self._wanted!r})"

    def read(
        self, password: MrzKey | CAN | PIN | PUK, *, active_auth_challenge: bytes | None = None
    ) -> DocumentRead:
        """Read the document.

        Args:
            password: the MRZ fields, or the CAN or PIN (PACE only).
            active_auth_challenge: 8 bytes (a server nonce) for Active
                Authentication, when DG15 is present.

        Raises:
            AccessDenied: the chip refused the password (never retried); a
                PIN with one try left raises PasswordSuspended (resume it with
                ``macnss_auth.nfc.pace.resume_pin``), a blocked one PasswordBlocked.
            SecureMessagingError: a protected response failed its checks.
            RemoteProtocolError: a mandatory step failed (access, EF.SOD, DG1), with
                the chip's status word; optional steps end up in ``steps`` instead.
            TransportError: the link failed and could not be re-established in time.
            ConfigurationError: a CAN for a chip without PACE.
        """
        if active_auth_challenge is not None and len(active_auth_challenge) != 8:
            raise ConfigurationError("the Active Authentication challenge is 8 bytes")
        self._password = password
        self._deadline = self._monotonic() + self._budget
        self._reconnects = 0
        self._ca_info = None
        self._ca_done = None
        self._cam_proved = False
        self._ca_refused = False
        self._ca_candidates = []
        self._ca_run = None
        self._steps = []
        self._next_size = None
        self._reopened = 0
        self._card_access = None
        self._card_access_read = False
        start = self._transport.count
        try:
            files = self._read_all(active_auth_challenge)
        finally:
            if self._channel is not None:
                self._channel.close()
            self._channel = None
            self._password = None
        signature = files.pop("AA", None)
        return DocumentRead(
            files=files,
            card_access=self._card_access,
            access=AccessProtocol.PACE if self._pace is not None else AccessProtocol.BAC,
            pace_protocol=self._pace.protocol.value if self._pace is not None else None,
            chip_authentication=self._ca_done,
            chip_authentication_key_id=self._ca_key_id(),
            chip_authentication_public_key=self._ca_public_key(),
            chip_authentication_proved=self._ca_proved(),
            active_auth_challenge=active_auth_challenge if signature is not None else None,
            challenge=active_auth_challenge,
            active_auth_signature=signature,
            round_trips=self._transport.count - start,
            reconnects=self._reconnects,
            steps=tuple(self._steps),
        )

    def _ca_key_id(self) -> int | None:
        if self._ca_done is None or self._ca_info is None:
            return None
        return self._ca_info[0].key_id

    def _ca_public_key(self) -> bytes | None:
        if self._ca_done is None or self._ca_info is None:
            return None
        return self._ca_info[0].subject_public_key_info

    def _ca_proved(self) -> bool:
        # CA proves itself by the channel working afterwards; CAM by the mapping check.
        if self._ca_done == "CA":
            return not self._ca_refused
        return self._ca_done == "PACE-CAM" and self._cam_proved

    # -- the session ----------------------------------------------------------------

    def _step(self, name: str, status: CheckStatus, reason: str, word: int | None) -> None:
        self._steps.append(Check(name, status, reason, status_word=word))

    def _read_all(self, aa_challenge: bytes | None) -> dict[str, bytes]:
        files: dict[str, bytes] = {}
        self._with_resume(self._establish)
        listed: set[int] = set()
        com = self._read_optional(LdsFile.COM, files)
        if com is not None:
            try:
                listed |= set(parse_com(com).data_groups)
            except MacnssAuthError as exc:
                self._step("read_com", _NOT_PERFORMED, f"EF.COM cannot be parsed: {exc}", None)
        sod = self._read_resumable(LdsFile.SOD, files)
        # EF.SOD decides what can be verified; EF.COM is only a hint. An unusable
        # EF.SOD is the verifier's to report.
        with contextlib.suppress(MacnssAuthError):
            listed |= set(parse_sod(sod).hashes)
        order = [n for n in self._wanted if n in listed or n == 1]
        if 14 in order and self._read_optional(LdsFile.data_group(14), files) is not None:
            self._prepare_chip_authentication(files["DG14"])
            wants_ca = self._chip_authentication and self._ca_done != "PACE-CAM"
            if self._ca_candidates and wants_ca:
                self._chip_authenticate()
        for number in order:
            if number == 1:
                self._read_resumable(LdsFile.data_group(1), files)
            elif number != 14:
                self._read_optional(LdsFile.data_group(number), files)
        if aa_challenge is not None and "DG15" in files:
            signature = self._active_authenticate(aa_challenge)
            if signature:
                files["AA"] = signature
        return files

    def _read_optional(self, ef: LdsFile, files: dict[str, bytes]) -> bytes | None:
        """Read a file that may be missing or guarded: a refusal is a step, not the end."""
        try:
            return self._read_resumable(ef, files)
        except (RemoteProtocolError, MalformedInput) as exc:
            if _tampering(exc):
                raise
            word = getattr(exc, "status_word", None)
            self._step(f"read_{ef.name.lower()}", _NOT_PERFORMED, _refusal(exc), word)
        self._check_session()
        return None

    def _check_session(self) -> None:
        """After a refusal some chips drop secure messaging: probe, and open again if so."""
        try:
            self._select_application()
        except (RemoteProtocolError, ConfigurationError):
            self._reestablish()

    def _reestablish(self) -> None:
        """Open the session again (and redo Chip Authentication if it had worked).

        Raises:
            RemoteProtocolError: the chip ended the session too often, or the session
                budget is spent: a chip cannot keep a read going for ever.
        """
        self._reopened += 1
        if self._reopened > _MAX_REOPEN or self._monotonic() > self._deadline:
            raise RemoteProtocolError("the chip keeps ending secure messaging: giving up")
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        self._with_resume(self._establish)
        if self._ca_done == "CA" and not self._ca_refused:
            self._with_resume(self._run_chip_authentication)

    def _chip_authenticate(self) -> None:
        """Try DG14's keys in turn; what cannot run or is refused becomes a step."""
        reasons: list[str] = []
        refused: tuple[ChipAuthenticationPublicKeyInfo, str, int | None] | None = None
        several = len(self._ca_candidates) > 1
        for key, algorithm, version in self._ca_candidates:
            label = f"key {key.key_id}" if key.key_id is not None else "the key"
            try:
                public = chip_public_key(key)
                if algorithm.elliptic == isinstance(public, DhPublicKey):
                    raise UnsupportedAlgorithm(f"{algorithm.name} does not fit {label}")
            except (ConfigurationError, MalformedInput) as exc:
                reasons.append(f"{label}: {exc}")
                continue
            ids: list[int | None] = [key.key_id]
            if key.key_id is not None and not several:
                # One key: a chip that refuses the key reference (6A80) gets none.
                ids.append(None)
            for key_id in ids:
                self._ca_run = (public, algorithm, key_id, version)
                self._ca_info = (key, None)
                try:
                    self._with_resume(self._run_chip_authentication)
                except RemoteProtocolError as exc:
                    if _tampering(exc):
                        raise
                    self._reestablish()
                    word = exc.status_word
                    refused = (key, f"{label}: {_refusal(exc)}", word)
                    if word == 0x6A80 and key_id is not None:
                        continue
                    break
                except (ConfigurationError, MalformedInput) as exc:
                    # An algorithm the chip's key needs and this library lacks.
                    if self._channel is None or self._channel.closed:
                        self._reestablish()
                    reasons.append(f"{label}: {exc}")
                    break
                else:
                    return
        self._ca_run = None
        if refused is not None:
            # The chip would not prove any key: evidence for the verifier (a clone has none).
            key, reason, word = refused
            self._ca_info = (key, None)
            self._ca_done, self._ca_refused = "CA", True
            self._step("chip_authentication", _FAILED, "; ".join([*reasons, reason]), word)
            return
        self._ca_info = None
        self._step(
            "chip_authentication",
            _NOT_PERFORMED,
            "cannot run: " + "; ".join(reasons or ["no usable key"]),
            None,
        )

    def _active_authenticate(self, challenge: bytes) -> bytes:
        try:
            return self._with_resume(lambda: self._active_authentication(challenge))
        except RemoteProtocolError as exc:
            if _tampering(exc):
                raise
            # The last step of a read: no need to open the session again.
            self._step("active_authentication", _NOT_PERFORMED, _refusal(exc), exc.status_word)
            return b""

    def _with_resume(self, step: Callable[[], bytes | None]) -> bytes:
        """Run ``step``; after a link failure, re-establish the session and run it again."""
        while True:
            try:
                return step() or b""
            except TransportError as exc:  # noqa: PERF203 (a retry loop by design)
                self._recover(exc)

    def _recover(self, exc: TransportError) -> None:
        if not exc.retryable or self._reconnect is None or self._monotonic() > self._deadline:
            raise exc
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        while True:
            if self._monotonic() > self._deadline:
                raise TransportError("the card did not come back in time", retryable=True)
            try:
                self._reconnect()
                self._reconnects += 1
                self._establish()
                if self._ca_done == "CA" and not self._ca_refused:
                    self._run_chip_authentication()
            except TransportError as again:
                if not again.retryable:
                    raise
                continue
            return

    def _establish(self) -> bytes:
        self._sessions += 1
        password = self._password
        if password is None:
            raise ConfigurationError("no password")
        self._pace = None
        if self._card_access_read:
            # Re-establishing inside one read: go back to the master file, where PACE
            # starts, and reuse EF.CardAccess (it does not change).
            run(SelectMasterFile(), self._transport)
        else:
            if self._extended is None:
                self._announced = self._plain_read_atr_info()
            self._card_access = self._plain_read_card_access()
            self._card_access_read = True
        opened = open_chip(password, self._card_access, self._transport, random=self._random)
        self._pace = opened.pace
        self._channel = opened.channel
        self._set_chunk()
        if self._pace is not None and self._pace.chip_authentication_data is not None:
            self._ca_done = "PACE-CAM"
        return b""

    def _set_chunk(self) -> None:
        channel = self._require_channel()
        extended = self._extended if self._extended is not None else self._announced is not None
        self._chunk = read_chunk_size(channel.cipher, extended=extended, announced=self._announced)

    def _plain_read_atr_info(self) -> int | None:
        """The largest response the chip announces in EF.ATR/INFO (DO'7F66'), if any."""
        try:
            return announced_response_size(run(ReadFile.atr_info(), self._transport))
        except (RemoteProtocolError, MalformedInput):
            return None  # no EF.ATR/INFO, or an unreadable one: no extended length

    def _plain_read_card_access(self) -> bytes | None:
        read = ReadFile.card_access()
        try:
            return run(read, self._transport)
        except RemoteProtocolError as exc:
            if read.progress.total is None and exc.status_word in _NO_CARD_ACCESS:
                return None  # the first READ BINARY was refused: no EF.CardAccess
            raise

    # -- files ----------------------------------------------------------------------

    def _read_resumable(self, ef: LdsFile, files: dict[str, bytes]) -> bytes:
        """Read one file; after a link failure or a session the chip ended, resume at the offset."""
        progress = ReadProgress()
        while True:
            read = self._file_read(ef, progress)
            try:
                data = run(read, self._transport)
            except (TransportError, ReadSessionEnded) as exc:
                broken: TransportError | ReadSessionEnded = exc
            except MacnssAuthError:
                self._chunk = read.chunk
                raise
            else:
                # A chip that refused a chunk size will refuse it for the next file too.
                self._chunk = read.chunk
                files[ef.name] = data
                return data
            # Opening the session again sets the chunk size afresh.
            progress = read.progress
            if isinstance(broken, TransportError):
                self._recover(broken)
                continue
            if broken.extended_length_refused:
                self._give_up_extended_length()
            else:
                self._next_size = broken.le
            self._reestablish()

    def _file_read(self, ef: LdsFile, progress: ReadProgress) -> ReadFile:
        """The :class:`ReadFile` for ``ef`` in this session, resuming ``progress``."""
        name = ef.name
        if progress.total is not None and self._monotonic() > self._deadline:
            raise RemoteProtocolError(f"reading {name} took longer than the session budget")

        def on_chunk(done: int, total: int) -> None:
            self._report(name, done, total)
            if done < total and self._monotonic() > self._deadline:
                raise RemoteProtocolError(f"reading {name} took longer than the session budget")

        hint, self._next_size = self._next_size, None
        return ReadFile.lds(
            ef,
            channel=self._require_channel(),
            chunk=self._chunk,
            resume=progress,
            le_hint=hint,
            on_chunk=on_chunk,
        )

    def _give_up_extended_length(self) -> None:
        self._extended = False
        self._announced = None
        self._step(
            "extended_length",
            _NOT_PERFORMED,
            "the chip announced extended length but refused it (6700): short reads instead",
            0x6700,
        )

    def _report(self, name: str, done: int, total: int) -> None:
        if self._progress is not None:
            self._progress(name, done, total)

    # -- secure messaging, CA, AA ---------------------------------------------------

    def _require_channel(self) -> SecureChannel:
        if self._channel is None:
            raise ConfigurationError("no secure channel")
        return self._channel

    def _select_application(self) -> None:
        run(SelectApplication(EMRTD_AID, channel=self._require_channel()), self._transport)

    def _prepare_chip_authentication(self, dg14: bytes) -> None:
        """List DG14's CA keys with their protocols; after PACE-CAM, check the mapping."""
        try:
            infos = parse_dg14(dg14).infos
        except MacnssAuthError as exc:
            self._step("chip_authentication", _NOT_PERFORMED, f"DG14 cannot be parsed: {exc}", None)
            return
        keys = [i for i in infos if isinstance(i, ChipAuthenticationPublicKeyInfo)]
        protocols = [i for i in infos if isinstance(i, ChipAuthenticationInfo)]
        if not keys:
            return
        candidates: list[tuple[int, ChipAuthenticationPublicKeyInfo, CaAlgorithm, int]] = []
        for key in keys:
            matching = [p for p in protocols if p.key_id == key.key_id] or [
                p for p in protocols if p.key_id is None or len(keys) == 1
            ]
            offered = [(p.protocol, p.version) for p in matching] or [
                (_IMPLIED_CA[key.protocol], 1)
            ]
            for oid, version in offered:
                if version not in CA_VERSIONS:
                    continue
                try:
                    algorithm = CaAlgorithm.from_oid(oid.value)
                except UnsupportedAlgorithm:
                    continue
                # ECDH before DH, AES before 3DES, longer keys first; CA v2 before v1.
                rank = (not algorithm.elliptic) * 100 - int(oid.value[-1]) * 10 - version
                candidates.append((rank, key, algorithm, version))
        candidates.sort(key=lambda item: item[0])
        self._ca_candidates = [
            (key, algorithm, version) for _, key, algorithm, version in candidates
        ]
        self._ca_info = (keys[0], None)
        if self._ca_done == "PACE-CAM" and self._pace is not None:
            # Whether the key itself is the issuer's is for the verifier (DG14 must pass PA).
            try:
                self._pace.verify_chip_authentication(keys[0])
            except MacnssAuthError:
                self._cam_proved = False
            else:
                self._cam_proved = True

    def _run_chip_authentication(self) -> bytes:
        if self._ca_run is None:
            return b""
        public, algorithm, key_id, version = self._ca_run
        # Version 2: the protocol checks the chip's token before the channel is used.
        protocol = ChipAuthentication(
            self._require_channel(),
            algorithm=algorithm,
            chip_public_key=public,
            key_id=key_id,
            random=self._random,
            version=version,
        )
        result = run(protocol, self._transport)
        self._channel = result.channel
        self._set_chunk()
        # The chip has proved its key only once a response MACed under the new keys checks.
        try:
            self._select_application()
        except SecureMessagingError as exc:
            raise RemoteProtocolError(
                "the chip cannot talk under the Chip Authentication keys: key not proved"
            ) from exc
        self._ca_done = "CA"
        return b""

    def _active_authentication(self, challenge: bytes) -> bytes:
        result = run(
            ActiveAuthentication(challenge, channel=self._require_channel()), self._transport
        )
        return result.signature


def chip_public_key(info: ChipAuthenticationPublicKeyInfo) -> ChipPublicKey:
    """The DG14 Chip Authentication key as a key object the CA protocol takes.

    Kept here for callers of this name; the parser is
    :func:`macnss_auth.nfc.chip_auth.chip_public_key` (every standardized
    curve and DH group, named, explicit or by standardized id).

    Raises:
        UnsupportedAlgorithm: the key's parameters are not recognised.
        MalformedInput: the key does not decode.
    """
    return parse_chip_public_key(info)
