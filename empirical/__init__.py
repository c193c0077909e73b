"""Real PyTorch training and measurement (see issues 3 and 4); feeds `nqm` through one adapter."""
