"""Access control for serving: API keys (stored hashed), per-item access lists, the audit log
and retention. Everything lives inside the collection directory."""
