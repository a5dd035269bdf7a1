"""The batch engine: sources, uploads, retries, writers, manifest, long recordings.

It never imports the hooks: it reaches KubeAI through :class:`~..speech.SpeechEndpoint`. Remote
inputs and outputs go through Airflow's ``ObjectStoragePath`` (imported when one is used), and the
provider's exceptions derive from ``AirflowException``, so the package needs Airflow installed.
"""
