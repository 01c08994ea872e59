"""Data-parallel settings without starting processes: configs, shards, the torchrun edge."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from shopseq.cli.cluster import launched_by_torchrun, torchrun_distributed
from shopseq.errors import ConfigError
from shopseq.runtime import DistributedConfig, TorchRuntime

TORCHRUN_ENV = {
    "RANK": "1",
    "WORLD_SIZE": "3",
    "LOCAL_RANK": "1",
    "MASTER_ADDR": "10.0.0.7",
    "MASTER_PORT": "29411",
}


def test_rank_must_be_inside_the_world() -> None:
    with pytest.raises(ValidationError, match="rank must be below world_size=2"):
        DistributedConfig(rank=2, world_size=2)


@pytest.mark.parametrize("world", [1, 2, 3, 7])
def test_shards_partition_the_sequences(world: int) -> None:
    shards = [
        TorchRuntime(distributed=DistributedConfig(rank=r, world_size=world)).shard(23)
        for r in range(world)
    ]
    together = np.concatenate(shards)
    assert sorted(together.tolist()) == list(range(23))  # each sequence on exactly one rank
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    assert TorchRuntime().shard(5).tolist() == [0, 1, 2, 3, 4]


def test_the_cli_reads_torchrun_environment() -> None:
    assert torchrun_distributed({}, "auto") is None
    assert not launched_by_torchrun({"RANK": "0"})
    config = torchrun_distributed(TORCHRUN_ENV, "gloo")
    assert config == DistributedConfig(
        rank=1,
        world_size=3,
        local_rank=1,
        master_addr="10.0.0.7",
        master_port=29411,
        backend="gloo",
    )
    assert not config.is_main


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({**TORCHRUN_ENV, "RANK": "one"}, "RANK='one' must be an integer"),
        ({**TORCHRUN_ENV, "RANK": "3"}, "rank must be below world_size=3"),
        (TORCHRUN_ENV, "backend"),
    ],
)
def test_a_bad_torchrun_environment_is_a_config_error(env: dict[str, str], message: str) -> None:
    backend = "mpi" if message == "backend" else "auto"
    with pytest.raises(ConfigError, match=message):
        torchrun_distributed(env, backend)


def test_only_torch_models_train_in_several_processes(tmp_path: Path) -> None:
    from shopseq.runs.nextitem import EvaluateConfig, TrainConfig

    runtime = TorchRuntime(distributed=DistributedConfig(rank=0, world_size=2))
    with pytest.raises(ValidationError, match="markov does not train with torch"):
        TrainConfig(model="markov", runtime=runtime, out=tmp_path)
    with pytest.raises(ValidationError, match="evaluate runs in one process"):
        EvaluateConfig(runtime=runtime)
    assert TrainConfig(model="sasrec", runtime=runtime, out=tmp_path).runtime.world_size == 2


def test_replicas_need_a_process_group() -> None:
    import torch

    from shopseq.distributed import ReplicaSync

    runtime = TorchRuntime(distributed=DistributedConfig(rank=0, world_size=2))
    with pytest.raises(ConfigError, match="joined no process group"):
        ReplicaSync(torch.nn.Linear(2, 1), runtime)
