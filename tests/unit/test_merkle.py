"""RFC 9162 Merkle tree: reference vectors, proofs, the accumulator, canonical entries."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alarmdesk.safeguards.merkle import (
    EMPTY_ROOT,
    MerkleAccumulator,
    canonical_entry,
    consistency_proof,
    entry_leaf_hash,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

# RFC 6962 reference vectors (certificate-transparency merkle tree tests).
LEAVES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
ROOTS = {
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}
INCLUSION = {  # (index, size) -> path
    (0, 1): [],
    (0, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (5, 8): [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
    (2, 3): ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    (1, 5): [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
}
CONSISTENCY = {  # (old, new) -> proof
    (1, 1): [],
    (1, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (6, 8): [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
    (2, 5): [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
    (6, 7): [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
}

REF_HASHES = [leaf_hash(x) for x in LEAVES]


def synthetic(n: int) -> list[bytes]:
    return [leaf_hash(f"entry-{i}".encode()) for i in range(n)]


HASHES_64 = synthetic(64)
ROOTS_64 = [root(HASHES_64[:n]) for n in range(65)]


def flip(h: bytes) -> bytes:
    return bytes([h[0] ^ 1]) + h[1:]


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT
    assert root([]) == EMPTY_ROOT
    assert MerkleAccumulator().root() == EMPTY_ROOT


def test_leaf_and_node_hashes_use_the_domain_separation_prefixes() -> None:
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    a, b = bytes(32), bytes([1]) * 32
    assert node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()


@pytest.mark.parametrize("size", sorted(ROOTS))
def test_roots_match_the_rfc6962_reference_vectors(size: int) -> None:
    assert root(REF_HASHES[:size]).hex() == ROOTS[size]


@pytest.mark.parametrize(("index", "size"), sorted(INCLUSION))
def test_inclusion_proofs_match_the_reference_vectors(index: int, size: int) -> None:
    proof = inclusion_proof(REF_HASHES[:size], index)
    assert [p.hex() for p in proof] == INCLUSION[(index, size)]
    assert verify_inclusion(REF_HASHES[index], index, size, proof, bytes.fromhex(ROOTS[size]))


@pytest.mark.parametrize(("old", "new"), sorted(CONSISTENCY))
def test_consistency_proofs_match_the_reference_vectors(old: int, new: int) -> None:
    proof = consistency_proof(REF_HASHES[:new], old)
    assert [p.hex() for p in proof] == CONSISTENCY[(old, new)]
    assert verify_consistency(old, new, bytes.fromhex(ROOTS[old]), bytes.fromhex(ROOTS[new]), proof)


def test_every_inclusion_proof_up_to_64_leaves_verifies_and_rejects_tampering() -> None:
    checked = 0
    for size in range(1, 65):
        leaves, tree_root = HASHES_64[:size], ROOTS_64[size]
        for index in range(size):
            proof = inclusion_proof(leaves, index)
            assert verify_inclusion(leaves[index], index, size, proof, tree_root)
            assert not verify_inclusion(flip(leaves[index]), index, size, proof, tree_root)
            assert not verify_inclusion(leaves[index], index, size, proof, flip(tree_root))
            if size > 1:
                other = (index + 1) % size
                assert not verify_inclusion(leaves[index], other, size, proof, tree_root)
                assert not verify_inclusion(leaves[other], index, size, proof, tree_root)
            if proof:
                bad = [*proof[:-1], flip(proof[-1])]
                assert not verify_inclusion(leaves[index], index, size, bad, tree_root)
                assert not verify_inclusion(leaves[index], index, size, proof[:-1], tree_root)
            assert not verify_inclusion(leaves[index], index, size, [*proof, bytes(32)], tree_root)
            # (No check with another tree size: a path for leaf 0 of 3 is also one for leaf 0
            # of 4. The size is bound by the signed checkpoint that carries the root.)
            checked += 1
    assert checked == 64 * 65 // 2


def test_every_consistency_proof_up_to_64_leaves_verifies_and_rejects_tampering() -> None:
    checked = 0
    for new in range(1, 65):
        for old in range(1, new + 1):
            proof = consistency_proof(HASHES_64[:new], old)
            r_old, r_new = ROOTS_64[old], ROOTS_64[new]
            assert verify_consistency(old, new, r_old, r_new, proof)
            assert not verify_consistency(old, new, flip(r_old), r_new, proof)
            assert not verify_consistency(old, new, r_old, flip(r_new), proof)
            for i in range(len(proof)):
                bad = list(proof)
                bad[i] = flip(bad[i])
                assert not verify_consistency(old, new, r_old, r_new, bad)
            if proof:
                assert not verify_consistency(old, new, r_old, r_new, proof[:-1])
            assert not verify_consistency(old, new, r_old, r_new, [*proof, bytes(32)])
            if old < new:
                # A proof is for one pair of sizes only.
                assert not verify_consistency(old, new - 1, r_old, ROOTS_64[new - 1], proof)
            checked += 1
    assert checked == 64 * 65 // 2


def test_consistency_edge_cases_follow_the_rfc() -> None:
    r5 = ROOTS_64[5]
    assert consistency_proof(HASHES_64[:5], 0) == []
    assert verify_consistency(0, 5, EMPTY_ROOT, r5, [])
    assert not verify_consistency(0, 5, r5, r5, [])
    assert verify_consistency(5, 5, r5, r5, [])
    assert not verify_consistency(5, 5, r5, ROOTS_64[6], [])
    assert not verify_consistency(6, 5, ROOTS_64[6], r5, [])
    assert not verify_consistency(3, 5, ROOTS_64[3], r5, [])


def test_proof_producers_reject_out_of_range_arguments() -> None:
    with pytest.raises(ValueError, match="out of range"):
        inclusion_proof(HASHES_64[:4], 4)
    with pytest.raises(ValueError, match="out of range"):
        inclusion_proof([], 0)
    with pytest.raises(ValueError, match="out of range"):
        consistency_proof(HASHES_64[:4], 5)
    with pytest.raises(ValueError, match="32 bytes"):
        root([b"short"])


def test_verifiers_return_false_on_malformed_input_instead_of_raising() -> None:
    h = HASHES_64[0]
    assert not verify_inclusion(h, -1, 1, [], h)
    assert not verify_inclusion(h, 0, 0, [], h)
    assert not verify_inclusion(b"short", 0, 1, [], b"short")
    assert not verify_consistency(1, 2, h, h, [b"short"])
    assert not verify_consistency(-1, 2, h, h, [])


def test_accumulator_root_equals_root_for_every_size_up_to_300() -> None:
    hashes = synthetic(300)
    acc = MerkleAccumulator()
    assert acc.root() == root([])
    for n in range(1, 301):
        acc.append(hashes[n - 1])
        assert acc.size == n
        assert acc.root() == root(hashes[:n]), n
        assert len(acc.frontier) == n.bit_count()


def test_accumulator_can_be_copied_and_restored_from_its_frontier() -> None:
    hashes = synthetic(37)
    acc = MerkleAccumulator()
    acc.extend(hashes[:21])
    restored = MerkleAccumulator.from_frontier(acc.size, acc.frontier)
    copy = acc.copy()
    acc.extend(hashes[21:])
    restored.extend(hashes[21:])
    assert restored.root() == acc.root() == root(hashes)
    assert copy.root() == root(hashes[:21])
    with pytest.raises(ValueError, match="frontier for size 40 has 2 hashes"):
        MerkleAccumulator.from_frontier(40, acc.frontier)  # 40 needs 2 hashes, not 3


def test_accumulator_consistency_proofs_equal_the_full_tree_proofs() -> None:
    for old in range(65):
        acc = MerkleAccumulator()
        acc.extend(HASHES_64[:old])
        for new in range(old, 65):
            assert acc.consistency_proof(HASHES_64[old:new]) == consistency_proof(
                HASHES_64[:new], old
            ), (old, new)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), size=st.integers(min_value=1, max_value=1000))
def test_random_trees_up_to_1000_leaves_give_valid_proofs(data: st.DataObject, size: int) -> None:
    hashes = synthetic(size)
    tree_root = root(hashes)
    acc = MerkleAccumulator()
    acc.extend(hashes)
    assert acc.root() == tree_root

    index = data.draw(st.integers(min_value=0, max_value=size - 1), label="index")
    proof = inclusion_proof(hashes, index)
    assert verify_inclusion(hashes[index], index, size, proof, tree_root)
    assert not verify_inclusion(hashes[index], index, size, proof, flip(tree_root))

    old = data.draw(st.integers(min_value=1, max_value=size), label="old")
    cproof = consistency_proof(hashes, old)
    assert verify_consistency(old, size, root(hashes[:old]), tree_root, cproof)
    assert not verify_consistency(old, size, flip(root(hashes[:old])), tree_root, cproof)
    prefix = MerkleAccumulator()
    prefix.extend(hashes[:old])
    assert prefix.consistency_proof(hashes[old:]) == cproof


def test_canonical_entry_sorts_keys_drops_spaces_and_keeps_unicode() -> None:
    entry = {"b": 1, "a": {"y": [1, 2.5, None, True], "x": "Zürich"}}
    assert canonical_entry(entry) == '{"a":{"x":"Zürich","y":[1,2.5,null,true]},"b":1}'.encode()


def test_canonical_entry_survives_a_json_round_trip() -> None:
    entry = {"op": "consult", "n": -0.0, "big": 2**70, "s": "é\u2014\U0001f692", "l": [{"k": 1}]}
    first = canonical_entry(entry)
    assert canonical_entry(json.loads(first)) == first
    assert entry_leaf_hash(json.loads(first)) == leaf_hash(first)


@pytest.mark.parametrize(
    "entry",
    [
        {"x": float("nan")},
        {"x": float("inf")},
        {"x": {1: "int key"}},
        {"x": "\ud800"},
        {"x": object()},
    ],
)
def test_canonical_entry_rejects_values_that_would_not_round_trip(entry: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="entry"):
        canonical_entry(entry)
