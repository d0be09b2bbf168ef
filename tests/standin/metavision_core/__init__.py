"""STAND-IN for metavision_core (tests only; see tests/standin/README.md)."""
