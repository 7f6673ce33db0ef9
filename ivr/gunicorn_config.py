"""Gunicorn settings the Procfile uses (`gunicorn -c python:ivr.gunicorn_config ...`): every line
gunicorn and the app write is one JSON object, phone numbers scrubbed (ivr.logs)."""

from ivr.logs import gunicorn_logconfig, install_redaction

install_redaction()  # the master's own lines too, before any app is built
logconfig_dict = gunicorn_logconfig()


def _learn_before_forking() -> None:
    """Train the learned reader (config/examples.yaml) once, here in the master: workers forked
    after this find its classifiers in `ivr.language.classifier`'s cache, instead of each
    spending seconds training them before it answers a call."""
    try:
        from ivr.config import load_config
        from ivr.decisions.speech import SpeechUnderstanding
        from ivr.settings import load_settings

        config = load_config(load_settings().config_dir)
    except Exception:  # each worker reports a bad setting or config itself
        return
    SpeechUnderstanding(config.menus, config.examples)


_learn_before_forking()
