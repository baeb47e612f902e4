"""The FAQ knowledge base: articles, policy data, embeddings, the Chroma index and retrieval.

Importing this package loads no model. This package never imports ``app`` or ``intents``.
"""
