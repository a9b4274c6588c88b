"""Rasa input/output channels: one module per channel, all with the same small shape."""
