"""Webhook signing (Standard Webhooks) and the checks on webhook target addresses."""
