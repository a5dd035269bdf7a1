"""Hooks of the KubeAI speech provider."""
