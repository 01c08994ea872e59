"""The next-item encoders, adapted to the per-user sequence models' encoder interface.

``users`` may not import ``nextitem`` (they are sibling stages in the import contract), so the
runs layer, which sits above both, hands ``users.sequence.SequenceModel`` its encoder: each adapter
wraps the next-item model's own network class (imported, not copied) and calls it through its
``inputs`` hook, so the per-user model reads its event vectors with exactly the GRU cells or
Transformer blocks the next-item model trains.
"""

from __future__ import annotations

import torch
from torch import nn

from shopseq.nextitem.gru4rec import GRU4RecConfig, GRU4RecNet
from shopseq.nextitem.sasrec import SASRecConfig, SASRecNet
from shopseq.users.sequence import EncoderFactory, SequenceConfig

__all__ = ["SEQUENCE_ENCODERS", "GRUEncoder", "SASRecEncoder"]


class GRUEncoder(nn.Module):
    """GRU4Rec's cells (``GRU4RecNet.final_state``) over event vectors; the state after the last.

    Args:
        config: The sequence model's config (``hidden_size``).
    """

    def __init__(self, config: SequenceConfig) -> None:
        super().__init__()
        d = config.hidden_size
        # One item: the network's own item tables go unused (the event vectors are given).
        gru = GRU4RecConfig(layers=(d,), constrained_embedding=False, embedding=d, optimizer="adam")
        self.net = GRU4RecNet(1, gru)

    def forward(self, events: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """(B, T) event codes (0 padding, left-padded) and (B, T, d) vectors -> (B, d)."""
        return self.net.final_state(events.T, inputs=inputs.transpose(0, 1))


class SASRecEncoder(nn.Module):
    """SASRec's causal Transformer (``SASRecNet``) over event vectors; the state at the last.

    Args:
        config: The sequence model's config (``hidden_size``, ``max_len``, ``n_blocks``,
            ``dropout``).
    """

    def __init__(self, config: SequenceConfig) -> None:
        super().__init__()
        sasrec = SASRecConfig(
            max_len=config.max_len,
            hidden_size=config.hidden_size,
            n_blocks=config.n_blocks,
            dropout=config.dropout,
        )
        self.net = SASRecNet(1, sasrec)

    def forward(self, events: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """(B, T) event codes (0 padding, left-padded) and (B, T, d) vectors -> (B, d)."""
        out: torch.Tensor = self.net(events, inputs=inputs)[:, -1, :]
        return out


#: Sequence model name (``shopseq predict --model``) -> its encoder.
SEQUENCE_ENCODERS: dict[str, EncoderFactory] = {"gru": GRUEncoder, "sasrec": SASRecEncoder}
