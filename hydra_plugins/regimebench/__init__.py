"""Hydra plugins of regimebench (Hydra only loads plugins from the ``hydra_plugins`` package)."""
