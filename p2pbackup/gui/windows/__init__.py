"""One module per window."""
