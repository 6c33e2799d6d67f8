"""Export format of the audit log, and an offline verifier for it.

An export is a JSON Lines file (UTF-8, one JSON object per line):

* ``{"kind": "erased", "seq": N, "leaf_hash": "<hex>"}``: entry ``N`` whose content the
  retention policy erased; its leaf hash keeps every later checkpoint verifiable.
* ``{"kind": "entry", "seq": N, "entry": {...}}``: audit entry number ``N``; ``seq`` starts
  at 0 and increases by one. Leaf ``N`` of the Merkle tree is
  ``leaf_hash(canonical_entry(entry))``.
* ``{"kind": "checkpoint", "note": "<signed note>"}``: a signed checkpoint
  (:mod:`alarmdesk.safeguards.checkpoint`) for tree size ``S``, written immediately after the
  entry with ``seq == S - 1`` (the entry that closes it).

:func:`verify_export` needs only the file and the log's public verifier key. It detects
edited, deleted, inserted and reordered entries, truncation below a checkpoint, forged
checkpoints (wrong key, altered text) and checkpoints signed over a root that the entries
do not produce. Entries after the last checkpoint are reported as *unanchored*: nothing in
the file vouches for them, but that is the normal state of a live log, not a failure.

What a file alone cannot show: if the tail is cut *together with* the checkpoints that
covered it, what remains is a valid shorter log. Pass a checkpoint obtained independently
(published, witnessed, or kept from an earlier audit) as ``trusted_checkpoints`` to close
that gap; the verifier then also proves the file extends it (no history rewrite).

Memory use is O(log n + entries between two checkpoints): the verifier streams the file and
keeps only Merkle frontiers, not every leaf hash.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from alarmdesk.files import write_file
from alarmdesk.safeguards.checkpoint import (
    Checkpoint,
    CheckpointError,
    VerifierKey,
    parse_and_verify_checkpoint,
    parse_vkey,
)
from alarmdesk.safeguards.merkle import (
    EMPTY_ROOT,
    MerkleAccumulator,
    entry_leaf_hash,
    verify_consistency,
)

__all__ = [
    "VerifyReport",
    "checkpoint_line",
    "entry_line",
    "erased_line",
    "verify_export",
    "write_export",
]


@dataclass(slots=True)
class VerifyReport:
    """Outcome of :func:`verify_export`.

    ``ok`` is true iff ``problems`` is empty. Each problem is one line starting with the
    file line number (or ``end of file``) and an upper-case tag such as ``ROOT_MISMATCH``,
    ``SEQUENCE``, ``TRUNCATION``, ``BAD_SIGNATURE`` or ``UNKNOWN_KEY``. ``notes`` holds
    information that is not a failure (unanchored entries).
    """

    entries: int = 0
    """Entry lines read (erased ones included)."""
    erased: int = 0
    """Entries whose content retention erased; only their leaf hash is in the file."""
    checkpoints: int = 0
    """Checkpoint lines read (valid or not)."""
    last_verified_size: int = 0
    """Size of the largest checkpoint that verified with no problem anywhere before it: the
    first ``last_verified_size`` entries are proven to be what the log signed."""
    ok: bool = False
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unanchored: int = 0
    """Entry lines after the last checkpoint line: no signature covers them (yet)."""
    consistency_checks: int = 0
    """Consistency proofs (RFC 9162 §2.1.4) between successive checkpoints that verified."""


def entry_line(seq: int, entry: Mapping[str, Any]) -> dict[str, Any]:
    """Return the export line object for entry number ``seq``."""
    return {"kind": "entry", "seq": seq, "entry": dict(entry)}


def erased_line(seq: int, leaf_hash: bytes) -> dict[str, Any]:
    return {"kind": "erased", "seq": seq, "leaf_hash": leaf_hash.hex()}


def checkpoint_line(note: str) -> dict[str, Any]:
    """Return the export line object for a signed checkpoint note."""
    return {"kind": "checkpoint", "note": note}


def write_export(lines: Iterable[Mapping[str, Any]], path: str | os.PathLike[str]) -> int:
    """Write line objects as JSON Lines to ``path`` atomically; return the number of lines.

    Each object is written as compact JSON with sorted keys and non-ASCII kept (UTF-8),
    followed by ``"\\n"``. The file is written the way every output file is
    (:func:`alarmdesk.files.write_file`): a symlink is followed, a path that is not a regular
    file is refused (:class:`~alarmdesk.files.OutputPathError`), and the text goes to a
    temporary sibling, flushed to disk and renamed over the target, so a reader never sees a
    half-written export (on error ``path`` is untouched). A new export is readable by its
    owner only (0600). Raises :class:`ValueError` or :class:`TypeError` for values JSON cannot
    represent (NaN, infinities, other objects), :class:`OSError` when the writing fails.
    """
    count = 0

    def texts() -> Iterator[str]:
        nonlocal count
        for obj in lines:
            yield (
                json.dumps(
                    obj,
                    sort_keys=True,
                    separators=(",", ":"),
                    ensure_ascii=False,
                    allow_nan=False,
                )
                + "\n"
            )
            count += 1

    write_file(path, texts(), mode=0o600)
    return count


# --- reading ---------------------------------------------------------------------------


class _LineError(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            # Two values for one key: a reader could show one while the hash covers the other.
            raise _LineError(f"duplicate key {key!r}")
        obj[key] = value
    return obj


def _reject_constant(name: str) -> Any:
    raise _LineError(f"non-JSON number {name}")


def _iter_lines(source: str | os.PathLike[str] | Iterable[str | bytes]) -> Iterator[str | bytes]:
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as fh:
            yield from fh
    else:
        yield from source


def _decode(raw: str | bytes) -> str:
    if isinstance(raw, bytes):
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _LineError("not valid UTF-8") from exc
    return raw


_UNHASHABLE = bytes(32)
_ENTRY_KEYS = frozenset({"kind", "seq", "entry"})
_ERASED_KEYS = frozenset({"kind", "seq", "leaf_hash"})
_CHECKPOINT_KEYS = frozenset({"kind", "note"})


def _parse_line(text: str) -> dict[str, Any]:
    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except _LineError:
        raise
    except ValueError as exc:  # JSONDecodeError, int too large, ...
        raise _LineError(f"not valid JSON ({exc})") from exc
    if not isinstance(obj, dict):
        raise _LineError("not a JSON object")
    kind = obj.get("kind")
    if kind == "entry":
        if set(obj) != _ENTRY_KEYS:
            raise _LineError(f"entry line must have exactly the keys {sorted(_ENTRY_KEYS)}")
        seq = obj["seq"]
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise _LineError("seq must be a non-negative integer")
        if not isinstance(obj["entry"], dict):
            raise _LineError("entry must be a JSON object")
    elif kind == "erased":
        if set(obj) != _ERASED_KEYS:
            raise _LineError(f"erased line must have exactly the keys {sorted(_ERASED_KEYS)}")
        seq = obj["seq"]
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise _LineError("seq must be a non-negative integer")
        h = obj["leaf_hash"]
        if not (isinstance(h, str) and len(h) == 64 and all(c in "0123456789abcdef" for c in h)):
            raise _LineError("leaf_hash must be 64 lowercase hex digits")
    elif kind == "checkpoint":
        if set(obj) != _CHECKPOINT_KEYS:
            raise _LineError(
                f"checkpoint line must have exactly the keys {sorted(_CHECKPOINT_KEYS)}"
            )
        if not isinstance(obj["note"], str):
            raise _LineError("note must be a string")
    else:
        raise _LineError(f"unknown kind {kind!r}")
    return obj


# --- verifying -------------------------------------------------------------------------


def _n(count: int) -> str:
    return f"{count} entry" if count == 1 else f"{count} entries"


class _Verifier:
    """Streaming state of one verification (see :func:`verify_export`)."""

    def __init__(self, key: VerifierKey, expected_origin: str | None) -> None:
        self.key = key
        self.origin = expected_origin
        self.report = VerifyReport()
        self.acc = MerkleAccumulator()  # all entries read so far, in file order
        # Anchor: tree state at the last accepted checkpoint, plus the leaves read after it.
        self.anchor = MerkleAccumulator()
        self.anchor_cp: Checkpoint | None = None
        self.anchor_ok = True  # the anchor checkpoint's root matched the file's entries
        self.anchor_line = 0
        self.pending: list[bytes] = []
        self.last_seq: int | None = None
        self.after_last_checkpoint = 0  # entry lines since the last checkpoint line
        self.trusted: dict[int, list[tuple[str, Checkpoint]]] = {}

    def problem(self, where: int | str, tag: str, text: str) -> None:
        loc = f"line {where}" if isinstance(where, int) else where
        self.report.problems.append(f"{loc}: {tag}: {text}")

    # entries ------------------------------------------------------------------------

    def entry(
        self, lineno: int, seq: int, entry: dict[str, Any] | None, erased_hash: bytes | None = None
    ) -> None:
        """An entry line, or (``entry`` None) an erased entry of which only its hash is kept."""
        expected = 0 if self.last_seq is None else self.last_seq + 1
        if seq != expected:
            if seq < expected:
                how = "out of order or duplicated (entries reordered or inserted)"
            else:
                gap = f"{expected}" if seq == expected + 1 else f"{expected}..{seq - 1}"
                how = f"seq {gap} missing (entries deleted or reordered)"
            self.problem(lineno, "SEQUENCE", f"expected seq {expected}, found {seq}: {how}")
        inner = entry.get("seq") if entry is not None else None
        if isinstance(inner, int) and not isinstance(inner, bool) and inner != seq:
            self.problem(lineno, "SEQUENCE", f"entry says seq {inner} but its line says seq {seq}")
        self.last_seq = seq
        if entry is None:
            # Retention erased the content; its leaf hash keeps the tree verifiable.
            assert erased_hash is not None
            h = erased_hash
            self.report.erased += 1
        else:
            try:
                h = entry_leaf_hash(entry)
            except ValueError as exc:
                self.problem(lineno, "MALFORMED_ENTRY", str(exc))
                h = _UNHASHABLE  # keeps later leaves at their positions; matches no signed root
        self.report.entries += 1
        self.after_last_checkpoint += 1
        self.acc.append(h)
        self.pending.append(h)
        for label, cp in self.trusted.pop(self.acc.size, []):
            self.check_trusted(label, cp, self.acc.root())

    # checkpoints --------------------------------------------------------------------

    def checkpoint(self, lineno: int, note: str) -> None:
        rep = self.report
        rep.checkpoints += 1
        self.after_last_checkpoint = 0
        try:
            cp = parse_and_verify_checkpoint(note, self.key)
        except CheckpointError as exc:
            hint = {
                "unknown_key": " (forged, or signed by a key other than the one given)",
                "bad_signature": " (checkpoint text altered after signing, or forged)",
                "malformed_checkpoint": "",
            }[exc.code]
            self.problem(lineno, exc.code.upper(), exc.message + hint)
            return
        if self.origin is None:
            self.origin = cp.origin
        elif cp.origin != self.origin:
            self.problem(
                lineno,
                "ORIGIN_MISMATCH",
                f"checkpoint is for log {cp.origin!r}, not {self.origin!r}",
            )
            return
        count = self.acc.size
        base = self.anchor.size
        if cp.size > count:
            self.problem(
                lineno,
                "TRUNCATION",
                f"checkpoint covers {cp.size} entries but only {count} precede it in the file "
                f"({_n(cp.size - count)} missing: deleted, or the file was truncated)",
            )
            return
        if cp.size < base:
            self.problem(
                lineno,
                "ROLLBACK",
                f"checkpoint for size {cp.size} follows an accepted checkpoint for size {base}",
            )
            return
        if cp.size < count:
            self.problem(
                lineno,
                "MISPLACED_CHECKPOINT",
                f"checkpoint covers {cp.size} entries but {count} precede it "
                f"({_n(count - cp.size)} too many: inserted, or the checkpoint was moved)",
            )
        take = cp.size - base
        state = self.anchor.copy()
        state.extend(self.pending[:take])
        root_ok = state.root() == cp.root
        if not root_ok:
            since = (
                f"; the checkpoint for size {base} (line {self.anchor_line}) still matched, so "
                f"the change is within seq {base}..{cp.size - 1}"
                if self.anchor_cp is not None and self.anchor_ok and base > 0
                else ""
            )
            self.problem(
                lineno,
                "ROOT_MISMATCH",
                f"the signed root for size {cp.size} does not match the first {cp.size} "
                f"entries of the file (an entry was edited, deleted, inserted or reordered, or "
                f"the log signed a different history){since}",
            )
        prev = self.anchor_cp
        if prev is not None:
            if prev.size == cp.size and prev.root != cp.root:
                self.problem(
                    lineno,
                    "FORK",
                    f"two validly signed checkpoints for size {cp.size} with different roots "
                    f"(lines {self.anchor_line} and {lineno}): the log equivocated",
                )
            proof = self.anchor.consistency_proof(self.pending[:take])
            consistent = verify_consistency(prev.size, cp.size, prev.root, cp.root, proof)
            rep.consistency_checks += 1
            # If either root mismatched the entries the proof (built from the entries) fails
            # too; that is already reported above and says more, so only report otherwise.
            if not consistent and root_ok and prev.root == self.anchor.root():
                self.problem(
                    lineno,
                    "INCONSISTENT",
                    f"checkpoint for size {cp.size} is not an append-only extension of the "
                    f"checkpoint for size {prev.size} (line {self.anchor_line})",
                )
        if root_ok and not rep.problems:
            rep.last_verified_size = cp.size
        self.anchor = state
        self.anchor_cp = cp
        self.anchor_ok = root_ok
        self.anchor_line = lineno
        self.pending = self.pending[take:]

    # trusted checkpoints ------------------------------------------------------------

    def add_trusted(self, index: int, note: str) -> None:
        label = f"trusted checkpoint #{index + 1}"
        try:
            cp = parse_and_verify_checkpoint(note, self.key)
        except CheckpointError as exc:
            self.problem(label, exc.code.upper(), exc.message)
            return
        if self.origin is None:
            self.origin = cp.origin
        elif cp.origin != self.origin:
            self.problem(label, "ORIGIN_MISMATCH", f"it is for log {cp.origin!r}")
            return
        if cp.size == 0:
            self.check_trusted(label, cp, EMPTY_ROOT)
        else:
            self.trusted.setdefault(cp.size, []).append((label, cp))

    def check_trusted(self, label: str, cp: Checkpoint, file_root: bytes) -> None:
        if cp.root != file_root:
            self.problem(
                label,
                "HISTORY_MISMATCH",
                f"the file's first {cp.size} entries do not hash to the root this checkpoint "
                f"signed (entries changed, or the log rewrote its history)",
            )

    def finish(self) -> VerifyReport:
        rep = self.report
        for size, items in sorted(self.trusted.items()):
            for label, _cp in items:
                self.problem(
                    label,
                    "TRUNCATION",
                    f"it covers {size} entries but the file has only {self.acc.size}",
                )
        if self.anchor_cp is None:
            self.problem(
                "end of file",
                "NO_CHECKPOINT",
                "the export has no valid signed checkpoint, so none of it can be verified",
            )
        rep.unanchored = self.after_last_checkpoint
        if rep.unanchored:
            first = self.acc.size - rep.unanchored
            rep.notes.append(
                f"unanchored {rep.unanchored} entries after the last checkpoint "
                f"(file positions {first}..{first + rep.unanchored - 1}): no signature covers "
                f"them yet"
            )
        rep.ok = not rep.problems
        return rep


def verify_export(
    source: str | os.PathLike[str] | Iterable[str | bytes],
    vkey: str,
    *,
    trusted_checkpoints: Iterable[str] = (),
    expected_origin: str | None = None,
) -> VerifyReport:
    """Verify an exported audit log offline against the log's verifier key.

    ``source`` is a path (``str`` or path-like) or an iterable of lines (``str`` or UTF-8
    ``bytes``; trailing newlines allowed). Blank lines are ignored. Checks, in one pass:

    * each line is well-formed JSON with the expected keys and no duplicate keys;
    * ``seq`` starts at 0 and increases by one (and equals an int ``"seq"`` field inside
      the entry, if the entry has one); leaf ``i`` is the ``i``-th entry line of the file;
    * every checkpoint's signature verifies with ``vkey`` and its origin is the log's
      (``expected_origin``, else the first valid checkpoint's);
    * every checkpoint's root equals the Merkle root of the first ``size`` entries, and it
      is placed right after them (fewer entries before it is reported as ``TRUNCATION``);
    * successive valid checkpoints are consistent: sizes never decrease, equal sizes have
      equal roots, and an RFC 9162 consistency proof built from the entries between them
      verifies against both signed roots;
    * each of ``trusted_checkpoints`` (signed notes held independently of the file) is
      covered by the file and matches the root of its first ``size`` entries.

    Never raises for a bad file (problems are reported); raises :class:`ValueError` for an
    invalid ``vkey`` and :class:`OSError` if the path cannot be opened.
    """
    verifier = _Verifier(parse_vkey(vkey), expected_origin)
    for i, note in enumerate(trusted_checkpoints):
        verifier.add_trusted(i, note)
    for lineno, raw in enumerate(_iter_lines(source), start=1):
        try:
            text = _decode(raw)
            if not text.strip():
                continue
            obj = _parse_line(text)
        except _LineError as exc:
            verifier.problem(lineno, "MALFORMED_LINE", str(exc))
            continue
        if obj["kind"] == "entry":
            verifier.entry(lineno, obj["seq"], obj["entry"])
        elif obj["kind"] == "erased":
            verifier.entry(lineno, obj["seq"], None, bytes.fromhex(obj["leaf_hash"]))
        else:
            verifier.checkpoint(lineno, obj["note"])
    return verifier.finish()
