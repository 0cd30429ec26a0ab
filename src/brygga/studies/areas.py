"""Moved to ``brygga.registry.areas`` (residents' preferences and studies share the list, and
``registry`` sits below ``studies``). This alias keeps ``web/`` and ``bench/`` imports working
until they import from ``registry``; new code imports ``brygga.registry.areas``."""

from brygga.registry.areas import AREAS, label

__all__ = ["AREAS", "label"]
