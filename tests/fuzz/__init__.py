"""Hypothesis generators of dslc specs: valid ones drawn from the op catalog, and mutations into invalid ones."""
