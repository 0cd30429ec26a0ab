"""Brygga: a regional life-science platform over structured health data.

Packages, lowest layer first (docs/architecture.md): ``db``, ``records``, ``privacy``,
``cohort``, ``registry``, ``ingest``, ``studies``, ``prevention``, ``synth``, ``web``; modules:
``errors``, ``config``, ``documents``, ``util``, ``audit``, ``forms``, ``identifiers``,
``logins``, ``platform``, ``cli``, ``demo``. Each package's docstring names its public modules.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
