"""The supervisor dashboard: today's board and monthly KPIs per worker (issue 8)."""
