"""Landmark rules of the knee group (placeholder until its rules land)."""

RULES = ()
