"""Operators of the KubeAI speech provider."""
