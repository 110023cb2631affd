"""Test and benchmark helpers for the speech library (framework-free, no model weights)."""
