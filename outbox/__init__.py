"""Delivery of outbox messages, neutral of any messaging platform (channels supply `Deliver`)."""
