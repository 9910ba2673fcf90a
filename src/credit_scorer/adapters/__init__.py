"""The outside world behind ports: deployers (local, Modal), ticket trackers (local, Jira), Slack; the factory."""
