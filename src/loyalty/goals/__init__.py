"""Goals and badges (L10)."""
