"""The central customer database: one record per person, identities from every channel."""
