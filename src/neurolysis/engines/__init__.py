"""Simulation engines: the physics of each method in a needle or anatomy frame (no plan files, no CLI)."""
