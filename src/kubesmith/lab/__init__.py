"""The lab: inventory hosts made real as systemd containers."""
