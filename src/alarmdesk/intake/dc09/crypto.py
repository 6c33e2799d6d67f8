"""The AES layer of SIA DC-09: keys, pads, AES-CBC with a zero IV, and finding the plaintext
after a pad (see :mod:`alarmdesk.intake.dc09.codec` for the frame around it).

Pure code; the only source of randomness is the pad, drawn from :mod:`secrets` unless the
caller supplies it.
"""

from __future__ import annotations

import re
import secrets
import string

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from alarmdesk.intake.dc09.errors import DecryptFailed, Echo

__all__ = [
    "AES_KEY_SIZES",
    "CONTROL",
    "check_key",
    "decrypt",
    "encrypt",
    "pad_length",
    "split_pad",
]

AES_KEY_SIZES = frozenset({16, 24, 32})
_BLOCK = 16
_ZERO_IV = bytes(_BLOCK)
# Our own pads: letters and digits only, so never "|", "[", "]" nor "#" (see split_pad).
_PAD_ALPHABET = (string.ascii_letters + string.digits).encode("ascii")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # no DC-09 text holds these


def check_key(key: bytes) -> bytes:
    """Return ``key`` if it is an AES key (16, 24 or 32 bytes); raise ``ValueError`` if not."""
    if len(key) not in AES_KEY_SIZES:
        raise ValueError(f"AES keys are 16, 24 or 32 bytes, not {len(key)}")
    return key


def pad_length(content_length: int) -> int:
    """The pad our encoder uses before ``|`` + ``content_length`` bytes: 1 to 16 bytes.

    The total becomes a multiple of 16. An empty pad would be legal, but we always send at
    least one byte so that every message starts with fresh random plaintext.
    """
    return (-(content_length + 1)) % _BLOCK or _BLOCK


def encrypt(content: str, key: bytes, pad: bytes | None = None) -> str:
    """The uppercase hex of AES-CBC(key, zero IV) over ``pad | content``.

    Args:
        content: what follows the pad, e.g. ``#1234|NBA01]_12:00:00,01-31-2026``; Latin-1.
        key: the account's AES key, 16, 24 or 32 bytes.
        pad: the pad to use (tests); by default :func:`pad_length` random letters/digits.

    Raises:
        ValueError: bad key, content outside Latin-1, or a ``pad`` that contains ``|``, ``[``
            or ``]`` or does not make whole blocks.
    """
    body = content.encode("latin-1")
    if pad is None:
        pad = bytes(secrets.choice(_PAD_ALPHABET) for _ in range(pad_length(len(body))))
    elif any(b in pad for b in b"|[]") or (len(pad) + 1 + len(body)) % _BLOCK:
        raise ValueError("pad must avoid | [ ] and make the plaintext whole 16-byte blocks")
    plaintext = pad + b"|" + body
    encryptor = Cipher(algorithms.AES(check_key(key)), modes.CBC(_ZERO_IV)).encryptor()
    return (encryptor.update(plaintext) + encryptor.finalize()).hex().upper()


def decrypt(ciphertext_hex: str, key: bytes, *, echo: Echo | None = None) -> str:
    """The content after the pad of an encrypted frame part, as text.

    Args:
        ciphertext_hex: the hex after ``[`` (either case).
        key: the account's AES key.
        echo: header fields to attach to the error, if any.

    Raises:
        DecryptFailed: not hex, not whole blocks, or the plaintext has no DC-09 shape
            (no ``]`` after the pad, control characters after the pad).
        ValueError: bad key length.
    """
    check_key(key)
    try:
        ciphertext = bytes.fromhex(ciphertext_hex)
    except ValueError:
        raise DecryptFailed("encrypted part is not hex", echo=echo) from None
    if not ciphertext or len(ciphertext) % _BLOCK:
        raise DecryptFailed("encrypted part is not whole 16-byte blocks", echo=echo)
    decryptor = Cipher(algorithms.AES(key), modes.CBC(_ZERO_IV)).decryptor()
    plaintext = decryptor.update(ciphertext) + decryptor.finalize()
    content = split_pad(plaintext)
    if content is None:
        raise DecryptFailed("no DC-09 plaintext under this key (no ']')", echo=echo)
    text = content.decode("latin-1")
    if CONTROL.search(text):
        raise DecryptFailed("no DC-09 plaintext under this key (control bytes)", echo=echo)
    return text


def split_pad(plaintext: bytes) -> bytes | None:
    """The plaintext after the pad, or ``None`` if it has no ``]`` (so cannot be DC-09).

    DC-09 writes ``pad|data]...``, the pad never containing ``|``, ``[`` or ``]``. Some panels
    leave out the ``|``. The data block ends at the first ``]``; within it:

    1. If there is a ``|`` and what follows it is ``#`` (account-prefixed data, as SIA-DCS and
       ADM-CID data always are) or ``]`` (empty data), or no ``#`` precedes it, that first
       ``|`` ends the pad.
    2. Otherwise the ``|`` is missing: the data starts at the first ``#`` (its account
       prefix), or, if there is none, the data is empty and starts at the ``]``.

    Limits: a panel that both omits the ``|`` and sends data not starting with ``#``, or
    whose pad contains ``#`` while omitting the ``|``, is misread; the result then usually
    fails to parse (DecryptFailed → NAK), and the panel's retry draws a new random pad.
    """
    end = plaintext.find(b"]")
    if end < 0:
        return None
    bar = plaintext.find(b"|", 0, end)
    if bar >= 0 and (plaintext[bar + 1 : bar + 2] in (b"#", b"]") or b"#" not in plaintext[:bar]):
        return plaintext[bar + 1 :]
    account = plaintext.find(b"#", 0, end)
    return plaintext[account:] if account >= 0 else plaintext[end:]
