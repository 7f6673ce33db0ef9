"""Gunicorn settings the Procfile uses (`gunicorn -c python:ivr.gunicorn_config ...`): every line
gunicorn and the app write is one JSON object, phone numbers scrubbed (ivr.logs)."""

from ivr.logs import gunicorn_logconfig, install_redaction

install_redaction()  # the master's own lines too, before any app is built
logconfig_dict = gunicorn_logconfig()
