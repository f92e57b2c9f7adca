"""Delivery records, status, tracking and summaries, on Redis."""
