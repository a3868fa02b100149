"""CSV import of customers and transactions: streamed, batched, bulk SQL, exactly once."""
