"""What the package is and how it may be used: the version and the disclaimer every output carries."""

__version__ = "0.1.0"

DISCLAIMER = "research and education tool, not for clinical decisions"
