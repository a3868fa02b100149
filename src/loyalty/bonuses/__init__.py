"""Bonuses (L6): sign-up gift, first-purchase bonus, birthday bonus and instant rewards at checkout."""
