"""hfstream's network simulator: link models and loss sweeps. Depends on hfstream."""
