"""The agreement domain: chance-corrected agreement statistics and label aggregation."""
