"""Stamp cards (L5): buy N, get the reward; program file section, stamping, returns, progress."""
