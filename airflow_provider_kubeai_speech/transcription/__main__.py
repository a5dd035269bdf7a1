"""``python -m airflow_provider_kubeai_speech.transcription summary PATH [--inputs PATTERN]``: the
state of a batch (see :mod:`.progress`)."""

from __future__ import annotations

import sys

from airflow_provider_kubeai_speech.transcription.progress import main

sys.exit(main())
