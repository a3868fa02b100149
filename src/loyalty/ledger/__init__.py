"""The points ledger: the only package that writes journal entries, postings and lots."""
