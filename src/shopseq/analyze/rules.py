"""Association rules (FP-Growth) over baskets: the items or categories of one session or user.

A basket is the set of distinct items (or categories) a session (or user) touched with the chosen
actions; by default carts and purchases, so rules read "carted or bought together". For a rule
``A -> B``: support = share of baskets containing A and B; confidence = support(A and B) /
support(A); lift = confidence / support(B) (above 1: B is more likely with A than without).

The store does the counting: it builds the baskets, samples at most ``max_baskets`` of them by a
seeded hash, and keeps only items frequent enough to appear in a rule (at most ``max_items``).
Only those (basket, item) pairs reach pandas, where mlxtend's FP-Growth mines the itemsets.
Supports are shares of all sampled baskets (including those with no frequent item).

Dense baskets (invoices of dozens of items) make FP-Growth explode at low support (UCI Online
Retail: 97 k frequent pairs and 6 minutes at 0.1 %). So the store first counts item pairs; when
more than ``max_pairs`` pairs are frequent, the minimum count is raised until at most
``max_pairs`` are, and the result reports the count actually used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import ibis
import numpy as np
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field

from shopseq.analyze.result import Result, fetch_rows
from shopseq.schema import ACTION, CATEGORY_ID, ITEM_ID, SESSION_ID, USER_ID, Action

__all__ = ["Rule", "RuleConfig", "RulesResult", "association_rules"]


class RuleConfig(BaseModel):
    """Which baskets and which rules.

    Attributes:
        level: Baskets of items or of categories.
        basket: One basket per session or per user.
        actions: Events that put an item in the basket (``None``: every action).
        min_support: Minimum share of baskets containing a rule's items.
        min_baskets: ...and at least this many baskets (keeps one-off baskets of small data out).
        min_confidence: Minimum confidence of a rule.
        min_lift: Minimum lift of a rule.
        max_len: Largest itemset (antecedent plus consequent).
        top_k: Rules reported (highest lift first, then support).
        max_baskets: Baskets mined at most (a seeded uniform sample beyond that).
        max_items: Most frequent items kept as FP-Growth columns.
        max_pairs: Frequent item pairs allowed before the minimum count is raised.
        seed: Seed of the sample.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    level: Literal["item", "category"] = "item"
    basket: Literal["session", "user"] = "session"
    actions: tuple[Action, ...] | None = (Action.CART, Action.PURCHASE)
    min_support: float = Field(default=0.001, gt=0.0, le=1.0)
    min_baskets: int = Field(default=5, ge=1)
    min_confidence: float = Field(default=0.05, ge=0.0, le=1.0)
    min_lift: float = Field(default=1.0, ge=0.0)
    max_len: int = Field(default=3, ge=2)
    top_k: int = Field(default=25, ge=1)
    max_baskets: int = Field(default=200_000, ge=1)
    max_items: int = Field(default=500, ge=2)
    max_pairs: int = Field(default=2_000, ge=1)
    seed: int = Field(default=0, ge=0)


@dataclass(frozen=True, slots=True)
class Rule(Result):
    """An association rule ``antecedent -> consequent``.

    Attributes:
        antecedent: Items on the left.
        consequent: Items on the right.
        n: Baskets containing all of them.
        support: ``n`` / baskets.
        confidence: support(all) / support(antecedent).
        lift: confidence / support(consequent).
    """

    antecedent: tuple[str, ...]
    consequent: tuple[str, ...]
    n: int
    support: float
    confidence: float
    lift: float


@dataclass(frozen=True, slots=True)
class RulesResult(Result):
    """The strongest rules.

    Attributes:
        level: ``item`` or ``category``.
        basket: ``session`` or ``user``.
        n_baskets: Baskets mined.
        n_baskets_total: Baskets in the data.
        min_count: Baskets an itemset needed (raised above ``min_support`` and ``min_baskets``
            when more than ``max_pairs`` pairs would be frequent).
        n_frequent_itemsets: Frequent itemsets FP-Growth found (all sizes).
        n_rules: Rules passing the thresholds (before ``top_k``).
        rules: Highest lift first.
    """

    level: str
    basket: str
    n_baskets: int
    n_baskets_total: int
    min_count: int
    n_frequent_itemsets: int
    n_rules: int
    rules: tuple[Rule, ...]


def _empty(
    config: RuleConfig, n: int, total: int, min_count: int = 0, itemsets: int = 0
) -> RulesResult:
    return RulesResult(config.level, config.basket, n, total, min_count, itemsets, 0, ())


def _pair_floor(pairs: ibis.Table, min_count: int, max_pairs: int) -> int:
    """The smallest count that leaves at most ``max_pairs`` frequent item pairs."""
    other = pairs.select(_b2=pairs._b, _j=pairs._i)
    joined = pairs.join(other, (pairs._b == other._b2) & (pairs._i < other._j))
    counted = joined.group_by(["_i", "_j"]).aggregate(_n=ibis._.count())
    beyond = fetch_rows(
        counted.filter(counted._n >= min_count)
        .order_by(ibis.desc("_n"))
        .limit(1, offset=max_pairs)
        .select("_n")
    )
    return max(min_count, int(beyond[0]["_n"]) + 1) if beyond else min_count


