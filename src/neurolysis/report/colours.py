"""Colours of tissues in figures and the web viewer (RGB, 0-255)."""

TISSUE_COLOURS = {
    "muscle": (150, 70, 60),
    "fat": (235, 210, 130),
    "skin": (240, 180, 160),
    "bone": (235, 235, 225),
    "cartilage": (120, 170, 200),
    "csf": (90, 140, 230),
    "blood": (210, 30, 40),
    "liver": (130, 50, 40),
    "lung": (200, 200, 240),
    "nerve": (255, 215, 0),
    "spinal-cord": (250, 240, 120),
}
"""RGB (0-255) of each tissue; a tissue not listed is grey."""
OTHER_TISSUE_COLOUR = (128, 128, 128)

__all__ = ["OTHER_TISSUE_COLOUR", "TISSUE_COLOURS"]
