"""Live evaluation: outcomes, the point-in-time join, statistics, drift, the report."""
