"""Tuning models to the city's own cameras: mine frames, label them, fine-tune, export, gate."""