def association_rules(events: ibis.Table, config: RuleConfig) -> RulesResult:
    """Mine association rules with FP-Growth.

    Args:
        events: Prepared events (``store.table("events_prepared")``).
        config: Baskets, thresholds, sample size.

    Returns:
        The ``top_k`` rules by lift.
    """
    try:
        from mlxtend.frequent_patterns import association_rules as mlx_rules
        from mlxtend.frequent_patterns import fpgrowth
    except ImportError as err:  # an optional extra: say how to get it
        raise ImportError("association rules need mlxtend: pip install 'shopseq[analyze]'") from err

    owner = SESSION_ID if config.basket == "session" else USER_ID
    chosen = events
    if config.actions is not None:
        chosen = events.filter(events[ACTION].isin([a.value for a in config.actions]))
    token = chosen[ITEM_ID] if config.level == "item" else chosen[CATEGORY_ID]
    pairs = chosen.filter(token.notnull()).select(_b=chosen[owner], _i=token).distinct()
    baskets = pairs.select("_b").distinct()
    n_total = int(baskets.count().execute())
    if n_total == 0:
        return _empty(config, 0, 0)
    sample = (
        baskets.mutate(_h=baskets._b.concat(f"#{config.seed}").hash())
        .order_by(["_h", "_b"])
        .limit(config.max_baskets)
        .select("_b")
    )
    n = min(n_total, config.max_baskets)
    sampled = pairs.semi_join(sample, "_b") if n < n_total else pairs
    min_count = max(config.min_baskets, math.ceil(config.min_support * n))
    counts = sampled.group_by("_i").aggregate(_n=ibis._.count())
    frequent = (
        counts.filter(counts._n >= min_count)
        .order_by([ibis.desc("_n"), "_i"])
        .limit(config.max_items)
        .select("_i")
    )
    kept = sampled.semi_join(frequent, "_i")
    min_count = _pair_floor(kept, min_count, config.max_pairs)
    counts = kept.group_by("_i").aggregate(_n=ibis._.count())
    kept = kept.semi_join(counts.filter(counts._n >= min_count), "_i")
    # Sorted, so the item columns (numbered by first appearance) and so the order in which
    # FP-Growth lists itemsets, hence the order of tied rules, are the same on every run.
    rows = kept.order_by(["_b", "_i"]).to_pyarrow()
    if rows.num_rows == 0:
        return _empty(config, n, n_total, min_count)
    basket_codes = pc.dictionary_encode(rows.column("_b").combine_chunks())
    item_codes = pc.dictionary_encode(rows.column("_i").combine_chunks())
    r = basket_codes.indices.to_numpy(zero_copy_only=False)
    c = item_codes.indices.to_numpy(zero_copy_only=False)
    n_rows = len(basket_codes.dictionary)
    # Dense on purpose: mlxtend densifies sparse frames itself (``df.values``), and the store
    # already cut the frame to baskets with a frequent item x at most ``max_items`` columns.
    matrix = np.zeros((n_rows, len(item_codes.dictionary)), dtype=bool)
    matrix[r, c] = True
    import pandas as pd  # mlxtend's input; imported here to keep `shopseq --help` light

    frame = pd.DataFrame(matrix, columns=[str(v) for v in item_codes.dictionary.to_pylist()])
    # FP-Growth sees only baskets holding a frequent item; rescale to shares of all baskets.
    itemsets = fpgrowth(
        frame, min_support=min_count / n_rows, use_colnames=True, max_len=config.max_len
    )
    if itemsets.empty or itemsets["itemsets"].map(len).max() < 2:
        return _empty(config, n, n_total, min_count, len(itemsets))
    itemsets["support"] = itemsets["support"] * n_rows / n
    found = mlx_rules(
        itemsets,
        num_itemsets=n,
        metric="confidence",
        min_threshold=config.min_confidence,
        # Only what we report: mlxtend's other metrics divide by zero when an item is in every
        # basket (certainty, conviction) and would raise under warnings-as-errors.
        return_metrics=[
            "antecedent support",
            "consequent support",
            "support",
            "confidence",
            "lift",
        ],
    )
    found = found[found["lift"] >= config.min_lift]
    # Ties on lift, support and confidence in the order of the items (not FP-Growth's).
    found = found.assign(
        antecedent_key=found["antecedents"].map(lambda items: tuple(sorted(map(str, items)))),
        consequent_key=found["consequents"].map(lambda items: tuple(sorted(map(str, items)))),
    )
    found = found.sort_values(
        ["lift", "support", "confidence", "antecedent_key", "consequent_key"],
        ascending=[False, False, False, True, True],
        kind="mergesort",
    )
    rules = tuple(
        Rule(
            antecedent=row.antecedent_key,
            consequent=row.consequent_key,
            n=round(float(row.support) * n),
            support=float(row.support),
            confidence=float(row.confidence),
            lift=float(row.lift),
        )
        for row in found.head(config.top_k).itertuples()
    )
    return RulesResult(
        level=config.level,
        basket=config.basket,
        n_baskets=n,
        n_baskets_total=n_total,
        min_count=min_count,
        n_frequent_itemsets=len(itemsets),
        n_rules=len(found),
        rules=rules,
    )
