"""Futures and PM trades and income (the spot trades asset lives with the spot source)."""
