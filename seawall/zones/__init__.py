"""Zone data: the model, the label trie, loaders and validation.

This package imports nothing else from Seawall: zones are pure data.
"""
