"""Fault injection for the reliability suite: a flaky TCP proxy, scenario runners, the table."""
