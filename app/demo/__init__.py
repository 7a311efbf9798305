"""The demo project a new installation starts with."""
