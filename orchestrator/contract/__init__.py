"""The user-facing formats: touchpoint events, journey and policy YAML, actions."""
