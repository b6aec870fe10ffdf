"""Store-specific tests: one group of modules per store technology."""
