"""Authentication: password hashing now; tokens and the auth routes later."""
