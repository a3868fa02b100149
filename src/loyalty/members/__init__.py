"""What a member sees: one summary of balance, tier, vouchers and the next reward to aim for."""
