"""A fault-injecting HTTP proxy that sits in front of the real test FHIR server (test-side only)."""

from tests.durability_proxy.proxy import Fault, FaultProxy, Plan, Seen, flaky_plan

__all__ = ["Fault", "FaultProxy", "Plan", "Seen", "flaky_plan"]
