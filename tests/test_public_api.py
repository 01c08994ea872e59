"""Pin the public API so it cannot drift unnoticed (httpx's test_exported_members)."""

from __future__ import annotations

import shopseq


def test_all_is_sorted_and_complete() -> None:
    names = [n for n in shopseq.__all__ if n != "__version__"]
    assert names == sorted(names, key=lambda n: (not n.isupper(), n))
    for name in shopseq.__all__:
        assert hasattr(shopseq, name), name


def test_public_api_is_pinned() -> None:
    assert set(shopseq.__all__) == {
        "BUILTIN_LAYOUTS",
        "Action",
        "ArtifactError",
        "BadRowError",
        "ConfigError",
        "EvalCases",
        "IngestConfig",
        "IngestReport",
        "InputError",
        "Layout",
        "NotFittedError",
        "PrepareConfig",
        "PrepareReport",
        "SchemaMismatchError",
        "SequenceConfig",
        "Sequences",
        "ShopseqError",
        "Split",
        "Store",
        "StoreError",
        "UnknownIdError",
        "Vocabulary",
        "__version__",
        "fetch_events",
        "ingest_files",
        "leave_last_out",
        "open_store",
        "prepare_events",
        "time_cut",
    }
