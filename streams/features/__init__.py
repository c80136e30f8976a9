"""Features: per-account state and the feature rows the kernel scores (columns follow rules.features)."""
