"""Opening a chip: PACE when EF.CardAccess offers it, else BAC, then the eMRTD application.

ICAO 9303-11 §4.2: a terminal that supports PACE uses it whenever the chip
announces it in EF.CardAccess and falls back to BAC only when it does not.
The kiosk's :class:`~macnss_auth.nfc.reader.DocumentReader` and the reference
phone (:mod:`macnss_auth.nfc.phone.client`) both open chips through
:func:`open_chip`, so a field fix here (a chip that refuses DO'84', a DH
shared secret with a leading zero) reaches both.
"""

from __future__ import annotations

import attrs

from macnss_auth.clock import RandomSource
from macnss_auth.errors import ConfigurationError, MacnssAuthError, RemoteProtocolError
from macnss_auth.nfc.apdu import StatusCode
from macnss_auth.nfc.bac import BacProtocol
from macnss_auth.nfc.files import EMRTD_AID, SelectApplication
from macnss_auth.nfc.lds.security import parse_card_access
from macnss_auth.nfc.mrz import CAN, PIN, PUK, MrzKey
from macnss_auth.nfc.pace import PaceResult, run_pace, select_pace_info
from macnss_auth.nfc.protocol import Transport, run
from macnss_auth.nfc.securityinfos import PaceInfo
from macnss_auth.nfc.sm import SecureChannel

__all__ = ["OpenedChip", "open_chip", "pace_infos"]


@attrs.frozen
class OpenedChip:
    """A chip opened by :func:`open_chip`: its secure channel, and PACE's result if PACE ran."""

    channel: SecureChannel
    pace: PaceResult | None = None


def pace_infos(card_access: bytes | None) -> tuple[PaceInfo, ...]:
    """The PACEInfos of EF.CardAccess: none when it is absent or cannot be parsed.

    An unreadable EF.CardAccess means no usable PACE, so the chip is opened
    with BAC (and a chip that truly needs PACE then refuses BAC with a status
    word the caller reports).
    """
    if card_access is None:
        return ()
    try:
        infos = parse_card_access(card_access).infos
    except MacnssAuthError:
        return ()
    return tuple(info for info in infos if isinstance(info, PaceInfo))


def open_chip(
    password: CAN | MrzKey | PIN | PUK,
    card_access: bytes | None,
    transport: Transport,
    *,
    random: RandomSource,
) -> OpenedChip:
    """Open the chip with ``password`` and select the eMRTD application under the new keys.

    PACE runs with the best PACEInfo the library supports; a chip that answers
    ``6A80`` to the domain parameter reference (DO'84') in MSE:Set AT, as some
    older chips do while others require it, is asked once more without it.
    Without PACE, BAC needs the MRZ.

    Raises:
        ConfigurationError: the chip has no PACE and ``password`` is not the MRZ.
        AccessDenied: the chip refused the password.
        RemoteProtocolError: the chip misbehaved.
        TransportError: the link failed.
    """
    offered = pace_infos(card_access)
    if offered:
        info = select_pace_info(offered)
        try:
            pace = run_pace(password, info, transport, random=random)
        except RemoteProtocolError as exc:
            if exc.status_word != StatusCode.INCORRECT_DATA:
                raise
            pace = run_pace(password, info, transport, random=random, send_parameter_id=False)
        channel = pace.secure_channel()
        run(SelectApplication(EMRTD_AID, channel=channel), transport)
        return OpenedChip(channel=channel, pace=pace)
    if not isinstance(password, MrzKey):
        raise ConfigurationError("this chip has no PACE: it can only be opened with the MRZ")
    run(SelectApplication(EMRTD_AID, channel=None), transport)
    return OpenedChip(channel=run(BacProtocol(password, random=random), transport).channel)
