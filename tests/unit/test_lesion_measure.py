"""Lesion measurement on fields whose shapes are known exactly."""

import numpy as np
import pytest

from neurolysis.physics.lesion import measure_lesion
from neurolysis.physics.mesh import MeshSpec, NeedleGeometry, build_needle_mesh

GEOMETRY = NeedleGeometry(radius_m=0.635e-3, tip_length_m=10e-3, cone_length_m=1.27e-3, insulation_thickness_m=0.05e-3)


@pytest.fixture(scope="module")
def mesh():
    return build_needle_mesh(GEOMETRY, MeshSpec(h_fine_m=0.1e-3, domain_m=20e-3))


def test_ellipsoid_below_apex(mesh):
    """Field 1 - (r/R)^2 - ((z - zc)/H)^2 >= 0: an ellipsoid fully in tissue below the apex.

    width 2R, length 2H, distal -(zc - H), area pi R H, volume 4/3 pi R^2 H.
    """
    R, H, zc = 2e-3, 3e-3, -4e-3
    field = 1 - (mesh.r / R) ** 2 - ((mesh.z - zc) / H) ** 2
    shape = measure_lesion(mesh, field, 0.0, "test")
    assert shape.width_mm == pytest.approx(4.0, abs=0.01)
    assert shape.length_mm == pytest.approx(6.0, abs=0.01)
    assert shape.distal_mm == pytest.approx(7.0, abs=0.01)
    assert shape.proximal_mm == pytest.approx(-11.0, abs=0.01)
    assert shape.area_mm2 == pytest.approx(np.pi * 2 * 3, rel=0.005)
    assert shape.volume_mm3 == pytest.approx(4 / 3 * np.pi * 4 * 3, rel=0.005)


def test_cylinder_around_needle_excludes_needle(mesh):
    """Everything within 3 mm of the axis between z = 2 and 8 mm: a hollow cylinder (needle removed).

    The step field is interpolated linearly, so its edge is only located to within the
    mesh spacing (0.1 mm); threshold 0 puts it midway between an inside and an outside node.
    """
    field = np.where((mesh.r <= 3e-3) & (mesh.z >= 2e-3) & (mesh.z <= 8e-3), 1.0, -1.0)
    shape = measure_lesion(mesh, field, 0.0, "test")
    a = GEOMETRY.radius_m * 1e3
    assert shape.width_mm == pytest.approx(6.0, abs=0.1)
    assert shape.length_mm == pytest.approx(6.0, abs=0.1)
    assert shape.volume_mm3 == pytest.approx(np.pi * (9 - a**2) * 6, rel=0.03)


def test_no_lesion(mesh):
    shape = measure_lesion(mesh, np.zeros(mesh.mesh.p.shape[1]), 1.0, "test")
    assert (shape.width_mm, shape.length_mm, shape.volume_mm3) == (0.0, 0.0, 0.0)


def test_mesh_conforms_to_needle(mesh):
    """Cone apex at the origin, active nodes on the tip surface only, tissue elements outside the needle."""
    active = mesh.active_nodes
    assert np.all(mesh.z[active] <= GEOMETRY.tip_length_m * (1 + 1e-9))
    assert np.any(np.isclose(mesh.z[active], 0.0) & np.isclose(mesh.r[active], 0.0))
    cone = (mesh.z[active] < GEOMETRY.cone_length_m) & (mesh.z[active] > 0)
    np.testing.assert_allclose(mesh.r[active][cone], GEOMETRY.radius_m * mesh.z[active][cone] / GEOMETRY.cone_length_m, atol=1e-12)


def test_locate_agrees_with_generic_element_finder(mesh):
    """The tensor-grid lookup returns the same triangles as scikit-fem's search."""
    rng = np.random.default_rng(1)
    r = rng.uniform(0, 15e-3, 200)
    z = rng.uniform(-10e-3, 20e-3, 200)
    np.testing.assert_array_equal(mesh.locate(r, z), mesh.mesh.element_finder()(r, z))
