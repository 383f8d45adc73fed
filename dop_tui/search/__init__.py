"""Search strategies over the space and the tuning loop that yields events."""
