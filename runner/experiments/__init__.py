"""Experiments built from engine runs: sweeps over modes, mixes and sizes, and the article's presets."""
