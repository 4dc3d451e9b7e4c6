"""Hand-written reference implementations, written the plain way an expert would.

They share nothing with dslc except the synthetic data (``bench.data``) and, for a
like-for-like start, the canonical initial weights (torch ``state_dict`` layout),
which each reference converts to its own layout.
"""
