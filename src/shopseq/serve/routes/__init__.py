"""One router per resource: events, users, items, forecasts, health, admin."""
