"""Rasa NLU pipeline components of the returnee assistant."""
