"""The batch transcription engine: sources, uploads, retries, writers, manifest (pure Python, no Airflow)."""
