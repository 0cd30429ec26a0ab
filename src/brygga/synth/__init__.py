"""Synthetic regions: a calibrated population, its life course and its care records."""

from brygga.synth.generator import SynthResult, generate, identities_path

__all__ = ["SynthResult", "generate", "identities_path"]
