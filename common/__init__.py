"""What every layer may import: run records and the disk cache."""
