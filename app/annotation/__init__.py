"""The annotation domain."""
