"""Hint-RFT: collect Hint-infer trajectories, filter them, export loss-masked data, train, eval."""
