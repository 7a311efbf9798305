"""The projects domain: projects, their questions, members and guidelines."""
