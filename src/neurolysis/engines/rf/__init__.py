"""Radiofrequency lesions, split by job.

* :mod:`.settings`: the RF settings schema (``RFSettings``) with device defaults;
* :mod:`.generator`: the generator model both engines share: temperature control,
  time steps, the one time loop, the energy budget and the result pieces;
* :mod:`.engine2d`: one needle in homogeneous tissue, axisymmetric (``simulate_rf``);
* :mod:`.engine3d`: needles at any angle in anatomy, mono- or bipolar (``simulate_rf3d``).
"""
