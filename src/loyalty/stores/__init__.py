"""Stores and channels: retail shops, outlets, the web shop, the call centre, partners."""
