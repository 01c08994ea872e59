"""Readers of published benchmark files, on small hand-written copies of each format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shopseq.errors import InputError
from shopseq.sequences.benchmark_files import (
    read_gce_gnn,
    read_session_rec,
    read_user_item_pairs,
    read_user_sequence_lines,
)


def test_user_item_pairs_leave_one_out_with_full_catalogue(tmp_path: Path) -> None:
    path = tmp_path / "Video.txt"
    # user 2's lines come first in the file; user 10 sorts after user 2 numerically.
    path.write_text("2 7\n2 8\n10 1\n10 2\n10 3\n10 9\n2 1\n3 4\n")
    split = read_user_item_pairs(path)
    vocab = split.item_vocab
    # user 2 (7, 8, 1): 7 trains, 8 validates, 1 tests; user 10: 1 2 train,
    # 3 valid, 9 test (9 appears nowhere else: appended to the catalogue, not a cold miss).
    assert vocab.decode(split.test.targets) == ["1", "9"]
    assert vocab.decode(split.valid.targets) == ["8", "3"]
    assert split.report.test_cold_start_items == 0
    assert vocab.size == 1 + 7  # items 1, 2, 3, 4, 7, 8, 9
    history = split.test.histories(cases=np.array([1]))
    assert vocab.decode(history.items) == ["1", "2", "3"]
    assert split.report.owners_too_short == 1  # user 3


def test_user_sequence_lines(tmp_path: Path) -> None:
    path = tmp_path / "Beauty.txt"
    path.write_text("1 5 6 7 8\n2 6 7\n")
    split = read_user_sequence_lines(path)
    assert split.item_vocab.decode(split.test.targets) == ["8"]
    assert split.item_vocab.decode(split.train.items) == ["5", "6", "6", "7"]


def test_gce_gnn_every_prefix_cases(tmp_path: Path) -> None:
    sessions = tmp_path / "all_train_seq.sessions.txt"
    sessions.write_text("1 2\n3 4 5\n6 7\n2 3 4\n")
    tests = tmp_path / "test.target_prefix.tsv"
    tests.write_text("5\t1 2 3 4\n4\t1 2 3\n99\t6\n")
    split = read_gce_gnn(sessions, tests, valid_fraction=0.25)
    vocab = split.item_vocab
    assert len(split.train) == 3 and len(split.train_full) == 4
    # Validation: every prefix of the last session (2 3 4) -> 3, 4.
    assert vocab.decode(split.valid.targets) == ["3", "4"]
    assert vocab.decode(split.test.targets[:2]) == ["5", "4"]
    assert split.test.targets[2] == -1  # 99 never trained: cold start, counted
    assert split.report.test_cold_start_items == 1
    assert vocab.decode(split.test.histories(cases=np.array([0])).items) == ["1", "2", "3", "4"]


def test_gce_gnn_rejects_bad_fraction(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"valid_fraction must be in \[0, 1\); got 1.5"):
        read_gce_gnn(tmp_path / "a", tmp_path / "b", valid_fraction=1.5)


def test_session_rec_cases_skip_first_position(tmp_path: Path) -> None:
    header = "SessionId\tItemId\tTime\n"
    (tmp_path / "train.txt").write_text(header + "1\t10\t1.0\n1\t11\t2.0\n2\t11\t3.0\n2\t12\t4.5\n")
    (tmp_path / "test.txt").write_text(header + "5\t11\t9.0\n5\t10\t8.0\n5\t12\t10.0\n")
    split = read_session_rec(tmp_path / "train.txt", tmp_path / "test.txt")
    # test session sorted by time: 10, 11, 12 -> cases predict 11 then 12.
    assert split.item_vocab.decode(split.test.targets) == ["11", "12"]
    assert list(split.test.position) == [1, 2]


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        read_user_sequence_lines(tmp_path / "nope.txt")


@pytest.mark.realdata
def test_real_files_match_published_statistics(shared_data: Path) -> None:
    video = read_user_item_pairs(shared_data / "sequential-benchmarks/sasrec/Video.txt")
    assert video.item_vocab.size - 1 == 23_715
    root = shared_data / "diginetica/gce-gnn-processed"
    digi = read_gce_gnn(root / "all_train_seq.sessions.txt", root / "test.target_prefix.tsv")
    assert len(digi.test) == 60_858 and digi.item_vocab.size - 1 == 43_097
