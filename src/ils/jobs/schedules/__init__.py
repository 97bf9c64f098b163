"""Schedules: cron specs and the table of a company's recurring jobs."""
