"""The returnee assistant's core package."""
