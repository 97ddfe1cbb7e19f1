"""Training: recipes -> checkpoints (state_dict + recipe) and metrics JSON."""
