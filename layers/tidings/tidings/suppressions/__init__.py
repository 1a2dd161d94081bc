"""The suppression list: addresses that must not be sent to, and why.

Fed by the providers' opt-out signals (Twilio STOP and its other opt-out keywords, Twilio's error 21610
on a send, SendGrid ``unsubscribe``, ``group_unsubscribe``, ``spamreport`` and hard ``bounce`` events) and
by operators (``/suppressions``, ``tidings suppressions``). The send steps look an address up before any
provider call, so a suppressed channel is skipped, never sent and never counted as a provider failure.

The table is the one place that keeps the addresses; an entry is named by its ``suppression_id`` (a hash
of channel and address), and answers show the address masked.
"""
