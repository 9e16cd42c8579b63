"""Shared fixtures: small meshes for analytic checks and cached RF runs."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from skfem import MeshTri

from neurolysis.engines.rf.engine2d import simulate_rf
from neurolysis.engines.rf.settings import RFSettings


def polar_mesh(inner_m: float, outer_m: float, n_radial: int, n_angle: int, grading: float = 1.0) -> MeshTri:
    """Triangles filling the (r, z) half-annulus inner <= rho <= outer, 0 <= theta <= pi.

    ``grading`` > 1 packs radial lines toward the inner sphere (rho spaced geometrically
    in ((rho - inner) / (outer - inner)) ** grading).
    """
    s = np.linspace(0.0, 1.0, n_radial + 1) ** grading
    rho = inner_m + (outer_m - inner_m) * s
    theta = np.linspace(0.0, np.pi, n_angle + 1)
    base = MeshTri.init_tensor(rho, theta)
    rr, tt = base.p
    return MeshTri(np.vstack([rr * np.sin(tt), rr * np.cos(tt)]), base.t)


@cache
def _rf(settings: RFSettings):
    return simulate_rf(settings)


@pytest.fixture(scope="session")
def run_rf():
    """simulate_rf with results cached across the whole session (settings are hashable)."""
    return _rf


@pytest.fixture(scope="session", autouse=True)
def _private_case_store(tmp_path_factory):
    """No test writes to the user's own case store: ``NEUROLYSIS_STORE`` points at a throwaway
    SQLite file unless the run sets it (tests of the default location unset it themselves)."""
    import os

    if "NEUROLYSIS_STORE" in os.environ:
        yield
        return
    os.environ["NEUROLYSIS_STORE"] = str(tmp_path_factory.mktemp("store") / "cases.db")
    yield
    del os.environ["NEUROLYSIS_STORE"]
