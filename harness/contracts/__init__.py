"""The contract floor: types, errors, seeding, the registry, perturbation specs, record ids and shared constants.

Everything else in facebench (generators, detectors, the data, run and report wings, the CLI)
stands on it; it imports nothing of facebench above it (docs/architecture.md)."""
