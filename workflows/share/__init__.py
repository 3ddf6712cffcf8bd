"""One workflow per share operation (create, delete, extend, shrink, access sync, snapshots)."""
