"""Member tiers (L4): qualification, upgrades, reviews with grace, overrides, progress and counts."""
