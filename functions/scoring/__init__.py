"""Batch scoring of the CSV files that land in `scoring-input/` (no Azure Functions imports here)."""
