"""Anonymized extracts: k-anonymity, l-diversity and t-closeness by global recoding.

``anonymize(input_csv, config, out)`` reads a CSV, searches the generalization lattice for the
transformation with the least information loss that satisfies the criteria within the
suppression limit, and writes the result. See ``docs/anonymize.md``.
"""

from brygga.privacy.anonymize.config import AnonymizeConfig, load_config, parse_config
from brygga.privacy.anonymize.run import Result, anonymize

__all__ = ["AnonymizeConfig", "Result", "anonymize", "load_config", "parse_config"]
