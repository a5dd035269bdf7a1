"""Triggers of the KubeAI speech provider."""
