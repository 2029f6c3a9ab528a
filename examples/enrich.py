"""Mixed: fetch a page of orders (I/O), then look for likely duplicate orders in it (CPU).

Each job waits about 100 ms for the API and then compares every pair of baskets on the page in
pure Python (about 15 ms of CPU that holds the GIL). The usual advice -- await the I/O, offload the
CPU -- is what ``find_duplicates`` does: it awaits the page, then ``await offload(...)`` the
comparison, which runs inline in an event loop alone (blocking it) and in the process pool when
runner runs it in hybrid mode, where the loop keeps hundreds of requests waiting while both cores
compare baskets.

``find_duplicates`` (``async def``) and ``find_duplicates_sync`` (``def``) are the two forms of one
kind; each input is a page number (``orders_pages.jsonl``, shared with ``orders.py``).
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

from orders import get_page, get_page_sync

from runner import offload

DELAY_MS = 100
PER_PAGE = 120
THRESHOLD = 0.5


def duplicates(orders: list[dict[str, Any]], threshold: float = THRESHOLD) -> dict[str, object]:
    """Pairs of orders in one region whose baskets overlap (Jaccard similarity of SKUs >= threshold)."""
    baskets = [(order["id"], order["region"], frozenset(item["sku"] for item in order["items"])) for order in orders]
    pairs = []
    best = 0.0
    for (id_a, region_a, skus_a), (id_b, region_b, skus_b) in combinations(baskets, 2):
        # the similarity of every pair, same region or not: the work a real matcher does
        similarity = len(skus_a & skus_b) / len(skus_a | skus_b)
        best = max(best, similarity)
        if region_a == region_b and similarity >= threshold:
            pairs.append((id_a, id_b))
    return {"orders": len(orders), "pairs": len(pairs), "best": round(best, 3)}


async def find_duplicates(page: int) -> dict[str, object]:
    orders = await get_page(page, PER_PAGE, DELAY_MS)
    result: dict[str, object] = await offload(duplicates, orders)
    return result


def find_duplicates_sync(page: int) -> dict[str, object]:
    return duplicates(get_page_sync(page, PER_PAGE, DELAY_MS))
