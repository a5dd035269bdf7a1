"""Sensors of the KubeAI speech provider."""
