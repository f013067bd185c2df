"""Delivery: the messages, channels and retry policy that take an alert to people and systems.

The outbox (in ``alerts``) records what to send; delivery sends it. ``message`` holds what one
notification says, ``channels`` how each kind of receiver gets it, ``retry`` when to try again.
"""
