"""The mocked FHIR server's base URL (its own module: `conftest` names clash across folders)."""

BASE = "https://fhir.example.test/r4"
