"""The missing-value policy, applied after ingest (which already rejects missing required fields).

Policy (documented in docs/schema.md):

* ``user_id``, ``item_id``, ``action``, ``ts``: never missing here; ingest quarantines such rows.
* ``category_id``: filled with the item's most frequent category in other events; stays missing when
  the item never has one (analyses group those under "unknown").
* ``price``: filled with the item's median observed price; stays missing when never observed.
* ``quantity``: missing on a cart or purchase means 1 (one unit); stays missing on other actions.
* ``session_id``: assigned by sessionisation.
* ``query``: left as it is (only searches have one).
"""

from __future__ import annotations

import ibis
from pydantic import BaseModel, ConfigDict

from shopseq.schema import ACTION, CATEGORY_ID, ITEM_ID, PRICE, QUANTITY, Action

__all__ = ["MissingValueConfig", "fill_missing"]


class MissingValueConfig(BaseModel):
    """Which fills to apply.

    Attributes:
        fill_category_from_item: Fill a missing category with the item's most frequent one.
        fill_price_from_item: Fill a missing price with the item's median price.
        default_quantity: Quantity of carts and purchases that have none (``None``: leave missing).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    fill_category_from_item: bool = True
    fill_price_from_item: bool = True
    default_quantity: int | None = 1


def fill_missing(events: ibis.Table, config: MissingValueConfig) -> ibis.Table:
    """Apply the missing-value policy.

    Args:
        events: Events.
        config: Which fills to apply.

    Returns:
        Events with the same rows, some missing optional values filled.
    """
    result = events
    if config.fill_category_from_item:
        counts = (
            events.filter(events[CATEGORY_ID].notnull())
            .group_by([ITEM_ID, CATEGORY_ID])
            .aggregate(_n=ibis._.count())
        )
        ranked = counts.mutate(
            _rank=ibis.row_number().over(
                ibis.window(
                    group_by=counts[ITEM_ID], order_by=[ibis.desc(counts._n), counts[CATEGORY_ID]]
                )
            )
        )
        modal = ranked.filter(ranked._rank == 0).select(
            _item=ranked[ITEM_ID], _category=ranked[CATEGORY_ID]
        )
        joined = result.left_join(modal, result[ITEM_ID] == modal._item)
        result = joined.mutate(
            **{CATEGORY_ID: joined[CATEGORY_ID].fill_null(joined._category)}
        ).drop("_item", "_category")
    if config.fill_price_from_item:
        medians = (
            events.filter(events[PRICE].notnull())
            .group_by(ITEM_ID)
            .aggregate(_median_price=ibis._[PRICE].median())
            .rename(_item2=ITEM_ID)
        )
        joined = result.left_join(medians, result[ITEM_ID] == medians._item2)
        result = joined.mutate(**{PRICE: joined[PRICE].fill_null(joined._median_price)}).drop(
            "_item2", "_median_price"
        )
    if config.default_quantity is not None:
        needs = result[ACTION].isin([Action.CART.value, Action.PURCHASE.value, Action.RETURN.value])
        result = result.mutate(
            **{
                QUANTITY: ibis.ifelse(
                    needs & result[QUANTITY].isnull(),
                    ibis.literal(config.default_quantity, type="int32"),
                    result[QUANTITY],
                )
            }
        )
    return result.select(*events.columns)
