"""Pick the format of an event file: content first (the first 64 KiB), extension second.

Content wins because extensions lie (``.raw`` is EVT 2.0, 2.1 or 3.0; ``.dat`` is also used by
unrelated tools), and because renamed files are common in datasets.
"""

from __future__ import annotations

from pathlib import Path

from eventclip.io.base import FORMATS, FormatSpec, PathLike
from eventclip.io.errors import EventFormatError, UnknownFormatError, check_event_file

SNIFF_BYTES = 64 * 1024
"""How much of the file each format's ``sniff`` sees."""


def _unique_specs() -> list[FormatSpec]:
    """Registered formats (aliases not repeated) in sniffing order."""
    return sorted(FORMATS.values(), key=lambda spec: spec.sniff_order)


def known_formats() -> str:
    """A human list of the registered formats, for error messages and ``--help``."""
    return ", ".join(f"{s.name} ({'/'.join(s.extensions) or 'no extension'})" for s in _unique_specs())


def get_format(name: str, path: PathLike | None = None) -> FormatSpec:
    """The FormatSpec registered under ``name`` (or an alias), or UnknownFormatError listing the others."""
    if name.lower() not in FORMATS:
        raise UnknownFormatError(f"unknown format {name!r}; known formats: {known_formats()}", path)
    return FORMATS[name.lower()]


def detect_format(path: PathLike) -> FormatSpec:
    """The format of an existing file: the first format whose sniffer accepts the head, else by extension.

    Raises UnknownFormatError (naming the file and listing known formats) when neither matches,
    FileNotFoundError / IsADirectoryError / NotARegularFileError (OSErrors, see
    :func:`~eventclip.io.errors.check_event_file`) for a path that is not a regular file, and
    EventFormatError when the file cannot be read.
    """
    p = check_event_file(path)
    try:
        with p.open("rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except OSError as exc:
        raise EventFormatError(f"cannot open event file: {exc.strerror or exc}", p) from exc
    specs = _unique_specs()
    for spec in specs:
        if spec.sniff(head, p):
            return spec
    spec = format_for_extension(p)
    if spec is not None:
        return spec
    raise UnknownFormatError(
        "neither the content nor the extension matches a known event format; "
        f"name the format (--format NAME on the command line, --in-format for `eventclip convert`'s input; "
        f"format=NAME in Python). Known formats: {known_formats()}",
        p,
        0,
    )


def format_for_extension(path: PathLike, *, writable: bool = False) -> FormatSpec | None:
    """The first registered format claiming the file's extension (longest match, e.g. ``.tar.gz``).

    With ``writable=True`` only formats that have a writer are considered (``.raw`` -> ``evt3``).
    """
    name = Path(path).name.lower()
    best: tuple[int, FormatSpec] | None = None
    for spec in _unique_specs():
        if writable and spec.writer is None:
            continue
        for ext in spec.extensions:
            if name.endswith(ext) and (best is None or len(ext) > best[0]):
                best = (len(ext), spec)
    return best[1] if best else None


def writable_format(path: PathLike, name: str | None = None) -> FormatSpec:
    """The format to write ``path`` in: ``name`` when given, else the one its extension implies."""
    if name is not None:
        spec = get_format(name, path)
    else:
        spec = format_for_extension(path, writable=True)
        if spec is None:
            raise UnknownFormatError(
                f"cannot tell the output format from the extension; name it (--format NAME on the command line, "
                f"format=NAME in Python). Known formats: {known_formats()}",
                path,
            )
    if spec.writer is None:
        writable = ", ".join(s.name for s in _unique_specs() if s.writer is not None)
        raise UnknownFormatError(f"format {spec.name!r} cannot be written; writable formats: {writable}", path)
    return spec
