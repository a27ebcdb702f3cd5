"""Schedules: templates started on a cron schedule by a beat process (Celery beat with celery-redbeat).

``cron`` validates expressions, ``store`` keeps schedules in Redis, ``manager`` validates and fires them
through the service, ``beat`` is the scheduler the beat process runs, ``process`` starts it beside workers.
"""
