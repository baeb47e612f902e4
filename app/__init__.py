"""Shopdesk: a customer-service assistant for online shops.

Importing ``app`` (or any of its modules) loads no model and opens no database; the orchestrator
and the components are built by ``app.factory.build_assistant``.
"""
