"""Blueprints for Twilio's voice webhooks."""
