"""Reading a file a user named (a rule file, alerts.yaml, a calendar CSV): its bytes and its
UTF-8 text, or why not, never an exception.

Its own module because what a user points us at can be anything: a directory, a FIFO (which
would hang a plain `open`), a file deleted or growing while it is read, 2 GB, binary, UTF-16
from a Windows editor, Latin-1. Each comes back as (line, message) saying what to do; the
callers turn that into a located problem.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["MAX_FILE_BYTES", "Why", "decode_utf8", "read_bytes", "read_text"]

MAX_FILE_BYTES = 2 * 1024 * 1024
#: (line, message) of why a file cannot be read as text; (0, "") when it can.
Why = tuple[int, str]
_OK: Why = (0, "")


def read_bytes(path: Path) -> tuple[bytes | None, Why]:
    """The file's bytes (at most MAX_FILE_BYTES), or why not: never raises."""

    def cannot(message: str) -> tuple[None, Why]:
        return None, (0, message)

    try:
        # O_NONBLOCK: a FIFO named like a rule file must not hang the reload
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except IsADirectoryError:
        return cannot(_IS_DIR)
    except FileNotFoundError:
        return cannot("cannot read file: No such file or directory (deleted or renamed?)")
    except PermissionError:
        return cannot("cannot read file: Permission denied (make it readable by tickwatch)")
    except OSError as e:
        return cannot(f"cannot read file: {e.strerror or e}")
    except ValueError:  # a NUL in the path
        return cannot("cannot read file: the path contains a NUL character")
    try:
        with open(fd, "rb", closefd=True) as f:
            info = os.fstat(f.fileno())
            if stat.S_ISDIR(info.st_mode):
                return cannot(_IS_DIR)
            if not stat.S_ISREG(info.st_mode):
                return cannot("is not a regular file (a pipe, socket or device?): "
                              "rule files and alerts.yaml must be plain text files")  # fmt: skip
            if info.st_size > MAX_FILE_BYTES:
                return cannot(_too_big(info.st_size))
            raw = f.read(MAX_FILE_BYTES + 1)  # it may grow between fstat and read
    except IsADirectoryError:
        return cannot(_IS_DIR)
    except OSError as e:
        return cannot(f"cannot read file: {e.strerror or e}")
    if len(raw) > MAX_FILE_BYTES:
        return cannot(_too_big(len(raw)))
    return raw, _OK


_IS_DIR = "is a directory, not a file: name a YAML file (include patterns too: rules/*.yaml)"


def _too_big(size: int) -> str:
    return (f"file is {size / 1e6:.1f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB "
            "(split it into several rule files)")  # fmt: skip


def decode_utf8(raw: bytes) -> tuple[str | None, Why]:
    """UTF-8 text (a UTF-8 BOM is fine), or (line, message) naming what the bytes look like."""
    wide = _wide_encoding(raw)
    if wide is not None:
        return None, (0, f"is not UTF-8 text (looks like {wide}): save it as UTF-8")
    try:
        return raw.decode("utf-8-sig"), _OK
    except UnicodeDecodeError as e:
        start = e.start + (3 if raw.startswith(b"\xef\xbb\xbf") else 0)
        line = raw.count(b"\n", 0, start) + 1
        line_start = raw.rfind(b"\n", 0, start) + 1
        column = len(raw[line_start:start].decode("utf-8", "replace")) + 1
        at = f"byte 0x{raw[start]:02X} at line {line} column {column}"
        if _looks_binary(raw):
            msg = f"is not text ({at} is not UTF-8): a binary file? Remove it, or save it as YAML"
        else:
            msg = f"is not UTF-8 text ({at}; saved as Latin-1 or Windows-1252?): save it as UTF-8"
        return None, (line, msg)


def read_text(path: Path) -> tuple[str | None, Why]:
    """`read_bytes` then `decode_utf8`: the text of a small file we were told to read."""
    raw, why = read_bytes(path)
    return (None, why) if raw is None else decode_utf8(raw)


def _wide_encoding(raw: bytes) -> str | None:
    """'UTF-16' or 'UTF-32' (with the byte order, and whether a BOM says so) or None."""
    for bom, what in (
        (b"\xff\xfe\x00\x00", "UTF-32 LE, with a BOM"),
        (b"\x00\x00\xfe\xff", "UTF-32 BE, with a BOM"),
        (b"\xff\xfe", "UTF-16 LE, with a BOM"),
        (b"\xfe\xff", "UTF-16 BE, with a BOM"),
    ):
        if raw.startswith(bom):
            return what
    head = raw[:4096]
    if len(head) < 2 or b"\x00" not in head:
        return None
    # mostly-ASCII text in a wide encoding: NUL bytes in fixed places of each code unit
    if len(head) >= 4:
        quads = len(head) // 4
        for offset, what in ((0, "UTF-32 LE"), (3, "UTF-32 BE")):
            units = [head[i * 4 : i * 4 + 4] for i in range(quads)]
            zeros = [u for u in units if u[offset] != 0 and u.count(0) == 3]
            if len(zeros) >= 0.6 * quads:
                return f"{what}, without a BOM"
    pairs = len(head) // 2
    odd = sum(1 for i in range(1, 2 * pairs, 2) if head[i] == 0)
    even = sum(1 for i in range(0, 2 * pairs, 2) if head[i] == 0)
    if odd >= 0.6 * pairs and even <= 0.1 * pairs:
        return "UTF-16 LE, without a BOM"
    if even >= 0.6 * pairs and odd <= 0.1 * pairs:
        return "UTF-16 BE, without a BOM"
    return None


def _looks_binary(raw: bytes) -> bool:
    head = raw[:4096]
    if b"\x00" in head:
        return True
    text = head.decode("utf-8", "replace")
    return text.count("\ufffd") > max(2, len(text) // 20)
