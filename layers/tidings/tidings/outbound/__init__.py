"""Outbound status events for the shop: signed callbacks (Standard Webhooks) and EventBridge events.

* ``signing``: Standard Webhooks signatures, standard library only (a shop SDK reuses it to verify).
See docs/callbacks.md.
"""
