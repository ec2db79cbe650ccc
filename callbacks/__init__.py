"""Training-time callbacks."""
