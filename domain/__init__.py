"""The Task domain: entities and rules, in pure Python (standard library only)."""
