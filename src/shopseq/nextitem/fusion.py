"""Score fusion: a neural model's next-item distribution mixed with a neighbourhood model's.

Session-kNN and the neural sequence models make different mistakes (counts are exact on frequent
transitions and blind beyond them; embeddings generalise to rare items but blur the frequent
ones), and the session-rec comparisons found weighted hybrids beating both parts (Ludewig,
Mauro, Latifi & Jannach 2019, "Performance comparison of neural and non-neural approaches to
session-based recommendation"). Here both parts' scores are turned into probabilities over the
catalogue (the neural logits by softmax, the neighbourhood scores, which are non-negative, by
dividing by their row sum) and mixed as ``w * neural + (1 - w) * partner``, a proper predictive
distribution whatever ``w``. The weight is chosen on the validation cases only (NDCG@k over a
grid that includes both parts alone), so a fusion is never worse on validation than its better
part.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from shopseq.artifacts import atomic_dir, atomic_write_json, read_json
from shopseq.errors import ArtifactError, ConfigError, NotFittedError, check_is_fitted
from shopseq.metrics.ranking import ndcg_at_k, target_ranks
from shopseq.nextitem.base import ScoringModel
from shopseq.nextitem.baselines import (
    ItemKNN,
    ItemKNNConfig,
    MarkovChain,
    MarkovChainConfig,
    SessionKNN,
    SessionKNNConfig,
)
from shopseq.nextitem.evaluation import sample_cases, score_in_batches
from shopseq.nextitem.gru4rec import GRU4Rec, GRU4RecConfig
from shopseq.nextitem.sasrec import SASRec, SASRecConfig
from shopseq.runtime import TorchRuntime
from shopseq.sequences import EvalCases, Sequences

__all__ = ["FusionConfig", "ScoreFusion", "fusion_probabilities"]

_FUSION_FILE = "fusion.json"
_NEURAL_DIR, _PARTNER_DIR = "neural", "partner"
_VALID_BATCH = 512  # validation cases scored at once (memory: batch x n_items per part)
# Steps of 0.1, plus finer steps near both ends: a softmax of logits trained with a sampled or
# BPR-style loss can be so peaked that only a weight within 1e-3 of an end lets the other part
# break its near-ties or reorder its top items.
_ENDS = (0.001, 0.003, 0.01, 0.03)
_DEFAULT_WEIGHTS = tuple(
    sorted({0.0, 1.0, *_ENDS, *(round(1.0 - w, 3) for w in _ENDS), *(i / 10 for i in range(1, 10))})
)

Neural = SASRec | GRU4Rec
Partner = SessionKNN | MarkovChain | ItemKNN


class FusionConfig(BaseModel):
    """Which two models to fuse, and how the weight is chosen.

    Attributes:
        neural: The neural part (its settings are the field of that name).
        partner: The neighbourhood part (its settings are the field of that name).
        sasrec: SASRec settings (used when ``neural`` is ``sasrec``).
        gru4rec: GRU4Rec settings (used when ``neural`` is ``gru4rec``).
        sknn: Session-kNN settings (used when ``partner`` is ``sknn``).
        markov: Markov chain settings (used when ``partner`` is ``markov``).
        itemknn: Item-kNN settings (used when ``partner`` is ``itemknn``).
        weights: Candidate weights of the neural part (0: the partner alone, 1: the neural part
            alone; default: steps of 0.1 and finer ones near both ends); the best on validation
            NDCG@``valid_k`` is kept, the smallest on a tie.
        valid_k: Cut-off of the validation NDCG.
        valid_sample: Choose the weight on a seeded sample of this many validation cases
            (``None``: all).
        valid_exclude_seen: Rank validation targets with the history's items removed (set it as
            the test ranking will be).
        n_epochs: Maximum epochs of the neural part (``None``: its own setting).
        seed: Seed of the neural part and of the validation sample.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    neural: Literal["sasrec", "gru4rec"] = "sasrec"
    partner: Literal["sknn", "markov", "itemknn"] = "sknn"
    sasrec: SASRecConfig = SASRecConfig()
    gru4rec: GRU4RecConfig = GRU4RecConfig()
    sknn: SessionKNNConfig = SessionKNNConfig()
    markov: MarkovChainConfig = MarkovChainConfig()
    itemknn: ItemKNNConfig = ItemKNNConfig()
    weights: tuple[float, ...] = _DEFAULT_WEIGHTS
    valid_k: int = Field(default=10, ge=1)
    valid_sample: int | None = Field(default=5000, ge=1)
    valid_exclude_seen: bool = True
    n_epochs: int | None = Field(default=None, ge=1)
    seed: int = 0

    @model_validator(mode="after")
    def _weights_in_range(self) -> FusionConfig:
        if not self.weights or any(not 0.0 <= w <= 1.0 for w in self.weights):
            raise ConfigError(f"fusion weights must be in [0, 1], got {self.weights}")
        return self

    def neural_config(self) -> SASRecConfig | GRU4RecConfig:
        """The neural part's config, with this config's seed and epoch cap applied."""
        base = self.sasrec if self.neural == "sasrec" else self.gru4rec
        update: dict[str, int] = {"seed": self.seed}
        if self.n_epochs is not None:
            update["n_epochs"] = self.n_epochs
        return base.model_copy(update=update)


