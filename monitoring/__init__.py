"""Monitoring that runs itself: completeness, reminders, escalations and digests."""
