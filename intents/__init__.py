"""Intent classification and entity extraction for Shopdesk.

Importing this package loads no model: classifiers load their weights in ``load()``.
This package never imports ``app`` or ``knowledge_base``.
"""
