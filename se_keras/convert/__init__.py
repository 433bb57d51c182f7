"""Converters from other frameworks' checkpoints to se-keras models."""
