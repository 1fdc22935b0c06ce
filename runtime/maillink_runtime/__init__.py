"""Plumbing every maillink service uses. Holds no domain code."""
