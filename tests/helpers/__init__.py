"""Test helpers, shared by test modules (which never import each other)."""
