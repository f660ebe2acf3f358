"""Webhooks: the subscriptions, their validation (``model``) and each process's cached view (``view``)."""
