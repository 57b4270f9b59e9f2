"""Telling people what happened: event kinds, their texts, the outbox's worker and its two ways out.

The pure parts (:mod:`.events`, :mod:`.texts`, :mod:`.signing`) import nothing heavy, so the store
can name an event's kind inside the transaction that causes it. Apprise is imported only by
:mod:`.channels` (when a URL is checked or a message sent), requests only by :mod:`.webhooks`; the
worker (:mod:`.worker`) uses both.
"""
