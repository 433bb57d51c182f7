"""Utilities: argument validation and the multiply-add counter."""
