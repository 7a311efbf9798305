"""The training domain."""
