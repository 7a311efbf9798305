"""The items domain: prompts, responses and their import."""
