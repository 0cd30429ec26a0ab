"""Shared fixtures: paths to the shared reference data and one small synthetic region."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    assert SHARED.is_dir(), f"the shared folder is expected beside the checkout: {SHARED}"
    return SHARED


@pytest.fixture(scope="session")
def small_region(tmp_path_factory: pytest.TempPathFactory):
    """A small synthetic Skåne (scale 0.01, about 14,000 residents), generated once per run."""
    from brygga.synth import generate

    out = tmp_path_factory.mktemp("regions") / "skane-small"
    return generate(region="skane", out=out, scale=0.01, seed=7, workers=2)
