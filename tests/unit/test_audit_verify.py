"""Signed checkpoints and the offline verifier of exported audit logs."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from alarmdesk.safeguards.auditlog_file import (
    VerifyReport,
    checkpoint_line,
    entry_line,
    verify_export,
    write_export,
)
from alarmdesk.safeguards.checkpoint import (
    Checkpoint,
    CheckpointError,
    generate_key,
    key_id,
    open_note,
    parse_and_verify_checkpoint,
    parse_vkey,
    sign_checkpoint,
    sign_note,
)
from alarmdesk.safeguards.merkle import EMPTY_ROOT, MerkleAccumulator, entry_leaf_hash

ORIGIN = "audit.alarmdesk.example/psap-north"
T0 = datetime(2026, 11, 25, 10, 0, 0, tzinfo=UTC)
SKEY, VKEY = generate_key(ORIGIN)

Line = dict[str, Any]


def make_entry(seq: int) -> dict[str, Any]:
    return {
        "seq": seq,
        "at": (T0 + timedelta(seconds=seq)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "actor": f"u{seq % 4 + 1}",
        "role": "operator",
        "op": "consult",
        "object": f"incident:{seq % 7 + 1}",
        "outcome": "allowed",
    }


def build_log(
    n: int = 53, every: int = 10, skey: str = SKEY
) -> tuple[list[Line], list[dict[str, Any]], list[str]]:
    """n entries with a signed checkpoint after every `every` entries; 53 leaves 3 unanchored."""
    lines: list[Line] = []
    entries = [make_entry(i) for i in range(n)]
    notes: list[str] = []
    acc = MerkleAccumulator()
    for seq, entry in enumerate(entries):
        lines.append(entry_line(seq, entry))
        acc.append(entry_leaf_hash(entry))
        if acc.size % every == 0:
            note = sign_checkpoint(
                ORIGIN, acc.size, acc.root(), T0 + timedelta(minutes=acc.size), skey
            )
            notes.append(note)
            lines.append(checkpoint_line(note))
    return lines, entries, notes


def verify(lines: list[Line], tmp_path: Path, **kwargs: Any) -> VerifyReport:
    path = tmp_path / "audit.jsonl"
    write_export(lines, path)
    return verify_export(path, VKEY, **kwargs)


def index_of_entry(lines: list[Line], seq: int) -> int:
    return next(i for i, ln in enumerate(lines) if ln["kind"] == "entry" and ln["seq"] == seq)


def index_of_checkpoint(lines: list[Line], size: int) -> int:
    for i, ln in enumerate(lines):
        if ln["kind"] == "checkpoint" and ln["note"].split("\n")[1] == str(size):
            return i
    raise AssertionError(size)


def problems_text(report: VerifyReport) -> str:
    return "\n".join(report.problems)


# --- the untampered log ----------------------------------------------------------------


def test_an_untampered_export_verifies_and_reports_its_unanchored_tail(tmp_path: Path) -> None:
    lines, _, _ = build_log()
    report = verify(lines, tmp_path)
    assert report.ok, report.problems
    assert report.problems == []
    assert report.entries == 53
    assert report.checkpoints == 5
    assert report.last_verified_size == 50
    assert report.unanchored == 3
    assert report.notes == [
        "unanchored 3 entries after the last checkpoint (file positions 50..52): "
        "no signature covers them yet"
    ]


def test_every_pair_of_successive_checkpoints_is_checked_for_consistency(tmp_path: Path) -> None:
    lines, _, _ = build_log()
    assert verify(lines, tmp_path).consistency_checks == 4


def test_the_verifier_accepts_lines_as_well_as_a_path(tmp_path: Path) -> None:
    lines, _, _ = build_log()
    text_lines = [json.dumps(ln, ensure_ascii=False) + "\n" for ln in lines]
    report = verify_export(text_lines, VKEY)
    assert report.ok
    assert verify_export([s.encode() for s in text_lines], VKEY).ok
    assert report == verify(lines, tmp_path)


def test_a_log_that_ends_exactly_on_a_checkpoint_has_no_unanchored_entries(
    tmp_path: Path,
) -> None:
    lines, _, _ = build_log(n=50)
    report = verify(lines, tmp_path)
    assert report.ok
    assert report.unanchored == 0
    assert report.notes == []


def test_write_export_writes_one_compact_json_object_per_line(tmp_path: Path) -> None:
    lines, _, _ = build_log(n=10)
    path = tmp_path / "out.jsonl"
    assert write_export(lines, path) == 11
    raw = path.read_text(encoding="utf-8").split("\n")
    assert raw[-1] == ""
    assert [json.loads(r) for r in raw[:-1]] == lines
    assert raw[0].startswith('{"entry":{"actor":')
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


# --- tampering with entries ------------------------------------------------------------


def test_editing_one_field_of_an_entry_is_detected(tmp_path: Path) -> None:
    lines, _, _ = build_log()
    lines[index_of_entry(lines, 24)]["entry"]["outcome"] = "denied"
    report = verify(lines, tmp_path)
    assert not report.ok
    text = problems_text(report)
    assert "ROOT_MISMATCH: the signed root for size 30 does not match" in text
    assert "the change is within seq 20..29" in text
    assert report.last_verified_size == 20


def test_deleting_an_entry_is_detected(tmp_path: Path) -> None:
    lines, _, _ = build_log()
    del lines[index_of_entry(lines, 24)]
    report = verify(lines, tmp_path)
    assert not report.ok
    text = problems_text(report)
    assert "SEQUENCE: expected seq 24, found 25: seq 24 missing" in text
    assert "TRUNCATION: checkpoint covers 30 entries but only 29 precede it" in text
    assert report.last_verified_size == 20


def test_deleting_an_entry_and_renumbering_the_rest_is_still_detected(tmp_path: Path) -> None:
    lines, _, _ = build_log()
    del lines[index_of_entry(lines, 24)]
    seq = 0
    for ln in lines:
        if ln["kind"] == "entry":
            ln["seq"] = seq
            ln["entry"]["seq"] = seq
            seq += 1
    report = verify(lines, tmp_path)
    assert not report.ok
    assert "TRUNCATION: checkpoint covers 30 entries but only 29 precede it" in problems_text(
        report
    )


def test_swapping_two_entries_is_detected(tmp_path: Path) -> None:
    lines, _, _ = build_log()
    i, j = index_of_entry(lines, 23), index_of_entry(lines, 24)
    lines[i], lines[j] = lines[j], lines[i]
    report = verify(lines, tmp_path)
    assert not report.ok
    text = problems_text(report)
    assert "SEQUENCE: expected seq 23, found 24" in text
    assert "ROOT_MISMATCH: the signed root for size 30" in text


def test_swapping_two_entries_and_their_line_numbers_is_detected_by_the_root(
    tmp_path: Path,
) -> None:
    lines, _, _ = build_log()
    i, j = index_of_entry(lines, 23), index_of_entry(lines, 24)
    a, b = lines[i]["entry"], lines[j]["entry"]
    a.pop("seq")
    b.pop("seq")  # entries without an inner seq: only the Merkle root can tell
    lines[i]["entry"], lines[j]["entry"] = b, a
    report = verify(lines, tmp_path)
    assert not report.ok
    text = problems_text(report)
    assert "SEQUENCE" not in text
    assert "ROOT_MISMATCH: the signed root for size 30" in text


def test_an_entry_whose_own_seq_disagrees_with_its_line_is_detected(tmp_path: Path) -> None:
    lines, _, _ = build_log()
    i, j = index_of_entry(lines, 23), index_of_entry(lines, 24)
    lines[i]["entry"], lines[j]["entry"] = lines[j]["entry"], lines[i]["entry"]
    report = verify(lines, tmp_path)
    assert "SEQUENCE: entry says seq 24 but its line says seq 23" in problems_text(report)


def test_inserting_an_entry_is_detected(tmp_path: Path) -> None:
    lines, _, _ = build_log()
    forged = make_entry(24) | {"actor": "intruder"}
    lines.insert(index_of_entry(lines, 24), entry_line(24, forged))
    report = verify(lines, tmp_path)
    assert not report.ok
    text = problems_text(report)
    assert "SEQUENCE: expected seq 25, found 24: out of order or duplicated" in text
    assert "MISPLACED_CHECKPOINT: checkpoint covers 30 entries but 31 precede it" in text
    assert "ROOT_MISMATCH: the signed root for size 30" in text


def test_inserting_an_entry_and_renumbering_the_rest_is_still_detected(tmp_path: Path) -> None:
    lines, _, _ = build_log()
    lines.insert(index_of_entry(lines, 24), entry_line(24, make_entry(24) | {"op": "export"}))
    seq = 0
    for ln in lines:
        if ln["kind"] == "entry":
            ln["seq"] = seq
            ln["entry"]["seq"] = seq
            seq += 1
    report = verify(lines, tmp_path)
    assert not report.ok
    assert "ROOT_MISMATCH: the signed root for size 30" in problems_text(report)
    assert report.last_verified_size == 20


# --- truncation ------------------------------------------------------------------------


def test_truncating_the_tail_below_the_last_checkpoint_is_reported_as_truncation(
    tmp_path: Path,
) -> None:
    lines, _, _ = build_log()
    last_cp = lines[index_of_checkpoint(lines, 50)]
    kept = [ln for ln in lines if not (ln["kind"] == "entry" and ln["seq"] >= 45)]
    kept = [ln for ln in kept if ln is not last_cp] + [last_cp]
    report = verify(kept, tmp_path)
    assert not report.ok
    assert "TRUNCATION: checkpoint covers 50 entries but only 45 precede it" in problems_text(
        report
    )
    assert report.last_verified_size == 40


def test_dropping_unanchored_entries_after_the_last_checkpoint_is_not_a_failure(
    tmp_path: Path,
) -> None:
    lines, _, _ = build_log()
    report = verify(lines[:-2], tmp_path)
    assert report.ok
    assert report.unanchored == 1
    assert report.notes[0].startswith("unanchored 1 entries")


def test_cutting_the_tail_with_its_checkpoints_is_caught_by_a_checkpoint_held_elsewhere(
    tmp_path: Path,
) -> None:
    lines, _, notes = build_log()
    cut = lines[: index_of_entry(lines, 45)]  # entries 0..44, checkpoints 10..40
    assert verify(cut, tmp_path).ok  # the file alone cannot tell: it is a valid shorter log
    report = verify(cut, tmp_path, trusted_checkpoints=[notes[-1]])
    assert not report.ok
    assert "trusted checkpoint #1: TRUNCATION: it covers 50 entries but the file has only 45" in (
        problems_text(report)
    )
    assert verify(lines, tmp_path, trusted_checkpoints=notes).ok


def test_a_log_that_rewrote_history_and_re_signed_is_caught_by_an_older_trusted_checkpoint(
    tmp_path: Path,
) -> None:
    _, _, notes = build_log()
    held = notes[2]  # size 30, kept by an auditor before the rewrite
    rewritten_entries = [make_entry(i) for i in range(53)]
    rewritten_entries[12]["outcome"] = "denied"
    rewritten: list[Line] = []
    acc = MerkleAccumulator()
    for seq, entry in enumerate(rewritten_entries):
        rewritten.append(entry_line(seq, entry))
        acc.append(entry_leaf_hash(entry))
        if acc.size % 10 == 0:
            note = sign_checkpoint(ORIGIN, acc.size, acc.root(), T0, SKEY)
            rewritten.append(checkpoint_line(note))
    assert verify(rewritten, tmp_path).ok  # self-consistent, signed with the real key
    report = verify(rewritten, tmp_path, trusted_checkpoints=[held])
    assert not report.ok
    assert "trusted checkpoint #1: HISTORY_MISMATCH: the file's first 30 entries" in (
        problems_text(report)
    )


# --- tampering with checkpoints --------------------------------------------------------


def test_a_checkpoint_signed_by_another_key_is_reported_as_an_unknown_key(
    tmp_path: Path,
) -> None:
    lines, _, _ = build_log()
    other_skey, _ = generate_key(ORIGIN)  # same name, different key
    i = index_of_checkpoint(lines, 30)
    cp = parse_and_verify_checkpoint(lines[i]["note"], VKEY)
    lines[i] = checkpoint_line(sign_checkpoint(ORIGIN, cp.size, cp.root, cp.time, other_skey))
    report = verify(lines, tmp_path)
    assert not report.ok
    text = problems_text(report)
    assert "UNKNOWN_KEY: no signature by key " + ORIGIN in text
    assert "forged, or signed by a key other than the one given" in text
    assert report.last_verified_size == 20


def test_a_whole_export_signed_by_another_key_verifies_nothing(tmp_path: Path) -> None:
    other_skey, _ = generate_key("someone-else")
    lines, _, _ = build_log(skey=other_skey)
    report = verify(lines, tmp_path)
    assert not report.ok
    assert sum("UNKNOWN_KEY" in p for p in report.problems) == 5
    assert "NO_CHECKPOINT" in problems_text(report)
    assert report.last_verified_size == 0


@pytest.mark.parametrize(
    ("line_no", "replacement"),
    [(1, "31"), (2, base64.b64encode(hashlib.sha256(b"x").digest()).decode())],
    ids=["size", "root"],
)
def test_a_checkpoint_whose_size_or_root_was_edited_fails_its_signature(
    tmp_path: Path, line_no: int, replacement: str
) -> None:
    lines, _, _ = build_log()
    i = index_of_checkpoint(lines, 30)
    note_lines = lines[i]["note"].split("\n")
    note_lines[line_no] = replacement
    lines[i]["note"] = "\n".join(note_lines)
    report = verify(lines, tmp_path)
    assert not report.ok
    text = problems_text(report)
    assert "BAD_SIGNATURE: signature by key" in text
    assert "checkpoint text altered after signing, or forged" in text


def test_a_validly_signed_checkpoint_over_the_wrong_root_is_a_root_mismatch(
    tmp_path: Path,
) -> None:
    lines, _, _ = build_log()
    i = index_of_checkpoint(lines, 30)
    wrong = hashlib.sha256(b"another history").digest()
    lines[i] = checkpoint_line(sign_checkpoint(ORIGIN, 30, wrong, T0, SKEY))
    report = verify(lines, tmp_path)
    assert not report.ok
    assert "ROOT_MISMATCH: the signed root for size 30" in problems_text(report)


def test_a_validly_signed_checkpoint_with_a_larger_size_is_a_truncation(tmp_path: Path) -> None:
    lines, _, _ = build_log()
    i = index_of_checkpoint(lines, 30)
    cp = parse_and_verify_checkpoint(lines[i]["note"], VKEY)
    lines[i] = checkpoint_line(sign_checkpoint(ORIGIN, 31, cp.root, T0, SKEY))
    report = verify(lines, tmp_path)
    assert "TRUNCATION: checkpoint covers 31 entries but only 30 precede it" in problems_text(
        report
    )


def test_two_signed_checkpoints_for_one_size_with_different_roots_is_a_fork(
    tmp_path: Path,
) -> None:
    lines, _, _ = build_log()
    i = index_of_checkpoint(lines, 30)
    other = sign_checkpoint(ORIGIN, 30, hashlib.sha256(b"fork").digest(), T0, SKEY)
    lines.insert(i + 1, checkpoint_line(other))
    report = verify(lines, tmp_path)
    assert not report.ok
    assert "FORK: two validly signed checkpoints for size 30" in problems_text(report)


def test_a_checkpoint_for_another_log_is_an_origin_mismatch(tmp_path: Path) -> None:
    lines, _, _ = build_log()
    i = index_of_checkpoint(lines, 30)
    cp = parse_and_verify_checkpoint(lines[i]["note"], VKEY)
    lines[i] = checkpoint_line(
        sign_checkpoint("other.example/log", 30, cp.root, T0, SKEY, key_name=ORIGIN)
    )
    report = verify(lines, tmp_path)
    assert "ORIGIN_MISMATCH: checkpoint is for log 'other.example/log'" in problems_text(report)


# --- malformed files -------------------------------------------------------------------


def test_malformed_lines_are_reported_with_their_line_number() -> None:
    lines, _, _ = build_log(n=10)
    text = [json.dumps(ln) for ln in lines]
    text.insert(3, "{not json")
    text.insert(4, '{"kind":"entry","seq":3,"seq":3,"entry":{}}')
    text.insert(5, '{"kind":"comment","text":"hello"}')
    text.insert(6, '{"kind":"entry","seq":3,"entry":{},"note":"x"}')
    report = verify_export(text, VKEY)
    assert not report.ok
    got = problems_text(report)
    assert "line 4: MALFORMED_LINE: not valid JSON" in got
    assert "line 5: MALFORMED_LINE: duplicate key 'seq'" in got
    assert "line 6: MALFORMED_LINE: unknown kind 'comment'" in got
    assert "line 7: MALFORMED_LINE: entry line must have exactly the keys" in got


def test_an_export_without_any_checkpoint_is_not_ok() -> None:
    report = verify_export([json.dumps(entry_line(0, make_entry(0)))], VKEY)
    assert not report.ok
    assert report.problems == [
        "end of file: NO_CHECKPOINT: the export has no valid signed checkpoint, "
        "so none of it can be verified"
    ]
    assert report.unanchored == 1


def test_an_invalid_verifier_key_is_a_caller_error_not_a_report() -> None:
    with pytest.raises(ValueError, match="verifier key"):
        verify_export([], VKEY.replace("+", "+0", 1))


# --- checkpoints and signed notes ------------------------------------------------------


def test_generated_keys_use_the_note_vkey_and_skey_formats() -> None:
    skey, vkey = generate_key("log.example/a")
    name, kid, key_b64 = vkey.split("+", 2)
    assert name == "log.example/a"
    raw = base64.b64decode(key_b64)
    assert raw[0] == 0x01 and len(raw) == 33
    expected_id = hashlib.sha256(b"log.example/a\n\x01" + raw[1:]).digest()[:4]
    assert kid == expected_id.hex() == key_id(name, raw[1:]).hex()
    assert re.fullmatch(r"PRIVATE\+KEY\+log\.example/a\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}", skey)
    assert skey.split("+")[3] == kid
    with pytest.raises(ValueError, match="key name"):
        generate_key("has space")
    with pytest.raises(ValueError, match="key name"):
        generate_key("has+plus")


def test_a_signed_checkpoint_has_the_tlog_checkpoint_body_and_one_em_dash_signature() -> None:
    root = hashlib.sha256(b"root").digest()
    note = sign_checkpoint(ORIGIN, 42, root, T0, SKEY)
    body, sig = note.split("\n\n")
    assert body.split("\n") == [
        ORIGIN,
        "42",
        base64.b64encode(root).decode(),
        "time 2026-11-25T10:00:00Z",
    ]
    assert sig.startswith(f"\u2014 {ORIGIN} ")
    assert sig.endswith("\n") and sig.count("\n") == 1
    blob = base64.b64decode(sig.split(" ")[2])
    assert len(blob) == 4 + 64
    assert blob[:4] == parse_vkey(VKEY).key_id
    assert parse_and_verify_checkpoint(note, VKEY) == Checkpoint(ORIGIN, 42, root, T0)


def test_checkpoint_time_is_optional_and_kept_to_the_microsecond() -> None:
    root = EMPTY_ROOT
    assert parse_and_verify_checkpoint(sign_checkpoint(ORIGIN, 0, root, None, SKEY), VKEY) == (
        Checkpoint(ORIGIN, 0, root, None)
    )
    when = datetime(2026, 11, 25, 11, 0, 0, 250000, tzinfo=UTC)
    note = sign_checkpoint(ORIGIN, 0, root, when, SKEY, extensions=["note-ext value"])
    assert "time 2026-11-25T11:00:00.25Z\nnote-ext value\n\n" in note
    cp = parse_and_verify_checkpoint(note, VKEY)
    assert cp.time == when
    assert cp.extensions == ("note-ext value",)
    with pytest.raises(ValueError, match="timezone-aware"):
        sign_checkpoint(ORIGIN, 0, root, datetime(2026, 11, 25), SKEY)


def test_signatures_from_other_keys_such_as_witnesses_are_ignored() -> None:
    note = sign_checkpoint(ORIGIN, 1, EMPTY_ROOT, T0, SKEY)
    witness_skey, _ = generate_key("witness.example")
    body = note.split("\n\n")[0] + "\n"
    cosigned = note + sign_note(body, witness_skey).split("\n\n")[1]
    assert cosigned.count("\u2014 ") == 2
    assert parse_and_verify_checkpoint(cosigned, VKEY).size == 1


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("no blank line\n", "malformed_checkpoint"),
        (f"{ORIGIN}\n1\n\n\u2014 {ORIGIN} AAAA\n", "malformed_checkpoint"),
        (f"{ORIGIN}\n1\n\nnot a signature line\n", "malformed_checkpoint"),
    ],
)
def test_structurally_broken_notes_are_malformed(text: str, code: str) -> None:
    with pytest.raises(CheckpointError) as info:
        parse_and_verify_checkpoint(text, VKEY)
    assert info.value.code == code


@pytest.mark.parametrize(
    "body",
    [
        f"{ORIGIN}\n01\n{base64.b64encode(EMPTY_ROOT).decode()}\n",
        f"{ORIGIN}\n+1\n{base64.b64encode(EMPTY_ROOT).decode()}\n",
        f"{ORIGIN}\n1\n{base64.b64encode(EMPTY_ROOT[:31]).decode()}\n",
        f"{ORIGIN}\n1\n",
        f"{ORIGIN}\n1\n{base64.b64encode(EMPTY_ROOT).decode()}\ntime yesterday\n",
    ],
    ids=["leading-zero", "sign", "short-root", "no-root", "bad-time"],
)
def test_validly_signed_but_malformed_checkpoint_bodies_are_rejected(body: str) -> None:
    with pytest.raises(CheckpointError) as info:
        parse_and_verify_checkpoint(sign_note(body, SKEY), VKEY)
    assert info.value.code == "malformed_checkpoint"


def test_wrong_key_and_altered_text_give_distinct_error_codes() -> None:
    note = sign_checkpoint(ORIGIN, 7, EMPTY_ROOT, T0, SKEY)
    _, other_vkey = generate_key(ORIGIN)
    with pytest.raises(CheckpointError) as info:
        parse_and_verify_checkpoint(note, other_vkey)
    assert info.value.code == "unknown_key"
    with pytest.raises(CheckpointError) as info:
        parse_and_verify_checkpoint(note.replace("\n7\n", "\n8\n"), VKEY)
    assert info.value.code == "bad_signature"


# The example key and note of golang.org/x/mod/sumdb/note: Ed25519 is deterministic, so
# signing the same text must reproduce the published note byte for byte.
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2"
    "pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def test_notes_interoperate_with_the_go_reference_implementation() -> None:
    assert sign_note(GO_TEXT, GO_SKEY) == GO_NOTE
    assert open_note(GO_NOTE, GO_VKEY) == GO_TEXT
    with pytest.raises(CheckpointError) as info:
        open_note(GO_NOTE.replace("cryptography", "cryptographY"), GO_VKEY)
    assert info.value.code == "bad_signature"


def test_a_verifier_key_whose_id_does_not_match_its_key_is_rejected() -> None:
    with pytest.raises(ValueError, match="key id does not match"):
        parse_vkey(GO_VKEY.replace("c74f20a3", "c74f20a4"))
    with pytest.raises(ValueError, match="key id does not match"):
        parse_vkey(GO_VKEY.replace("PeterNeumann", "PeterNeuman"))


def test_build_log_fixture_is_not_shared_between_tests() -> None:
    lines, _, _ = build_log(n=10)
    before = copy.deepcopy(lines)
    lines[0]["entry"]["outcome"] = "denied"
    assert build_log(n=10)[0][0] == before[0]


def test_keys_whose_base64_contains_a_plus_sign_still_parse() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from alarmdesk.safeguards.checkpoint import vkey_for

    for i in range(256):
        private = Ed25519PrivateKey.from_private_bytes(bytes([i]) * 32)
        vkey = vkey_for("plus.example", private.public_key())
        if "+" in vkey.split("+", 2)[2]:
            break
    else:  # pragma: no cover - 256 tries all without '+' is astronomically unlikely
        pytest.fail("no key with '+' in its base64 found")
    note = sign_checkpoint("plus.example", 3, EMPTY_ROOT, None, private)
    assert parse_and_verify_checkpoint(note, vkey).size == 3


def test_an_older_checkpoint_repeated_after_a_newer_one_is_a_rollback(tmp_path: Path) -> None:
    lines, _, notes = build_log()
    lines.insert(index_of_checkpoint(lines, 30) + 1, checkpoint_line(notes[1]))  # size 20
    report = verify(lines, tmp_path)
    assert not report.ok
    assert (
        "ROLLBACK: checkpoint for size 20 follows an accepted checkpoint for size 30"
        in problems_text(report)
    )
