"""The risk analysts' Dash dashboard over the store."""
