"""Anatomy: scenes (tissue regions, nerves, critical structures), templates and label-map import."""

from .scene import APPROACHES, CriticalStructure, FibreClass, Nerve, Scene

__all__ = ["APPROACHES", "CriticalStructure", "FibreClass", "Nerve", "Scene"]
