"""Accounts: logging in and out, people, teams, sites and devices."""
