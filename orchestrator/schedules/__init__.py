"""Schedules: templates started on a cron schedule by a beat (Celery beat with celery-redbeat).

``cron`` validates expressions, ``store`` keeps schedules in Redis, ``manager`` validates and fires them
through the service, ``beat`` is the scheduler a beat runs, ``embedded`` runs it as the supervised thread
that ``itom-orch up`` holds (``itom-orch beat`` runs it as a process of its own).
"""
