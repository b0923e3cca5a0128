"""Table and state models, tested without widgets."""
