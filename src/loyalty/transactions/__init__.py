"""Purchases and returns, and the points they earn, spend and give back."""
