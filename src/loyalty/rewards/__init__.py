"""Rewards catalogue and vouchers (L7)."""
