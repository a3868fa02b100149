"""Deterministic demo data: a Vietnamese retail chain with customers and purchases."""
