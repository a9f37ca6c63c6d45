"""Estimation: individual and population fits, their objective functions and uncertainty (issue 15's package)."""