def _new_neural(config: FusionConfig, runtime: TorchRuntime) -> Neural:
    neural = config.neural_config()
    if isinstance(neural, SASRecConfig):  # narrows the config type for each constructor
        return SASRec(neural, runtime)
    return GRU4Rec(neural, runtime)


def _neural_class(config: FusionConfig) -> type[Neural]:
    return SASRec if config.neural == "sasrec" else GRU4Rec


def _partner_class(config: FusionConfig) -> type[Partner]:
    return {"sknn": SessionKNN, "markov": MarkovChain, "itemknn": ItemKNN}[config.partner]


def _mix(p_neural: np.ndarray, p_partner: np.ndarray, weight: float) -> np.ndarray:
    """``weight * p_neural + (1 - weight) * p_partner`` as scores (padding column -inf)."""
    mixed = weight * p_neural + (1.0 - weight) * p_partner
    mixed[:, 0] = -np.inf
    return mixed


def fusion_probabilities(
    neural_scores: np.ndarray, partner_scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Both parts' scores as probabilities over the catalogue (padding column 0 gets 0).

    Args:
        neural_scores: (n, n_items) logits of the neural part (column 0 is -inf).
        partner_scores: (n, n_items) non-negative scores of the partner (column 0 is -inf).

    Returns:
        ``(p_neural, p_partner)``, each (n, n_items) float32 with rows summing to 1 (a partner
        row with no mass at all stays 0: it then leaves the neural ranking unchanged).
    """
    logits = np.asarray(neural_scores, dtype=np.float32)
    shifted = logits - logits[:, 1:].max(axis=1, keepdims=True)
    p_neural = np.exp(shifted)
    p_neural[:, 0] = 0.0
    p_neural /= p_neural.sum(axis=1, keepdims=True)
    p_partner = np.array(partner_scores, dtype=np.float32)
    p_partner[:, 0] = 0.0
    np.maximum(p_partner, 0.0, out=p_partner)
    mass = p_partner.sum(axis=1, keepdims=True)
    p_partner /= np.where(mass > 0, mass, 1.0)
    return p_neural, p_partner


class ScoreFusion(ScoringModel):
    """``w * P_neural + (1 - w) * P_partner`` with ``w`` chosen on validation.

    Attributes:
        neural_: The fitted neural part.
        partner_: The fitted neighbourhood part.
        weight_: The chosen weight of the neural part.
        valid_scores_: Validation NDCG@k per candidate weight (``None`` without validation,
            when the middle candidate weight is used).
    """

    config_class = FusionConfig

    def __init__(self, config: FusionConfig | None = None, runtime: TorchRuntime | None = None):
        self.config = config or FusionConfig()
        self.runtime = runtime or TorchRuntime()
        self.neural_: Neural | None = None
        self.partner_: Partner | None = None
        self.weight_: float | None = None
        self.valid_scores_: dict[float, float] | None = None

    @property
    def max_history(self) -> int | None:
        """Whole histories when the partner reads them all (the neural part cuts its own)."""
        return None

    @property
    def choices_(self) -> dict[str, float] | None:
        """What was chosen on validation (the weight), recorded with the leaderboard row."""
        return None if self.weight_ is None else {"fusion_weight": self.weight_}

    @property
    def report_(self) -> object:
        """The neural part's training report (epochs, speed), for the leaderboard row."""
        return getattr(self.neural_, "report_", None)

    def fit(self, train: Sequences, n_items: int, valid: EvalCases | None = None) -> Self:
        """Fit both parts on ``train``, then choose the weight on ``valid``.

        Args:
            train: Training sequences.
            n_items: Vocabulary size (padding included).
            valid: Validation cases (early stopping of the neural part and the weight).

        Returns:
            ``self``.
        """
        neural = _new_neural(self.config, self.runtime).fit(train, n_items, valid)
        partner = _partner_class(self.config)(getattr(self.config, self.config.partner))
        partner.fit(train, n_items, valid)
        self.neural_, self.partner_ = neural, partner
        if valid is None or len(valid) == 0:
            self.weight_ = float(sorted(self.config.weights)[len(self.config.weights) // 2])
            self.valid_scores_ = None
            return self
        self.valid_scores_ = self._validation_scores(neural, partner, valid)
        best = max(self.valid_scores_.values())
        self.weight_ = min(w for w, s in self.valid_scores_.items() if s == best)
        return self

    def _validation_scores(
        self, neural: Neural, partner: Partner, valid: EvalCases
    ) -> dict[float, float]:
        cases = sample_cases(valid, self.config.valid_sample, self.config.seed)
        weights = sorted(set(self.config.weights))
        ranks: dict[float, list[np.ndarray]] = {w: [] for w in weights}
        # Both parts score each chunk once (whole histories: the neural part cuts its own
        # max_len); every weight is ranked from the same probabilities.
        for chunk, neural_scores, histories in score_in_batches(
            neural.score, cases, None, _VALID_BATCH
        ):
            p_neural, p_partner = fusion_probabilities(neural_scores, partner.score(histories))
            seen = histories if self.config.valid_exclude_seen else None
            for w in weights:
                mixed = _mix(p_neural, p_partner, w)
                ranks[w].append(target_ranks(mixed, cases.targets[chunk], seen))
        return {w: ndcg_at_k(np.concatenate(r), self.config.valid_k) for w, r in ranks.items()}

    def _parts(self) -> tuple[Neural, Partner]:
        check_is_fitted(self, "weight_")
        if self.neural_ is None or self.partner_ is None:  # unreachable after check_is_fitted
            raise NotFittedError("ScoreFusion is not fitted yet")
        return self.neural_, self.partner_

    def score(self, histories: Sequences) -> np.ndarray:
        """The mixed probabilities of every item after each history.

        Args:
            histories: The histories (the neural part reads its most recent ``max_len``).

        Returns:
            (n_histories, n_items) float32 scores; column 0 (padding) is -inf.
        """
        neural, partner = self._parts()
        weight = float(self.weight_ or 0.0)
        p_neural, p_partner = fusion_probabilities(
            neural.score(histories), partner.score(histories)
        )
        return _mix(p_neural, p_partner, weight)

    def save(self, directory: Path) -> None:
        """Write ``fusion.json`` and both parts (``neural/``, ``partner/``) atomically.

        Args:
            directory: Model directory (replaced as a whole).
        """
        neural, partner = self._parts()
        with atomic_dir(Path(directory)) as tmp:
            atomic_write_json(
                tmp / _FUSION_FILE,
                {
                    "model": type(self).__name__,
                    "config": self.config.model_dump(mode="json"),
                    "weight": self.weight_,
                    "valid_scores": None
                    if self.valid_scores_ is None
                    else [[w, s] for w, s in self.valid_scores_.items()],
                },
            )
            neural.save(tmp / _NEURAL_DIR)
            partner.save(tmp / _PARTNER_DIR)

    @classmethod
    def load(cls, directory: Path, runtime: TorchRuntime | None = None) -> Self:
        """Rebuild a fusion written by :meth:`save`.

        Args:
            directory: Model directory.
            runtime: Where the neural part scores (default: ``TorchRuntime()``).

        Returns:
            The fitted fusion.

        Raises:
            ArtifactError: If the directory holds another model.
        """
        directory = Path(directory)
        try:
            meta = read_json(directory / _FUSION_FILE)
        except (OSError, ValueError) as err:
            raise ArtifactError(f"cannot load ScoreFusion from {directory}: {err}") from err
        if meta.get("model") != cls.__name__:
            raise ArtifactError(f"{directory} holds a {meta.get('model')!r} model, not fusion")
        model = cls(FusionConfig.model_validate(meta["config"]), runtime)
        model.neural_ = _neural_class(model.config).load(directory / _NEURAL_DIR, model.runtime)
        model.partner_ = _partner_class(model.config).load(directory / _PARTNER_DIR)
        model.weight_ = float(meta["weight"])
        scores = meta.get("valid_scores")
        model.valid_scores_ = None if scores is None else {float(w): s for w, s in scores}
        return model
