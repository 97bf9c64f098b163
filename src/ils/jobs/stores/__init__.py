"""Where jobs live: the store contract (``base``) and its Redis, local and in-memory kinds."""
