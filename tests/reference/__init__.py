"""Slow, obviously-correct implementations that the library is checked against."""
