"""RFC 9162 Merkle tree hashing for the tamper-evident audit log.

Everything here is pure: bytes in, bytes out, no I/O. Hashes are SHA-256 (32 bytes).

Definitions (RFC 9162 §2.1.1):

* ``leaf_hash(d) = SHA-256(0x00 || d)``
* ``node_hash(l, r) = SHA-256(0x01 || l || r)``
* the root of the empty tree is ``SHA-256(b"")``
* for ``n > 1`` leaves, ``MTH(D[n]) = node_hash(MTH(D[0:k]), MTH(D[k:n]))`` where ``k`` is the
  largest power of two strictly smaller than ``n``.

Functions taking ``leaf_hashes`` take *leaf hashes* (already passed through
:func:`leaf_hash`), never raw entries. Proof producers raise :class:`ValueError` on bad
arguments; proof verifiers never raise on hostile input, they return ``False``.

:class:`MerkleAccumulator` keeps only the O(log n) "frontier" (the roots of the perfect
subtrees that make up the tree) so a service can maintain the root of a log with millions
of entries without holding every leaf hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MerkleAccumulator",
    "canonical_entry",
    "consistency_proof",
    "entry_leaf_hash",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE: Final = 32
"""Length in bytes of every hash in the tree (SHA-256)."""

EMPTY_ROOT: Final[bytes] = hashlib.sha256(b"").digest()
"""Root hash of the tree with zero leaves: ``SHA-256(b"")``."""

_LEAF_PREFIX: Final = b"\x00"
_NODE_PREFIX: Final = b"\x01"


def leaf_hash(entry: bytes) -> bytes:
    """Return ``SHA-256(0x00 || entry)``, the hash of one leaf."""
    return hashlib.sha256(_LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return ``SHA-256(0x01 || left || right)``, the hash of an interior node."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def canonical_entry(entry: Mapping[str, Any]) -> bytes:
    """Return the canonical bytes of an audit entry: the bytes that get hashed into a leaf.

    Canonical form is JSON with keys sorted, separators ``(",", ":")``, non-ASCII characters
    kept as themselves (``ensure_ascii=False``), encoded as UTF-8.

    Contract: the output is stable under a JSON round trip, i.e.
    ``canonical_entry(json.loads(canonical_entry(e))) == canonical_entry(e)``; that is what
    lets an offline verifier re-hash entries read back from an export. To keep that true,
    every object key at any depth must be a ``str`` (JSON would silently turn ``1`` into
    ``"1"``), floats must be finite, and strings must be encodable as UTF-8 (no lone
    surrogates). Violations raise :class:`ValueError`. Strings are *not* Unicode-normalised:
    NFC and NFD spellings of the same text hash differently.
    """
    _check_json_keys(entry)
    try:
        text = json.dumps(
            entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
        return text.encode("utf-8")
    except (TypeError, ValueError) as exc:  # ValueError covers NaN and UnicodeEncodeError
        raise ValueError(f"entry is not canonicalisable JSON: {exc}") from exc


def entry_leaf_hash(entry: Mapping[str, Any]) -> bytes:
    """Return ``leaf_hash(canonical_entry(entry))``: the leaf hash of an audit entry."""
    return leaf_hash(canonical_entry(entry))


def _check_json_keys(value: object) -> None:
    # Iterative walk so deeply nested hostile input cannot blow the Python stack here.
    stack: list[object] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            for key, sub in item.items():
                if not isinstance(key, str):
                    raise ValueError(f"entry has a non-string key {key!r}")
                stack.append(sub)
        elif isinstance(item, list | tuple):
            stack.extend(item)


def _split(n: int) -> int:
    """Largest power of two strictly smaller than ``n`` (requires ``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _check_hashes(leaf_hashes: Sequence[bytes]) -> None:
    for i, h in enumerate(leaf_hashes):
        if not isinstance(h, bytes) or len(h) != HASH_SIZE:
            raise ValueError(f"leaf hash {i} is not {HASH_SIZE} bytes")


def _range_root(leaf_hashes: Sequence[bytes], lo: int, hi: int) -> bytes:
    """MTH of ``leaf_hashes[lo:hi]`` without slicing (recursion depth is O(log n))."""
    n = hi - lo
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[lo]
    k = _split(n)
    return node_hash(_range_root(leaf_hashes, lo, lo + k), _range_root(leaf_hashes, lo + k, hi))


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """Return the Merkle tree hash (RFC 9162 §2.1.1) of the given leaf hashes.

    ``root([]) == EMPTY_ROOT``; ``root([h]) == h``. Raises :class:`ValueError` if any
    element is not a 32-byte ``bytes``.
    """
    _check_hashes(leaf_hashes)
    return _range_root(leaf_hashes, 0, len(leaf_hashes))


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """Return the audit path (RFC 9162 §2.1.3.1) for leaf ``index`` in the tree of all leaves.

    The tree size is ``len(leaf_hashes)``. Raises :class:`ValueError` unless
    ``0 <= index < len(leaf_hashes)`` and every element is a 32-byte hash.
    """
    _check_hashes(leaf_hashes)
    n = len(leaf_hashes)
    if not 0 <= index < n:
        raise ValueError(f"index {index} out of range for tree size {n}")
    path: list[bytes] = []
    lo, hi = 0, n
    # Walk down from the root; siblings are collected top-down, the proof is bottom-up.
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            path.append(_range_root(leaf_hashes, lo + k, hi))
            hi = lo + k
        else:
            path.append(_range_root(leaf_hashes, lo, lo + k))
            lo = lo + k
    path.reverse()
    return path


def _valid_hash(h: object) -> bool:
    return isinstance(h, bytes) and len(h) == HASH_SIZE


def verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Check an inclusion proof with the algorithm of RFC 9162 §2.1.3.2.

    Returns ``True`` iff ``proof`` shows that ``leaf_hash`` is leaf number ``index`` of the
    tree of ``tree_size`` leaves whose root is ``root``. Never raises on malformed input.
    """
    if not (_valid_hash(leaf_hash) and _valid_hash(root)):
        return False
    if not all(_valid_hash(p) for p in proof):
        return False
    if index < 0 or index >= tree_size:
        return False
    fn, sn = index, tree_size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def _subproof(
    m: int,
    lo: int,
    hi: int,
    complete: bool,
    mth: Callable[[int, int], bytes],
    out: list[bytes],
) -> None:
    """RFC 9162 §2.1.4.1 SUBPROOF(m, D[lo:hi], complete), appending nodes to ``out``.

    ``mth(a, b)`` must return the Merkle tree hash of leaves ``[a, b)``. Requests made here
    are always either wholly inside the old tree ``[.., lo + m)`` as one of its frontier
    subtrees, or wholly inside the appended leaves; :class:`MerkleAccumulator` relies on it.
    """
    n = hi - lo
    if m == n:
        if not complete:
            out.append(mth(lo, hi))
        return
    k = _split(n)
    if m <= k:
        # The right-hand sibling comes *after* the deeper part of the proof.
        _subproof(m, lo, lo + k, complete, mth, out)
        out.append(mth(lo + k, hi))
    else:
        _subproof(m - k, lo + k, hi, False, mth, out)
        out.append(mth(lo, lo + k))


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """Return the consistency proof (RFC 9162 §2.1.4.1) from size ``old_size`` to the full tree.

    The new size is ``len(leaf_hashes)``. ``old_size == 0`` and ``old_size == new size`` give
    the empty proof. Raises :class:`ValueError` unless ``0 <= old_size <= len(leaf_hashes)``.
    """
    _check_hashes(leaf_hashes)
    n = len(leaf_hashes)
    if not 0 <= old_size <= n:
        raise ValueError(f"old size {old_size} out of range for tree size {n}")
    out: list[bytes] = []
    if old_size in (0, n):
        return out
    _subproof(old_size, 0, n, True, lambda a, b: _range_root(leaf_hashes, a, b), out)
    return out


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Check a consistency proof with the algorithm of RFC 9162 §2.1.4.2.

    Returns ``True`` iff ``proof`` shows that the tree of ``new_size`` leaves with root
    ``new_root`` is an append-only extension of the tree of ``old_size`` leaves with root
    ``old_root``. Edge cases (as the RFC and common implementations treat them): equal sizes
    need an empty proof and equal roots; ``old_size == 0`` needs an empty proof and
    ``old_root == EMPTY_ROOT``. Never raises on malformed input.
    """
    if not (_valid_hash(old_root) and _valid_hash(new_root)):
        return False
    if not all(_valid_hash(p) for p in proof):
        return False
    if old_size < 0 or new_size < old_size:
        return False
    if old_size == new_size:
        return len(proof) == 0 and old_root == new_root
    if old_size == 0:
        return len(proof) == 0 and old_root == EMPTY_ROOT
    if len(proof) == 0:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # exact power of two: old root is itself a node
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0


class MerkleAccumulator:
    """Append-only Merkle tree state in O(log n) memory (a compact range ``[0, size)``).

    Holds one hash per set bit of ``size``: the roots of the perfect subtrees that tile the
    tree from the left, largest first (its *frontier*). ``root()`` always equals
    :func:`root` of all leaf hashes appended so far. Not thread-safe.
    """

    __slots__ = ("_nodes", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._nodes: list[bytes] = []

    @classmethod
    def from_frontier(cls, size: int, frontier: Sequence[bytes]) -> MerkleAccumulator:
        """Rebuild an accumulator from a stored ``(size, frontier)`` pair (see :attr:`frontier`).

        Raises :class:`ValueError` if the number of hashes is not the number of set bits of
        ``size`` or a hash is not 32 bytes. The hashes themselves cannot be checked here.
        """
        if size < 0 or len(frontier) != size.bit_count():
            raise ValueError(f"a frontier for size {size} has {max(size, 0).bit_count()} hashes")
        _check_hashes(frontier)
        acc = cls()
        acc._size = size
        acc._nodes = list(frontier)
        return acc

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    @property
    def frontier(self) -> tuple[bytes, ...]:
        """Roots of the perfect subtrees tiling ``[0, size)``, largest (leftmost) first."""
        return tuple(self._nodes)

    def copy(self) -> MerkleAccumulator:
        """Return an independent copy (O(log n))."""
        return MerkleAccumulator.from_frontier(self._size, self._nodes)

    def append(self, leaf_hash: bytes) -> None:
        """Append one leaf hash (amortised O(1) node hashes, O(log n) worst case)."""
        if not _valid_hash(leaf_hash):
            raise ValueError(f"leaf hash must be {HASH_SIZE} bytes")
        h = leaf_hash
        size = self._size
        while size & 1:  # each trailing one bit is a perfect subtree of equal size to merge
            h = node_hash(self._nodes.pop(), h)
            size >>= 1
        self._nodes.append(h)
        self._size += 1

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append several leaf hashes in order."""
        for h in leaf_hashes:
            self.append(h)

    def root(self) -> bytes:
        """Return the current Merkle tree hash (``EMPTY_ROOT`` when empty)."""
        if not self._nodes:
            return EMPTY_ROOT
        r = self._nodes[-1]
        for h in reversed(self._nodes[:-1]):
            r = node_hash(h, r)
        return r

    def _frontier_ranges(self) -> dict[tuple[int, int], bytes]:
        ranges: dict[tuple[int, int], bytes] = {}
        lo = 0
        nodes = iter(self._nodes)
        for bit in reversed(range(self._size.bit_length())):
            width = 1 << bit
            if self._size & width:
                ranges[(lo, lo + width)] = next(nodes)
                lo += width
        return ranges

    def consistency_proof(self, appended: Sequence[bytes]) -> list[bytes]:
        """Consistency proof from this tree to this tree plus ``appended`` leaf hashes.

        Equals ``consistency_proof(all_leaves, self.size)`` where ``all_leaves`` is every
        leaf appended so far followed by ``appended``, but needs only this accumulator's
        frontier and the new leaves: O(len(appended) + log n) time. Does not modify ``self``.
        """
        _check_hashes(appended)
        old = self._size
        new = old + len(appended)
        out: list[bytes] = []
        if old in (0, new):
            return out
        known = self._frontier_ranges()

        def mth(lo: int, hi: int) -> bytes:
            if lo >= old:
                return _range_root(appended, lo - old, hi - old)
            # By construction of SUBPROOF every old-side request is a frontier subtree.
            return known[(lo, hi)]

        _subproof(old, 0, new, True, mth, out)
        return out
