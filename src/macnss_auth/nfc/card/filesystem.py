"""The card's ISO/IEC 7816-4 file system: a master file and the eMRTD application.

Layout (ICAO 9303-10 §3, BSI TR-03110-3 §A.1):

* The master file (MF) holds EF.CardAccess (``011C``, SFI ``1C``), readable
  without authentication because PACE needs it first; EF.CardSecurity
  (``011D``, SFI ``1D``), readable only after PACE; EF.ATR/INFO (``2F01``) and
  EF.DIR (``2F00``) where a profile has them.
* The LDS1 eMRTD application (AID ``A0000002471001``) holds EF.COM (``011E``),
  EF.SOD (``011D``) and the data groups DG1..DG16 (``0101``..``0110``, SFI
  equal to the data-group number), readable only over secure messaging.
  DG3 and DG4 (fingerprints, iris) need Terminal Authentication, which this
  card does not offer, so they are never readable.

Files are immutable values; a forged card is a new file system with one file
replaced (:meth:`FileSystem.replace_data`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence

import attrs

from macnss_auth.errors import ConfigurationError

__all__ = [
    "EF_ATR_INFO",
    "EF_CARD_ACCESS",
    "EF_CARD_SECURITY",
    "EF_COM",
    "EF_DIR",
    "EF_SOD",
    "LDS1_AID",
    "Access",
    "Application",
    "ElementaryFile",
    "FileSystem",
    "data_group_file",
    "emrtd_file_system",
]

# ICAO 9303-10 §3.9 (file identifiers and short file identifiers).
LDS1_AID = bytes.fromhex("A0000002471001")
EF_CARD_ACCESS = 0x011C
EF_CARD_SECURITY = 0x011D
EF_ATR_INFO = 0x2F01
EF_DIR = 0x2F00
EF_COM = 0x011E
EF_SOD = 0x011D


class Access(enum.Enum):
    """Who may read a file."""

    ALWAYS = "always"  # plain or protected (EF.CardAccess, EF.ATR/INFO, EF.DIR)
    SECURE = "secure"  # only over secure messaging after BAC or PACE (LDS files)
    PACE = "pace"  # only over secure messaging established by PACE (EF.CardSecurity)
    NEVER = "never"  # needs Terminal Authentication, which this card does not offer


@attrs.frozen
class ElementaryFile:
    """A transparent elementary file.

    Attributes:
        name: a human name (``"DG1"``, ``"EF.SOD"``) used by save/load and forgery.
        fid: the two-byte file identifier.
        sfi: the short file identifier (1..30), if the file has one.
        data: the file's content.
        access: the condition for READ BINARY.
    """

    name: str
    fid: int
    sfi: int | None
    data: bytes = attrs.field(repr=lambda data: f"<{len(data)} bytes>")
    access: Access = Access.SECURE

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.fid <= 0xFFFF or self.fid in (0x3F00, 0xFFFF):
            raise ConfigurationError(f"{self.name}: file identifier {self.fid:04X} is reserved")
        if self.sfi is not None and not 1 <= self.sfi <= 30:
            raise ConfigurationError(f"{self.name}: short file identifier must be 1..30")


@attrs.frozen
class Application:
    """A dedicated file selected by its application identifier."""

    aid: bytes
    files: tuple[ElementaryFile, ...]

    def by_fid(self, fid: int) -> ElementaryFile | None:
        """The file with identifier ``fid``, if any."""
        return next((f for f in self.files if f.fid == fid), None)

    def by_sfi(self, sfi: int) -> ElementaryFile | None:
        """The file with short identifier ``sfi``, if any."""
        return next((f for f in self.files if f.sfi == sfi), None)


def data_group_file(number: int, data: bytes) -> ElementaryFile:
    """The elementary file of data group ``number`` (ICAO 9303-10 §3.9.3)."""
    if not 1 <= number <= 16:
        raise ConfigurationError("data groups are numbered 1..16")
    access = Access.NEVER if number in (3, 4) else Access.SECURE
    return ElementaryFile(f"DG{number}", 0x0100 + number, number, data, access)


@attrs.frozen
class FileSystem:
    """The master file's elementary files and the applications under it.

    ``master`` holds the MF's own EFs; the MF itself is the "application"
    with an empty AID in :meth:`dedicated_files`.
    """

    master: tuple[ElementaryFile, ...]
    applications: tuple[Application, ...] = ()

    @property
    def mf(self) -> Application:
        """The master file as a dedicated file (empty AID)."""
        return Application(b"", self.master)

    def application(self, aid: bytes) -> Application | None:
        """The application whose AID equals ``aid`` (or starts with it: partial selection)."""
        for app in self.applications:
            if app.aid == aid or (aid and app.aid.startswith(aid)):
                return app
        return None

    def files(self) -> dict[str, ElementaryFile]:
        """Every file by its name (names are unique per card)."""
        out: dict[str, ElementaryFile] = {}
        for ef in self.master:
            out[f"MF/{ef.name}"] = ef
        for app in self.applications:
            for ef in app.files:
                out[f"{app.aid.hex().upper()}/{ef.name}"] = ef
        return out

    def replace_data(self, path: str, data: bytes) -> FileSystem:
        """A copy with the content of file ``path`` (as in :meth:`files`) replaced.

        Raises:
            ConfigurationError: no such file.
        """
        if path not in self.files():
            raise ConfigurationError(f"no file {path!r} on this card")
        where, _, name = path.partition("/")

        def swap(files: tuple[ElementaryFile, ...]) -> tuple[ElementaryFile, ...]:
            return tuple(attrs.evolve(f, data=data) if f.name == name else f for f in files)

        if where == "MF":
            return attrs.evolve(self, master=swap(self.master))
        apps = tuple(
            attrs.evolve(app, files=swap(app.files)) if app.aid.hex().upper() == where else app
            for app in self.applications
        )
        return attrs.evolve(self, applications=apps)


def emrtd_file_system(
    *,
    com: bytes | None,
    data_groups: Mapping[int, bytes],
    sod: bytes,
    card_access: bytes | None = None,
    master: Sequence[ElementaryFile] = (),
) -> FileSystem:
    """An eMRTD's files (ICAO 9303-10 §3.9): EF.COM, the data groups and EF.SOD in the
    LDS1 application; EF.CardAccess (readable by anyone) then ``master`` in the master file.
    """
    application = [
        *([ElementaryFile("EF.COM", EF_COM, 0x1E, com)] if com is not None else []),
        *(data_group_file(n, d) for n, d in sorted(data_groups.items())),
        ElementaryFile("EF.SOD", EF_SOD, 0x1D, sod),
    ]
    mf = [*master]
    if card_access is not None:
        access = ElementaryFile("EF.CardAccess", EF_CARD_ACCESS, 0x1C, card_access, Access.ALWAYS)
        mf.insert(0, access)
    return FileSystem(tuple(mf), (Application(LDS1_AID, tuple(application)),))
