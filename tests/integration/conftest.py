"""Integration tier; the real FHIR server fixtures are in tests/conftest.py (fuzzing uses them)."""
