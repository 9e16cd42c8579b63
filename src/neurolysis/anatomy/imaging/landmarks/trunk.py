"""Landmark rules of the trunk group (placeholder until its rules land)."""

RULES = ()
