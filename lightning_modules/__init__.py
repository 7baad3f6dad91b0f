"""Models, data and objectives: everything that runs inside a Lightning fit."""
