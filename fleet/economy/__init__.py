"""The lab's economy, as pure rules: money, periods, the price list and charges, quotas.

No I/O and no clock (``now`` is a parameter). Money is exact: prices are :class:`~decimal.Decimal`
in the lab's currency, every amount charged is an integer count of its minor unit (cents).

- :mod:`.money`: currencies, parsing prices, rounding to minor units, formatting.
- :mod:`.periods`: a quota's day, week or month in the lab's time zone, and when it renews.
- :mod:`.pricing`: the price list, and the charge of a job (estimated, or fixed when it ends).
- :mod:`.quotas`: limits per member and group, what is used, and whether one more job fits.
- :mod:`.wording`: what a member reads when a quota holds a job (English and French).
"""

from __future__ import annotations
