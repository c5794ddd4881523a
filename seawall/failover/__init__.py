"""Failover: the controller state machine, its guard, emergency zones, the state directory."""
