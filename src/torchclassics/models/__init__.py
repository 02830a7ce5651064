"""The lessons' networks."""
