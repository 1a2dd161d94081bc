"""The notification saga's steps, its final-status decision, and the later tries of parked messages."""
