"""Optional conditioners (extras)."""
