"""Telling people what happened: event kinds, their texts, the outbox's worker and its two ways out.

The pure parts (:mod:`.events`, :mod:`.texts`, :mod:`.signing`, :mod:`.targets`) import nothing heavy,
so the store can name an event's kind inside the transaction that causes it. Apprise (the channels)
and requests (the webhooks) are imported only by :mod:`.senders`, which the worker uses.
"""
